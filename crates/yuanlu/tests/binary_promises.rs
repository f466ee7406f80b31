//! What the binary promises, through the real binary: settlement and its re-run over HTTP
//! (checked against the sums of the payments and refunds the test made, not against the
//! statement's own fields), the ledger check, and the exit status of the money commands
//! (`settle`, `ledger check`, `calendar`, `audit verify`) on good and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ADMIN_KEY, Options, PgSchema, Server};
use serde_json::{Value, json};

/// Tuesday 2026-03-10, 10:00 in Shanghai; its payout day is Wednesday 2026-03-11.
const SALES_DAY_START: &str = "2026-03-10T10:00:00+08:00";
const SALES_DAY: &str = "2026-03-10";
/// A command that ends gets this long before the test fails (a guard, not a measure).
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

fn options(database_url: Option<String>) -> Options {
    Options {
        database_url,
        clock: Some(format!("simulated={SALES_DAY_START}")),
        // No dispatch workers: refunds stay queued, so no `refund_succeeded` posting lands
        // between the two settlement runs and the posting count compares exactly.
        // Settled by hand here (the test compares the ledger around each run), not on
        // schedule.
        args: vec![
            "--dispatch-workers".into(),
            "0".into(),
            "--settle-at".into(),
            "off".into(),
        ],
        ..Options::default()
    }
}

/// Runs `yuanlu ARGS…` to its end: exit code, stdout, stderr.
fn yuanlu(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = common::command();
    cmd.args(args);
    let out = common::output_within(cmd, COMMAND_DEADLINE);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn ledger(server: &Server) -> Value {
    let r = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["balanced"], json!(true), "{}", r.text);
    assert_eq!(r.body["sum_fen"], json!(0), "{}", r.text);
    r.body
}

/// The merchant's sales, fees, refunds and fees returned, summed from the answers the
/// server gave when the test made them.
#[derive(Debug, Default, PartialEq)]
struct Inputs {
    sales_fen: i64,
    fees_fen: i64,
    refunds_fen: i64,
    fees_returned_fen: i64,
}

impl Inputs {
    /// docs/settlement.md: net = sales − fees − refunds + refund fees returned.
    fn net_fen(&self) -> i64 {
        self.sales_fen - self.fees_fen - self.refunds_fen + self.fees_returned_fen
    }
}

/// One merchant's day: a card sale, two WeChat sales, two partial refunds (refunds, not
/// voids: WeChat Pay has no void).
async fn trade_a_day(server: &Server, key: &str, tag: &str) -> Inputs {
    let mut inputs = Inputs::default();
    for (channel, amount) in [
        ("credit_card", 100_000),
        ("wechat", 10_000),
        ("wechat", 25_550),
    ] {
        let payment = server.payment(key, channel, amount).await;
        inputs.sales_fen += payment["amount"].as_i64().unwrap();
        inputs.fees_fen += payment["fee"].as_i64().unwrap();
    }
    let wechat = server.payment(key, "wechat", 20_000).await;
    inputs.sales_fen += wechat["amount"].as_i64().unwrap();
    inputs.fees_fen += wechat["fee"].as_i64().unwrap();
    let wechat_id = wechat["id"].as_str().unwrap();
    for (n, amount) in [3_333, 4_444].into_iter().enumerate() {
        let r = server
            .refund(key, wechat_id, amount, &format!("{tag}-{n}"))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.str("status"), "queued", "{}", r.text);
        assert_eq!(r.str("type"), "refund", "{}", r.text);
        inputs.refunds_fen += r.i64("amount");
        inputs.fees_returned_fen += r.i64("fee_refunded");
    }
    assert!(inputs.fees_returned_fen > 0, "{inputs:?}");
    inputs
}

async fn settle_over_http(server: &Server) -> Value {
    let r = server
        .post(
            "/v1/settlements/run",
            ADMIN_KEY,
            &json!({ "business_date": SALES_DAY }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Statements of the run, by merchant id.
fn by_merchant(run: &Value) -> std::collections::BTreeMap<String, Value> {
    run["statements"]
        .as_array()
        .unwrap_or_else(|| panic!("no statements in {run}"))
        .iter()
        .map(|s| (s["merchant_id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

async fn settlement_pays_the_input_sums_once(database_url: Option<String>, data_dir: &Path) {
    let server = Server::start_with(data_dir, &options(database_url.clone()));
    let (lotus, lotus_key) = server.merchant("Lotus Dumplings").await;
    let (pine, pine_key) = server.merchant("Pine Tea").await;
    let lotus_day = trade_a_day(&server, &lotus_key, "LOTUS").await;
    let pine_day = trade_a_day(&server, &pine_key, "PINE").await;

    // The day has not ended: nothing can be settled yet.
    let early = server
        .post(
            "/v1/settlements/run",
            ADMIN_KEY,
            &json!({ "business_date": SALES_DAY }),
        )
        .await;
    assert!(
        (400..500).contains(&early.status),
        "settling an open day: {}",
        early.text
    );
    early.assert_problem_shape("settling an open day");
    // A merchant may not run settlement.
    let as_merchant = server
        .post(
            "/v1/settlements/run",
            &lotus_key,
            &json!({ "business_date": SALES_DAY }),
        )
        .await;
    assert_eq!(as_merchant.status, 403, "{}", as_merchant.text);
    let bad_date = server
        .post(
            "/v1/settlements/run",
            ADMIN_KEY,
            &json!({ "business_date": "2026-02-30" }),
        )
        .await;
    assert_eq!(bad_date.status, 400, "{}", bad_date.text);
    bad_date.assert_problem_shape("an impossible date");

    // Across midnight into Wednesday.
    let advanced = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 86_400 }),
        )
        .await;
    assert_eq!(advanced.status, 200, "{}", advanced.text);
    let before = ledger(&server).await;
    let first = settle_over_http(&server).await;
    let after_first = ledger(&server).await;
    let statements = by_merchant(&first);
    for (merchant, inputs) in [(&lotus, &lotus_day), (&pine, &pine_day)] {
        let s = &statements[merchant];
        assert_eq!(s["business_date"], json!(SALES_DAY), "{s}");
        assert_eq!(s["payout_date"], json!("2026-03-11"), "{s}");
        // Nothing carried in, a positive day: the payout is the inputs' net, all of it.
        assert_eq!(
            s["payout"],
            json!(inputs.net_fen()),
            "{merchant}: {inputs:?} vs {s}"
        );
        assert_eq!(s["closing_carried"], json!(0), "{s}");
    }
    // One payout posting per merchant, nothing else.
    assert_eq!(
        after_first["postings"].as_i64().unwrap() - before["postings"].as_i64().unwrap(),
        2,
        "{before} → {after_first}"
    );

    // Settling again never pays twice: the same statements, no new posting.
    let second = settle_over_http(&server).await;
    assert_eq!(by_merchant(&second), statements);
    let after_second = ledger(&server).await;
    assert_eq!(after_second, after_first);

    // The list says the same; a merchant sees only its own statement.
    let listed = server
        .get(
            &format!("/v1/settlements?business_date={SALES_DAY}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        by_merchant(&json!({ "statements": listed.body["data"] })),
        statements
    );
    let own = server
        .get(
            &format!("/v1/settlements?business_date={SALES_DAY}"),
            &pine_key,
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let own = own.body["data"].as_array().unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["payout"], json!(pine_day.net_fen()));

    // `yuanlu settle` on the same books: exit 0, the same statements, still no new posting.
    let mut settle = vec!["settle", "--date", SALES_DAY];
    let data_dir_arg = data_dir.display().to_string();
    match &database_url {
        Some(url) => settle.extend(["--database-url", url.as_str()]),
        None => settle.extend(["--data-dir", data_dir_arg.as_str()]),
    }
    let (code, stdout, stderr) = yuanlu(&settle);
    assert_eq!(code, Some(0), "settle again: {stdout}\n{stderr}");
    assert_eq!(ledger(&server).await, after_first);
    let mut check = vec!["ledger", "check"];
    check.extend_from_slice(&settle[3..]);
    let (code, stdout, stderr) = yuanlu(&check);
    assert_eq!(code, Some(0), "ledger check: {stdout}\n{stderr}");
    let mut verify = vec!["audit", "verify"];
    verify.extend_from_slice(&settle[3..]);
    let (code, stdout, stderr) = yuanlu(&verify);
    assert_eq!(code, Some(0), "audit verify: {stdout}\n{stderr}");
}

#[tokio::test]
async fn settlement_pays_the_input_sums_once_on_sqlite() {
    let dir = common::data_dir();
    settlement_pays_the_input_sums_once(None, dir.path()).await;
}

#[tokio::test]
async fn settlement_pays_the_input_sums_once_on_postgresql() {
    let Some(schema) = PgSchema::create("settlement_pays_the_input_sums_once_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    settlement_pays_the_input_sums_once(Some(schema.url()), dir.path()).await;
    schema.drop_schema().await;
}

#[test]
fn calendar_exit_status() {
    let dir = common::data_dir();
    let data_dir = dir.path().display().to_string();
    let (code, stdout, stderr) = yuanlu(&[
        "calendar",
        "--from",
        "2026-09-30",
        "--to",
        "2026-10-09",
        "--data-dir",
        &data_dir,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    assert_eq!(lines[0], "2026-09-30 workday", "{stdout}");
    assert_eq!(lines[1], "2026-10-01 holiday", "National Day: {stdout}");
    for (from, to, why) in [
        (
            "2026-10-09",
            "2026-10-01",
            "a range that ends before it starts",
        ),
        ("2026-02-30", "2026-03-01", "an impossible date"),
        ("yesterday", "2026-03-01", "not a date"),
    ] {
        let (code, stdout, stderr) = yuanlu(&[
            "calendar",
            "--from",
            from,
            "--to",
            to,
            "--data-dir",
            &data_dir,
        ]);
        assert_ne!(code, Some(0), "{why}: exit 0 with {stdout}");
        assert!(code.is_some(), "{why}: killed by a signal");
        assert!(!stderr.trim().is_empty(), "{why}: no message");
    }
    // A year without calendar data is not refused: it follows Monday–Friday, and says so
    // (docs: add <data-dir>/calendar/cn-YYYY.txt).
    let (code, stdout, stderr) = yuanlu(&[
        "calendar",
        "--from",
        "2031-01-03",
        "--to",
        "2031-01-06",
        "--data-dir",
        &data_dir,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "2031-01-03 workday\n2031-01-04 holiday\n2031-01-05 holiday\n2031-01-06 workday\n"
    );
    assert!(stderr.contains("years without calendar data"), "{stderr}");
}

#[test]
fn settle_ledger_and_audit_refuse_bad_input_with_a_failing_status() {
    let dir = common::data_dir();
    let data_dir = dir.path().display().to_string();
    // A database that cannot be opened: the data directory is a file. (An unreachable
    // PostgreSQL fails the same way, after the 30-second pool timeout: too slow for CI.)
    let not_a_dir = dir.path().join("not-a-directory");
    std::fs::write(&not_a_dir, "x").unwrap();
    let broken = not_a_dir.display().to_string();
    for (args, why) in [
        (
            vec!["settle", "--date", "2026-13-01", "--data-dir", &data_dir],
            "settle: an impossible date",
        ),
        (
            vec!["settle", "--date", "2999-01-01", "--data-dir", &data_dir],
            "settle: a day that has not ended",
        ),
        (
            vec!["settle", "--date", SALES_DAY, "--data-dir", &broken],
            "settle: a database that cannot be opened",
        ),
        (
            vec!["ledger", "check", "--data-dir", &broken],
            "ledger check: a database that cannot be opened",
        ),
        (
            vec!["audit", "verify", "--data-dir", &broken],
            "audit verify: a database that cannot be opened",
        ),
        (
            vec![
                "settle",
                "--date",
                SALES_DAY,
                "--database-url",
                "mysql://x/y",
            ],
            "settle: a database of an unknown kind",
        ),
    ] {
        let (code, stdout, stderr) = yuanlu(&args);
        assert!(code.is_some(), "{why}: killed by a signal");
        assert_ne!(code, Some(0), "{why}: exit 0 with {stdout}");
        assert!(!stderr.trim().is_empty(), "{why}: no message");
    }
}

/// Polls a refund until it reaches `status`; the deadline only guards against a hang (the
/// in-process simulator pays at once and a dispatch worker picks the refund up within its
/// poll interval).
async fn await_status(server: &Server, key: &str, refund_id: &str, status: &str) -> Value {
    let give_up_at = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get(&format!("/v1/refunds/{refund_id}"), key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.str("status") == status {
            return r.body;
        }
        assert!(
            std::time::Instant::now() < give_up_at,
            "{refund_id} never reached {status}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cases_lookup_feedback_reports_and_webhook_settings() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            args: vec![
                "--allow-private-webhooks".into(),
                "--dispatch-poll-ms".into(),
                "50".into(),
            ],
            ..Options::default()
        },
    );
    let (merchant, key) = server.merchant("Harbour Bakery").await;
    let (_other, other_key) = server.merchant("Other Bakery").await;

    // Webhook settings: set (the secret shown once), read back without it, refused when bad.
    let hook = format!("/v1/merchants/{merchant}/webhook");
    let set = server
        .call(
            reqwest::Method::PUT,
            &hook,
            Some(&key),
            Some(&json!({ "url": "http://127.0.0.1:9/yuanlu-hook" })),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.str("url"), "http://127.0.0.1:9/yuanlu-hook");
    assert!(set.str("secret").starts_with("whsec_"), "{}", set.text);
    assert!(
        set.body["events"]
            .as_array()
            .unwrap()
            .contains(&json!("refund.succeeded")),
        "{}",
        set.text
    );
    let read = server.get(&hook, &key).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.str("url"), "http://127.0.0.1:9/yuanlu-hook");
    assert!(
        !read.text.contains("whsec_"),
        "the secret is shown once: {}",
        read.text
    );
    let bad = server
        .call(
            reqwest::Method::PUT,
            &hook,
            Some(&key),
            Some(&json!({ "url": "ftp://127.0.0.1/hook" })),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    bad.assert_problem_shape("an ftp webhook");
    let foreign = server.get(&hook, &other_key).await;
    assert!([403, 404].contains(&foreign.status), "{}", foreign.text);

    // A refund the consumer can find with the facts on the receipt.
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "wechat", "amount": 10_000, "currency": "CNY", "phone": "13812340403" }),
        )
        .await;
    let payment_id = payment["id"].as_str().unwrap();
    let created = server.refund(&key, payment_id, 1_000, "R-1").await;
    assert_eq!(created.status, 201, "{}", created.text);
    let refund_id = created.str("id");
    await_status(&server, &key, &refund_id, "succeeded").await;

    let lookup = server
        .call(
            reqwest::Method::GET,
            "/v1/public/refunds/R-1?phone_last4=0403",
            None,
            None,
        )
        .await;
    assert_eq!(lookup.status, 200, "{}", lookup.text);
    assert_eq!(lookup.str("id"), refund_id);
    assert_eq!(lookup.i64("amount"), 1_000);
    assert_eq!(lookup.str("status"), "succeeded");
    assert_eq!(lookup.str("merchant_name"), "Harbour Bakery");
    assert!(lookup.body.get("merchant_id").is_none(), "{}", lookup.text);
    let wrong = server
        .call(
            reqwest::Method::GET,
            "/v1/public/refunds/R-1?phone_last4=9999",
            None,
            None,
        )
        .await;
    wrong.assert_problem(404, "not_found", "the wrong phone digits");

    // Feedback: a rating once the refund ended; out of range refused.
    let feedback = format!("/v1/public/refunds/{refund_id}/feedback");
    let out_of_range = server
        .call(
            reqwest::Method::POST,
            &feedback,
            None,
            Some(&json!({ "rating": 6, "reference": payment_id })),
        )
        .await;
    out_of_range.assert_problem(400, "validation_error", "a rating of 6");
    let rated = server
        .call(
            reqwest::Method::POST,
            &feedback,
            None,
            Some(&json!({ "rating": 4, "comment": "quick", "reference": payment_id })),
        )
        .await;
    assert!([200, 201].contains(&rated.status), "{}", rated.text);
    assert_eq!(rated.i64("rating"), 4, "{}", rated.text);

    // A case: opened by the merchant, read, resolved by the acquirer, not resolved twice.
    let opened = server
        .post(
            "/v1/cases",
            &key,
            &json!({ "refund_id": refund_id, "kind": "wrong_amount", "description": "customer says 9.00", "contact": "13812340403" }),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let case_id = opened.str("id");
    assert_eq!(opened.str("status"), "open");
    let read = server.get(&format!("/v1/cases/{case_id}"), &key).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.str("refund_id"), refund_id);
    let hidden = server
        .get(&format!("/v1/cases/{case_id}"), &other_key)
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
    let resolve = format!("/v1/cases/{case_id}/resolve");
    let resolved = server
        .post(
            &resolve,
            ADMIN_KEY,
            &json!({ "resolution": "10.00 refunded; receipt shown" }),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(resolved.str("status"), "resolved");
    let again = server
        .post(&resolve, ADMIN_KEY, &json!({ "resolution": "again" }))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    again.assert_problem_shape("resolving twice");

    // The report counts exactly what this test did, for this merchant.
    let report = server.get("/v1/reports/refunds", &key).await;
    assert_eq!(report.status, 200, "{}", report.text);
    let total = &report.body["total"];
    assert_eq!(total["refunds"]["count"], json!(1), "{}", report.text);
    assert_eq!(total["refunds"]["amount"], json!(1_000), "{}", report.text);
    assert_eq!(
        total["time_to_arrival"]["count"],
        json!(1),
        "{}",
        report.text
    );
    assert_eq!(
        total["cases"],
        json!({ "open": 0, "resolved": 1 }),
        "{}",
        report.text
    );
    assert_eq!(total["satisfaction"]["count"], json!(1), "{}", report.text);
    assert_eq!(
        total["satisfaction"]["average_rating_x100"],
        json!(400),
        "{}",
        report.text
    );
    assert_eq!(
        total["satisfaction"]["distribution"],
        json!([0, 0, 0, 1, 0]),
        "{}",
        report.text
    );
    let others = server.get("/v1/reports/refunds", &other_key).await;
    assert_eq!(
        others.body["total"]["refunds"]["count"],
        json!(0),
        "{}",
        others.text
    );
    ledger(&server).await;
}
