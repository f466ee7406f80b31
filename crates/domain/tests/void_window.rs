//! When a void (撤销) is still possible: on the payment's business date (Asia/Shanghai) and
//! before that date was settled; and what a void waiting past its window becomes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::{Case, utc};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::decide::{void_becomes_refund, void_window_open};
use yuanlu_domain::fees::FeeRefundPolicy;
use yuanlu_domain::refund::RefundType;

#[test]
fn a_void_is_possible_only_on_the_business_date_and_before_its_settlement() {
    // 2026-03-10 10:00 in Shanghai.
    let captured = utc("2026-03-10T02:00:00Z");
    let late_that_day = utc("2026-03-10T15:59:59Z"); // 23:59:59 Shanghai
    let next_day = utc("2026-03-10T16:00:00Z"); // 00:00 Shanghai, 2026-03-11
    assert!(void_window_open(captured, late_that_day, false));
    assert!(!void_window_open(captured, late_that_day, true), "settled");
    assert!(!void_window_open(captured, next_day, false), "date over");
    assert!(!void_window_open(captured, next_day, true));
}

/// A same-day full debit card refund (a void, holding the whole fee), held as the store does
/// while it waits for review.
fn waiting_void(fee_refund: FeeRefundPolicy) -> (Case, i64) {
    let mut case = Case::new(Channel::DebitCard, 30_000).same_day();
    let mut channel = case.settings.channel(Channel::DebitCard);
    channel.fee_refund = fee_refund;
    case.settings.channels.insert(Channel::DebitCard, channel);
    let plan = case.refund(None).unwrap();
    assert_eq!(plan.refund_type, RefundType::Void);
    assert_eq!(plan.fee_refunded_fen, case.payment.fee_fen);
    case.payment.amount_in_flight_fen += plan.amount_fen;
    case.payment.fee_returned_fen += plan.fee_refunded_fen;
    (case, plan.fee_refunded_fen)
}

#[test]
fn a_waiting_void_stays_a_void_inside_its_window() {
    let (case, fee) = waiting_void(FeeRefundPolicy::None);
    assert_eq!(
        void_becomes_refund(&case.settings, &case.payment, fee, case.now, false),
        None
    );
}

#[test]
fn past_its_window_a_void_becomes_a_refund_with_the_refund_fee_rule() {
    let (case, fee) = waiting_void(FeeRefundPolicy::None);
    let later = case.now + Duration::days(3);
    assert_eq!(
        void_becomes_refund(&case.settings, &case.payment, fee, later, true),
        Some(0),
        "policy none returns no fee"
    );
    let (case, fee) = waiting_void(FeeRefundPolicy::Proportional);
    assert_eq!(
        void_becomes_refund(&case.settings, &case.payment, fee, case.now, true),
        Some(fee),
        "settled the same day; a full proportional refund returns the whole fee"
    );
}
