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
async fn populated(dir: &Path) -> String {
    let mut server = Server::start(dir);
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
    let server = Server::start(dir.path());
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
