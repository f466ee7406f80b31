//! The rules checked when a refund is asked for (`decide_refund`), against the spec's
//! "Refunds" section: refusals and their codes, void or refund, returns of goods, statuses
//! and the fee each refund returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::{Case, code, utc};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::decide::{
    REFUNDS_PER_PAYMENT_MAX, RefundAsk, RefundRefusal, status_after_return,
};
use yuanlu_domain::fees::FeeRefundPolicy;
use yuanlu_domain::payment::{PaymentKind, ShippingStatus};
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole};
use yuanlu_domain::review::{RequiredReviewer, ReviewReason};

const CARDS_AND_QR: [Channel; 3] = [Channel::CreditCard, Channel::DebitCard, Channel::UnionpayQr];
const WALLETS: [Channel; 2] = [Channel::Wechat, Channel::Alipay];

fn goods_ask(reason: RefundReason) -> RefundAsk {
    RefundAsk {
        amount_fen: Some(1_000),
        reason,
        requested_by: RequesterRole::Merchant,
    }
}

// ---------------------------------------------------------------------------------------
// Refusals and their codes
// ---------------------------------------------------------------------------------------

#[test]
fn voided_payment_is_refused_with_payment_voided() {
    for channel in Channel::ALL {
        let mut case = Case::new(channel, 10_000);
        case.payment.voided = true;
        case.payment.amount_in_flight_fen = 10_000;
        case.payment.refund_count = 1;
        for amount in [Some(1), Some(10_000), None] {
            let decision = case.refund(amount);
            assert_eq!(
                decision,
                Err(RefundRefusal::PaymentVoided),
                "{channel} {amount:?}"
            );
            assert_eq!(code(&decision), "payment_voided");
        }
    }
}

#[test]
fn voided_payment_is_refused_even_when_its_counters_show_money_left() {
    let mut case = Case::new(Channel::CreditCard, 10_000);
    case.payment.voided = true;
    assert_eq!(code(&case.refund(Some(100))), "payment_voided");
}

#[test]
fn zero_amount_is_refused_with_invalid_amount() {
    let decision = Case::new(Channel::Wechat, 10_000).refund(Some(0));
    assert_eq!(decision, Err(RefundRefusal::InvalidAmount));
    assert_eq!(code(&decision), "invalid_amount");
}

#[test]
fn negative_amount_is_refused_with_invalid_amount() {
    for amount in [-1, -10_000, i64::MIN] {
        let decision = Case::new(Channel::Alipay, 10_000).refund(Some(amount));
        assert_eq!(decision, Err(RefundRefusal::InvalidAmount), "{amount}");
        assert_eq!(code(&decision), "invalid_amount");
    }
}

#[test]
fn one_fen_is_the_smallest_valid_amount() {
    let plan = Case::new(Channel::Alipay, 10_000).refund(Some(1)).unwrap();
    assert_eq!(plan.amount_fen, 1);
}

#[test]
fn refund_exactly_at_the_channel_default_window_is_accepted() {
    for channel in Channel::ALL {
        let mut case = Case::new(channel, 10_000);
        case.now = case.payment.captured_at + Duration::days(channel.default_refund_window_days());
        assert!(
            case.refund(Some(100)).is_ok(),
            "{channel}: {:?}",
            case.refund(Some(100))
        );
    }
}

#[test]
fn refund_one_second_past_the_channel_default_window_is_refused_with_refund_window_expired() {
    for channel in Channel::ALL {
        let mut case = Case::new(channel, 10_000);
        let window = channel.default_refund_window_days();
        case.now = case.payment.captured_at + Duration::days(window) + Duration::seconds(1);
        let decision = case.refund(Some(100));
        assert_eq!(code(&decision), "refund_window_expired", "{channel}");
        assert_eq!(
            decision,
            Err(RefundRefusal::WindowExpired {
                age_days: window,
                window_days: window
            }),
            "{channel}"
        );
    }
}

#[test]
fn card_and_unionpay_qr_windows_are_180_days_and_wallet_windows_365() {
    for channel in CARDS_AND_QR {
        let mut case = Case::new(channel, 10_000);
        case.now = case.payment.captured_at + Duration::days(180);
        assert!(case.refund(Some(100)).is_ok(), "{channel} at 180 days");
        case.now += Duration::seconds(1);
        assert_eq!(
            code(&case.refund(Some(100))),
            "refund_window_expired",
            "{channel} past 180 days"
        );
    }
    for channel in WALLETS {
        let mut case = Case::new(channel, 10_000);
        case.now = case.payment.captured_at + Duration::days(181);
        assert!(case.refund(Some(100)).is_ok(), "{channel} at 181 days");
        case.now = case.payment.captured_at + Duration::days(365);
        assert!(case.refund(Some(100)).is_ok(), "{channel} at 365 days");
        case.now += Duration::seconds(1);
        assert_eq!(
            code(&case.refund(Some(100))),
            "refund_window_expired",
            "{channel} past 365 days"
        );
    }
}

#[test]
fn merchant_refund_window_setting_overrides_the_channel_default() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.settings
        .channels
        .get_mut(&Channel::Wechat)
        .unwrap()
        .refund_window_days = 7;
    case.now = case.payment.captured_at + Duration::days(7);
    assert!(case.refund(Some(100)).is_ok());
    case.now += Duration::seconds(1);
    assert_eq!(
        case.refund(Some(100)),
        Err(RefundRefusal::WindowExpired {
            age_days: 7,
            window_days: 7
        })
    );

    let mut case = Case::new(Channel::CreditCard, 10_000);
    case.settings
        .channels
        .get_mut(&Channel::CreditCard)
        .unwrap()
        .refund_window_days = 400;
    case.now = case.payment.captured_at + Duration::days(400);
    assert!(
        case.refund(Some(100)).is_ok(),
        "a longer window is honoured too"
    );
}

#[test]
fn fiftieth_refund_is_accepted_and_fifty_first_is_refused_with_too_many_refunds() {
    assert_eq!(REFUNDS_PER_PAYMENT_MAX, 50);
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.refund_count = 49;
    assert!(
        case.refund(Some(100)).is_ok(),
        "49 refunds so far: the 50th is allowed"
    );
    case.payment.refund_count = 50;
    let decision = case.refund(Some(100));
    assert_eq!(decision, Err(RefundRefusal::TooManyRefunds { count: 50 }));
    assert_eq!(code(&decision), "too_many_refunds");
    case.payment.refund_count = 73;
    assert_eq!(code(&case.refund(None)), "too_many_refunds");
}

#[test]
fn released_refunds_still_count_towards_too_many_refunds() {
    // 50 refunds were created and all failed: nothing is held, yet the limit is reached.
    let mut case = Case::new(Channel::Alipay, 10_000);
    case.payment.refund_count = 50;
    assert_eq!(code(&case.refund(Some(100))), "too_many_refunds");
}

#[test]
fn amount_above_refundable_is_refused_with_amount_exceeds_refundable() {
    let case = Case::new(Channel::Wechat, 10_000);
    let decision = case.refund(Some(10_001));
    assert_eq!(
        decision,
        Err(RefundRefusal::AmountExceedsRefundable {
            requested_fen: 10_001,
            refundable_fen: 10_000
        })
    );
    assert_eq!(code(&decision), "amount_exceeds_refundable");
    assert!(case.refund(Some(10_000)).is_ok());
}

#[test]
fn succeeded_refunds_count_against_the_refundable_amount() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.amount_refunded_fen = 4_000;
    case.payment.refund_count = 1;
    assert!(case.refund(Some(6_000)).is_ok());
    assert_eq!(
        case.refund(Some(6_001)),
        Err(RefundRefusal::AmountExceedsRefundable {
            requested_fen: 6_001,
            refundable_fen: 6_000
        })
    );
}

#[test]
fn in_flight_refunds_count_against_the_refundable_amount() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.amount_in_flight_fen = 2_500;
    case.payment.refund_count = 1;
    assert!(case.refund(Some(7_500)).is_ok());
    assert_eq!(
        case.refund(Some(7_501)),
        Err(RefundRefusal::AmountExceedsRefundable {
            requested_fen: 7_501,
            refundable_fen: 7_500
        })
    );
}

#[test]
fn succeeded_and_in_flight_refunds_together_count_against_the_refundable_amount() {
    let mut case = Case::new(Channel::DebitCard, 10_000);
    case.payment.amount_refunded_fen = 3_000;
    case.payment.amount_in_flight_fen = 2_000;
    case.payment.refund_count = 2;
    assert_eq!(case.refund(Some(5_000)).map(|p| p.amount_fen), Ok(5_000));
    assert_eq!(
        case.refund(Some(5_001)),
        Err(RefundRefusal::AmountExceedsRefundable {
            requested_fen: 5_001,
            refundable_fen: 5_000
        })
    );
}

#[test]
fn a_second_ask_after_holding_the_first_cannot_exceed_what_is_left() {
    let mut case = Case::new(Channel::Alipay, 10_000);
    let first = case.refund(Some(6_000)).unwrap();
    case.hold(&first);
    assert_eq!(code(&case.refund(Some(6_000))), "amount_exceeds_refundable");
    assert_eq!(case.refund(Some(4_000)).map(|p| p.amount_fen), Ok(4_000));
}

#[test]
fn omitted_amount_refunds_the_whole_refundable_amount() {
    let case = Case::new(Channel::Wechat, 10_000);
    assert_eq!(case.refund(None).map(|p| p.amount_fen), Ok(10_000));

    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.amount_refunded_fen = 3_000;
    case.payment.amount_in_flight_fen = 2_000;
    case.payment.refund_count = 2;
    assert_eq!(case.refund(None).map(|p| p.amount_fen), Ok(5_000));
}

#[test]
fn omitted_amount_with_nothing_refundable_is_refused_with_amount_exceeds_refundable() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.amount_refunded_fen = 6_000;
    case.payment.amount_in_flight_fen = 4_000;
    case.payment.refund_count = 2;
    let decision = case.refund(None);
    assert_eq!(code(&decision), "amount_exceeds_refundable");
}

// ---------------------------------------------------------------------------------------
// Void or refund
// ---------------------------------------------------------------------------------------

#[test]
fn full_same_day_card_or_unionpay_qr_refund_is_a_void() {
    for channel in CARDS_AND_QR {
        let case = Case::new(channel, 10_000).same_day();
        let plan = case.refund(Some(10_000)).unwrap();
        assert_eq!(plan.refund_type, RefundType::Void, "{channel}");
        let plan = case.refund(None).unwrap();
        assert_eq!(
            plan.refund_type,
            RefundType::Void,
            "{channel}, amount omitted"
        );
    }
}

#[test]
fn wallet_payments_are_never_voided() {
    for channel in WALLETS {
        let case = Case::new(channel, 10_000).same_day();
        let plan = case.refund(Some(10_000)).unwrap();
        assert_eq!(plan.refund_type, RefundType::Refund, "{channel}");
    }
}

#[test]
fn partial_same_day_card_refund_is_a_refund() {
    for channel in CARDS_AND_QR {
        let case = Case::new(channel, 10_000).same_day();
        assert_eq!(
            case.refund(Some(9_999)).unwrap().refund_type,
            RefundType::Refund,
            "{channel}"
        );
    }
}

#[test]
fn full_card_refund_on_a_later_day_is_a_refund() {
    for channel in CARDS_AND_QR {
        let case = Case::new(channel, 10_000);
        assert_eq!(
            case.refund(Some(10_000)).unwrap().refund_type,
            RefundType::Refund,
            "{channel}"
        );
    }
}

#[test]
fn full_card_refund_after_the_capture_day_was_settled_is_a_refund() {
    let mut case = Case::new(Channel::CreditCard, 10_000).same_day();
    case.settled = true;
    assert_eq!(
        case.refund(Some(10_000)).unwrap().refund_type,
        RefundType::Refund
    );
}

#[test]
fn card_refund_one_second_after_shanghai_midnight_is_a_refund_though_the_utc_date_is_the_same() {
    // Captured 23:59:59 on 10 March in Shanghai; asked 00:00:00 on 11 March in Shanghai.
    // Both instants fall on 10 March in UTC.
    let mut case = Case::new(Channel::CreditCard, 10_000);
    case.payment.captured_at = utc("2026-03-10T15:59:59Z");
    case.now = utc("2026-03-10T16:00:00Z");
    assert_eq!(
        case.refund(Some(10_000)).unwrap().refund_type,
        RefundType::Refund
    );
}

#[test]
fn card_refund_on_the_same_shanghai_day_is_a_void_though_the_utc_date_changed() {
    // Captured 00:00:00 on 11 March in Shanghai (10 March UTC); asked 23:59:59 on 11 March in
    // Shanghai (11 March UTC).
    let mut case = Case::new(Channel::UnionpayQr, 10_000);
    case.payment.captured_at = utc("2026-03-10T16:00:00Z");
    case.now = utc("2026-03-11T15:59:59Z");
    assert_eq!(
        case.refund(Some(10_000)).unwrap().refund_type,
        RefundType::Void
    );
}

#[test]
fn card_refund_after_an_earlier_in_flight_refund_is_a_refund_even_on_the_capture_day() {
    let mut case = Case::new(Channel::CreditCard, 10_000).same_day();
    let first = case.refund(Some(4_000)).unwrap();
    assert_eq!(first.refund_type, RefundType::Refund);
    case.hold(&first);
    let rest = case.refund(None).unwrap();
    assert_eq!(rest.amount_fen, 6_000);
    assert_eq!(rest.refund_type, RefundType::Refund);
}

#[test]
fn void_returns_the_whole_fee_even_under_fee_policy_none() {
    for channel in CARDS_AND_QR {
        let case = Case::new(channel, 10_000).same_day();
        assert_eq!(
            case.settings.channel(channel).fee_refund,
            FeeRefundPolicy::None
        );
        let plan = case.refund(Some(10_000)).unwrap();
        assert_eq!(plan.refund_type, RefundType::Void);
        assert_eq!(plan.fee_refunded_fen, case.payment.fee_fen, "{channel}");
        assert!(plan.fee_refunded_fen > 0);
    }
}

#[test]
fn void_of_a_capped_debit_payment_returns_the_capped_fee() {
    let case = Case::new(Channel::DebitCard, 1_000_000).same_day();
    assert_eq!(case.payment.fee_fen, 2_500);
    let plan = case.refund(None).unwrap();
    assert_eq!(
        (plan.refund_type, plan.fee_refunded_fen),
        (RefundType::Void, 2_500)
    );
}

#[test]
fn void_goes_to_queued_when_no_review_applies() {
    let plan = Case::new(Channel::CreditCard, 10_000)
        .same_day()
        .refund(None)
        .unwrap();
    assert_eq!(plan.status, RefundStatus::Queued);
}

// ---------------------------------------------------------------------------------------
// Returns of goods
// ---------------------------------------------------------------------------------------

#[test]
fn goods_refund_of_a_shipped_or_delivered_order_waits_in_awaiting_return() {
    for shipping in [ShippingStatus::Shipped, ShippingStatus::Delivered] {
        for reason in [RefundReason::CustomerCancel, RefundReason::QualityIssue] {
            let mut case = Case::new(Channel::Wechat, 10_000);
            case.payment.shipping_status = Some(shipping);
            let plan = case.decide(&goods_ask(reason)).unwrap();
            assert_eq!(
                plan.status,
                RefundStatus::AwaitingReturn,
                "{shipping:?} {reason}"
            );
        }
    }
}

#[test]
fn goods_refund_of_an_unshipped_order_never_waits_for_a_return() {
    for reason in RefundReason::ALL.iter().copied() {
        let mut case = Case::new(Channel::Wechat, 10_000);
        case.payment.shipping_status = Some(ShippingStatus::Unshipped);
        let plan = case.decide(&goods_ask(reason)).unwrap();
        assert_eq!(plan.status, RefundStatus::Queued, "{reason}");
    }
}

#[test]
fn non_goods_reasons_never_wait_for_a_return_even_for_shipped_orders() {
    for shipping in [ShippingStatus::Shipped, ShippingStatus::Delivered] {
        for reason in RefundReason::ALL
            .iter()
            .copied()
            .filter(|r| !r.is_goods_reason())
        {
            let mut case = Case::new(Channel::Wechat, 10_000);
            case.payment.shipping_status = Some(shipping);
            let plan = case.decide(&goods_ask(reason)).unwrap();
            assert_eq!(plan.status, RefundStatus::Queued, "{shipping:?} {reason}");
        }
    }
}

#[test]
fn not_shipped_reason_never_waits_for_a_return() {
    for shipping in [
        None,
        Some(ShippingStatus::Unshipped),
        Some(ShippingStatus::Shipped),
        Some(ShippingStatus::Delivered),
    ] {
        let mut case = Case::new(Channel::Alipay, 10_000);
        case.payment.shipping_status = shipping;
        let plan = case.decide(&goods_ask(RefundReason::NotShipped)).unwrap();
        assert_ne!(plan.status, RefundStatus::AwaitingReturn, "{shipping:?}");
    }
}

#[test]
fn goods_refund_of_a_payment_without_an_order_never_waits_for_a_return() {
    for reason in [RefundReason::CustomerCancel, RefundReason::QualityIssue] {
        let plan = Case::new(Channel::Wechat, 10_000)
            .decide(&goods_ask(reason))
            .unwrap();
        assert_eq!(plan.status, RefundStatus::Queued, "{reason}");
    }
}

#[test]
fn goods_refund_waiting_for_a_return_is_a_refund_not_a_void() {
    let mut case = Case::new(Channel::CreditCard, 10_000).same_day();
    case.payment.shipping_status = Some(ShippingStatus::Delivered);
    let ask = RefundAsk {
        amount_fen: None,
        reason: RefundReason::QualityIssue,
        requested_by: RequesterRole::Merchant,
    };
    let plan = case.decide(&ask).unwrap();
    assert_eq!(
        (plan.status, plan.refund_type),
        (RefundStatus::AwaitingReturn, RefundType::Refund)
    );
    assert_eq!(
        plan.fee_refunded_fen, 0,
        "a card refund under policy none returns no fee"
    );
}

#[test]
fn awaiting_return_keeps_its_review_reasons_for_after_the_return() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.shipping_status = Some(ShippingStatus::Shipped);
    case.payment.member = true;
    let plan = case
        .decide(&goods_ask(RefundReason::CustomerCancel))
        .unwrap();
    assert_eq!(plan.status, RefundStatus::AwaitingReturn);
    assert_eq!(plan.review_reasons, [ReviewReason::PreauthOrMember]);
    assert_eq!(plan.required_reviewer, Some(RequiredReviewer::Merchant));
    assert_eq!(
        status_after_return(&plan.review_reasons),
        RefundStatus::PendingReview
    );
}

#[test]
fn returned_goods_without_review_reasons_go_to_queued() {
    assert_eq!(status_after_return(&[]), RefundStatus::Queued);
    for reason in ReviewReason::ALL {
        assert_eq!(
            status_after_return(&[reason]),
            RefundStatus::PendingReview,
            "{reason:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------------

#[test]
fn refund_without_review_reasons_is_queued_with_no_reviewer() {
    let plan = Case::new(Channel::Alipay, 10_000)
        .refund(Some(2_000))
        .unwrap();
    assert_eq!(plan.status, RefundStatus::Queued);
    assert!(plan.review_reasons.is_empty());
    assert_eq!(plan.required_reviewer, None);
}

#[test]
fn refund_with_a_review_reason_is_pending_review_with_its_reasons_and_reviewer() {
    let mut case = Case::new(Channel::Alipay, 10_000);
    case.payment.kind = PaymentKind::PreauthCompletion;
    let plan = case.refund(Some(2_000)).unwrap();
    assert_eq!(plan.status, RefundStatus::PendingReview);
    assert_eq!(plan.review_reasons, [ReviewReason::PreauthOrMember]);
    assert_eq!(plan.required_reviewer, Some(RequiredReviewer::Merchant));

    let consumer = RefundAsk {
        amount_fen: Some(2_000),
        reason: RefundReason::Other,
        requested_by: RequesterRole::Consumer,
    };
    let plan = Case::new(Channel::Alipay, 10_000)
        .decide(&consumer)
        .unwrap();
    assert_eq!(plan.status, RefundStatus::PendingReview);
    assert_eq!(plan.review_reasons, [ReviewReason::ConsumerRequest]);
    assert_eq!(plan.required_reviewer, Some(RequiredReviewer::Merchant));
}

#[test]
fn large_refund_is_pending_review_for_the_acquirer() {
    let plan = Case::new(Channel::CreditCard, 600_000)
        .refund(Some(500_000))
        .unwrap();
    assert_eq!(plan.status, RefundStatus::PendingReview);
    assert_eq!(plan.review_reasons, [ReviewReason::LargeAmount]);
    assert_eq!(plan.required_reviewer, Some(RequiredReviewer::Acquirer));
}

#[test]
fn void_with_a_review_reason_waits_for_review() {
    let mut case = Case::new(Channel::CreditCard, 10_000).same_day();
    case.payment.member = true;
    let plan = case.refund(None).unwrap();
    assert_eq!(
        (plan.refund_type, plan.status),
        (RefundType::Void, RefundStatus::PendingReview)
    );
}

#[test]
fn plan_carries_the_asked_amount() {
    let plan = Case::new(Channel::Wechat, 10_000)
        .refund(Some(1_234))
        .unwrap();
    assert_eq!(plan.amount_fen, 1_234);
}

// ---------------------------------------------------------------------------------------
// Fee returned by each refund
// ---------------------------------------------------------------------------------------

#[test]
fn spec_wechat_example_three_partial_refunds_return_13_12_13_fen() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    assert_eq!(case.payment.fee_fen, 38);
    let mut returned = Vec::new();
    for amount in [3_333, 3_333, 3_334] {
        let plan = case.refund(Some(amount)).unwrap();
        assert_eq!(plan.refund_type, RefundType::Refund);
        returned.push(plan.fee_refunded_fen);
        case.hold(&plan);
    }
    assert_eq!(returned, [13, 12, 13]);
    assert_eq!(case.payment.fee_returned_fen, 38);
}

#[test]
fn spec_wechat_example_gives_the_same_fees_when_earlier_refunds_already_succeeded() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    let mut returned = Vec::new();
    for amount in [3_333, 3_333, 3_334] {
        let plan = case.refund(Some(amount)).unwrap();
        returned.push(plan.fee_refunded_fen);
        case.hold(&plan);
        // The channel confirms before the next one is asked.
        case.payment.amount_in_flight_fen -= plan.amount_fen;
        case.payment.amount_refunded_fen += plan.amount_fen;
    }
    assert_eq!(returned, [13, 12, 13]);
}

#[test]
fn proportional_fee_is_the_default_for_wallets_and_returns_the_whole_fee_on_a_full_refund() {
    for channel in WALLETS {
        let case = Case::new(channel, 12_345);
        assert_eq!(
            case.settings.channel(channel).fee_refund,
            FeeRefundPolicy::Proportional
        );
        assert_eq!(case.payment.fee_fen, 47);
        let plan = case.refund(None).unwrap();
        assert_eq!(plan.fee_refunded_fen, 47, "{channel}");
    }
}

#[test]
fn fee_policy_none_returns_no_fee_on_a_refund() {
    for channel in CARDS_AND_QR {
        let case = Case::new(channel, 10_000);
        assert_eq!(
            case.refund(Some(5_000)).unwrap().fee_refunded_fen,
            0,
            "{channel} partial"
        );
        assert_eq!(
            case.refund(None).unwrap().fee_refunded_fen,
            0,
            "{channel} full, later day"
        );
    }
}

#[test]
fn merchant_fee_policy_setting_overrides_the_channel_default() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.settings
        .channels
        .get_mut(&Channel::Wechat)
        .unwrap()
        .fee_refund = FeeRefundPolicy::None;
    assert_eq!(case.refund(None).unwrap().fee_refunded_fen, 0);

    let mut case = Case::new(Channel::CreditCard, 10_000);
    assert_eq!(case.payment.fee_fen, 60);
    case.settings
        .channels
        .get_mut(&Channel::CreditCard)
        .unwrap()
        .fee_refund = FeeRefundPolicy::Proportional;
    assert_eq!(case.refund(Some(5_000)).unwrap().fee_refunded_fen, 30);
}

#[test]
fn spec_refusal_codes_are_stable() {
    let codes = [
        (RefundRefusal::PaymentVoided, "payment_voided"),
        (RefundRefusal::InvalidAmount, "invalid_amount"),
        (
            RefundRefusal::WindowExpired {
                age_days: 1,
                window_days: 1,
            },
            "refund_window_expired",
        ),
        (
            RefundRefusal::TooManyRefunds { count: 50 },
            "too_many_refunds",
        ),
        (
            RefundRefusal::AmountExceedsRefundable {
                requested_fen: 2,
                refundable_fen: 1,
            },
            "amount_exceeds_refundable",
        ),
    ];
    for (refusal, expected) in codes {
        assert_eq!(refusal.code(), expected);
    }
}
