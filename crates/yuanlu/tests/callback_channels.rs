//! End to end: `POST /v1/channels/{name}/notify` applies a callback only to a refund of the
//! channel that signed it. A valid WeChat Pay callback naming an Alipay refund is refused
//! with 409 `callback_channel_mismatch`. On SQLite, and on PostgreSQL when configured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Options, PgSchema, Server, Simulator};
use yuanlu_channels::{signing, wechat};

const SIMULATOR_SECRET: &str = "e2e-callback-secret-0123456789abcdef";

/// A WeChat Pay `REFUND.SUCCESS` callback naming `refund_id`, signed as the channel signs.
fn wechat_success(server: &Server, refund_id: &str, payment_id: &str) -> reqwest::RequestBuilder {
    let note = wechat::wire::Notification {
        id: format!("evt_{refund_id}"),
        create_time: "2026-11-21T10:05:00+08:00".into(),
        event_type: "REFUND.SUCCESS".into(),
        resource: wechat::wire::NotificationResource {
            out_trade_no: Some(payment_id.to_string()),
            out_refund_no: refund_id.to_string(),
            refund_id: "wx_forged".into(),
            refund_status: "SUCCESS".into(),
            user_received_account: Some("支付用户零钱".into()),
            success_time: Some("2026-11-21T10:05:00+08:00".into()),
        },
    };
    let body = serde_json::to_vec(&note).unwrap();
    let signature = signing::sign(
        SIMULATOR_SECRET.as_bytes(),
        chrono::Utc::now().timestamp(),
        &body,
    )
    .unwrap();
    server
        .http
        .post(server.url("/v1/channels/wechat/notify"))
        .header(wechat::SIGNATURE_HEADER, signature)
        .header("content-type", "application/json")
        .body(body)
}

async fn a_wechat_callback_for_an_alipay_refund_is_refused(server: &Server) {
    let (_, key) = server.merchant("callback shop").await;
    server.payment(&key, "wechat", 1_000_000).await;
    let alipay = server.payment(&key, "alipay", 10_000).await;
    let alipay_id = alipay["id"].as_str().unwrap();
    let refund = server.refund(&key, alipay_id, 1_000, "cb-alipay").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let refused = server
        .send(wechat_success(server, &refund.str("id"), alipay_id))
        .await;
    refused.assert_problem(
        409,
        "callback_channel_mismatch",
        "wechat callback, alipay refund",
    );

    // The same callback for a WeChat Pay refund is valid and acknowledged.
    let wechat_payment = server.payment(&key, "wechat", 10_000).await;
    let wechat_id = wechat_payment["id"].as_str().unwrap();
    let own = server.refund(&key, wechat_id, 1_000, "cb-wechat").await;
    assert_eq!(own.status, 201, "{}", own.text);
    let acknowledged = server
        .send(wechat_success(server, &own.str("id"), wechat_id))
        .await;
    assert_eq!(acknowledged.status, 200, "{}", acknowledged.text);
}

#[tokio::test]
async fn a_wechat_callback_for_an_alipay_refund_is_refused_on_sqlite() {
    let dir = common::data_dir();
    let simulator = Simulator::start(dir.path(), SIMULATOR_SECRET, "none");
    let server = Server::start_with(
        dir.path(),
        &Options {
            args: simulator.serve_args(),
            ..Options::default()
        },
    );
    a_wechat_callback_for_an_alipay_refund_is_refused(&server).await;
}

#[tokio::test]
async fn a_wechat_callback_for_an_alipay_refund_is_refused_on_postgresql() {
    let Some(schema) =
        PgSchema::create("a_wechat_callback_for_an_alipay_refund_is_refused_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    {
        let simulator = Simulator::start(dir.path(), SIMULATOR_SECRET, "none");
        let server = Server::start_with(
            dir.path(),
            &Options {
                database_url: Some(schema.url()),
                args: simulator.serve_args(),
                ..Options::default()
            },
        );
        a_wechat_callback_for_an_alipay_refund_is_refused(&server).await;
    }
    schema.drop_schema().await;
}
