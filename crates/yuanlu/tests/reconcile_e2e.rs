//! End to end: refunds go through the real server to the channel simulators (a `yuanlu
//! simulate` process); each simulator exports its own statement of the day with injected
//! discrepancies (a refund paid twice, one never paid, one an amount off by a fen); `yuanlu
//! reconcile` and `POST /v1/reconciliations` import them, and the report finds exactly
//! those refunds and nothing else.
//!
//! The simulators' statements list refunds only (they never see payments), so yuanlu
//! reconciles refunds only: no payment is reported missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use common::{ADMIN_KEY, Options, PgSchema, Server, Simulator};
use serde_json::{Value, json};

const SIMULATOR_SECRET: &str = "e2e-recon-simulator-secret-0123456789";
/// Payment channel of each refund, and the simulator (statement) that serves it.
const REFUNDS: [(&str, &str); 15] = [
    ("wechat", "wechat"),
    ("wechat", "wechat"),
    ("wechat", "wechat"),
    ("wechat", "wechat"),
    ("wechat", "wechat"),
    ("alipay", "alipay"),
    ("alipay", "alipay"),
    ("alipay", "alipay"),
    ("alipay", "alipay"),
    ("alipay", "alipay"),
    ("credit_card", "card"),
    ("debit_card", "card"),
    ("credit_card", "card"),
    ("debit_card", "card"),
    ("credit_card", "card"),
];
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(100);
const INJECT: &str = "duplicate=1,missing=1,amount_off=1";

/// `duplicate=rf_a;missing=rf_b;amount_off=rf_c` → class → refund numbers.
fn parse_injected(header: &str) -> BTreeMap<String, Vec<String>> {
    header
        .split(';')
        .map(|part| {
            let (name, numbers) = part.split_once('=').unwrap();
            let numbers = numbers
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            (name.to_string(), numbers)
        })
        .collect()
}

/// The simulator's statement for `date`, and what it injected (header and sidecar agree).
async fn download(
    simulator: &Simulator,
    channel: &str,
    date: NaiveDate,
) -> (Vec<u8>, BTreeMap<String, Vec<String>>) {
    let query = format!("date={date}&inject={INJECT}");
    let response = simulator
        .http
        .get(format!(
            "{}/{channel}/sim/statement?{query}",
            simulator.base
        ))
        .bearer_auth(&simulator.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "statement of {channel}");
    let header = response
        .headers()
        .get("x-sim-injected")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();
    let bytes = response.bytes().await.unwrap().to_vec();
    let injected = parse_injected(&header);
    let sidecar: Value = simulator
        .http
        .get(format!(
            "{}/{channel}/sim/statement/injected?{query}",
            simulator.base
        ))
        .bearer_auth(&simulator.secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (name, numbers) in &injected {
        let listed: Vec<String> = sidecar[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            &listed, numbers,
            "{channel}: header and sidecar disagree on {name}"
        );
        assert_eq!(numbers.len(), 1, "{channel}: one {name} injected");
    }
    (bytes, injected)
}

/// `yuanlu reconcile --channel … --file …` on the server's database.
fn reconcile_cli(
    data_dir: &Path,
    database_url: Option<&str>,
    channel: &str,
    file: &Path,
) -> std::process::Output {
    let mut cmd = common::command();
    cmd.arg("reconcile")
        .arg("--channel")
        .arg(channel)
        .arg("--file")
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.output().unwrap()
}

/// The reconciliation id the CLI printed.
fn printed_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("recon_"))
        .unwrap_or_else(|| panic!("no reconciliation id in:\n{stdout}"))
        .to_string()
}

async fn post_statement(server: &Server, channel: &str, bytes: &[u8], key: &str) -> common::Resp {
    server
        .send(
            server
                .http
                .post(server.url(&format!("/v1/reconciliations?channel={channel}")))
                .bearer_auth(key)
                .header("content-type", "text/csv")
                .body(bytes.to_vec()),
        )
        .await
}

/// Class → the refund numbers of a reconciliation's exceptions, checking each one's shape.
async fn exceptions_by_class(
    server: &Server,
    id: &str,
    merchant_id: &str,
) -> (BTreeMap<String, Vec<String>>, Vec<Value>) {
    let page = server
        .get(
            &format!("/v1/reconciliations/{id}/exceptions?limit=100"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.body["has_more"], json!(false));
    let data = page.body["data"].as_array().unwrap().clone();
    let mut by_class: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for exception in &data {
        assert_eq!(exception["status"], "open");
        assert_eq!(exception["kind"], "refund", "{exception}");
        assert_eq!(exception["merchant_id"], merchant_id, "{exception}");
        by_class
            .entry(exception["class"].as_str().unwrap().to_string())
            .or_default()
            .push(exception["our_ref"].as_str().unwrap().to_string());
    }
    (by_class, data)
}

/// What the injections must be found as.
fn expected(injected: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    [
        ("duplicate", "duplicate_in_channel"),
        ("missing", "missing_in_channel"),
        ("amount_off", "amount_mismatch"),
    ]
    .into_iter()
    .map(|(injection, class)| (class.to_string(), injected[injection].clone()))
    .collect()
}

fn class_count(report: &Value, class: &str) -> i64 {
    report["report"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == class)
        .and_then(|c| c["count"].as_i64())
        .unwrap()
}

async fn run(database_url: Option<String>) {
    let dir = common::data_dir();
    let data_dir = dir.path().join("data");
    let simulator = Simulator::start(dir.path(), SIMULATOR_SECRET, "none");
    let server = Server::start_with(
        &data_dir,
        &Options {
            database_url: database_url.clone(),
            args: simulator.serve_args(),
            ..Options::default()
        },
    );
    let (merchant_id, key) = server.merchant("Reconciled shop").await;

    // Refunds through the server; dispatch takes them to the simulators.
    let mut refund_ids = Vec::new();
    for (n, (channel, _)) in REFUNDS.iter().enumerate() {
        let amount = 10_000 + 100 * n as i64;
        let payment = server.payment(&key, channel, amount).await;
        let payment_id = payment["id"].as_str().unwrap();
        let refund = server
            .refund(&key, payment_id, 1_000 + n as i64, &format!("recon-{n}"))
            .await;
        assert_eq!(refund.status, 201, "{}", refund.text);
        refund_ids.push(refund.str("id"));
    }
    let started = Instant::now();
    loop {
        let page = server
            .get("/v1/refunds?status=succeeded&limit=100", ADMIN_KEY)
            .await;
        let succeeded = page.body["data"].as_array().map_or(0, Vec::len);
        if succeeded == REFUNDS.len() {
            break;
        }
        assert!(
            started.elapsed() < SETTLE_DEADLINE,
            "{succeeded} of {} refunds succeeded after {SETTLE_DEADLINE:?}:\n{}",
            REFUNDS.len(),
            server.stderr()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
    let shanghai = FixedOffset::east_opt(8 * 3600).unwrap();
    let books = simulator.books("wechat").await;
    let paid_at: DateTime<Utc> = books["refunds"][0]["succeeded_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let date = paid_at.with_timezone(&shanghai).date_naive();

    for (n, channel) in ["wechat", "alipay", "card"].into_iter().enumerate() {
        let (bytes, injected) = download(&simulator, channel, date).await;
        let ours: Vec<&String> = REFUNDS
            .iter()
            .zip(&refund_ids)
            .filter(|((_, sim), _)| *sim == channel)
            .map(|(_, id)| id)
            .collect();
        for numbers in injected.values() {
            assert!(
                ours.contains(&&numbers[0]),
                "{channel}: {numbers:?} is not ours"
            );
        }
        let file = dir.path().join(format!("{channel}-{date}.csv"));
        std::fs::write(&file, &bytes).unwrap();

        // The CLI and the API, in both orders: the second finds the first's import.
        let cli_first = n != 1;
        let api = if cli_first {
            None
        } else {
            let answer = post_statement(&server, channel, &bytes, ADMIN_KEY).await;
            assert_eq!(answer.status, 201, "{}", answer.text);
            Some(answer)
        };
        let output = reconcile_cli(&data_dir, database_url.as_deref(), channel, &file);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            output.status.success(),
            "yuanlu reconcile --channel {channel}: {:?}\n{stdout}\n{stderr}",
            output.status
        );
        assert_eq!(stdout.contains("imported before"), !cli_first, "{stdout}");
        for (class, numbers) in expected(&injected) {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&class) && l.contains(&numbers[0])),
                "{channel}: the CLI does not print {class} {numbers:?}:\n{stdout}"
            );
        }
        let id = printed_id(&stdout);
        let api = match api {
            Some(answer) => answer,
            None => {
                let answer = post_statement(&server, channel, &bytes, ADMIN_KEY).await;
                assert_eq!(answer.status, 200, "a repeat answers 200: {}", answer.text);
                answer
            }
        };
        assert_eq!(api.str("id"), id, "{channel}: one import of one file");
        assert_eq!(api.body["already_imported"], json!(cli_first));

        let report = server
            .get(&format!("/v1/reconciliations/{id}"), ADMIN_KEY)
            .await;
        assert_eq!(report.status, 200, "{}", report.text);
        assert_eq!(report.str("channel"), channel);
        assert_eq!(report.str("business_date"), date.to_string());
        assert_eq!(report.body["report"]["payments_reconciled"], json!(false));
        assert_eq!(
            (report.i64("lines"), report.i64("records")),
            (5, 5),
            "{}",
            report.text
        );
        assert_eq!(class_count(&report.body, "matched"), 3, "{}", report.text);
        for class in [
            "unexpected_in_channel",
            "status_mismatch",
            "credited_after_refund",
        ] {
            assert_eq!(
                class_count(&report.body, class),
                0,
                "{class}: {}",
                report.text
            );
        }
        assert_eq!(
            (report.i64("exceptions"), report.i64("open_exceptions")),
            (3, 3)
        );
        let (found, exceptions) = exceptions_by_class(&server, &id, &merchant_id).await;
        assert_eq!(
            found,
            expected(&injected),
            "{channel}: exactly the injections"
        );

        // The amount off by one fen shows both amounts.
        let off = exceptions
            .iter()
            .find(|e| e["class"] == "amount_mismatch")
            .unwrap();
        assert_eq!(
            off["channel_amount"].as_i64().unwrap() - off["our_amount"].as_i64().unwrap(),
            1
        );

        // Resolving: a note is required, once.
        let exception_id = exceptions[0]["id"].as_str().unwrap();
        let path = format!("/v1/reconciliation-exceptions/{exception_id}/resolve");
        server
            .post(&path, ADMIN_KEY, &json!({}))
            .await
            .assert_problem(400, "validation_error", "resolve without a note");
        server
            .post(&path, &key, &json!({ "note": "mine" }))
            .await
            .assert_problem(403, "forbidden", "a merchant resolves");
        let resolved = server
            .post(
                &path,
                ADMIN_KEY,
                &json!({ "note": "confirmed with the channel" }),
            )
            .await;
        assert_eq!(resolved.status, 200, "{}", resolved.text);
        assert_eq!(resolved.str("status"), "resolved");
        assert_eq!(
            resolved.str("resolution_note"),
            "confirmed with the channel"
        );
        server
            .post(&path, ADMIN_KEY, &json!({ "note": "again" }))
            .await
            .assert_problem(409, "invalid_transition", "resolve twice");
        let open = server
            .get(
                &format!("/v1/reconciliations/{id}/exceptions?status=open"),
                ADMIN_KEY,
            )
            .await;
        assert_eq!(open.body["data"].as_array().unwrap().len(), 2);
    }

    refused_files(
        &server,
        &data_dir,
        database_url.as_deref(),
        dir.path(),
        &key,
    )
    .await;
    let audit = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
    drop(server);
    drop(simulator);
}

/// Malformed files are refused naming their line, by the API (400) and the CLI (non-zero);
/// and requests the import does not take.
async fn refused_files(
    server: &Server,
    data_dir: &Path,
    database_url: Option<&str>,
    dir: &Path,
    merchant_key: &str,
) {
    let bad = b"H|CARDNET|20261120|ACQ0001\nD|1|REFUND|N1|rf_x|100|00|20261120120000|\nD|2|REFUND|N2|rf_y|12x|00|20261120120000|\nT|2|0|112\n";
    let answer = post_statement(server, "card", bad, ADMIN_KEY).await;
    answer.assert_problem(400, "validation_error", "malformed card file");
    assert!(answer.str("detail").contains("line 3: "), "{}", answer.text);
    assert_eq!(answer.str("field"), "file");
    let file = dir.join("bad-card.txt");
    std::fs::write(&file, bad).unwrap();
    let output = reconcile_cli(data_dir, database_url, "card", &file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a malformed file must fail the CLI"
    );
    assert!(stderr.contains("line 3: "), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    post_statement(server, "card", bad, merchant_key)
        .await
        .assert_problem(403, "forbidden", "a merchant imports");
    post_statement(server, "visa", bad, ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "unknown channel");
    let json_body = server
        .post("/v1/reconciliations?channel=card", ADMIN_KEY, &json!({}))
        .await;
    json_body.assert_problem(415, "validation_error", "a JSON body");
    post_statement(server, "card", b"", ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "an empty file");
    // Larger than the API's usual 64 KiB: the import route takes files up to 256 MiB.
    let mut big = b"H|CARDNET|20261120|ACQ0001\n".to_vec();
    for n in 1..=2_000 {
        big.extend_from_slice(
            format!("D|{n}|REFUND|N{n}|rf_big{n}|100|00|20261120120000|\n").as_bytes(),
        );
    }
    big.extend_from_slice(b"T|2000|0|200001\n");
    assert!(big.len() > 64 * 1024);
    let answer = post_statement(server, "card", &big, ADMIN_KEY).await;
    answer.assert_problem(400, "validation_error", "a large malformed file");
    assert!(
        answer.str("detail").contains("line 2002: "),
        "{}",
        answer.text
    );
    server
        .get("/v1/reconciliations/recon_nope", ADMIN_KEY)
        .await
        .assert_problem(404, "not_found", "unknown reconciliation");
    let openapi = server
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    for path in [
        "/v1/reconciliations",
        "/v1/reconciliations/{id}",
        "/v1/reconciliations/{id}/exceptions",
        "/v1/reconciliation-exceptions/{id}/resolve",
    ] {
        assert!(
            openapi.body["paths"].get(path).is_some(),
            "{path} not in the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulator_statements_reconcile_to_exactly_the_injected_discrepancies() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulator_statements_reconcile_on_postgresql() {
    let Some(schema) = PgSchema::create("simulator_statements_reconcile_on_postgresql").await
    else {
        return;
    };
    run(Some(schema.url())).await;
    schema.drop_schema().await;
}
