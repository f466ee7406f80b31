//! End to end through the real server (SQLite, and PostgreSQL when a database is named): a
//! merchant's day is settled, the merchant uploads its bank statement to
//! `POST /v1/merchants/{id}/bank-statements`, and reads the payout check back; a repeat
//! upload answers the stored report, and bad uploads get their problems.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_KEY, Options, PgSchema, Server};
use serde_json::json;

const CLOCK: &str = "simulated=2026-11-20T10:00:00+08:00";

fn upload(server: &Server, merchant_id: &str, key: &str, body: &str) -> reqwest::RequestBuilder {
    server
        .http
        .post(server.url(&format!("/v1/merchants/{merchant_id}/bank-statements")))
        .bearer_auth(key)
        .header("Content-Type", "text/csv; charset=utf-8")
        .body(body.to_string())
}

async fn payout_is_checked_against_the_bank(server: &Server) {
    let (merchant_id, key) = server.merchant("Bank Check Noodles").await;
    server.payment(&key, "credit_card", 100_000).await;
    let advanced = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 4 * 24 * 3600 }),
        )
        .await;
    assert_eq!(advanced.status, 200, "{}", advanced.text);
    let settled = server
        .post(
            "/v1/settlements/run",
            ADMIN_KEY,
            &json!({ "business_date": "2026-11-20" }),
        )
        .await;
    assert_eq!(settled.status, 200, "{}", settled.text);

    let file = "date,amount,counterparty,reference\n2026-11-23,994.00,收单机构,结算款\n2026-11-24,5.00,张三,转账\n";
    let created = server.send(upload(server, &merchant_id, &key, file)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    assert_eq!(report["payouts"][0]["outcome"], "paid", "{}", created.text);
    assert_eq!(report["payouts"][0]["payout"], 99_400);
    assert_eq!(report["payouts"][0]["credit"]["counterparty"], "收单机构");
    assert_eq!(report["unexplained_credits"][0]["amount"], 500);
    assert_eq!(report["counts"]["unexplained_credits"], 1);
    let id = created.str("id");
    assert!(id.starts_with("bsi_"), "{id}");

    let again = server.send(upload(server, &merchant_id, &key, file)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("id"), id);
    let read = server.get(&format!("/v1/bank-statements/{id}"), &key).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body, created.body);
    let listed = server
        .get(
            &format!("/v1/merchants/{merchant_id}/bank-statements"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["data"][0]["id"], json!(id));

    // Bad uploads.
    let bad_line = server
        .send(upload(
            server,
            &merchant_id,
            &key,
            "date,amount,counterparty,reference\n2026-11-23,abc,a,b\n",
        ))
        .await;
    bad_line.assert_problem(400, "validation_error", "a bad amount");
    assert!(bad_line.text.contains("line 2"), "{}", bad_line.text);
    let json_body = server
        .post(
            &format!("/v1/merchants/{merchant_id}/bank-statements"),
            &key,
            &json!({ "file": file }),
        )
        .await;
    json_body.assert_problem(415, "validation_error", "JSON instead of the file");
    let empty = server.send(upload(server, &merchant_id, &key, "")).await;
    empty.assert_problem(400, "validation_error", "an empty body");

    // Another merchant reaches neither the shop's uploads nor its reports.
    let (_, other_key) = server.merchant("Someone Else").await;
    server
        .send(upload(server, &merchant_id, &other_key, file))
        .await
        .assert_problem(404, "not_found", "another merchant's upload");
    server
        .get(&format!("/v1/bank-statements/{id}"), &other_key)
        .await
        .assert_problem(404, "not_found", "another merchant's report");
    server
        .get("/v1/bank-statements/not-an-id", &key)
        .await
        .assert_problem(404, "not_found", "an id yuanlu never gives");
}

#[tokio::test]
async fn a_merchant_checks_its_payouts_on_sqlite() {
    let dir = common::data_dir();
    let mut server = Server::start_with(
        dir.path(),
        &Options {
            clock: Some(CLOCK.into()),
            ..Options::default()
        },
    );
    payout_is_checked_against_the_bank(&server).await;
    server.kill();
}

#[tokio::test]
async fn a_merchant_checks_its_payouts_on_postgres() {
    let Some(schema) = PgSchema::create("a_merchant_checks_its_payouts_on_postgres").await else {
        return;
    };
    let dir = common::data_dir();
    let mut server = Server::start_with(
        dir.path(),
        &Options {
            database_url: Some(schema.url()),
            clock: Some(CLOCK.into()),
            ..Options::default()
        },
    );
    payout_is_checked_against_the_bank(&server).await;
    server.kill();
    schema.drop_schema().await;
}
