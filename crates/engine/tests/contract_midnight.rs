//! The business date turns at 00:00 Asia/Shanghai (16:00 UTC), not at UTC midnight: a sale
//! at 23:59:59 and a refund one second later land on two different days — for the void
//! window, the day's refund ratio, the settlement statements, and the expected arrival the
//! overdue monitor holds a refund to. Every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use yuanlu_channels::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::review::ReviewReason;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig};
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_engine::settlement::StatementView;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn statement_of<'a>(run: &'a [StatementView], merchant: &Principal) -> &'a StatementView {
    let id = merchant.merchant_scope().unwrap();
    run.iter()
        .find(|s| s.merchant_id == id)
        .unwrap_or_else(|| panic!("no statement of {id}"))
}

contract!(
    a_sale_at_235959_and_a_refund_at_midnight_fall_on_two_business_dates,
    |h| {
        let shop = h.merchant().await;
        // Monday 2026-11-23, 23:59:59 in Shanghai — 15:59:59 UTC, the same UTC date as
        // the refund below: only the Shanghai day tells them apart.
        let monday_late = at("2026-11-23T23:59:59+08:00");
        h.clock.advance(monday_late - h.clock_now());
        assert_eq!(h.clock_now(), at("2026-11-23T15:59:59Z"));
        let big = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 1_000_000 }))
            .await;
        let voided = h
            .payment(&shop, json!({ "channel": "debit_card", "amount": 30_000 }))
            .await;
        let late = h
            .payment(&shop, json!({ "channel": "debit_card", "amount": 20_000 }))
            .await;
        // Refunded in full the same Shanghai day: a void, done at once, its fee returned.
        let void = h
            .refund(&shop, json!({ "payment_id": voided.id, "reason": "duplicate_charge", "merchant_refund_no": "before-midnight" }))
            .await;
        assert_eq!(
            (void.refund_type, void.status, void.fee_refunded),
            (RefundType::Void, RefundStatus::Succeeded, voided.fee)
        );

        // One second later it is Tuesday in Shanghai (16:00:00 UTC, still Monday in UTC).
        h.clock.advance(Duration::seconds(1));
        assert_eq!(h.clock_now(), at("2026-11-23T16:00:00Z"));
        let tuesday_sale = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 5_000 }))
            .await;
        let refund = h
            .refund(&shop, json!({ "payment_id": late.id, "reason": "customer_cancel", "merchant_refund_no": "after-midnight" }))
            .await;
        // Monday's sale refunded in full on Tuesday: a refund (退货), not a void; card fees
        // are not returned by a refund (policy `none`).
        assert_eq!(
            (refund.refund_type, refund.status, refund.fee_refunded),
            (RefundType::Refund, RefundStatus::PendingReview, 0)
        );
        // The ratio is Tuesday's: 20,000 refunded against 5,000 sold. On Monday's sales
        // (1,050,000) it would have passed without review.
        assert_eq!(
            refund.review.as_ref().map(|r| r.reasons.clone()),
            Some(vec![ReviewReason::RefundRatio])
        );
        let queued = h
            .engine
            .approve_refund(
                &Principal::Admin,
                &refund.id,
                ReviewNote {
                    note: Some("goods back".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (queued.refund_type, queued.status),
            (RefundType::Refund, RefundStatus::Queued)
        );
        // Wednesday: both days settle, each with what happened on it.
        h.clock.advance(Duration::days(1));
        let monday = h
            .engine
            .run_settlement(&Principal::Admin, day("2026-11-23"))
            .await
            .unwrap();
        let tuesday = h
            .engine
            .run_settlement(&Principal::Admin, day("2026-11-24"))
            .await
            .unwrap();
        let monday = &statement_of(&monday, &shop).statement;
        let tuesday = &statement_of(&tuesday, &shop).statement;
        assert_eq!(monday.payout_date, day("2026-11-24"));
        assert_eq!(
            (monday.sales_count, monday.sales_fen, monday.fees_fen),
            (3, 1_050_000, big.fee + voided.fee + late.fee)
        );
        assert_eq!(
            (
                monday.voids_count,
                monday.voids_fen,
                monday.void_fees_returned_fen
            ),
            (1, 30_000, voided.fee)
        );
        assert_eq!((monday.refunds_count, monday.refunds_fen), (0, 0));
        assert_eq!(
            monday.payout_fen,
            1_050_000 - (big.fee + voided.fee + late.fee) - 30_000 + voided.fee
        );
        assert_eq!(tuesday.payout_date, day("2026-11-25"));
        assert_eq!(
            (tuesday.sales_count, tuesday.sales_fen, tuesday.fees_fen),
            (1, 5_000, tuesday_sale.fee)
        );
        assert_eq!((tuesday.voids_count, tuesday.voids_fen), (0, 0));
        assert_eq!(
            (
                tuesday.refunds_count,
                tuesday.refunds_fen,
                tuesday.refund_fees_returned_fen
            ),
            (1, 20_000, 0)
        );
        // Tuesday refunded more than it sold: nothing paid, the difference carried.
        assert_eq!(tuesday.payout_fen, 0);
        assert_eq!(
            tuesday.closing_carried_fen,
            5_000 - tuesday_sale.fee - 20_000
        );
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);

/// A channel that accepts every refund and never confirms it.
struct AcceptingChannel;

#[async_trait::async_trait]
impl RefundConnector for AcceptingChannel {
    fn channel_name(&self) -> &'static str {
        "card"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        Ok(ChannelOutcome::Processing {
            channel_refund_id: format!("ch_{}", request.refund_id),
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

contract!(
    a_refund_accepted_at_midnight_is_due_three_business_days_from_the_shanghai_date,
    |h| {
        let set = ChannelSet::default().with(&Channel::ALL, Arc::new(AcceptingChannel));
        let engine = h.engine.clone().with_channels(set);
        let shop = h.merchant().await;
        // 00:00:00 Tuesday 2026-11-24 in Shanghai: still Monday 16:00 in UTC.
        h.clock
            .advance(at("2026-11-24T00:00:00+08:00") - h.clock_now());
        let payment = h
            .payment(&shop, json!({ "channel": "debit_card", "amount": 50_000 }))
            .await;
        let refund = h
            .refund(&shop, json!({ "payment_id": payment.id, "amount": 10_000, "reason": "customer_cancel", "merchant_refund_no": "at-midnight" }))
            .await;
        assert_eq!(
            (refund.refund_type, refund.status),
            (RefundType::Refund, RefundStatus::Queued)
        );
        let worker = DispatchConfig {
            worker_id: "w1".into(),
            ..DispatchConfig::default()
        };
        engine.dispatch_once(&worker).await.unwrap();
        let accepted = engine.get_refund(&shop, &refund.id).await.unwrap();
        assert_eq!(accepted.status, RefundStatus::Processing);
        // A card refund: three business days from Tuesday, so by the end of Friday in
        // Shanghai (from Monday, the UTC date, it would be Thursday).
        let due = at("2026-11-27T23:59:59.999999+08:00");
        assert_eq!(accepted.expected_arrival_by, Some(due));

        // The last second of Friday in Shanghai: not overdue yet.
        h.clock
            .advance(at("2026-11-27T23:59:59+08:00") - h.clock_now());
        assert_eq!(engine.monitor_overdue_once().await.unwrap(), 0);
        // 00:00:00 Saturday in Shanghai (16:00 UTC on Friday): overdue, a case opened.
        h.clock.advance(Duration::seconds(1));
        assert_eq!(h.clock_now(), at("2026-11-27T16:00:00Z"));
        assert_eq!(engine.monitor_overdue_once().await.unwrap(), 1);
        assert_eq!(
            engine.monitor_overdue_once().await.unwrap(),
            0,
            "raised once"
        );
    }
);
