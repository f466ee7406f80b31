//! `yuanlu backup --to FILE`: a copy of the embedded SQLite database taken while a server
//! writes to it, which restores into a data directory that passes the audit and ledger
//! checks and holds every refund acknowledged before the backup began.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use sqlx::Connection;
use tokio::sync::mpsc;

use common::{Server, command, data_dir};

/// Refunds acknowledged before the backup is taken (the load keeps going during it).
const BEFORE_BACKUP: usize = 40;
/// At most this many refunds are written, this many on each payment.
const LOAD_MAX: usize = 400;
const PER_PAYMENT: usize = 40;

fn run(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = command();
    cmd.args(args);
    for path in paths {
        cmd.arg(path);
    }
    cmd.output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn refund_ids(db: &Path) -> BTreeSet<String> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM refunds")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ids.into_iter().map(|(id,)| id).collect()
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_and_holds_every_acknowledged_refund() {
    let dir = data_dir();
    let server = Server::start(dir.path());
    let (_, key) = server.merchant("backup shop").await;
    // A payment takes a bounded number of partial refunds: the load spreads over several.
    let mut payments = Vec::new();
    for _ in 0..LOAD_MAX / PER_PAYMENT {
        let payment = server.payment(&key, "alipay", 1_000_000).await;
        payments.push(payment["id"].as_str().unwrap().to_string());
    }

    // The load: refunds one after another until told to stop, each id sent once acknowledged.
    let (acked_tx, mut acked) = mpsc::unbounded_channel::<String>();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (http, base, stop) = (server.http.clone(), server.base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && (n as usize) < LOAD_MAX {
                let payment_id = &payments[n as usize / PER_PAYMENT];
                n += 1;
                let r = http
                    .post(format!("{base}/v1/refunds"))
                    .bearer_auth(&key)
                    .json(&json!({ "payment_id": payment_id, "amount": 1,
                        "reason": "customer_cancel", "merchant_refund_no": format!("bk{n}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201, "refund {n}");
                let body: serde_json::Value = r.json().await.unwrap();
                if acked_tx
                    .send(body["id"].as_str().unwrap().to_string())
                    .is_err()
                {
                    break;
                }
            }
            n
        })
    };
    let mut before = BTreeSet::new();
    while before.len() < BEFORE_BACKUP {
        before.insert(acked.recv().await.expect("the writer stopped early"));
    }
    while let Ok(id) = acked.try_recv() {
        before.insert(id);
    }

    // Taken while the writer goes on.
    let backups = data_dir();
    let file = backups.path().join("yuanlu-backup.db");
    let taken = {
        let (data, file) = (dir.path().to_path_buf(), file.clone());
        tokio::task::spawn_blocking(move || {
            run(
                &["backup", "--data-dir"],
                &[&data, Path::new("--to"), &file],
            )
        })
    };
    let output = taken.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let mut after = 0;
    while acked.try_recv().is_ok() {
        after += 1;
    }
    eprintln!(
        "{written} refunds written; {} acknowledged before the backup, {after} during or after it",
        before.len()
    );

    // Restored into a fresh data directory, as docs/operations.md says.
    let restored = data_dir();
    let db = restored.path().join("yuanlu.db");
    std::fs::copy(&file, &db).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600,
            "the backup is private"
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let audit = run(&["audit", "verify", "--data-dir"], &[restored.path()]);
    assert!(audit.status.success(), "audit verify: {}", describe(&audit));
    let ledger = run(&["ledger", "check", "--data-dir"], &[restored.path()]);
    assert!(
        ledger.status.success(),
        "ledger check: {}",
        describe(&ledger)
    );
    let held = refund_ids(&db).await;
    let missing: Vec<_> = before.difference(&held).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not in it: {missing:?}"
    );
}

#[test]
fn a_backup_never_overwrites_a_file() {
    let dir = data_dir();
    let migrate = run(&["migrate", "--data-dir"], &[dir.path()]);
    assert!(migrate.status.success(), "{}", describe(&migrate));
    let file = dir.path().join("kept.db");
    std::fs::write(&file, b"an older backup").unwrap();
    let refused = run(
        &["backup", "--data-dir"],
        &[dir.path(), Path::new("--to"), &file],
    );
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already exists"),
        "{}",
        describe(&refused)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"an older backup");
}

#[test]
fn a_backup_of_postgresql_is_refused_and_points_to_pg_dump() {
    let dir = data_dir();
    let file = dir.path().join("pg.db");
    let refused = run(
        &[
            "backup",
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/test",
            "--to",
        ],
        &[&file],
    );
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pg_dump"),
        "{}",
        describe(&refused)
    );
    assert!(!file.exists(), "nothing written");
}
