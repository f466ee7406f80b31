//! `yuanlu demo` and `yuanlu serve --demo` through the real binary: the demo's claims
//! checked over the API, and the same seed giving the same demo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{ADMIN_KEY, Options, PgSchema, Server, command};
use serde_json::{Value, json};

/// Days of the test's demo: enough for a case opened on an overdue refund to be resolved
/// two days later, and for a few business days to settle and reconcile.
const DAYS: &str = "6";

/// The refund statuses (`RefundStatus::ALL`) the demo leaves present: all but `failed`, a
/// channel declining for good, which the simulators do only to what yuanlu never sends.
const STATUSES: [&str; 8] = [
    "awaiting_return",
    "pending_review",
    "queued",
    "processing",
    "succeeded",
    "abnormal",
    "rejected",
    "canceled",
];

/// The account key of the PostgreSQL demo (64 hex digits).
const ACCOUNT_KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// Runs `yuanlu demo --days 6 --seed 7` into `dir` (on `database_url` when given); its
/// report without the timing line.
fn run_demo(dir: &Path, database_url: Option<&str>) -> String {
    let mut cmd = command();
    cmd.args(["demo", "--days", DAYS, "--seed", "7", "--data-dir"])
        .arg(dir);
    if let Some(url) = database_url {
        // PostgreSQL keeps no key in the data directory: reroutes need one given.
        cmd.arg("--database-url").arg(url);
        cmd.env("YUANLU_ACCOUNT_KEY", ACCOUNT_KEY);
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|line| !line.starts_with("demo finished in"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The business days among the `days` dates before `today` (`yuanlu calendar`).
fn business_days_before(today: chrono::NaiveDate, days: i64, dir: &Path) -> Vec<String> {
    let from = today - chrono::Duration::days(days);
    let to = today - chrono::Duration::days(1);
    let output = command()
        .args([
            "calendar",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.ends_with("workday"))
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect()
}

/// Serves the demo in `dir` as `serve --demo` does, with no dispatch worker: the refunds
/// the demo left queued stay queued while the test looks.
fn serve_demo(dir: &Path, database_url: Option<String>) -> Server {
    let env = match database_url {
        Some(_) => vec![("YUANLU_ACCOUNT_KEY".to_string(), ACCOUNT_KEY.to_string())],
        None => Vec::new(),
    };
    Server::start_with(
        dir,
        &Options {
            database_url,
            env,
            args: ["--demo", "--dispatch-workers", "0"]
                .map(String::from)
                .to_vec(),
            ..Options::default()
        },
    )
}

/// Every refund in `status`, following the pages.
async fn refunds(server: &Server, status: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/v1/refunds?status={status}&limit=100{after}");
        let page = server.get(&path, ADMIN_KEY).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.body["data"].as_array().cloned().unwrap_or_default();
        all.extend(data.iter().cloned());
        if page.body["has_more"] != Value::Bool(true) || data.is_empty() {
            return all;
        }
        after = format!(
            "&starting_after={}",
            data[data.len() - 1]["id"].as_str().unwrap()
        );
    }
}

/// Signs in on the pages as a demo user, as a browser would (the anonymous CSRF cookie,
/// then the form); answers whether a session began.
async fn signs_in(server: &Server, username: &str, password: &str) -> bool {
    use common::cookie;
    use reqwest::header::{CONTENT_TYPE, COOKIE};
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(server.url("/login")).send().await.unwrap();
    let csrf = cookie(&login, "yl_csrf").expect("a CSRF cookie");
    let answer = http
        .post(server.url("/login"))
        .header(COOKIE, format!("yl_csrf={csrf}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&username={username}&password={password}"
        ))
        .send()
        .await
        .unwrap();
    answer.status() == 303 && cookie(&answer, "yl_session").is_some()
}

/// The demo's claims, checked over the API of the server serving it.
async fn check_claims(server: &Server, dir: &Path) {
    // The sign-ins `serve --demo` prints work on the pages; a wrong password does not.
    assert!(
        server.startup_output.contains("noodles.cashier (cashier)"),
        "{}",
        server.startup_output
    );
    for user in [
        "noodles.cashier",
        "kiosk.supervisor",
        "acquirer.reviewer",
        "acquirer.admin",
    ] {
        assert!(
            signs_in(server, user, "yuanlu-demo").await,
            "{user} signs in"
        );
    }
    assert!(!signs_in(server, "noodles.cashier", "not-the-password").await);
    // The supermarket's POS terminal is registered, its master key kept in demo.json only.
    let terminals = server.get("/v1/terminals", ADMIN_KEY).await;
    assert_eq!(terminals.status, 200, "{}", terminals.text);
    assert_eq!(
        terminals.body["data"][0]["terminal_id"],
        json!("10000001"),
        "{}",
        terminals.text
    );
    assert!(!terminals.text.contains("tmk"), "{}", terminals.text);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let tmk = saved["terminals"][0]["tmk"].as_str().unwrap_or_default();
    assert!(
        tmk.len() == 32 && tmk.chars().all(|c| c.is_ascii_hexdigit()),
        "{saved}"
    );
    let ledger = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(ledger.body["balanced"], json!(true), "{:?}", ledger.body);
    assert!(ledger.body["merchants_checked"].as_i64().unwrap() >= 3);
    let audit = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{:?}", audit.body);

    // Every status is present at the demo's "now".
    let mut by_status = std::collections::BTreeMap::new();
    for status in STATUSES {
        let found = refunds(server, status).await;
        assert!(!found.is_empty(), "no {status} refund");
        by_status.insert(status, found);
    }
    // Some were rerouted after their account was found closed.
    let mut rerouted = 0;
    for refund in &by_status["succeeded"] {
        let id = refund["id"].as_str().unwrap();
        let one = server.get(&format!("/v1/refunds/{id}"), ADMIN_KEY).await;
        let events = one.body["timeline"].as_array().cloned().unwrap_or_default();
        if events
            .iter()
            .any(|e| e.to_string().contains("refund.rerouted"))
        {
            rerouted += 1;
        }
    }
    assert!(rerouted > 0, "no rerouted refund");

    // The kiosk's refund waits in review: its balance cannot fund it.
    let held: Vec<&Value> = by_status["pending_review"]
        .iter()
        .filter(|r| r["merchant_refund_no"].as_str().unwrap().starts_with('H'))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    let id = held[0]["id"].as_str().unwrap();
    let approve = server
        .post(&format!("/v1/refunds/{id}/approve"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(approve.status, 422, "{}", approve.text);
    assert_eq!(approve.str("code"), "insufficient_merchant_balance");

    // Overdue refunds with cases, some resolved; consumers' ratings.
    let overdue = server
        .get("/v1/refunds?overdue=true&limit=100", ADMIN_KEY)
        .await;
    assert!(
        !overdue.body["data"].as_array().unwrap().is_empty(),
        "none overdue"
    );
    for status in ["open", "resolved"] {
        let cases = server
            .get(&format!("/v1/cases?status={status}&limit=100"), ADMIN_KEY)
            .await;
        assert!(
            !cases.body["data"].as_array().unwrap().is_empty(),
            "no {status} case: {}",
            cases.text
        );
    }
    let report = server.get("/v1/reports/refunds", ADMIN_KEY).await;
    assert!(
        report.body["total"]["satisfaction"]["count"]
            .as_i64()
            .unwrap()
            > 0,
        "no rating: {}",
        report.text
    );

    // A settlement and the statements reconciled for each past business day.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(saved["now"].as_str().unwrap()).unwrap();
    let today = now
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    let days = business_days_before(today, DAYS.parse().unwrap(), dir);
    assert!(!days.is_empty());
    let mut reconciled = std::collections::BTreeMap::<String, usize>::new();
    let mut exceptions = 0;
    for id in saved["reconciliations"].as_array().unwrap() {
        let path = format!("/v1/reconciliations/{}", id.as_str().unwrap());
        let recon = server.get(&path, ADMIN_KEY).await;
        assert_eq!(recon.status, 200, "{}", recon.text);
        *reconciled.entry(recon.str("business_date")).or_default() += 1;
        exceptions += recon.body["exceptions"].as_i64().unwrap();
    }
    assert!(exceptions > 0, "no reconciliation exception");
    for day in days {
        // Three statements, less a WeChat Pay bill on a day without WeChat refunds.
        let n = reconciled.get(&day).copied().unwrap_or(0);
        assert!((2..=3).contains(&n), "{day}: {reconciled:?}");
        let page = server
            .get(&format!("/v1/settlements?business_date={day}"), ADMIN_KEY)
            .await;
        let statements = page.body["data"].as_array().map_or(0, Vec::len);
        assert!(
            statements >= 3,
            "{day}: {statements} statements: {:?}",
            page.body
        );
    }
}

#[tokio::test]
async fn demo_fills_a_month_that_the_api_confirms_and_the_seed_repeats() {
    let root = tempfile::tempdir().unwrap();
    let (first, second) = (root.path().join("a"), root.path().join("b"));
    let report = run_demo(&first, None);
    assert_eq!(
        report,
        run_demo(&second, None),
        "the same seed gave another demo"
    );
    assert!(report.contains("audit verify: ok"), "{report}");
    assert!(report.contains("ledger check: balanced"), "{report}");
    assert!(!report.contains("statuses not reached"), "{report}");

    // Refused on a database that already holds data.
    let again = command()
        .args(["demo", "--days", "3", "--data-dir"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let server = serve_demo(&first, None);
    check_claims(&server, &first).await;
}

/// The same demo on PostgreSQL (a fresh schema), when `YUANLU_TEST_DATABASE_URL` is set.
#[tokio::test]
async fn demo_on_postgres_makes_the_same_claims() {
    let Some(schema) = PgSchema::create("demo_on_postgres_makes_the_same_claims").await else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let report = run_demo(root.path(), Some(&schema.url()));
    assert!(report.contains("audit verify: ok"), "{report}");
    assert!(report.contains("ledger check: balanced"), "{report}");
    assert!(!report.contains("statuses not reached"), "{report}");
    let mut server = serve_demo(root.path(), Some(schema.url()));
    check_claims(&server, root.path()).await;
    server.kill();
    schema.drop_schema().await;
}
