//! Dispatch on both backends, against a scripted in-memory channel that keeps books like a
//! real one (it de-duplicates by refund id and pays at most once per refund).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{Duration, SubsecRound, Utc};
use serde_json::json;
use yuanlu_channels::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::Engine;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig, RerouteInput};
use yuanlu_engine::timeline::{EventFacts, MoneyAt, Route, Step};
use yuanlu_web::api::bodies;

use crate::common::Harness;

/// What the fake channel does with the next execute of a refund.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Pay and answer.
    Succeed,
    /// Accept, answer `Processing`; a later query finds it paid.
    Accept,
    /// Pay, then lose the answer.
    PayAndLoseAnswer,
    /// Time out before the request is recorded: the outcome is unknown to the sender.
    TimeOut,
    /// Busy: nothing recorded.
    Transient,
    /// Refuse for good.
    Final,
    /// The route is closed.
    Abnormal,
}

#[derive(Debug, Default)]
struct Books {
    scripts: HashMap<String, VecDeque<Script>>,
    /// refund id → (paid fen, times paid).
    paid: HashMap<String, (i64, u32)>,
    accepted: HashMap<String, i64>,
    executes: HashMap<String, u32>,
    accounts: HashMap<String, String>,
    /// refund id → n: its queries time out n in a row, then one is answered, and again
    /// (`u32::MAX`: every query times out).
    failing_queries: HashMap<String, u32>,
    queries: HashMap<String, u32>,
}

#[derive(Clone, Default)]
struct FakeChannel {
    books: Arc<Mutex<Books>>,
}

impl FakeChannel {
    fn script(&self, refund_id: &str, steps: &[Script]) {
        self.books
            .lock()
            .unwrap()
            .scripts
            .insert(refund_id.to_string(), steps.iter().cloned().collect());
    }

    fn fail_queries(&self, refund_id: &str, count: u32) {
        self.books
            .lock()
            .unwrap()
            .failing_queries
            .insert(refund_id.to_string(), count);
    }

    fn queries(&self, refund_id: &str) -> u32 {
        self.books
            .lock()
            .unwrap()
            .queries
            .get(refund_id)
            .copied()
            .unwrap_or(0)
    }

    fn executes(&self, refund_id: &str) -> u32 {
        self.books
            .lock()
            .unwrap()
            .executes
            .get(refund_id)
            .copied()
            .unwrap_or(0)
    }

    fn times_paid(&self, refund_id: &str) -> u32 {
        self.books
            .lock()
            .unwrap()
            .paid
            .get(refund_id)
            .map_or(0, |p| p.1)
    }

    fn total_paid_fen(&self) -> i64 {
        self.books.lock().unwrap().paid.values().map(|p| p.0).sum()
    }

    fn pay(books: &mut Books, request: &RefundRequest) -> ChannelOutcome {
        let entry = books
            .paid
            .entry(request.refund_id.clone())
            .or_insert((0, 0));
        if entry.1 == 0 {
            *entry = (request.amount_fen, 1);
        }
        let account = request
            .reroute_account
            .clone()
            .unwrap_or_else(|| "支付用户零钱".to_string());
        books
            .accounts
            .insert(request.refund_id.clone(), account.clone());
        ChannelOutcome::Succeeded {
            channel_refund_id: format!("ch_{}", request.refund_id),
            received_account: Some(account),
            succeeded_at: Utc::now(),
        }
    }
}

#[async_trait::async_trait]
impl RefundConnector for FakeChannel {
    fn channel_name(&self) -> &'static str {
        "fake"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        let mut books = self.books.lock().unwrap();
        *books.executes.entry(request.refund_id.clone()).or_insert(0) += 1;
        // De-duplicate by refund id, like a real channel.
        if books.paid.contains_key(&request.refund_id) {
            return Ok(FakeChannel::pay(&mut books, request));
        }
        let step = books
            .scripts
            .get_mut(&request.refund_id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Script::Succeed);
        match step {
            Script::Succeed => Ok(FakeChannel::pay(&mut books, request)),
            Script::Accept => {
                books
                    .accepted
                    .insert(request.refund_id.clone(), request.amount_fen);
                Ok(ChannelOutcome::Processing {
                    channel_refund_id: format!("ch_{}", request.refund_id),
                })
            }
            Script::PayAndLoseAnswer => {
                FakeChannel::pay(&mut books, request);
                Err(ConnectorError::Unknown("timed out".into()))
            }
            Script::TimeOut => Err(ConnectorError::Unknown("timed out".into())),
            Script::Transient => Err(ConnectorError::Transient("SYSTEM_ERROR".into())),
            Script::Final => Err(ConnectorError::Final(
                "NOT_ENOUGH: merchant account balance too low".into(),
            )),
            Script::Abnormal => Ok(ChannelOutcome::Abnormal {
                channel_refund_id: None,
                reason: "USER_ACCOUNT_ABNORMAL: card cancelled".into(),
            }),
        }
    }

    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        let mut books = self.books.lock().unwrap();
        let asked = books.queries.entry(request.refund_id.clone()).or_insert(0);
        *asked += 1;
        let asked = *asked;
        if let Some(&run) = books.failing_queries.get(&request.refund_id)
            && (run == u32::MAX || !asked.is_multiple_of(run + 1))
        {
            return Err(ConnectorError::Unknown("query timed out".into()));
        }
        if books.paid.contains_key(&request.refund_id) {
            return Ok(Some(FakeChannel::pay(&mut books, request)));
        }
        if books.accepted.remove(&request.refund_id).is_some() {
            // Accepted earlier: confirmed by the time anyone asks.
            return Ok(Some(FakeChannel::pay(&mut books, request)));
        }
        Ok(None)
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        Err(CallbackError("the fake channel sends no callbacks".into()))
    }
}

fn config(worker: &str) -> DispatchConfig {
    DispatchConfig {
        worker_id: worker.to_string(),
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

fn with_fake(h: &Harness) -> (Engine, FakeChannel) {
    let fake = FakeChannel::default();
    let set = ChannelSet::default().with(&Channel::ALL, Arc::new(fake.clone()));
    (h.engine.clone().with_channels(set), fake)
}

/// Passes of one worker, moving the clock past every retry, until nothing is due.
async fn drain(h: &Harness, engine: &Engine, config: &DispatchConfig) {
    for _ in 0..50 {
        engine.dispatch_once(config).await.unwrap();
        match engine.next_dispatch_due().await.unwrap() {
            None => return,
            Some(due) => {
                let wait = (due - h.clock.now()).max(Duration::zero()) + Duration::milliseconds(1);
                h.clock.advance(wait);
            }
        }
    }
    panic!("dispatch did not settle in 50 passes");
}

/// A shop with plenty of sales today (no refund-ratio reviews) and one payment.
async fn shop_and_payment(h: &Harness, channel: &str, amount: i64) -> (Principal, String) {
    let shop = h.merchant().await;
    let payment = h.payment(&shop, json!({ "channel": channel, "amount": amount, "payer": { "wallet_account": "13812340403" } })).await;
    h.clock.advance(Duration::days(1)); // not a same-day void
    h.payment(&shop, json!({ "channel": "alipay", "amount": 10_000_000 }))
        .await;
    (shop, payment.id)
}

async fn refund(h: &Harness, shop: &Principal, payment_id: &str, amount: i64, no: &str) -> String {
    h.refund(shop, json!({ "payment_id": payment_id, "amount": amount, "reason": "customer_cancel", "merchant_refund_no": no })).await.id
}

contract!(a_queued_refund_is_sent_once_and_succeeds, |h| {
    let (engine, fake) = with_fake(&h);
    let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
    let id = refund(&h, &shop, &payment, 4_000, "d1").await;
    drain(&h, &engine, &config("w1")).await;
    let done = engine.get_refund(&shop, &id).await.unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    assert_eq!(fake.executes(&id), 1);
    assert_eq!(fake.times_paid(&id), 1);
    let events: Vec<_> = done.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        ["refund.created", "refund.sent", "refund.succeeded"]
    );
    assert_eq!(done.timeline[2].money_at, Some(MoneyAt::Credited));
    assert!(
        done.destination
            .account
            .as_deref()
            .is_some_and(|a| a.contains("零钱")),
        "{:?}",
        done.destination
    );
    assert_eq!(done.destination.route, Route::Reported);
    assert!(
        done.expected_arrival_by.is_some(),
        "a wallet balance refund has an arrival time"
    );
    let paid = engine.get_payment(&shop, &payment).await.unwrap();
    assert_eq!((paid.amount_refunded, paid.amount_in_flight), (4_000, 0));
});

contract!(
    a_lost_answer_is_resolved_by_a_query_and_never_resent_blindly,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "alipay", 10_000).await;
        let id = refund(&h, &shop, &payment, 2_500, "lost").await;
        fake.script(&id, &[Script::PayAndLoseAnswer]);
        engine.dispatch_once(&config("w1")).await.unwrap();
        let unknown = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(
            unknown.status,
            RefundStatus::Processing,
            "the outcome is unknown"
        );
        drain(&h, &engine, &config("w1")).await;
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        assert_eq!(
            fake.executes(&id),
            1,
            "the query found it: no second request"
        );
        assert_eq!(fake.times_paid(&id), 1);
    }
);

contract!(
    transient_errors_are_retried_until_the_channel_answers,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "credit_card", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "busy").await;
        fake.script(
            &id,
            &[Script::Transient, Script::Transient, Script::Succeed],
        );
        drain(&h, &engine, &config("w1")).await;
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        assert_eq!(fake.executes(&id), 3);
        assert_eq!(fake.times_paid(&id), 1);
    }
);

/// The refund ended `abnormal` for an operator, its money held, with dispatch's reason last
/// on its timeline.
async fn assert_held_for_an_operator(
    engine: &Engine,
    shop: &Principal,
    id: &str,
    payment: &str,
) -> String {
    let held = engine.get_refund(shop, id).await.unwrap();
    assert_eq!(held.status, RefundStatus::Abnormal);
    assert_eq!(held.failure_reason, None, "not failed");
    let last = held.timeline.last().unwrap();
    assert_eq!(last.event, "refund.outcome_unknown");
    let EventFacts::OutcomeUnknown { note: Some(why) } = &last.facts else {
        panic!("no definitive answer, with why: {:?}", last.facts)
    };
    assert_eq!(last.money_at, Some(MoneyAt::HeldOutcomeUnknown));
    let payment_after = engine.get_payment(shop, payment).await.unwrap();
    assert_eq!(
        (payment_after.refundable, payment_after.amount_in_flight),
        (9_000, 1_000),
        "the money stays held: the channel may still pay the consumer"
    );
    assert!(engine.check_ledger().await.unwrap().balanced);
    why.clone()
}

contract!(
    a_channel_that_never_records_the_refund_ends_abnormal_not_failed,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "debit_card", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "down").await;
        fake.script(&id, &[Script::Transient; 10]);
        drain(&h, &engine, &config("w1")).await;
        let why = assert_held_for_an_operator(&engine, &shop, &id, &payment).await;
        assert!(why.contains("after 4 attempts"), "{why}");
        assert_eq!(fake.executes(&id), 4);
        assert_eq!(fake.times_paid(&id), 0);
    }
);

contract!(
    exhausted_attempts_with_unknown_outcomes_end_abnormal_for_an_operator,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "alipay", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "timeouts").await;
        fake.script(&id, &[Script::TimeOut; 10]);
        drain(&h, &engine, &config("w1")).await;
        let why = assert_held_for_an_operator(&engine, &shop, &id, &payment).await;
        assert!(why.contains("timed out"), "{why}");
        assert_eq!(
            fake.executes(&id),
            4,
            "no more sends after the last attempt"
        );
        assert_eq!(
            engine.dispatch_once(&config("w1")).await.unwrap(),
            0,
            "nothing more is scheduled: an operator decides"
        );
    }
);

contract!(
    an_exhausted_refund_rerouted_by_an_operator_gets_its_attempts_again,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "again").await;
        fake.script(&id, &[Script::TimeOut; 5]);
        drain(&h, &engine, &config("w1")).await;
        assert_held_for_an_operator(&engine, &shop, &id, &payment).await;
        let input: RerouteInput = serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "bank_account", "account": { "number": "6214 8301 2345 0403", "bank": "招商银行" } })).unwrap().into();
        engine
            .reroute_refund(&Principal::Admin, &id, input)
            .await
            .unwrap();
        // The new route's first send times out too; its second pays.
        drain(&h, &engine, &config("w1")).await;
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded, "{:?}", done.timeline);
        assert_eq!(fake.executes(&id), 6);
        assert_eq!(fake.times_paid(&id), 1);
    }
);

contract!(
    a_channel_that_pays_after_dispatch_gave_up_is_recorded_as_paid,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "alipay", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "late").await;
        fake.script(&id, &[Script::TimeOut; 4]);
        drain(&h, &engine, &config("w1")).await;
        assert_held_for_an_operator(&engine, &shop, &id, &payment).await;
        // The channel's success callback arrives after all.
        let paid_late = ChannelOutcome::Succeeded {
            channel_refund_id: "ch_late".into(),
            received_account: Some("余额".into()),
            succeeded_at: Utc::now(),
        };
        engine
            .apply_outcome(None, &id, paid_late.clone())
            .await
            .unwrap();
        engine.apply_outcome(None, &id, paid_late).await.unwrap();
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        let names: Vec<_> = done.timeline.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names[names.len() - 3..],
            [
                "refund.outcome_unknown",
                "refund.accepted",
                "refund.succeeded"
            ]
        );
        let paid = engine.get_payment(&shop, &payment).await.unwrap();
        assert_eq!((paid.amount_refunded, paid.amount_in_flight), (1_000, 0));
        assert!(engine.check_ledger().await.unwrap().balanced);
        // Nothing is left for an operator to return to the merchant.
        let input: RerouteInput =
            serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "merchant" }))
                .unwrap()
                .into();
        let refused = engine
            .reroute_refund(&Principal::Admin, &id, input)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_transition");
    }
);

contract!(failed_queries_are_bounded_and_end_abnormal, |h| {
    let (engine, fake) = with_fake(&h);
    let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
    let id = refund(&h, &shop, &payment, 1_000, "noquery").await;
    fake.script(&id, &[Script::Accept]);
    fake.fail_queries(&id, u32::MAX);
    drain(&h, &engine, &config("w1")).await;
    let why = assert_held_for_an_operator(&engine, &shop, &id, &payment).await;
    assert!(
        why.contains("could not be queried 3 times in a row"),
        "{why}"
    );
    assert_eq!(fake.queries(&id), 3);
});

contract!(
    failed_queries_in_a_row_start_again_when_the_channel_answers,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "flaky").await;
        // After each timed-out send two queries fail and the third finds no record, so it
        // is sent again: six failed queries in all, never three in a row.
        fake.script(&id, &[Script::TimeOut, Script::TimeOut, Script::Succeed]);
        fake.fail_queries(&id, 2);
        drain(&h, &engine, &config("w1")).await;
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded, "{:?}", done.timeline);
        assert_eq!(fake.times_paid(&id), 1);
        assert_eq!((fake.executes(&id), fake.queries(&id)), (3, 6));
    }
);

contract!(
    a_final_refusal_fails_the_refund_with_the_channels_words,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "no").await;
        fake.script(&id, &[Script::Final]);
        drain(&h, &engine, &config("w1")).await;
        let failed = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(failed.status, RefundStatus::Failed);
        assert!(failed.failure_reason.unwrap().contains("NOT_ENOUGH"));
        assert_eq!(
            failed.fee_refunded, 4,
            "the fee share stays on the refund record"
        );
        let payment_after = engine.get_payment(&shop, &payment).await.unwrap();
        assert_eq!(payment_after.refundable, 10_000);
    }
);

contract!(
    an_abnormal_refund_waits_for_a_reroute_and_then_pays_the_new_account_once,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
        let id = refund(&h, &shop, &payment, 3_000, "ab").await;
        fake.script(&id, &[Script::Abnormal]);
        drain(&h, &engine, &config("w1")).await;
        let abnormal = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(abnormal.status, RefundStatus::Abnormal);
        assert_eq!(abnormal.next_step.unwrap().step, Step::Reroute);
        let input: RerouteInput = serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "bank_account", "account": { "number": "6214 8301 2345 0403", "bank": "招商银行" } })).unwrap().into();
        assert_eq!(
            engine
                .reroute_refund(&shop, &id, input.clone())
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
        let rerouted = engine
            .reroute_refund(&Principal::Admin, &id, input)
            .await
            .unwrap();
        assert_eq!(rerouted.status, RefundStatus::Processing);
        drain(&h, &engine, &config("w1")).await;
        let done = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        assert_eq!(fake.times_paid(&id), 1);
        let events: Vec<_> = done.timeline.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "refund.created",
                "refund.sent",
                "refund.abnormal",
                "refund.rerouted",
                "refund.sent",
                "refund.succeeded"
            ]
        );
    }
);

contract!(
    an_abnormal_refund_rerouted_to_the_merchant_succeeds_paid_by_the_merchant,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "unionpay_qr", 10_000).await;
        let merchant_id = shop.merchant_scope().unwrap().to_string();
        let before = engine.merchant_balance(&merchant_id).await.unwrap();
        let id = refund(&h, &shop, &payment, 3_000, "abm").await;
        fake.script(&id, &[Script::Abnormal]);
        drain(&h, &engine, &config("w1")).await;
        let input: RerouteInput = serde_json::from_value::<bodies::RerouteInput>(json!({
            "to": "merchant", "method": "cash", "paid_by": "店长 王", "note": "paid at the counter"
        }))
        .unwrap()
        .into();
        let paid = engine
            .reroute_refund(&Principal::Admin, &id, input)
            .await
            .unwrap();
        assert_eq!(paid.status, RefundStatus::Succeeded);
        assert_eq!(paid.failure_reason, None);
        assert_eq!(paid.destination.route, Route::Merchant);
        assert_eq!(paid.destination.account, None);
        // Who, how and when, on the timeline.
        let last = paid.timeline.last().unwrap();
        assert_eq!(last.event, "refund.paid_by_merchant");
        assert_eq!(last.status, Some(RefundStatus::Succeeded));
        assert_eq!(last.actor, Principal::Admin.actor());
        assert_eq!(last.at, h.clock.now().trunc_subsecs(6));
        let EventFacts::PaidByMerchant { note: Some(how) } = &last.facts else {
            panic!("paid by the merchant, with how: {:?}", last.facts)
        };
        for words in ["in cash", "by 店长 王", "paid at the counter"] {
            assert!(how.contains(words), "{how}");
        }
        assert_eq!(last.money_at, Some(MoneyAt::PaidByMerchant));
        // The consumer got the money: refunded, nothing in flight, nothing left to refund twice.
        let counters = engine.get_payment(&shop, &payment).await.unwrap();
        assert_eq!(
            (
                counters.amount_refunded,
                counters.amount_in_flight,
                counters.refundable
            ),
            (3_000, 0, 7_000)
        );
        assert_eq!(fake.total_paid_fen(), 0);
        // The merchant paid out of pocket: its balance is as before the refund.
        assert_eq!(engine.merchant_balance(&merchant_id).await.unwrap(), before);
        assert!(engine.check_ledger().await.unwrap().balanced);
        // The day's statement debits it and credits it back, saying why.
        let date = yuanlu_domain::time::shanghai_date(h.clock.now());
        h.clock.advance(Duration::days(1));
        let run = engine
            .run_settlement(&Principal::Admin, date)
            .await
            .unwrap();
        let statement = &run
            .iter()
            .find(|s| s.merchant_id == merchant_id)
            .unwrap()
            .statement;
        let lines: Vec<_> = statement
            .lines
            .iter()
            .filter(|l| l.reference == id)
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines.iter().map(|l| l.net_fen).sum::<i64>(), 0);
        assert!(
            lines
                .iter()
                .any(|l| l.net_fen > 0 && l.english().contains("paid by the merchant directly")),
            "{lines:?}"
        );
        assert_eq!(
            (statement.credited_back_count, statement.credited_back_fen),
            (1, 3_000)
        );
        assert!(engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(
    a_reroute_to_the_merchant_refuses_an_unknown_method_and_a_bank_account_merchant_fields,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "unionpay_qr", 10_000).await;
        let id = refund(&h, &shop, &payment, 3_000, "abm").await;
        fake.script(&id, &[Script::Abnormal]);
        drain(&h, &engine, &config("w1")).await;
        for (body, field) in [
            (json!({ "to": "merchant", "method": "cheque" }), "method"),
            (
                json!({ "to": "merchant", "paid_by": "x".repeat(65) }),
                "paid_by",
            ),
            (json!({ "to": "merchant", "note": "a\u{0007}b" }), "note"),
            (
                json!({ "to": "bank_account", "method": "cash",
                     "account": { "number": "6222021234567890", "bank": "ICBC" } }),
                "method",
            ),
        ] {
            let input: RerouteInput = serde_json::from_value::<bodies::RerouteInput>(body)
                .unwrap()
                .into();
            let refused = engine
                .reroute_refund(&Principal::Admin, &id, input)
                .await
                .unwrap_err();
            assert_eq!(refused.code(), "validation_error", "{refused}");
            assert!(refused.to_string().contains(field), "{refused}");
        }
        let refund = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(refund.status, RefundStatus::Abnormal, "nothing changed");
        // Method defaults to `other`.
        let input: RerouteInput =
            serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "merchant" }))
                .unwrap()
                .into();
        let paid = engine
            .reroute_refund(&Principal::Admin, &id, input)
            .await
            .unwrap();
        let last = &paid.timeline.last().unwrap().facts;
        assert!(
            matches!(last, EventFacts::PaidByMerchant { note: Some(how) } if how.contains("by other means")),
            "{last:?}"
        );
    }
);

contract!(outcomes_only_move_forward_whatever_their_order, |h| {
    let (engine, fake) = with_fake(&h);
    let (shop, payment) = shop_and_payment(&h, "alipay", 10_000).await;
    let id = refund(&h, &shop, &payment, 2_000, "order").await;
    fake.script(&id, &[Script::Accept]);
    engine.dispatch_once(&config("w1")).await.unwrap();
    let succeeded = ChannelOutcome::Succeeded {
        channel_refund_id: "ch".into(),
        received_account: Some("余额".into()),
        succeeded_at: Utc::now(),
    };
    let processing = ChannelOutcome::Processing {
        channel_refund_id: "ch".into(),
    };
    engine
        .apply_outcome(None, &id, succeeded.clone())
        .await
        .unwrap();
    engine.apply_outcome(None, &id, succeeded).await.unwrap();
    engine.apply_outcome(None, &id, processing).await.unwrap();
    engine
        .apply_outcome(
            None,
            &id,
            ChannelOutcome::Failed {
                reason: "late".into(),
            },
        )
        .await
        .unwrap();
    let done = engine.get_refund(&shop, &id).await.unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    let paid = engine.get_payment(&shop, &payment).await.unwrap();
    assert_eq!(
        (paid.amount_refunded, paid.amount_in_flight),
        (2_000, 0),
        "applied once"
    );
    let succeeded_events = done
        .timeline
        .iter()
        .filter(|e| e.event == "refund.succeeded")
        .count();
    assert_eq!(succeeded_events, 1);
});

contract!(
    an_accepted_card_refund_is_expected_within_three_business_days,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "credit_card", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "card").await;
        fake.script(&id, &[Script::Accept]);
        // The harness starts on Fri 2026-11-20 10:00 Shanghai; the payment moved it to Saturday.
        engine.dispatch_once(&config("w1")).await.unwrap();
        let accepted = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(accepted.status, RefundStatus::Processing);
        let by = accepted.expected_arrival_by.unwrap();
        // Accepted Sat 2026-11-21: business days Mon 23, Tue 24, Wed 25 → end of Wed 25 (Shanghai).
        assert_eq!(by.to_rfc3339(), "2026-11-25T15:59:59.999999+00:00");
        let next = accepted.next_step.unwrap();
        assert_eq!(next.by, Some(by));
        assert_eq!(
            next.step,
            Step::Confirm {
                channel: accepted.channel
            }
        );
    }
);

contract!(
    a_dead_workers_lease_expires_and_another_worker_finishes_the_refund,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "wechat", 10_000).await;
        let id = refund(&h, &shop, &payment, 1_000, "lease").await;
        // Worker "dead" leases the refund and dies before doing anything.
        let mut tx = engine.db.begin().await.unwrap();
        let now_us = h.clock.now().timestamp_micros();
        let claimed = tx
            .conn()
            .claim_due_refunds("dead", now_us + 60_000_000, now_us, 10)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claimed.len(), 1);
        engine.dispatch_once(&config("alive")).await.unwrap();
        assert_eq!(fake.executes(&id), 0, "a live lease is respected");
        h.clock.advance(Duration::seconds(61));
        drain(&h, &engine, &config("alive")).await;
        assert_eq!(
            engine.get_refund(&shop, &id).await.unwrap().status,
            RefundStatus::Succeeded
        );
        assert_eq!(fake.executes(&id), 1);
    }
);

contract!(
    four_concurrent_workers_send_every_refund_exactly_once,
    |h| {
        let (engine, fake) = with_fake(&h);
        let (shop, payment) = shop_and_payment(&h, "alipay", 1_000_000).await;
        let others = [
            h.payment(&shop, json!({ "channel": "wechat", "amount": 1_000_000 }))
                .await
                .id,
            h.payment(
                &shop,
                json!({ "channel": "debit_card", "amount": 1_000_000 }),
            )
            .await
            .id,
        ];
        let mut ids = Vec::new();
        for i in 0..120 {
            let on = [&payment, &others[0], &others[1]][i % 3];
            ids.push(refund(&h, &shop, on, 100, &format!("c{i}")).await);
        }
        let mut workers = Vec::new();
        for w in 0..4 {
            let engine = engine.clone();
            workers.push(tokio::spawn(async move {
                let config = config(&format!("w{w}"));
                while engine.dispatch_once(&config).await.unwrap() > 0 {}
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        for id in &ids {
            assert_eq!(
                fake.executes(id),
                1,
                "{id} sent {} times",
                fake.executes(id)
            );
            assert_eq!(
                engine.get_refund(&shop, id).await.unwrap().status,
                RefundStatus::Succeeded
            );
        }
        assert_eq!(fake.total_paid_fen(), 12_000);
        assert!(engine.verify_audit().await.unwrap().ok);
    }
);
