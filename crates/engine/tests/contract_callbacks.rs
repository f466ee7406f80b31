//! Channel callbacks are tied to their channel: a callback verified by one channel's
//! connector never moves a refund sent through another. Both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use yuanlu_channels::{
    AlipayConnector, CallbackError, CallbackEvent, ChannelOutcome, ConnectorConfig, ConnectorError,
    RefundConnector, RefundRequest, WechatConnector, alipay, signing, wechat,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::Engine;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig};

use crate::common::Harness;

const WECHAT_SECRET: &str = "wechat-callback-secret-0123456789";
const ALIPAY_SECRET: &str = "alipay-callback-secret-0123456789";

/// A channel that accepts every refund (it stays `processing`) and verifies callbacks with
/// the real connector it wraps.
struct Accepting(Arc<dyn RefundConnector>);

#[async_trait::async_trait]
impl RefundConnector for Accepting {
    fn channel_name(&self) -> &'static str {
        self.0.channel_name()
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        Ok(ChannelOutcome::Processing {
            channel_refund_id: format!("ch_{}", request.refund_id),
        })
    }

    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        self.execute(request).await.map(Some)
    }

    fn parse_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        self.0.parse_callback(headers, body)
    }
}

fn engine_with_wallets(h: &Harness) -> Engine {
    // Never called over the network: only their callback verification is used.
    let wechat =
        WechatConnector::new(ConnectorConfig::new("http://127.0.0.1:9", WECHAT_SECRET)).unwrap();
    let alipay =
        AlipayConnector::new(ConnectorConfig::new("http://127.0.0.1:9", ALIPAY_SECRET)).unwrap();
    let set = ChannelSet::default()
        .with(&[Channel::Wechat], Arc::new(Accepting(Arc::new(wechat))))
        .with(&[Channel::Alipay], Arc::new(Accepting(Arc::new(alipay))));
    h.engine.clone().with_channels(set)
}

fn signed(secret: &str, header: &str, body: &[u8]) -> Vec<(String, String)> {
    let signature = signing::sign(secret.as_bytes(), Utc::now().timestamp(), body).unwrap();
    vec![(header.to_string(), signature)]
}

/// A WeChat Pay `REFUND.SUCCESS` callback for `refund_id`, signed with WeChat Pay's secret.
fn wechat_success(refund_id: &str, payment_id: &str) -> (Vec<(String, String)>, Vec<u8>) {
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
    (signed(WECHAT_SECRET, wechat::SIGNATURE_HEADER, &body), body)
}

/// An Alipay `REFUND_SUCCESS` callback for `refund_id`, signed with Alipay's secret.
fn alipay_success(refund_id: &str, payment_id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let note = alipay::wire::Notification {
        notify_id: format!("n_{refund_id}"),
        notify_time: "2026-11-21 10:05:00".into(),
        notify_type: "refund_status_sync".into(),
        out_trade_no: payment_id.to_string(),
        out_request_no: refund_id.to_string(),
        trade_no: "ali_1".into(),
        refund_status: "REFUND_SUCCESS".into(),
        refund_amount: "10.00".into(),
        gmt_refund_pay: Some("2026-11-21 10:05:00".into()),
        received_account: Some("余额".into()),
    };
    let body = serde_json::to_vec(&note).unwrap();
    (signed(ALIPAY_SECRET, alipay::SIGNATURE_HEADER, &body), body)
}

contract!(a_wechat_callback_cannot_settle_an_alipay_refund, |h| {
    let engine = engine_with_wallets(&h);
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "alipay", "amount": 10_000 }))
        .await;
    h.clock.advance(Duration::days(1));
    h.payment(&shop, json!({ "channel": "wechat", "amount": 1_000_000 }))
        .await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel", "merchant_refund_no": "cb1" })).await;
    let worker = DispatchConfig {
        worker_id: "w1".into(),
        ..DispatchConfig::default()
    };
    engine.dispatch_once(&worker).await.unwrap();
    let before = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(before.status, RefundStatus::Processing);

    let (headers, body) = wechat_success(&refund.id, &payment.id);
    let refused = engine
        .handle_callback("wechat", &headers, &body)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "callback_channel_mismatch");
    let after = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(after.status, RefundStatus::Processing);
    assert_eq!(
        after.timeline.len(),
        before.timeline.len(),
        "nothing written"
    );
    assert_eq!(
        after.destination, before.destination,
        "the forged callback's account was not recorded"
    );
    let paid = engine.get_payment(&shop, &payment.id).await.unwrap();
    assert_eq!((paid.amount_refunded, paid.amount_in_flight), (0, 1_000));

    // The refund's own channel settles it.
    let (headers, body) = alipay_success(&refund.id, &payment.id);
    engine
        .handle_callback("alipay", &headers, &body)
        .await
        .unwrap();
    let done = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    assert!(engine.verify_audit().await.unwrap().ok);
});
