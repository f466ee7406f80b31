//! `yuanlu audit verify` exits 0 on an intact chain and non-zero once a row of the audit
//! log was edited or removed behind the application's back; the API says the same.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{ADMIN_KEY, Server};
use serde_json::{Value, json};
use sqlx::Connection;

fn verify(dir: &Path) -> (Output, Value) {
    let output = common::command()
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs one statement on the stopped server's SQLite file.
async fn tamper(dir: &Path, sql: &str, bind: &str) -> u64 {
    let url = format!("sqlite://{}", dir.join("yuanlu.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(bind.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    done.rows_affected()
}

/// A server that wrote a few entries to one merchant's chain, then was stopped.
/// A server without dispatch workers: the chains these tests keep heads of and cut must
/// not grow behind their back while a worker sends the refunds (the test would race it).
fn api_only_server(dir: &Path) -> Server {
    let options = common::Options {
        args: vec!["--dispatch-workers".into(), "0".into()],
        ..Default::default()
    };
    Server::start_with(dir, &options)
}

async fn populated(dir: &Path) -> String {
    let mut server = api_only_server(dir);
    let (merchant_id, key) = server.merchant("Audit Trail Tea").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap();
    for n in 0..3 {
        let r = server
            .refund(&key, payment_id, 100, &format!("AU-{n}"))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let ok = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(ok.body["ok"], json!(true), "{}", ok.text);
    server.kill();
    merchant_id
}

#[tokio::test]
async fn audit_verify_exits_zero_on_an_intact_chain_and_non_zero_after_an_edit() {
    let dir = common::data_dir();
    let merchant_id = populated(dir.path()).await;

    let (output, report) = verify(dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(report["ok"], json!(true), "{}", describe(&output));
    assert!(
        report["entries"].as_i64().unwrap() >= 6,
        "{}",
        describe(&output)
    );

    // Change what entry 2 of the merchant's chain says happened.
    let changed = tamper(
        dir.path(),
        "UPDATE audit_log SET data = '{\"tampered\":true}' WHERE chain = ? AND seq = 2",
        &merchant_id,
    )
    .await;
    assert_eq!(changed, 1);
    let (output, report) = verify(dir.path());
    assert!(
        !output.status.success(),
        "an edited entry passed: {}",
        describe(&output)
    );
    assert_eq!(report["ok"], json!(false), "{}", describe(&output));
    assert_eq!(
        report["first_bad"]["chain"],
        json!(merchant_id),
        "{}",
        describe(&output)
    );
    assert_eq!(
        report["first_bad"]["seq"],
        json!(2),
        "{}",
        describe(&output)
    );

    // The API of a restarted server names the same entry.
    let server = api_only_server(dir.path());
    let api = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body["ok"], json!(false), "{}", api.text);
    assert_eq!(api.body["first_bad"]["seq"], json!(2), "{}", api.text);
}

#[tokio::test]
async fn audit_verify_notices_a_removed_last_entry() {
    let dir = common::data_dir();
    let merchant_id = populated(dir.path()).await;
    let removed = tamper(
        dir.path(),
        "DELETE FROM audit_log WHERE chain = ?1 AND seq = (SELECT MAX(seq) FROM audit_log WHERE chain = ?1)",
        &merchant_id,
    )
    .await;
    assert_eq!(removed, 1);
    let (output, report) = verify(dir.path());
    assert!(
        !output.status.success(),
        "a removed tail passed: {}",
        describe(&output)
    );
    assert_eq!(report["ok"], json!(false), "{}", describe(&output));
}

#[tokio::test]
async fn audit_verify_notices_a_changed_actor() {
    let dir = common::data_dir();
    let merchant_id = populated(dir.path()).await;
    let changed = tamper(
        dir.path(),
        "UPDATE audit_log SET actor = 'acquirer:admin' WHERE chain = ? AND seq = 3",
        &merchant_id,
    )
    .await;
    assert_eq!(changed, 1);
    let (output, report) = verify(dir.path());
    assert!(
        !output.status.success(),
        "a changed actor passed: {}",
        describe(&output)
    );
    assert_eq!(
        report["first_bad"]["seq"],
        json!(3),
        "{}",
        describe(&output)
    );
}

#[tokio::test]
async fn migrate_and_verify_work_on_a_fresh_data_dir() {
    let dir = common::data_dir();
    let output = common::command()
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("migrations applied"),
        "{}",
        describe(&output)
    );
    let (output, report) = verify(dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(report["ok"], json!(true), "{}", describe(&output));
    assert_eq!(report["entries"], json!(0), "{}", describe(&output));
}

#[tokio::test]
async fn a_generated_admin_key_is_printed_once_and_kept() {
    let dir = common::data_dir();
    let start = |dir: &Path| {
        let mut cmd = common::command();
        cmd.env_remove("YUANLU_ADMIN_KEY")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .stdin(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let mut seen = Vec::new();
        loop {
            let line = lines.next().unwrap().unwrap();
            let done = line.starts_with("admin key");
            seen.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        seen
    };
    let first = start(dir.path());
    let line = first.iter().find(|l| l.starts_with("admin key")).unwrap();
    let (_, key) = line.rsplit_once(": ").unwrap();
    let saved = std::fs::read_to_string(dir.path().join("admin.key")).unwrap();
    assert_eq!(saved.trim(), key, "{first:?}");
    assert!(key.len() >= 16, "{key}");
    let second = start(dir.path());
    assert!(
        second.iter().all(|l| !l.contains(key)),
        "the key was printed again: {second:?}"
    );
}

fn verify_expecting(dir: &Path, heads: &Path) -> (Output, Value) {
    let output = common::command()
        .args(["audit", "verify", "--json", "--data-dir"])
        .arg(dir)
        .arg("--expect-heads")
        .arg(heads)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// Deletes the last two entries of the chain and moves its head back onto the entry
/// before: a consistent, shorter chain.
async fn cut_tail(dir: &Path, chain: &str) {
    tamper(
        dir,
        "DELETE FROM audit_log WHERE chain = ?1 AND seq > (SELECT seq - 2 FROM audit_heads WHERE chain = ?1)",
        chain,
    )
    .await;
    let moved = tamper(
        dir,
        "UPDATE audit_heads SET seq = (SELECT MAX(seq) FROM audit_log WHERE chain = ?1), \
         hash = (SELECT hash FROM audit_log WHERE chain = ?1 ORDER BY seq DESC LIMIT 1) WHERE chain = ?1",
        chain,
    )
    .await;
    assert_eq!(moved, 1);
}

#[tokio::test]
async fn expect_heads_catches_a_cut_tail_that_plain_verify_passes() {
    let dir = common::data_dir();
    let merchant_id = populated(dir.path()).await;
    // Keep the heads both ways: the API's answer and the CLI's output.
    let server = api_only_server(dir.path());
    let api = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(api.body["ok"], json!(true), "{}", api.text);
    let heads = api.body["heads"].as_array().unwrap();
    assert!(
        heads.iter().any(|h| h["chain"] == json!(merchant_id)),
        "{}",
        api.text
    );
    let from_api = dir.path().join("heads-api.json");
    std::fs::write(&from_api, &api.text).unwrap();
    drop(server);
    let (output, _) = verify(dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    let from_cli = dir.path().join("heads-cli.json");
    std::fs::write(&from_cli, &output.stdout).unwrap();

    // Nothing changed: both files pass.
    for file in [&from_api, &from_cli] {
        let (output, report) = verify_expecting(dir.path(), file);
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(report["ok"], json!(true), "{}", describe(&output));
    }

    cut_tail(dir.path(), &merchant_id).await;
    let (output, _) = verify(dir.path());
    assert!(
        output.status.success(),
        "a consistent cut passes alone: {}",
        describe(&output)
    );
    for file in [&from_api, &from_cli] {
        let (output, report) = verify_expecting(dir.path(), file);
        assert!(
            !output.status.success(),
            "a cut tail passed against kept heads: {}",
            describe(&output)
        );
        assert_eq!(report["first_bad"]["chain"], json!(merchant_id));
        assert_eq!(
            report["first_bad"]["problem"],
            json!("shorter_than_kept_head")
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&merchant_id),
            "the failure does not name the chain: {}",
            describe(&output)
        );
    }
    // The API says the same when given the kept heads.
    let server = api_only_server(dir.path());
    let kept = json!({ "expect_heads": api.body["heads"] });
    let post = server.post("/v1/audit/verify", ADMIN_KEY, &kept).await;
    assert_eq!(post.status, 200, "{}", post.text);
    assert_eq!(post.body["ok"], json!(false), "{}", post.text);
    assert_eq!(post.body["first_bad"]["chain"], json!(merchant_id));
    let plain = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(plain.body["ok"], json!(true), "{}", plain.text);

    // A file that is not a verification is refused, not taken as "no heads".
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"ok\": true}").unwrap();
    let (output, _) = verify_expecting(dir.path(), &junk);
    assert!(!output.status.success(), "{}", describe(&output));
}

#[tokio::test]
async fn expect_heads_passes_a_chain_that_grew_and_clock_moves_are_audited() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &common::Options {
            clock: Some("simulated=2026-11-20T10:00:00+08:00".into()),
            ..Default::default()
        },
    );
    let (_, key) = server.merchant("Growing Tea").await;
    let kept = server.get("/v1/audit/verify", ADMIN_KEY).await;
    let file = dir.path().join("heads.json");
    std::fs::write(&file, &kept.text).unwrap();
    server.payment(&key, "wechat", 1_000).await;
    let moved = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 86_400 }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let now = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(now.body["ok"], json!(true), "{}", now.text);
    let system = now.body["heads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["chain"] == json!("system"))
        .cloned()
        .unwrap_or_else(|| panic!("no system chain after a clock move: {}", now.text));
    assert!(system["seq"].as_i64().unwrap() >= 1);
    drop(server);
    let (output, report) = verify_expecting(dir.path(), &file);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(report["ok"], json!(true), "{}", describe(&output));
}

// ---------------------------------------------------------------------------------------
// `yuanlu ledger check` and `GET /v1/ledger/check` on tampered books.

/// `yuanlu ledger check` with the given database arguments: its output and its JSON report.
fn ledger_check(database: &[String]) -> (Output, Value) {
    let output = common::command()
        .args(["ledger", "check"])
        .args(database)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// One statement on a running server's database (SQLite file or PostgreSQL schema).
async fn tamper_db(url: &str, sql: &str) -> u64 {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    }
}

/// Balanced books, then a balance row out of step and an entry's amount changed: the API and
/// the command both say unbalanced and name the merchant and the posting; the command exits
/// non-zero. `database` are the command's database arguments, `url` reaches the same data.
async fn ledger_check_names_tampering(
    dir: &Path,
    options: &common::Options,
    database: &[String],
    url: &str,
) {
    // No dispatch workers: the refund stays queued, so the books do not move under the test.
    let mut options = options.clone();
    options
        .args
        .extend(["--dispatch-workers".to_string(), "0".to_string()]);
    let server = Server::start_with(dir, &options);
    let (merchant_id, key) = server.merchant("Ledger Lane").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let r = server
        .refund(&key, payment["id"].as_str().unwrap(), 2_500, "LC-E2E-1")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let api = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body["balanced"], json!(true), "{}", api.text);
    let (output, report) = ledger_check(database);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(report["balanced"], json!(true), "{}", describe(&output));

    let changed = tamper_db(
        url,
        &format!("UPDATE merchant_balances SET unsettled_fen = unsettled_fen + 1 WHERE merchant_id = '{merchant_id}'"),
    )
    .await;
    assert_eq!(changed, 1);
    let api = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body["balanced"], json!(false), "{}", api.text);
    assert_eq!(
        api.body["mismatched_merchants"],
        json!([merchant_id]),
        "{}",
        api.text
    );
    let (output, report) = ledger_check(database);
    assert!(
        !output.status.success(),
        "tampered books passed: {}",
        describe(&output)
    );
    assert_eq!(report["balanced"], json!(false), "{}", describe(&output));
    assert_eq!(
        report["mismatched_merchants"],
        json!([merchant_id]),
        "{}",
        describe(&output)
    );

    // Put the row back, then change what the payment's posting owes the merchant.
    tamper_db(
        url,
        &format!("UPDATE merchant_balances SET unsettled_fen = unsettled_fen - 1 WHERE merchant_id = '{merchant_id}'"),
    )
    .await;
    let changed = tamper_db(
        url,
        "UPDATE ledger_entries SET amount_fen = amount_fen + 7 WHERE account = 'channel_clearing:wechat'",
    )
    .await;
    assert_eq!(changed, 1);
    let posting = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(posting.body["balanced"], json!(false), "{}", posting.text);
    assert_eq!(posting.body["sum_fen"], json!(7), "{}", posting.text);
    let named = posting.body["unbalanced_postings"].clone();
    assert_eq!(named.as_array().map(Vec::len), Some(1), "{}", posting.text);
    assert_eq!(
        posting.body["mismatched_postings"], named,
        "{}",
        posting.text
    );
    assert_eq!(
        posting.body["mismatched_merchants"],
        json!([]),
        "{}",
        posting.text
    );
    let (output, report) = ledger_check(database);
    assert!(
        !output.status.success(),
        "tampered books passed: {}",
        describe(&output)
    );
    assert_eq!(
        report["unbalanced_postings"],
        named,
        "{}",
        describe(&output)
    );
}

#[tokio::test]
async fn ledger_check_exits_non_zero_and_names_tampered_books() {
    let dir = common::data_dir();
    let database = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let url = format!("sqlite://{}", dir.path().join("yuanlu.db").display());
    ledger_check_names_tampering(dir.path(), &common::Options::default(), &database, &url).await;
}

#[tokio::test]
async fn ledger_check_exits_non_zero_and_names_tampered_books_on_postgresql() {
    let Some(schema) = common::PgSchema::create(
        "ledger_check_exits_non_zero_and_names_tampered_books_on_postgresql",
    )
    .await
    else {
        return;
    };
    let dir = common::data_dir();
    let options = common::Options {
        database_url: Some(schema.url()),
        ..Default::default()
    };
    let database = vec![
        "--data-dir".to_string(),
        dir.path().display().to_string(),
        "--database-url".to_string(),
        schema.url(),
    ];
    ledger_check_names_tampering(dir.path(), &options, &database, &schema.url()).await;
    schema.drop_schema().await;
}
