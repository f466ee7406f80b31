//! A void (撤销) is possible only on its payment's business date and before that date was
//! settled. A void that waited for review is decided again when it is approved: past its
//! window it becomes a refund (退货) with the refund fee rule and the funding rule, and goes
//! to the channel. Every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate, Utc};
use serde_json::json;
use yuanlu_channels::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_engine::Engine;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig};
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_engine::timeline::EventFacts;
use yuanlu_engine::views::Refund;

use crate::common::Harness;

/// A channel that pays every refund at once and counts the requests it got.
#[derive(Clone, Default)]
struct PayingChannel {
    executes: Arc<Mutex<HashMap<String, u32>>>,
}

impl PayingChannel {
    fn executes(&self, refund_id: &str) -> u32 {
        self.executes
            .lock()
            .unwrap()
            .get(refund_id)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl RefundConnector for PayingChannel {
    fn channel_name(&self) -> &'static str {
        "card"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        *self
            .executes
            .lock()
            .unwrap()
            .entry(request.refund_id.clone())
            .or_insert(0) += 1;
        Ok(ChannelOutcome::Succeeded {
            channel_refund_id: format!("ch_{}", request.refund_id),
            received_account: Some("招商银行借记卡 (**** 0403)".into()),
            succeeded_at: Utc::now(),
        })
    }

    async fn query(
        &self,
        _request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        Ok(None)
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        Err(CallbackError("no callbacks".into()))
    }
}

fn with_channel(h: &Harness) -> (Engine, PayingChannel) {
    let channel = PayingChannel::default();
    let set = ChannelSet::default().with(&Channel::ALL, Arc::new(channel.clone()));
    (h.engine.clone().with_channels(set), channel)
}

fn worker() -> DispatchConfig {
    DispatchConfig {
        worker_id: "w1".into(),
        ..DispatchConfig::default()
    }
}

fn note(text: &str) -> ReviewNote {
    ReviewNote {
        note: Some(text.to_string()),
    }
}

fn events(refund: &Refund) -> Vec<&str> {
    refund.timeline.iter().map(|e| e.event.as_str()).collect()
}

/// The payment's returned-fee counter, read from the store.
async fn fee_returned(h: &Harness, payment_id: &str) -> i64 {
    h.fetch_text(&format!(
        "SELECT CAST(fee_returned_fen AS TEXT) FROM payments WHERE id = '{payment_id}'"
    ))
    .await
    .parse()
    .unwrap()
}

/// A debit card sale of 300.00 CNY (fee 150 fen) on Fri 2026-11-20, and a full refund of
/// it the same day that waits for review (the day's only sale, refunded in full): a void.
async fn void_waiting_for_review(
    h: &Harness,
    settings: serde_json::Value,
) -> (Principal, String, Refund) {
    let shop = h.merchant_with(settings).await;
    let payment = h
        .payment(&shop, json!({ "channel": "debit_card", "amount": 30_000 }))
        .await;
    assert_eq!(payment.fee, 150);
    let void = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "duplicate_charge", "merchant_refund_no": "late-void" })).await;
    assert_eq!(
        (void.refund_type, void.status, void.fee_refunded),
        (RefundType::Void, RefundStatus::PendingReview, 150)
    );
    (shop, payment.id, void)
}

contract!(
    a_void_approved_after_its_date_was_settled_becomes_a_refund_sent_to_the_channel,
    |h| {
        let (engine, channel) = with_channel(&h);
        let (shop, payment_id, void) = void_waiting_for_review(&h, json!({})).await;
        h.clock.advance(Duration::days(3));
        let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        engine
            .run_settlement(&Principal::Admin, date)
            .await
            .unwrap();

        // The day's sale was paid out: nothing is left to fund a refund (the funding rule
        // applies now), and the refused approval leaves the void waiting, unchanged.
        let refused = engine
            .approve_refund(&Principal::Admin, &void.id, note("duplicate confirmed"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "insufficient_merchant_balance");
        let waiting = engine.get_refund(&shop, &void.id).await.unwrap();
        assert_eq!(
            (waiting.refund_type, waiting.status, waiting.fee_refunded),
            (RefundType::Void, RefundStatus::PendingReview, 150)
        );
        assert_eq!(events(&waiting), ["refund.created"]);

        // A new sale funds it.
        h.payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
            .await;
        let approved = engine
            .approve_refund(&Principal::Admin, &void.id, note("duplicate confirmed"))
            .await
            .unwrap();
        assert_eq!(
            (approved.refund_type, approved.status),
            (RefundType::Refund, RefundStatus::Queued)
        );
        assert_eq!(
            approved.fee_refunded, 0,
            "a card refund returns no fee (policy `none`); only a void returned it all"
        );
        assert_eq!(
            events(&approved),
            [
                "refund.created",
                "refund.void_window_passed",
                "refund.approved"
            ]
        );
        let why = &approved.timeline[1].facts;
        assert!(
            matches!(why, EventFacts::BecameRefund { business_date: Some(d), settled: true, .. } if d == "2026-11-20"),
            "{why:?}"
        );
        assert_eq!(fee_returned(&h, &payment_id).await, 0);

        engine.dispatch_once(&worker()).await.unwrap();
        let done = engine.get_refund(&shop, &void.id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        assert_eq!(
            channel.executes(&void.id),
            1,
            "sent along the original route"
        );
        let payment = engine.get_payment(&shop, &payment_id).await.unwrap();
        assert_eq!(
            (
                payment.voided,
                payment.amount_refunded,
                payment.amount_in_flight
            ),
            (false, 30_000, 0)
        );
        assert_eq!(fee_returned(&h, &payment_id).await, 0);
        assert!(engine.check_ledger().await.unwrap().balanced);
        assert!(engine.verify_audit().await.unwrap().ok);
    }
);

contract!(
    a_void_approved_on_a_later_day_before_settlement_ran_becomes_a_refund,
    |h| {
        let (engine, channel) = with_channel(&h);
        // Card fees returned in proportion, so the refund rule returns the whole fee of a
        // full refund, and the unsettled sale funds it.
        let settings = json!({ "channels": { "debit_card": { "fee_refund": "proportional" } } });
        let (shop, payment_id, void) = void_waiting_for_review(&h, settings).await;
        h.clock.advance(Duration::days(1));
        let approved = engine
            .approve_refund(&Principal::Admin, &void.id, note("ok"))
            .await
            .unwrap();
        assert_eq!(
            (approved.refund_type, approved.status, approved.fee_refunded),
            (RefundType::Refund, RefundStatus::Queued, 150)
        );
        assert_eq!(
            approved.timeline[1].facts,
            EventFacts::BecameRefund {
                business_date: Some("2026-11-20".into()),
                settled: false,
                fee_refunded: Some(150),
            }
        );
        assert_eq!(fee_returned(&h, &payment_id).await, 150);
        engine.dispatch_once(&worker()).await.unwrap();
        assert_eq!(
            engine.get_refund(&shop, &void.id).await.unwrap().status,
            RefundStatus::Succeeded
        );
        assert_eq!(channel.executes(&void.id), 1);
        let payment = engine.get_payment(&shop, &payment_id).await.unwrap();
        assert!(!payment.voided);
        assert_eq!(payment.amount_refunded, 30_000);
        assert!(engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(
    a_void_approved_the_same_day_before_settlement_is_still_a_void,
    |h| {
        let (engine, channel) = with_channel(&h);
        let (shop, payment_id, void) = void_waiting_for_review(&h, json!({})).await;
        h.clock.advance(Duration::hours(10)); // 20:00 in Shanghai, the same business date
        let approved = engine
            .approve_refund(&Principal::Admin, &void.id, note("ok"))
            .await
            .unwrap();
        assert_eq!(
            (approved.refund_type, approved.status, approved.fee_refunded),
            (RefundType::Void, RefundStatus::Succeeded, 150)
        );
        assert_eq!(
            events(&approved),
            ["refund.created", "refund.approved", "refund.void_completed"]
        );
        assert_eq!(engine.dispatch_once(&worker()).await.unwrap(), 0);
        assert_eq!(
            channel.executes(&void.id),
            0,
            "a void never reaches the channel"
        );
        let payment = engine.get_payment(&shop, &payment_id).await.unwrap();
        assert!(payment.voided);
        assert_eq!(fee_returned(&h, &payment_id).await, 150);
        assert!(engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(an_approved_refund_is_sent_to_its_channel, |h| {
    let (engine, channel) = with_channel(&h);
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 30_000 }))
        .await;
    h.clock.advance(Duration::days(1)); // not a void
    h.payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
        .await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 20_000, "reason": "customer_cancel", "merchant_refund_no": "big", "requested_by": { "role": "consumer" } })).await;
    assert_eq!(refund.status, RefundStatus::PendingReview);
    engine
        .approve_refund(&Principal::Admin, &refund.id, note("ok"))
        .await
        .unwrap();
    engine.dispatch_once(&worker()).await.unwrap();
    assert_eq!(channel.executes(&refund.id), 1);
    assert_eq!(
        engine.get_refund(&shop, &refund.id).await.unwrap().status,
        RefundStatus::Succeeded
    );
});
