//! The connectors against answers and callbacks written from the channels' published
//! documentation and maintained SDKs' samples (`tests/fixtures/README.md`), served over HTTP
//! byte for byte: not built from the connectors' own wire types, as the simulators' are.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use yuanlu_channels::{
    AlipayConnector, CallbackEvent, CardConnector, ChannelOutcome, ConnectorConfig, ConnectorError,
    RefundConnector, RefundRequest, WechatConnector, alipay, signing, wechat,
};
use yuanlu_domain::channel::Channel;

const SECRET: &str = "published-formats-secret";

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// What the channel was asked: path and body of each request, in order.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A channel that answers request n with `answers[n]` (status, fixture file), the last one
/// again once they run out, and records every request.
async fn channel(answers: Vec<(u16, &'static str)>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, body: Bytes| {
        let seen = record.clone();
        let answers = answers.clone();
        async move {
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push((uri.path().to_string(), body.to_vec()));
                seen.len() - 1
            };
            let (status, file) = answers[n.min(answers.len() - 1)];
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                fixture(file),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn request(channel: Channel, refund_id: &str) -> RefundRequest {
    RefundRequest {
        refund_id: refund_id.into(),
        payment_id: "pay_01K6B1Q0000000000000000030".into(),
        channel,
        amount_fen: 1_234,
        payment_amount_fen: 10_000,
        payer_account: None,
        reroute_account: None,
    }
}

fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn succeeded(id: &str, account: Option<&str>, at: &str) -> ChannelOutcome {
    ChannelOutcome::Succeeded {
        channel_refund_id: id.into(),
        received_account: account.map(str::to_string),
        succeeded_at: utc(at),
    }
}

async fn wechat_at(answers: Vec<(u16, &'static str)>) -> (WechatConnector, Seen) {
    let (url, seen) = channel(answers).await;
    (
        WechatConnector::new(ConnectorConfig::new(url, SECRET)).unwrap(),
        seen,
    )
}

#[tokio::test]
async fn wechat_refund_apply_answers() {
    let (wx, seen) = wechat_at(vec![(200, "wechat/refund_apply_success.json")]).await;
    let outcome = wx
        .execute(&request(Channel::Wechat, "rf_01K6B1Q0000000000000000031"))
        .await;
    assert_eq!(
        outcome,
        Ok(succeeded(
            "50000000382026092909732678859",
            Some("招商银行信用卡0403"),
            "2026-09-29T02:05:12Z"
        ))
    );
    assert_eq!(seen.lock().unwrap()[0].0, wechat::REFUNDS_PATH);

    let (wx, _) = wechat_at(vec![(200, "wechat/refund_apply_processing.json")]).await;
    let outcome = wx
        .execute(&request(Channel::Wechat, "rf_01K6B1Q0000000000000000032"))
        .await;
    assert_eq!(
        outcome,
        Ok(ChannelOutcome::Processing {
            channel_refund_id: "50000000382026092909732678860".into()
        })
    );

    let (wx, _) = wechat_at(vec![(403, "wechat/error_not_enough.json")]).await;
    let outcome = wx
        .execute(&request(Channel::Wechat, "rf_01K6B1Q0000000000000000032"))
        .await;
    assert!(
        matches!(&outcome, Err(ConnectorError::Final(m)) if m.contains("NOT_ENOUGH")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn wechat_refund_query_answers() {
    let refund_id = "rf_01K6B1Q0000000000000000033";
    let (wx, seen) = wechat_at(vec![(200, "wechat/refund_query_success.json")]).await;
    let outcome = wx.query(&request(Channel::Wechat, refund_id)).await;
    assert_eq!(
        outcome,
        Ok(Some(succeeded(
            "50001307732026092907480019805",
            Some("支付用户零钱"),
            "2026-09-29T06:52:11Z"
        )))
    );
    assert_eq!(
        seen.lock().unwrap()[0].0,
        format!("{}/{refund_id}", wechat::REFUNDS_PATH)
    );

    let (wx, _) = wechat_at(vec![(200, "wechat/refund_query_closed.json")]).await;
    let outcome = wx.query(&request(Channel::Wechat, refund_id)).await;
    assert!(
        matches!(&outcome, Ok(Some(ChannelOutcome::Failed { reason })) if reason.contains("CLOSED")),
        "{outcome:?}"
    );

    let (wx, _) = wechat_at(vec![(200, "wechat/refund_query_abnormal.json")]).await;
    let outcome = wx.query(&request(Channel::Wechat, refund_id)).await;
    assert!(
        matches!(&outcome, Ok(Some(ChannelOutcome::Abnormal { channel_refund_id: Some(id), .. }))
            if id == "50001307732026092907480019807"),
        "{outcome:?}"
    );

    let (wx, _) = wechat_at(vec![(404, "wechat/refund_query_not_found.json")]).await;
    assert_eq!(
        wx.query(&request(Channel::Wechat, refund_id)).await,
        Ok(None)
    );
}

/// WeChat Pay's envelope with its `resource` replaced by the decrypted resource.
fn wechat_envelope_in_clear(event_type: &str, resource: &str) -> Vec<u8> {
    let mut envelope = json("wechat/notify_refund_success.json");
    envelope["event_type"] = event_type.into();
    envelope["resource"] = json(resource);
    serde_json::to_vec(&envelope).unwrap()
}

#[test]
fn wechat_callback_with_the_published_resource() {
    let body = wechat_envelope_in_clear(
        "REFUND.SUCCESS",
        "wechat/notify_refund_success_resource.json",
    );
    // Through the connector, as the notify endpoint calls it (simulator signature scheme).
    let wx = WechatConnector::new(ConnectorConfig::new("http://127.0.0.1:9", SECRET)).unwrap();
    let header = signing::sign(SECRET.as_bytes(), signing::transport_now_unix(), &body).unwrap();
    let event = wx.parse_callback(&[(wechat::SIGNATURE_HEADER.to_string(), header)], &body);
    assert_eq!(
        event,
        Ok(CallbackEvent {
            refund_id: "rf_01K6B1Q0000000000000000031".into(),
            outcome: succeeded(
                "50000000382026092909732678859",
                Some("招商银行信用卡0403"),
                "2026-09-29T02:05:12Z"
            ),
        })
    );

    let body = wechat_envelope_in_clear(
        "REFUND.ABNORMAL",
        "wechat/notify_refund_abnormal_resource.json",
    );
    let event = wechat::parse_notification(&body).unwrap();
    assert_eq!(event.refund_id, "rf_01K6B1Q0000000000000000035");
    assert!(
        matches!(&event.outcome, ChannelOutcome::Abnormal { channel_refund_id: Some(id), .. }
            if id == "50001307732026092907480019807"),
        "{event:?}"
    );
}

#[test]
fn wechat_encrypted_callback_is_refused_by_name() {
    // As WeChat Pay sends it: yuanlu has no APIv3 key to decrypt it (documented deviation).
    let refused = wechat::parse_notification(&fixture("wechat/notify_refund_success.json"))
        .expect_err("an encrypted resource cannot be read");
    assert!(refused.0.contains("AEAD_AES_256_GCM"), "{refused}");
    assert!(refused.0.contains("EV-2026092910051200001"), "{refused}");
}

async fn alipay_at(answers: Vec<(u16, &'static str)>) -> (AlipayConnector, Seen) {
    let (url, seen) = channel(answers).await;
    (
        AlipayConnector::new(ConnectorConfig::new(url, SECRET)).unwrap(),
        seen,
    )
}

fn alipay_request() -> RefundRequest {
    let mut r = request(Channel::Alipay, "rf_01K6B1Q0000000000000000041");
    r.payment_id = "pay_01K6B1Q0000000000000000040".into();
    r
}

/// The query's biz_content as sent.
fn query_options(seen: &Seen, n: usize) -> serde_json::Value {
    let body: serde_json::Value = serde_json::from_slice(&seen.lock().unwrap()[n].1).unwrap();
    assert_eq!(body["method"], alipay::METHOD_REFUND_QUERY);
    body["biz_content"]["query_options"].clone()
}

#[tokio::test]
async fn alipay_refund_answers() {
    let (ali, seen) = alipay_at(vec![(200, "alipay/refund_success.json")]).await;
    assert_eq!(
        ali.execute(&alipay_request()).await,
        Ok(succeeded(
            "2026092922001458860515315453",
            None,
            "2026-09-29T07:45:57Z"
        ))
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "fund_change Y needs no query"
    );

    // fund_change N: the connector asks the query, which says REFUND_SUCCESS.
    let (ali, seen) = alipay_at(vec![
        (200, "alipay/refund_no_fund_change.json"),
        (200, "alipay/query_success.json"),
    ])
    .await;
    assert_eq!(
        ali.execute(&alipay_request()).await,
        Ok(succeeded(
            "2026092922001458860515315453",
            None,
            "2026-09-29T07:45:57Z"
        ))
    );
    assert_eq!(
        query_options(&seen, 1),
        serde_json::json!(["gmt_refund_pay"])
    );

    for (file, words) in [
        (
            "alipay/refund_trade_has_finished.json",
            "ACQ.TRADE_HAS_FINISHED",
        ),
        (
            "alipay/refund_seller_balance_not_enough.json",
            "ACQ.SELLER_BALANCE_NOT_ENOUGH",
        ),
    ] {
        let (ali, _) = alipay_at(vec![(200, file)]).await;
        let outcome = ali.execute(&alipay_request()).await;
        assert!(
            matches!(&outcome, Err(ConnectorError::Final(m)) if m.contains(words)),
            "{file}: {outcome:?}"
        );
    }
    let (ali, _) = alipay_at(vec![(200, "alipay/refund_system_error.json")]).await;
    let outcome = ali.execute(&alipay_request()).await;
    assert!(
        matches!(&outcome, Err(ConnectorError::Transient(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn alipay_refund_query_answers() {
    let (ali, seen) = alipay_at(vec![(200, "alipay/query_success.json")]).await;
    assert_eq!(
        ali.query(&alipay_request()).await,
        Ok(Some(succeeded(
            "2026092922001458860515315453",
            None,
            "2026-09-29T07:45:57Z"
        )))
    );
    // Without query_options Alipay leaves gmt_refund_pay out, and a success needs it.
    assert_eq!(
        query_options(&seen, 0),
        serde_json::json!(["gmt_refund_pay"])
    );

    let (ali, _) = alipay_at(vec![(200, "alipay/query_not_found.json")]).await;
    assert_eq!(ali.query(&alipay_request()).await, Ok(None));
}

#[tokio::test]
async fn card_answers_as_documented() {
    let card_request = |id: &str| request(Channel::CreditCard, id);
    let (url, _) = channel(vec![(200, "card/refund_approved.json")]).await;
    let card = CardConnector::new(ConnectorConfig::new(url, SECRET)).unwrap();
    assert_eq!(
        card.execute(&card_request("rf_01K6B1Q0000000000000000051"))
            .await,
        Ok(succeeded(
            "N260929000001",
            Some("**** 0403"),
            "2026-09-29T02:05:12Z"
        ))
    );
    let (url, _) = channel(vec![(200, "card/refund_declined_05.json")]).await;
    let card = CardConnector::new(ConnectorConfig::new(url, SECRET)).unwrap();
    let outcome = card
        .execute(&card_request("rf_01K6B1Q0000000000000000052"))
        .await;
    assert!(
        matches!(&outcome, Err(ConnectorError::Final(reason)) if reason.contains("declined 05")),
        "{outcome:?}"
    );
    let (url, _) = channel(vec![(200, "card/refund_card_closed.json")]).await;
    let card = CardConnector::new(ConnectorConfig::new(url, SECRET)).unwrap();
    let outcome = card
        .execute(&card_request("rf_01K6B1Q0000000000000000053"))
        .await;
    assert!(
        matches!(&outcome, Ok(ChannelOutcome::Abnormal { .. })),
        "{outcome:?}"
    );
}
