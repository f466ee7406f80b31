//! A request stuck behind a database lock is abandoned at `--request-timeout-ms` and
//! answered 503 `request_timeout` (problem+json, `Retry-After`), instead of hanging; once
//! the lock is gone a retry of the same refund makes exactly one refund. The lock is held
//! by the test itself (a `FOR UPDATE` row lock on PostgreSQL, a write transaction on
//! SQLite), so the slow query is certain, not a timed race.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Options, PgSchema, Server};
use sqlx::Connection;

fn options(database_url: Option<String>) -> Options {
    Options {
        database_url,
        args: ["--request-timeout-ms", "1000", "--dispatch-workers", "0"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    }
}

/// A refund asked for while `lock` holds the merchant's books: 503, then, with the lock
/// released, one refund.
async fn a_locked_write_times_out<L, F>(server: &Server, key: &str, payment_id: &str, lock: L)
where
    L: FnOnce() -> F,
    F: std::future::Future<Output = Box<dyn FnOnce() -> BoxedRelease>>,
{
    let release = lock().await;
    // The guard against a hang is the client's own deadline, far beyond the server's.
    let stuck = server
        .send(
            server
                .http
                .post(server.url("/v1/refunds"))
                .bearer_auth(key)
                .timeout(Duration::from_secs(20))
                .json(&serde_json::json!({
                    "payment_id": payment_id,
                    "amount": 1_200,
                    "reason": "customer_cancel",
                    "merchant_refund_no": "LOCKED-1",
                })),
        )
        .await;
    stuck.assert_problem(503, "request_timeout", "a refund behind a held lock");
    assert!(stuck.text.contains("1000 ms"), "{}", stuck.text);
    release().await;

    // Retried once the lock is gone: one refund, whatever the abandoned attempt left.
    let retried = server.refund(key, payment_id, 1_200, "LOCKED-1").await;
    assert!(
        [200, 201].contains(&retried.status),
        "retry after the lock: {}",
        retried.text
    );
    let payment = server.get(&format!("/v1/payments/{payment_id}"), key).await;
    assert_eq!(payment.status, 200, "{}", payment.text);
    let refunds = payment.body["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{}", payment.text);
    assert_eq!(
        payment.i64("amount_in_flight") + payment.i64("amount_refunded"),
        1_200,
        "{}",
        payment.text
    );
    let ledger = server.get("/v1/ledger/check", common::ADMIN_KEY).await;
    assert_eq!(
        ledger.body["balanced"],
        serde_json::json!(true),
        "{}",
        ledger.text
    );
}

type BoxedRelease = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[tokio::test]
async fn a_write_behind_a_row_lock_answers_503_on_postgresql() {
    let Some(schema) =
        PgSchema::create("a_write_behind_a_row_lock_answers_503_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), &options(Some(schema.url())));
    let (merchant_id, key) = server.merchant("Locked Noodles").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap().to_string();
    let url = schema.url();
    a_locked_write_times_out(&server, &key, &payment_id, || async move {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let locked =
            sqlx::query("SELECT 1 FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE")
                .bind(&merchant_id)
                .execute(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            locked.rows_affected(),
            1,
            "the balance row exists and is locked"
        );
        Box::new(move || -> BoxedRelease {
            Box::pin(async move {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            })
        }) as Box<dyn FnOnce() -> BoxedRelease>
    })
    .await;
    drop(server);
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_write_behind_a_database_lock_answers_503_on_sqlite() {
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), &options(None));
    let (_merchant_id, key) = server.merchant("Locked Tea").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap().to_string();
    let db = dir.path().join("yuanlu.db");
    a_locked_write_times_out(&server, &key, &payment_id, || async move {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        // The write lock of the whole database, until the rollback.
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(move || -> BoxedRelease {
            Box::pin(async move {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            })
        }) as Box<dyn FnOnce() -> BoxedRelease>
    })
    .await;
}
