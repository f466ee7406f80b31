//! Which refunds wait for a reviewer, why, and who may approve them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::payment::{PaymentKind, PaymentState};
use crate::refund::RequesterRole;
use crate::settings::ReviewSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    LargeAmount,
    PreauthOrMember,
    LateRefund,
    RefundRatio,
    ConsumerRequest,
}

impl ReviewReason {
    pub const ALL: [ReviewReason; 5] = [
        ReviewReason::LargeAmount,
        ReviewReason::PreauthOrMember,
        ReviewReason::LateRefund,
        ReviewReason::RefundRatio,
        ReviewReason::ConsumerRequest,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ReviewReason::LargeAmount => "large_amount",
            ReviewReason::PreauthOrMember => "preauth_or_member",
            ReviewReason::LateRefund => "late_refund",
            ReviewReason::RefundRatio => "refund_ratio",
            ReviewReason::ConsumerRequest => "consumer_request",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Reviews the acquirer requires: only the acquirer may approve them.
    pub fn acquirer_only(self) -> bool {
        matches!(
            self,
            ReviewReason::LargeAmount | ReviewReason::RefundRatio | ReviewReason::LateRefund
        )
    }
}

/// Who must approve a refund waiting for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequiredReviewer {
    /// A merchant supervisor or the acquirer.
    Merchant,
    /// The acquirer only.
    Acquirer,
}

impl RequiredReviewer {
    pub fn id(self) -> &'static str {
        match self {
            RequiredReviewer::Merchant => "merchant",
            RequiredReviewer::Acquirer => "acquirer",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        [RequiredReviewer::Merchant, RequiredReviewer::Acquirer]
            .into_iter()
            .find(|r| r.id() == id)
    }

    /// The reviewer the reasons require: the acquirer if any reason is acquirer-only.
    pub fn for_reasons(reasons: &[ReviewReason]) -> Self {
        if reasons.iter().any(|r| r.acquirer_only()) {
            RequiredReviewer::Acquirer
        } else {
            RequiredReviewer::Merchant
        }
    }
}

/// Someone who approves or rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewer {
    Acquirer,
    MerchantSupervisor,
    /// Merchant staff may ask for refunds but never review them.
    MerchantStaff,
}

impl Reviewer {
    pub fn may_review(self, required: RequiredReviewer) -> bool {
        match self {
            Reviewer::Acquirer => true,
            Reviewer::MerchantSupervisor => required == RequiredReviewer::Merchant,
            Reviewer::MerchantStaff => false,
        }
    }
}

/// Sales and live refunds of one merchant on one Shanghai day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub sales_fen: i64,
    /// Refunds created that day and not released (not failed, rejected or canceled).
    pub refunds_fen: i64,
}

/// Everything the review rules look at.
pub struct ReviewInput<'a> {
    pub settings: &'a ReviewSettings,
    pub payment: &'a PaymentState,
    pub amount_fen: i64,
    pub requested_by: RequesterRole,
    pub now: DateTime<Utc>,
    pub today: DayTotals,
}

/// The reasons this refund must wait for a reviewer, in a stable order; empty means none.
pub fn review_reasons(input: &ReviewInput<'_>) -> Vec<ReviewReason> {
    let settings = input.settings;
    let mut reasons = Vec::new();
    if input.amount_fen >= settings.large_amount_fen {
        reasons.push(ReviewReason::LargeAmount);
    }
    if input.payment.kind == PaymentKind::PreauthCompletion || input.payment.member {
        reasons.push(ReviewReason::PreauthOrMember);
    }
    if input.now - input.payment.captured_at > Duration::days(settings.late_refund_days) {
        reasons.push(ReviewReason::LateRefund);
    }
    // refunds_today / sales_today > percent / 100, in integers.
    let refunds_after = i128::from(input.today.refunds_fen) + i128::from(input.amount_fen);
    if refunds_after * 100
        > i128::from(settings.refund_ratio_percent) * i128::from(input.today.sales_fen)
    {
        reasons.push(ReviewReason::RefundRatio);
    }
    if input.requested_by == RequesterRole::Consumer {
        reasons.push(ReviewReason::ConsumerRequest);
    }
    reasons
}
