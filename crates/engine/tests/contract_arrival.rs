//! The consumer confirms arrival (issue 15 item 3) on both backends: only after the
//! channel's success; "not received" waits until the expected date, then opens a
//! `not_arrived` case carrying the channel reference; "received" is final and reports show
//! the time to confirmed arrival beside the time to success.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use serde_json::json;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::cases::{CaseError, CaseKind};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::reports::ReportQuery;

use crate::common::Harness;

const REFERENCE: &str = "123456789012";

/// A refund of a card payment with a reference, created now; returns its id.
async fn a_refund(h: &Harness) -> (Principal, String) {
    let shop = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "debit_card", "amount": 10_000, "voucher": { "rrn": REFERENCE },
                    "payer": { "bank": "ICBC", "card_last4": "0403" } }),
        )
        .await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 2_500, "reason": "customer_cancel", "merchant_refund_no": "A-1" }),
        )
        .await;
    (shop, refund.id)
}

/// Direct write, as the dispatcher records a channel's success (the harness has no
/// channels): succeeded `hours` after now, expected to arrive `expected_hours` after now.
async fn succeed(h: &Harness, refund_id: &str, hours: i64, expected_hours: i64) {
    let now = h.clock_now();
    let at = (now + Duration::hours(hours)).timestamp_micros();
    let by = (now + Duration::hours(expected_hours)).timestamp_micros();
    h.execute(&format!(
        "UPDATE refunds SET status = 'succeeded', send_state = 'accepted', dispatched_at_us = {at}, \
         succeeded_at_us = {at}, channel_refund_id = 'CH-{refund_id}', expected_arrival_by_us = {by}, \
         next_attempt_at_us = NULL WHERE id = '{refund_id}'"
    ))
    .await;
}

contract!(an_answer_waits_for_the_channels_success, |h| {
    let (_, refund_id) = a_refund(&h).await;
    let early = h
        .engine
        .public_answer_arrival(&refund_id, REFERENCE, true)
        .await;
    assert!(
        matches!(&early, Err(CaseError::Engine(e)) if e.code() == "invalid_transition"),
        "{early:?}"
    );
    // Wrong facts are "not found", as in the lookup.
    let wrong = h
        .engine
        .public_answer_arrival(&refund_id, "000000000000", true)
        .await;
    assert!(
        matches!(&wrong, Err(CaseError::Engine(e)) if e.code() == "not_found"),
        "{wrong:?}"
    );
});

contract!(
    not_received_waits_for_the_expected_date_then_opens_a_case,
    |h| {
        let (shop, refund_id) = a_refund(&h).await;
        succeed(&h, &refund_id, 1, 72).await;
        h.clock.advance(Duration::hours(2));
        let before = h
            .engine
            .public_answer_arrival(&refund_id, REFERENCE, false)
            .await
            .unwrap();
        assert!(before.case.is_none(), "{before:?}");
        assert_eq!(before.wait_until, before.expected_arrival_by);
        assert!(before.wait_until.is_some());
        let cases = h
            .fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM cases")
            .await;
        assert_eq!(cases, "0", "no case before the expected date");

        // Past the expected date the same answer opens a not_arrived case at once.
        h.clock.advance(Duration::hours(71));
        let late = h
            .engine
            .public_answer_arrival(&refund_id, REFERENCE, false)
            .await
            .unwrap();
        let case = late.case.clone().expect("a case");
        assert_eq!(case.kind, CaseKind::NotArrived);
        assert!(late.wait_until.is_none());
        let full = h.engine.get_case(&shop, &case.id).await.unwrap();
        assert!(
            full.description.contains(&format!("CH-{refund_id}")),
            "the case carries the channel reference: {}",
            full.description
        );
        // Saying it again finds the open case rather than opening another.
        let again = h
            .engine
            .public_answer_arrival(&refund_id, REFERENCE, false)
            .await
            .unwrap();
        assert_eq!(again.case.unwrap().id, case.id);

        // The money came late after all: "received" is taken, and is final.
        let received = h
            .engine
            .public_answer_arrival(&refund_id, REFERENCE, true)
            .await
            .unwrap();
        assert!(received.received);
        assert_eq!(received.received_at, Some(h.clock_now()));
        let taken_back = h
            .engine
            .public_answer_arrival(&refund_id, REFERENCE, false)
            .await;
        assert!(
            matches!(taken_back, Err(CaseError::Conflict(_))),
            "{taken_back:?}"
        );
        assert!(h.engine.verify_audit().await.unwrap().ok);
        let answers = h
            .fetch_text(&format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE subject_id = '{refund_id}' \
             AND action IN ('refund.arrival_confirmed', 'refund.arrival_denied')"
            ))
            .await;
        assert_eq!(answers, "4", "each answer is audited");
    }
);

contract!(reports_show_time_to_confirmed_arrival_beside_success, |h| {
    let (shop, refund_id) = a_refund(&h).await;
    succeed(&h, &refund_id, 2, 48).await;
    h.clock.advance(Duration::hours(5));
    h.engine
        .public_answer_arrival(&refund_id, REFERENCE, true)
        .await
        .unwrap();
    let report = h
        .engine
        .refund_report(&shop, ReportQuery::default())
        .await
        .unwrap();
    let total = &report.total;
    assert_eq!(total.time_to_arrival.count, 1);
    assert_eq!(total.time_to_arrival.p50_seconds, Some(2 * 3600));
    assert_eq!(total.time_to_confirmed_arrival.count, 1);
    assert_eq!(total.time_to_confirmed_arrival.p50_seconds, Some(5 * 3600));
    let by_channel = &report.by_channel[0];
    assert_eq!(
        by_channel.figures.time_to_confirmed_arrival.p90_seconds,
        Some(5 * 3600)
    );
});
