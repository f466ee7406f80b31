//! Deductions agreed with the consumer (issue 15 item 2) on both backends: the consumer
//! gets the amount less the deductions (that is what the channel is sent), the merchant
//! keeps them, the ledger and the settlement statement show each one, the fee returned is
//! the spec's (computed on the amount), and bad deductions are refused with stable codes.

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
use yuanlu_domain::deduction::DeductionKind;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::settlement::LineKind;
use yuanlu_engine::Engine;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig};
use yuanlu_engine::public::RefundFacts;
use yuanlu_engine::refunds::{CreateOutcome, ReviewNote};

use crate::common::Harness;

/// A channel that pays every refund it is sent (recording the amount), or refuses for good
/// the refunds named in `refuse`.
#[derive(Clone, Default)]
struct Channel1 {
    paid: Arc<Mutex<HashMap<String, i64>>>,
    refuse: Arc<Mutex<Vec<String>>>,
}

impl Channel1 {
    fn paid(&self, refund_id: &str) -> Option<i64> {
        self.paid.lock().unwrap().get(refund_id).copied()
    }
}

#[async_trait::async_trait]
impl RefundConnector for Channel1 {
    fn channel_name(&self) -> &'static str {
        "fake"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        if self.refuse.lock().unwrap().contains(&request.refund_id) {
            return Err(ConnectorError::Final("NOT_ENOUGH".into()));
        }
        self.paid
            .lock()
            .unwrap()
            .insert(request.refund_id.clone(), request.amount_fen);
        Ok(ChannelOutcome::Succeeded {
            channel_refund_id: format!("ch_{}", request.refund_id),
            received_account: Some("支付用户零钱".into()),
            succeeded_at: Utc::now(),
        })
    }

    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        Ok(self
            .paid(&request.refund_id)
            .map(|_| ChannelOutcome::Succeeded {
                channel_refund_id: format!("ch_{}", request.refund_id),
                received_account: Some("支付用户零钱".into()),
                succeeded_at: Utc::now(),
            }))
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        Err(CallbackError("no callbacks".into()))
    }
}

fn config() -> DispatchConfig {
    DispatchConfig {
        worker_id: "w1".into(),
        batch_refunds_max: 16,
        lease: std::time::Duration::from_secs(60),
        retry_base: std::time::Duration::from_secs(1),
        retry_cap: std::time::Duration::from_secs(60),
        confirm_poll_base: std::time::Duration::from_secs(30),
        confirm_poll_cap: std::time::Duration::from_secs(600),
        attempts_max: 4,
        query_errors_max: 3,
    }
}

fn with_channel(h: &Harness) -> (Engine, Channel1) {
    let fake = Channel1::default();
    let set = ChannelSet::default().with(&Channel::ALL, Arc::new(fake.clone()));
    (h.engine.clone().with_channels(set), fake)
}

/// Dispatches until nothing is due (each pass sends what is due now).
async fn drain(h: &Harness, engine: &Engine) {
    for _ in 0..20 {
        engine.dispatch_once(&config()).await.unwrap();
        match engine.next_dispatch_due().await.unwrap() {
            None => return,
            Some(due) => {
                let wait = (due - h.clock.now()).max(Duration::zero()) + Duration::milliseconds(1);
                h.clock.advance(wait);
            }
        }
    }
    panic!("dispatch did not settle");
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

const REFERENCE: &str = "202611200001";

/// A shop with a 100.00 WeChat payment captured yesterday (fee 0.38) and enough sales today
/// to fund refunds; returns the shop, its merchant id and the payment id.
async fn shop(h: &Harness) -> (Principal, String, String) {
    let shop = h.merchant().await;
    let merchant_id = shop.merchant_scope().unwrap().to_string();
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "voucher": { "rrn": REFERENCE },
                    "payer": { "wallet_account": "13812340403" } }),
        )
        .await;
    h.clock.advance(Duration::days(1));
    h.payment(&shop, json!({ "channel": "alipay", "amount": 1_000_000 }))
        .await;
    (shop, merchant_id, payment.id)
}

fn with_deductions(payment_id: &str, amount: Option<i64>, no: &str) -> serde_json::Value {
    let mut body = json!({
        "payment_id": payment_id, "reason": "quality_issue", "merchant_refund_no": no,
        "deductions": [
            { "kind": "handling_fee", "amount": 500, "reason": "opened box, agreed at the till" },
            { "kind": "tax", "amount": 130, "reason": "import tax is not returned" },
        ],
    });
    if let Some(amount) = amount {
        body["amount"] = json!(amount);
    }
    body
}

async fn count_postings(h: &Harness, event: &str, refund_id: &str) -> i64 {
    h.fetch_text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM ledger_postings WHERE event = '{event}' AND reference = '{refund_id}'"
    ))
    .await
    .parse()
    .unwrap()
}

contract!(
    the_consumer_gets_the_amount_less_the_deductions_and_the_books_show_each,
    |h| {
        let (engine, channel) = with_channel(&h);
        let (shop, merchant_id, payment_id) = shop(&h).await;
        let before = h.engine.merchant_balance(&merchant_id).await.unwrap();
        let refund = h
            .refund(&shop, with_deductions(&payment_id, None, "D-1"))
            .await;
        assert_eq!(
            refund.amount, 10_000,
            "omitted: the whole refundable amount"
        );
        assert_eq!(refund.consumer_amount, 9_370);
        assert_eq!(refund.deductions.len(), 2);
        assert_eq!(refund.deductions[0].kind, DeductionKind::HandlingFee);
        assert_eq!(refund.deductions[0].amount_fen, 500);
        assert_eq!(refund.deductions[1].reason, "import tax is not returned");
        assert_eq!(
            refund.fee_refunded, 38,
            "the spec's fee rule on the amount: the whole fee of a fully refunded payment"
        );
        assert_eq!(refund.status, RefundStatus::Queued);
        // The amount asked for leaves the payment's refundable amount.
        let payment = h.engine.get_payment(&shop, &payment_id).await.unwrap();
        assert_eq!(payment.refundable, 0);
        // The merchant is debited only what goes to the consumer, less the fee returned.
        let after = h.engine.merchant_balance(&merchant_id).await.unwrap();
        assert_eq!(before.unsettled_fen - after.unsettled_fen, 9_370 - 38);
        assert_eq!(count_postings(&h, "refund_deducted", &refund.id).await, 2);

        drain(&h, &engine).await;
        assert_eq!(
            channel.paid(&refund.id),
            Some(9_370),
            "the channel is sent the consumer's amount"
        );
        let done = h.engine.get_refund(&shop, &refund.id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        assert_eq!(done.consumer_amount, 9_370);
        assert_eq!(done.deductions, refund.deductions, "read back the same");
        let check = h.engine.check_ledger().await.unwrap();
        assert!(check.balanced, "{check:?}");

        // The consumer's view says the same.
        let public = h
            .engine
            .public_refund(&RefundFacts::ById {
                refund_id: refund.id.clone(),
                reference: REFERENCE.into(),
            })
            .await
            .unwrap();
        assert_eq!((public.amount, public.consumer_amount), (10_000, 9_370));
        assert_eq!(public.deductions.len(), 2);

        // The statement of the day shows the refund and each deduction.
        h.clock.advance(Duration::days(1));
        let statements = h
            .engine
            .run_settlement(&Principal::Admin, date("2026-11-21"))
            .await
            .unwrap();
        let statement = &statements
            .iter()
            .find(|s| s.merchant_id == merchant_id)
            .unwrap()
            .statement;
        let mine: Vec<_> = statement
            .lines
            .iter()
            .filter(|l| l.reference == refund.id)
            .collect();
        assert_eq!(
            mine.iter().map(|l| l.kind).collect::<Vec<_>>(),
            [LineKind::Refund, LineKind::Deduction, LineKind::Deduction]
        );
        assert_eq!(mine[0].net_fen, -(10_000 - 38));
        assert_eq!((mine[1].net_fen, mine[2].net_fen), (500, 130));
        let first = mine[1].deduction.as_ref().unwrap();
        assert_eq!(
            (first.line_no, first.kind, first.reason.as_str()),
            (
                1,
                DeductionKind::HandlingFee,
                "opened box, agreed at the till"
            )
        );
        assert!(
            mine[1]
                .english()
                .contains("handling fee 5.00 kept by the merchant"),
            "{}",
            mine[1].english()
        );
        assert_eq!(
            (statement.deductions_count, statement.deductions_fen),
            (2, 630)
        );
        assert_eq!(
            statement.lines.iter().map(|l| l.net_fen).sum::<i64>(),
            statement.net_fen
        );
        assert!(
            statement.explain().iter().any(|l| l
                .contains("Deductions kept from refunds: 2 deductions, 6.30")
                || l.contains("2 deductions, 6.30")),
            "{:?}",
            statement.explain()
        );
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(bad_deductions_are_refused_with_their_codes, |h| {
    let (shop, _, payment_id) = shop(&h).await;
    let code = |result: Result<CreateOutcome, yuanlu_engine::EngineError>| match result {
        Ok(outcome) => panic!("expected a refusal, got {outcome:?}"),
        Err(error) => error.code(),
    };
    let ask = |amount: i64, deductions: serde_json::Value, no: &str| {
        json!({ "payment_id": payment_id, "amount": amount, "reason": "customer_cancel",
                "merchant_refund_no": no, "deductions": deductions })
    };
    let line = |amount: i64, reason: &str| json!({ "kind": "handling_fee", "amount": amount, "reason": reason });
    assert_eq!(
        code(
            h.try_refund(&shop, ask(1_000, json!([line(1_000, "all of it")]), "B-1"))
                .await
        ),
        "deductions_exceed_refund",
        "the consumer must get something"
    );
    assert_eq!(
        code(
            h.try_refund(
                &shop,
                ask(1_000, json!([line(600, "a"), line(500, "b")]), "B-2")
            )
            .await
        ),
        "deductions_exceed_refund"
    );
    assert_eq!(
        code(
            h.try_refund(&shop, ask(1_000, json!([line(0, "zero")]), "B-3"))
                .await
        ),
        "invalid_deduction"
    );
    assert_eq!(
        code(
            h.try_refund(&shop, ask(1_000, json!([line(-5, "negative")]), "B-4"))
                .await
        ),
        "invalid_deduction"
    );
    assert_eq!(
        code(
            h.try_refund(&shop, ask(1_000, json!([line(5, "  ")]), "B-5"))
                .await
        ),
        "invalid_deduction",
        "a deduction says why"
    );
    let eleven: Vec<_> = (0..11).map(|_| line(1, "x")).collect();
    assert_eq!(
        code(h.try_refund(&shop, ask(1_000, json!(eleven), "B-6")).await),
        "invalid_deduction"
    );
    // Nothing was written by the refusals.
    let payment = h.engine.get_payment(&shop, &payment_id).await.unwrap();
    assert_eq!(payment.refundable, 10_000);

    // The same number with the same deductions is an idempotent repeat; with others, a
    // conflict.
    let body = ask(2_000, json!([line(100, "fee")]), "B-7");
    let first = h.refund(&shop, body.clone()).await;
    assert_eq!(first.consumer_amount, 1_900);
    assert!(matches!(
        h.try_refund(&shop, body).await.unwrap(),
        CreateOutcome::Existing(_)
    ));
    assert_eq!(
        code(
            h.try_refund(&shop, ask(2_000, json!([line(200, "fee")]), "B-7"))
                .await
        ),
        "merchant_refund_no_conflict"
    );
    // Without deductions nothing changes: the consumer gets the amount.
    let plain = h
        .refund(
            &shop,
            json!({ "payment_id": payment_id, "amount": 1_000, "reason": "customer_cancel", "merchant_refund_no": "B-8" }),
        )
        .await;
    assert_eq!((plain.consumer_amount, plain.deductions.len()), (1_000, 0));
});

contract!(
    a_same_day_full_card_refund_with_deductions_is_a_refund_not_a_void,
    |h| {
        let shop = h.merchant().await;
        h.payment(&shop, json!({ "channel": "alipay", "amount": 1_000_000 }))
            .await;
        let card = h
            .payment(&shop, json!({ "channel": "credit_card", "amount": 10_000 }))
            .await;
        let refund = h
            .refund(
                &shop,
                json!({ "payment_id": card.id, "reason": "quality_issue", "merchant_refund_no": "V-1",
                        "deductions": [{ "kind": "restocking", "amount": 1_000, "reason": "opened" }] }),
            )
            .await;
        assert_eq!(refund.refund_type, RefundType::Refund);
        assert_eq!(refund.consumer_amount, 9_000);
        assert_eq!(
            refund.fee_refunded, 0,
            "the card channel's policy returns no fee"
        );
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(
    a_failed_refund_gives_the_merchant_back_its_debit_and_the_deductions,
    |h| {
        let (engine, channel) = with_channel(&h);
        let (shop, merchant_id, payment_id) = shop(&h).await;
        let before = h.engine.merchant_balance(&merchant_id).await.unwrap();
        let refund = h
            .refund(&shop, with_deductions(&payment_id, Some(5_000), "F-1"))
            .await;
        channel.refuse.lock().unwrap().push(refund.id.clone());
        drain(&h, &engine).await;
        let failed = h.engine.get_refund(&shop, &refund.id).await.unwrap();
        assert_eq!(failed.status, RefundStatus::Failed);
        assert_eq!(
            count_postings(&h, "deduction_released", &refund.id).await,
            2
        );
        let after = h.engine.merchant_balance(&merchant_id).await.unwrap();
        assert_eq!(after, before, "everything came back");
        assert!(h.engine.check_ledger().await.unwrap().balanced);
        h.clock.advance(Duration::days(1));
        let statements = h
            .engine
            .run_settlement(&Principal::Admin, date("2026-11-21"))
            .await
            .unwrap();
        let statement = &statements[0].statement;
        let net: i64 = statement
            .lines
            .iter()
            .filter(|l| l.reference == refund.id)
            .map(|l| l.net_fen)
            .sum();
        assert_eq!(net, 0, "debited and credited back the same day");
        assert_eq!(
            statement
                .lines
                .iter()
                .filter(|l| l.kind == LineKind::DeductionReleased)
                .count(),
            2
        );
        assert_eq!(statement.deductions_released_fen, 630);
    }
);

contract!(
    a_reviewed_refund_posts_its_deductions_when_it_is_queued,
    |h| {
        let (shop, merchant_id, _) = shop(&h).await;
        let big = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 800_000 }))
            .await;
        let refund = h
            .refund(
                &shop,
                json!({ "payment_id": big.id, "amount": 600_000, "reason": "customer_cancel",
                        "merchant_refund_no": "R-1",
                        "deductions": [{ "kind": "other", "amount": 10_000, "reason": "delivery already paid" }] }),
            )
            .await;
        assert_eq!(refund.status, RefundStatus::PendingReview);
        assert_eq!(count_postings(&h, "refund_deducted", &refund.id).await, 0);
        let before = h.engine.merchant_balance(&merchant_id).await.unwrap();
        let approved = h
            .engine
            .approve_refund(
                &Principal::Admin,
                &refund.id,
                ReviewNote {
                    note: Some("ok".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(approved.status, RefundStatus::Queued);
        assert_eq!(approved.consumer_amount, 590_000);
        assert_eq!(count_postings(&h, "refund_deducted", &refund.id).await, 1);
        let after = h.engine.merchant_balance(&merchant_id).await.unwrap();
        assert_eq!(
            before.unsettled_fen - after.unsettled_fen,
            590_000 - approved.fee_refunded
        );
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);
