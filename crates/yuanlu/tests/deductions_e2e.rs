//! Deductions agreed with the consumer (issue 15 item 2) end to end through the real server
//! (SQLite, and PostgreSQL when a database is named): the refund's JSON says what the
//! consumer gets, bad deductions are 4xx problems with stable codes that write nothing, and
//! the idempotent repeat compares the deductions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Options, PgSchema, Server};
use serde_json::{Value, json};

fn body(payment_id: &str, no: &str, amount: i64, deductions: Value) -> Value {
    json!({
        "payment_id": payment_id, "amount": amount, "reason": "quality_issue",
        "merchant_refund_no": no, "deductions": deductions,
    })
}

async fn deductions_through_the_api(server: &Server) {
    let (_, key) = server.merchant("Deduction Teahouse").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap();
    let agreed = json!([
        { "kind": "handling_fee", "amount": 500, "reason": "opened box, agreed at the till" },
        { "kind": "tax", "amount": 130, "reason": "import tax is not returned" },
    ]);

    // Refused, each with its code, and nothing written.
    server
        .post(
            "/v1/refunds",
            &key,
            &body(
                payment_id,
                "D-ZERO",
                10_000,
                json!([{ "kind": "tax", "amount": 0, "reason": "none" }]),
            ),
        )
        .await
        .assert_problem(400, "invalid_deduction", "a deduction of 0");
    server
        .post(
            "/v1/refunds",
            &key,
            &body(
                payment_id,
                "D-EMPTY",
                10_000,
                json!([{ "kind": "tax", "amount": 10, "reason": "" }]),
            ),
        )
        .await
        .assert_problem(400, "invalid_deduction", "a deduction without a reason");
    server
        .post(
            "/v1/refunds",
            &key,
            &body(
                payment_id,
                "D-ALL",
                1_000,
                json!([{ "kind": "restocking", "amount": 1_000, "reason": "the whole refund" }]),
            ),
        )
        .await
        .assert_problem(
            422,
            "deductions_exceed_refund",
            "deductions as large as the refund",
        );
    let untouched = server
        .get(&format!("/v1/payments/{payment_id}"), &key)
        .await;
    assert_eq!(untouched.body["refundable"], 10_000, "{}", untouched.text);

    // Accepted: the consumer gets the amount less the deductions.
    let created = server
        .post(
            "/v1/refunds",
            &key,
            &body(payment_id, "D-1", 10_000, agreed.clone()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["amount"], 10_000);
    assert_eq!(created.body["consumer_amount"], 9_370);
    assert_eq!(created.body["deductions"][0]["kind"], "handling_fee");
    assert_eq!(
        created.body["deductions"][1]["reason"],
        "import tax is not returned"
    );

    // The same request again is the same refund; without its deductions it is another one.
    let again = server
        .post(
            "/v1/refunds",
            &key,
            &body(payment_id, "D-1", 10_000, agreed),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], created.body["id"]);
    server
        .post(
            "/v1/refunds",
            &key,
            &body(payment_id, "D-1", 10_000, json!([])),
        )
        .await
        .assert_problem(
            409,
            "merchant_refund_no_conflict",
            "the repeat without deductions",
        );
}

#[tokio::test]
async fn deductions_through_the_api_on_sqlite() {
    let dir = common::data_dir();
    let mut server = Server::start_with(dir.path(), &Options::default());
    deductions_through_the_api(&server).await;
    server.kill();
}

#[tokio::test]
async fn deductions_through_the_api_on_postgres() {
    let Some(schema) = PgSchema::create("deductions_through_the_api_on_postgres").await else {
        return;
    };
    let dir = common::data_dir();
    let mut server = Server::start_with(
        dir.path(),
        &Options {
            database_url: Some(schema.url()),
            ..Options::default()
        },
    );
    deductions_through_the_api(&server).await;
    server.kill();
    schema.drop_schema().await;
}
