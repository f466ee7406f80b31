//! The rules checked when a refund is asked for, as one pure function over what was read
//! under the payment's lock. The engine reads, calls [`decide_refund`], and writes.

use chrono::{DateTime, Duration, Utc};

use crate::evidence::EvidenceKind;
use crate::fees::{FeeRefundPolicy, proportional_fee_refund};
use crate::money::PositiveFen;
use crate::payment::PaymentState;
use crate::refund::{RefundReason, RefundStatus, RefundType, RequesterRole};
use crate::review::{DayTotals, RequiredReviewer, ReviewInput, ReviewReason, review_reasons};
use crate::settings::MerchantSettings;
use crate::time::shanghai_date;

/// At most this many refunds per payment (`too_many_refunds`).
pub const REFUNDS_PER_PAYMENT_MAX: i64 = 50;

/// A refund request after parsing at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAsk {
    /// `None` means the whole refundable amount.
    pub amount_fen: Option<i64>,
    pub reason: RefundReason,
    pub requested_by: RequesterRole,
}

/// What else is known when the refund is asked for.
pub struct DecideContext<'a> {
    pub settings: &'a MerchantSettings,
    pub payment: &'a PaymentState,
    pub now: DateTime<Utc>,
    /// The merchant's sales and live refunds today (Asia/Shanghai).
    pub today: DayTotals,
    /// Settlement has already run for the payment's business date.
    pub capture_day_settled: bool,
}

/// The refund to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPlan {
    pub amount_fen: i64,
    pub refund_type: RefundType,
    pub fee_refunded_fen: i64,
    pub status: RefundStatus,
    /// Empty when no review is needed.
    pub review_reasons: Vec<ReviewReason>,
    pub required_reviewer: Option<RequiredReviewer>,
    /// Evidence the merchant's settings require before the refund may go on (证明材料); the
    /// refund waits in `pending_review` until it is there. Empty when none.
    pub evidence_required: Vec<EvidenceKind>,
}

/// Why a refund was refused; each maps to the spec's stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    #[error("the payment was voided; there is nothing left to refund")]
    PaymentVoided,
    #[error("amount must be a positive integer number of fen")]
    InvalidAmount,
    #[error(
        "the payment was captured {age_days} days ago, beyond the {window_days}-day refund window of its channel"
    )]
    WindowExpired { age_days: i64, window_days: i64 },
    #[error("the payment already has {count} refunds, the most allowed")]
    TooManyRefunds { count: i64 },
    #[error("amount {requested_fen} fen exceeds the refundable {refundable_fen} fen")]
    AmountExceedsRefundable {
        requested_fen: i64,
        refundable_fen: i64,
    },
}

impl RefundRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RefundRefusal::PaymentVoided => "payment_voided",
            RefundRefusal::InvalidAmount => "invalid_amount",
            RefundRefusal::WindowExpired { .. } => "refund_window_expired",
            RefundRefusal::TooManyRefunds { .. } => "too_many_refunds",
            RefundRefusal::AmountExceedsRefundable { .. } => "amount_exceeds_refundable",
        }
    }
}

/// Checks every rule in the order of the spec's table (a voided payment first, as the most
/// specific answer) and plans the refund.
pub fn decide_refund(
    ask: &RefundAsk,
    ctx: &DecideContext<'_>,
) -> Result<RefundPlan, RefundRefusal> {
    decide_refund_deducted(ask, ctx, 0)
}

/// [`decide_refund`] for a refund carrying `deducted_fen` of deductions agreed with the
/// consumer (issue 15 item 2). Such a refund is never a void: a void reverses the whole
/// sale, while the merchant keeps the deductions, so it goes back through the channel as a
/// refund (退货). The fee it returns is computed on its `amount` as for any refund. Whether
/// the deductions leave the consumer something is checked by the caller against the
/// planned amount ([`crate::deduction::check_against_amount`]).
pub fn decide_refund_deducted(
    ask: &RefundAsk,
    ctx: &DecideContext<'_>,
    deducted_fen: i64,
) -> Result<RefundPlan, RefundRefusal> {
    let payment = ctx.payment;
    if payment.voided {
        return Err(RefundRefusal::PaymentVoided);
    }
    let refundable = payment.refundable_fen();
    let amount = match ask.amount_fen {
        // The one positivity rule, `PositiveFen`, as the edge applies it too.
        Some(amount) => PositiveFen::new(amount)
            .map_err(|_| RefundRefusal::InvalidAmount)?
            .get(),
        None if refundable >= 1 => refundable,
        None => {
            return Err(RefundRefusal::AmountExceedsRefundable {
                requested_fen: 0,
                refundable_fen: 0,
            });
        }
    };
    if amount > refundable {
        return Err(RefundRefusal::AmountExceedsRefundable {
            requested_fen: amount,
            refundable_fen: refundable,
        });
    }
    let channel = ctx.settings.channel(payment.channel);
    let age = ctx.now - payment.captured_at;
    if age > Duration::days(channel.refund_window_days) {
        return Err(RefundRefusal::WindowExpired {
            age_days: age.num_days(),
            window_days: channel.refund_window_days,
        });
    }
    if payment.refund_count >= REFUNDS_PER_PAYMENT_MAX {
        return Err(RefundRefusal::TooManyRefunds {
            count: payment.refund_count,
        });
    }

    let awaiting_return = ask.reason.is_goods_reason()
        && payment
            .shipping_status
            .is_some_and(|s| s.goods_left_merchant());
    let refund_type = if !awaiting_return && deducted_fen == 0 && is_void(payment, amount, ctx) {
        RefundType::Void
    } else {
        RefundType::Refund
    };
    let fee_refunded_fen = match refund_type {
        RefundType::Void => payment.fee_fen,
        RefundType::Refund => refund_fee(
            channel.fee_refund,
            payment,
            payment.amount_refunded_fen + payment.amount_in_flight_fen + amount,
            payment.fee_returned_fen,
        ),
    };
    let review_reasons = review_reasons(&ReviewInput {
        settings: &ctx.settings.review,
        payment,
        amount_fen: amount,
        requested_by: ask.requested_by,
        now: ctx.now,
        today: ctx.today,
    });
    let required_reviewer =
        (!review_reasons.is_empty()).then(|| RequiredReviewer::for_reasons(&review_reasons));
    let evidence_required = ctx.settings.evidence.required_for(amount);
    let status = if awaiting_return {
        RefundStatus::AwaitingReturn
    } else {
        status_after_return_with(&review_reasons, !evidence_required.is_empty())
    };
    Ok(RefundPlan {
        amount_fen: amount,
        refund_type,
        fee_refunded_fen,
        status,
        review_reasons,
        required_reviewer,
        evidence_required,
    })
}

/// A card or UnionPay QR payment refunded in full, while its void window is open.
fn is_void(payment: &PaymentState, amount: i64, ctx: &DecideContext<'_>) -> bool {
    payment.channel.supports_void()
        && amount == payment.amount_fen
        && payment.amount_refunded_fen == 0
        && payment.amount_in_flight_fen == 0
        && void_window_open(payment.captured_at, ctx.now, ctx.capture_day_settled)
}

/// A void (撤销) is possible only on the payment's business date (its capture day,
/// Asia/Shanghai) and before settlement ran for that date: after either, the payment has
/// been (or is about to be) settled and only a refund (退货) through the channel can pay the
/// consumer back. Checked when a refund is asked for and again when a void would complete.
pub fn void_window_open(
    captured_at: DateTime<Utc>,
    now: DateTime<Utc>,
    capture_day_settled: bool,
) -> bool {
    shanghai_date(captured_at) == shanghai_date(now) && !capture_day_settled
}

/// The fee a refund (退货) returns under the channel's policy: `refunded_total_after` and
/// `fee_returned_before` count succeeded and in-flight refunds other than this one's fee.
fn refund_fee(
    policy: FeeRefundPolicy,
    payment: &PaymentState,
    refunded_total_after_fen: i64,
    fee_returned_before_fen: i64,
) -> i64 {
    match policy {
        FeeRefundPolicy::None => 0,
        FeeRefundPolicy::Proportional => proportional_fee_refund(
            payment.amount_fen,
            payment.fee_fen,
            refunded_total_after_fen,
            fee_returned_before_fen,
        ),
    }
}

/// A void waiting to complete whose window has passed becomes a refund (退货): the fee it
/// returns now, under the refund fee rule. `payment`'s counters already hold this refund
/// (its amount in flight, `held_fee_fen` in the returned fee). `None`: still a void.
pub fn void_becomes_refund(
    settings: &MerchantSettings,
    payment: &PaymentState,
    held_fee_fen: i64,
    now: DateTime<Utc>,
    capture_day_settled: bool,
) -> Option<i64> {
    if void_window_open(payment.captured_at, now, capture_day_settled) {
        return None;
    }
    let policy = settings.channel(payment.channel).fee_refund;
    Some(refund_fee(
        policy,
        payment,
        payment.amount_refunded_fen + payment.amount_in_flight_fen,
        payment.fee_returned_fen - held_fee_fen,
    ))
}

/// The status a refund moves to once its goods came back: review if it has reasons.
pub fn status_after_return(review_reasons: &[ReviewReason]) -> RefundStatus {
    status_after_return_with(review_reasons, false)
}

/// The status a refund goes to when nothing but review and evidence can hold it: queued,
/// unless it has review reasons or still waits for required evidence (`pending_review`,
/// not approvable until the evidence is there).
pub fn status_after_return_with(
    review_reasons: &[ReviewReason],
    evidence_missing: bool,
) -> RefundStatus {
    if review_reasons.is_empty() && !evidence_missing {
        RefundStatus::Queued
    } else {
        RefundStatus::PendingReview
    }
}
