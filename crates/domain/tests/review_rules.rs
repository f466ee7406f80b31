//! The review rules of the spec's "Review" section: each reason at its threshold and just
//! below, per-merchant thresholds, who must review, and who may.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{Case, payment, quiet_day};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::payment::{PaymentKind, PaymentState};
use yuanlu_domain::refund::{RefundStatus, RequesterRole};
use yuanlu_domain::review::{
    DayTotals, RequiredReviewer, ReviewInput, ReviewReason, Reviewer, review_reasons,
};
use yuanlu_domain::settings::{MerchantSettings, MerchantSettingsPatch, ReviewSettings};

/// A review input that triggers nothing: a small merchant refund of a fresh, plain sale on a
/// quiet day.
struct Input {
    settings: ReviewSettings,
    payment: PaymentState,
    amount_fen: i64,
    requested_by: RequesterRole,
    now: DateTime<Utc>,
    today: DayTotals,
}

impl Input {
    fn new() -> Self {
        let payment = payment(Channel::Wechat, 10_000_000);
        let now = payment.captured_at + Duration::days(1);
        Self {
            settings: ReviewSettings::default(),
            payment,
            amount_fen: 1_000,
            requested_by: RequesterRole::Merchant,
            now,
            today: quiet_day(),
        }
    }

    fn reasons(&self) -> Vec<ReviewReason> {
        review_reasons(&ReviewInput {
            settings: &self.settings,
            payment: &self.payment,
            amount_fen: self.amount_fen,
            requested_by: self.requested_by,
            now: self.now,
            today: self.today,
        })
    }
}

#[test]
fn plain_small_merchant_refund_needs_no_review() {
    assert_eq!(Input::new().reasons(), []);
}

#[test]
fn default_review_thresholds_are_the_spec_values() {
    let review = ReviewSettings::default();
    assert_eq!(review.large_amount_fen, 500_000);
    assert_eq!(review.late_refund_days, 30);
    assert_eq!(review.refund_ratio_percent, 50);
}

// large_amount --------------------------------------------------------------------------

#[test]
fn amount_of_exactly_5000_yuan_is_flagged_large_amount() {
    let mut input = Input::new();
    input.amount_fen = 500_000;
    assert_eq!(input.reasons(), [ReviewReason::LargeAmount]);
}

#[test]
fn amount_one_fen_below_5000_yuan_is_not_flagged_large_amount() {
    let mut input = Input::new();
    input.amount_fen = 499_999;
    assert_eq!(input.reasons(), []);
}

#[test]
fn merchant_large_amount_threshold_overrides_the_default() {
    let mut input = Input::new();
    input.settings.large_amount_fen = 100_000;
    input.amount_fen = 100_000;
    assert_eq!(input.reasons(), [ReviewReason::LargeAmount]);
    input.amount_fen = 99_999;
    assert_eq!(input.reasons(), []);

    let mut input = Input::new();
    input.settings.large_amount_fen = 1_000_000;
    input.amount_fen = 999_999;
    assert_eq!(
        input.reasons(),
        [],
        "a higher threshold lets 9 999.99 CNY through"
    );
}

// preauth_or_member ---------------------------------------------------------------------

#[test]
fn refund_of_a_preauth_completion_is_flagged_preauth_or_member() {
    let mut input = Input::new();
    input.payment.kind = PaymentKind::PreauthCompletion;
    assert_eq!(input.reasons(), [ReviewReason::PreauthOrMember]);
}

#[test]
fn refund_of_a_member_transaction_is_flagged_preauth_or_member() {
    let mut input = Input::new();
    input.payment.member = true;
    assert_eq!(input.reasons(), [ReviewReason::PreauthOrMember]);
}

#[test]
fn member_preauth_completion_is_flagged_preauth_or_member_once() {
    let mut input = Input::new();
    input.payment.member = true;
    input.payment.kind = PaymentKind::PreauthCompletion;
    assert_eq!(input.reasons(), [ReviewReason::PreauthOrMember]);
}

#[test]
fn refund_of_a_plain_non_member_sale_is_not_flagged_preauth_or_member() {
    let input = Input::new();
    assert_eq!(input.payment.kind, PaymentKind::Sale);
    assert!(!input.payment.member);
    assert!(!input.reasons().contains(&ReviewReason::PreauthOrMember));
}

// late_refund ---------------------------------------------------------------------------

#[test]
fn payment_exactly_30_days_old_is_not_flagged_late_refund() {
    let mut input = Input::new();
    input.now = input.payment.captured_at + Duration::days(30);
    assert_eq!(input.reasons(), []);
}

#[test]
fn payment_30_days_and_one_second_old_is_flagged_late_refund() {
    let mut input = Input::new();
    input.now = input.payment.captured_at + Duration::days(30) + Duration::seconds(1);
    assert_eq!(input.reasons(), [ReviewReason::LateRefund]);
}

#[test]
fn merchant_late_refund_days_overrides_the_default() {
    let mut input = Input::new();
    input.settings.late_refund_days = 7;
    input.now = input.payment.captured_at + Duration::days(7);
    assert_eq!(input.reasons(), []);
    input.now += Duration::seconds(1);
    assert_eq!(input.reasons(), [ReviewReason::LateRefund]);

    let mut input = Input::new();
    input.settings.late_refund_days = 90;
    input.now = input.payment.captured_at + Duration::days(60);
    assert_eq!(
        input.reasons(),
        [],
        "a longer setting lets a 60-day-old payment through"
    );
}

// refund_ratio --------------------------------------------------------------------------

#[test]
fn refunds_today_reaching_exactly_half_of_sales_are_not_flagged_refund_ratio() {
    let mut input = Input::new();
    input.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 4_000,
    };
    input.amount_fen = 1_000;
    assert_eq!(input.reasons(), []);
}

#[test]
fn refunds_today_one_fen_above_half_of_sales_are_flagged_refund_ratio() {
    let mut input = Input::new();
    input.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 4_000,
    };
    input.amount_fen = 1_001;
    assert_eq!(input.reasons(), [ReviewReason::RefundRatio]);
}

#[test]
fn refund_ratio_counts_this_refund_and_the_earlier_refunds_of_today() {
    let mut input = Input::new();
    input.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 0,
    };
    input.amount_fen = 5_001;
    assert_eq!(
        input.reasons(),
        [ReviewReason::RefundRatio],
        "this refund alone"
    );
    input.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 5_001,
    };
    input.amount_fen = 1;
    assert_eq!(
        input.reasons(),
        [ReviewReason::RefundRatio],
        "earlier refunds of today"
    );
}

#[test]
fn refund_ratio_with_odd_sales_compares_exactly_not_in_rounded_halves() {
    // 50 % of 10 001 is 5 000.5: 5 000 does not exceed it, 5 001 does.
    let mut input = Input::new();
    input.today = DayTotals {
        sales_fen: 10_001,
        refunds_fen: 0,
    };
    input.amount_fen = 5_000;
    assert_eq!(input.reasons(), []);
    input.amount_fen = 5_001;
    assert_eq!(input.reasons(), [ReviewReason::RefundRatio]);
}

#[test]
fn refund_on_a_day_without_sales_is_flagged_refund_ratio() {
    let mut input = Input::new();
    input.today = DayTotals {
        sales_fen: 0,
        refunds_fen: 0,
    };
    input.amount_fen = 1;
    assert_eq!(input.reasons(), [ReviewReason::RefundRatio]);
}

#[test]
fn merchant_refund_ratio_percent_overrides_the_default() {
    let mut input = Input::new();
    input.settings.refund_ratio_percent = 20;
    input.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 0,
    };
    input.amount_fen = 2_000;
    assert_eq!(input.reasons(), []);
    input.amount_fen = 2_001;
    assert_eq!(input.reasons(), [ReviewReason::RefundRatio]);

    input.settings.refund_ratio_percent = 80;
    input.amount_fen = 8_000;
    assert_eq!(input.reasons(), [], "a higher ratio lets 80 % through");
}

// consumer_request ----------------------------------------------------------------------

#[test]
fn refund_asked_by_the_consumer_is_flagged_consumer_request() {
    let mut input = Input::new();
    input.requested_by = RequesterRole::Consumer;
    assert_eq!(input.reasons(), [ReviewReason::ConsumerRequest]);
}

#[test]
fn refund_asked_by_the_merchant_is_not_flagged_consumer_request() {
    let input = Input::new();
    assert_eq!(input.requested_by, RequesterRole::Merchant);
    assert_eq!(RequesterRole::default(), RequesterRole::Merchant);
    assert!(!input.reasons().contains(&ReviewReason::ConsumerRequest));
}

// all together --------------------------------------------------------------------------

#[test]
fn every_reason_is_listed_in_the_stable_order_when_all_hold() {
    let mut input = Input::new();
    input.amount_fen = 600_000;
    input.payment.member = true;
    input.now = input.payment.captured_at + Duration::days(31);
    input.today = DayTotals {
        sales_fen: 0,
        refunds_fen: 0,
    };
    input.requested_by = RequesterRole::Consumer;
    assert_eq!(input.reasons(), ReviewReason::ALL);
}

#[test]
fn review_reason_ids_are_the_spec_codes() {
    let ids: Vec<_> = ReviewReason::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(
        ids,
        [
            "large_amount",
            "preauth_or_member",
            "late_refund",
            "refund_ratio",
            "consumer_request"
        ]
    );
    for reason in ReviewReason::ALL {
        assert_eq!(ReviewReason::parse(reason.id()), Some(reason));
    }
    assert_eq!(ReviewReason::parse("big"), None);
    assert_eq!(
        RequiredReviewer::parse("acquirer"),
        Some(RequiredReviewer::Acquirer)
    );
    assert_eq!(
        RequiredReviewer::parse("merchant"),
        Some(RequiredReviewer::Merchant)
    );
}

// per-merchant thresholds through decide_refund ------------------------------------------

#[test]
fn merchant_review_settings_from_a_patch_drive_decide_refund() {
    let patch: MerchantSettingsPatch = serde_json::from_str(
        r#"{"review":{"large_amount_fen":100000,"late_refund_days":7,"refund_ratio_percent":20}}"#,
    )
    .unwrap();
    let settings = MerchantSettings::default().apply(&patch).unwrap();

    let mut case = Case::new(Channel::Alipay, 1_000_000);
    case.settings = settings;
    assert_eq!(case.refund(Some(99_999)).unwrap().review_reasons, []);
    let plan = case.refund(Some(100_000)).unwrap();
    assert_eq!(plan.review_reasons, [ReviewReason::LargeAmount]);
    assert_eq!(plan.status, RefundStatus::PendingReview);

    case.now = case.payment.captured_at + Duration::days(7) + Duration::seconds(1);
    assert_eq!(
        case.refund(Some(1_000)).unwrap().review_reasons,
        [ReviewReason::LateRefund]
    );

    case.now = case.payment.captured_at + Duration::days(1);
    case.today = DayTotals {
        sales_fen: 10_000,
        refunds_fen: 0,
    };
    assert_eq!(case.refund(Some(2_000)).unwrap().review_reasons, []);
    assert_eq!(
        case.refund(Some(2_001)).unwrap().review_reasons,
        [ReviewReason::RefundRatio]
    );
}

#[test]
fn default_settings_in_decide_refund_use_the_spec_thresholds() {
    let case = Case::new(Channel::Alipay, 1_000_000);
    assert_eq!(case.refund(Some(499_999)).unwrap().review_reasons, []);
    assert_eq!(
        case.refund(Some(500_000)).unwrap().review_reasons,
        [ReviewReason::LargeAmount]
    );
}

// who must review -----------------------------------------------------------------------

#[test]
fn acquirer_must_review_iff_large_amount_refund_ratio_or_late_refund_is_among_the_reasons() {
    // Every subset of the five reasons.
    for mask in 0u32..(1 << ReviewReason::ALL.len()) {
        let reasons: Vec<_> = ReviewReason::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, r)| r)
            .collect();
        let acquirer = reasons.iter().any(|r| {
            matches!(
                r,
                ReviewReason::LargeAmount | ReviewReason::RefundRatio | ReviewReason::LateRefund
            )
        });
        let expected = if acquirer {
            RequiredReviewer::Acquirer
        } else {
            RequiredReviewer::Merchant
        };
        assert_eq!(
            RequiredReviewer::for_reasons(&reasons),
            expected,
            "{reasons:?}"
        );
    }
}

#[test]
fn only_large_amount_refund_ratio_and_late_refund_are_acquirer_only() {
    let acquirer_only: Vec<_> = ReviewReason::ALL
        .into_iter()
        .filter(|r| r.acquirer_only())
        .collect();
    assert_eq!(
        acquirer_only,
        [
            ReviewReason::LargeAmount,
            ReviewReason::LateRefund,
            ReviewReason::RefundRatio
        ]
    );
}

#[test]
fn merchant_reasons_mixed_with_an_acquirer_reason_need_the_acquirer() {
    let mut case = Case::new(Channel::Wechat, 10_000);
    case.payment.member = true;
    case.now = case.payment.captured_at + Duration::days(45);
    let plan = case.refund(Some(100)).unwrap();
    assert_eq!(
        plan.review_reasons,
        [ReviewReason::PreauthOrMember, ReviewReason::LateRefund]
    );
    assert_eq!(plan.required_reviewer, Some(RequiredReviewer::Acquirer));
}

// who may review ------------------------------------------------------------------------

#[test]
fn acquirer_may_review_every_refund() {
    assert!(Reviewer::Acquirer.may_review(RequiredReviewer::Acquirer));
    assert!(Reviewer::Acquirer.may_review(RequiredReviewer::Merchant));
}

#[test]
fn merchant_supervisor_may_review_only_merchant_required_refunds() {
    assert!(Reviewer::MerchantSupervisor.may_review(RequiredReviewer::Merchant));
    assert!(!Reviewer::MerchantSupervisor.may_review(RequiredReviewer::Acquirer));
}

#[test]
fn merchant_staff_may_review_nothing() {
    assert!(!Reviewer::MerchantStaff.may_review(RequiredReviewer::Merchant));
    assert!(!Reviewer::MerchantStaff.may_review(RequiredReviewer::Acquirer));
}

#[test]
fn merchant_supervisor_may_review_a_refund_iff_none_of_its_reasons_is_acquirer_only() {
    for reason in ReviewReason::ALL {
        let required = RequiredReviewer::for_reasons(&[reason]);
        assert_eq!(
            Reviewer::MerchantSupervisor.may_review(required),
            !reason.acquirer_only(),
            "{reason:?}"
        );
        assert!(Reviewer::Acquirer.may_review(required), "{reason:?}");
        assert!(!Reviewer::MerchantStaff.may_review(required), "{reason:?}");
    }
}
