//! Refund states, types, reasons and the state machine. Only the transitions in
//! [`RefundStatus::can_become`] exist; everything else is `invalid_transition`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    AwaitingReturn,
    PendingReview,
    Queued,
    Processing,
    Succeeded,
    Failed,
    Abnormal,
    Rejected,
    Canceled,
}

string_enum!(RefundStatus, "refund status" {
    AwaitingReturn => "awaiting_return",
    PendingReview => "pending_review",
    Queued => "queued",
    Processing => "processing",
    Succeeded => "succeeded",
    Failed => "failed",
    Abnormal => "abnormal",
    Rejected => "rejected",
    Canceled => "canceled",
});

impl RefundStatus {
    /// The spec's state machine, and nothing more.
    pub fn can_become(self, next: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, next),
            (AwaitingReturn, PendingReview | Queued | Canceled)
                | (PendingReview, Queued | Rejected | Canceled)
                | (Queued, Processing | Canceled)
                | (Processing, Succeeded | Failed | Abnormal)
                | (Abnormal, Processing)
        )
    }

    /// The refund's amount is held from the payment's refundable amount.
    pub fn holds_money(self) -> bool {
        use RefundStatus::*;
        matches!(
            self,
            AwaitingReturn | PendingReview | Queued | Processing | Abnormal
        )
    }

    /// The merchant has been debited for the refund (after the funding rule) and the ledger
    /// holds it until it succeeds, fails or is canceled.
    pub fn is_debited(self) -> bool {
        use RefundStatus::*;
        matches!(self, Queued | Processing | Abnormal)
    }

    /// The refund counts against the merchant's day (the ratio of refunds to sales): held
    /// or paid.
    pub fn counts_against_day(self) -> bool {
        self.holds_money() || self == RefundStatus::Succeeded
    }

    /// Sent to its channel and not yet final: the only statuses that can be overdue (see
    /// [`crate::transition::is_overdue`]).
    pub fn may_be_overdue(self) -> bool {
        use RefundStatus::*;
        matches!(self, Processing | Abnormal)
    }

    /// No further transition is possible.
    pub fn is_final(self) -> bool {
        use RefundStatus::*;
        matches!(self, Succeeded | Failed | Rejected | Canceled)
    }

    /// The refund may still be canceled: it has not been sent to a channel.
    pub fn is_before_dispatch(self) -> bool {
        use RefundStatus::*;
        matches!(self, AwaitingReturn | PendingReview | Queued)
    }
}

/// Void (撤销) reverses a same-day card payment at the acquirer; refund (退货) goes back
/// through the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundType {
    Void,
    Refund,
}

string_enum!(RefundType, "refund type" { Void => "void", Refund => "refund" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    CustomerCancel,
    QualityIssue,
    NotShipped,
    PaymentFailure,
    DuplicateCharge,
    SystemError,
    Other,
}

string_enum!(RefundReason, "refund reason" {
    CustomerCancel => "customer_cancel",
    QualityIssue => "quality_issue",
    NotShipped => "not_shipped",
    PaymentFailure => "payment_failure",
    DuplicateCharge => "duplicate_charge",
    SystemError => "system_error",
    Other => "other",
});

impl RefundReason {
    /// Goods reasons: for a shipped order, the goods come back before the money does.
    pub fn is_goods_reason(self) -> bool {
        matches!(
            self,
            RefundReason::CustomerCancel | RefundReason::QualityIssue
        )
    }
}

/// Who asked for the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequesterRole {
    /// Merchant staff at the terminal or in the back office, or the merchant's system.
    #[default]
    Merchant,
    /// The consumer, relayed by the merchant.
    Consumer,
}

string_enum!(RequesterRole, "requester role" { Merchant => "merchant", Consumer => "consumer" });

#[cfg(test)]
mod tests {
    use super::*;
    use RefundStatus::*;

    const ALLOWED: &[(RefundStatus, RefundStatus)] = &[
        (AwaitingReturn, PendingReview),
        (AwaitingReturn, Queued),
        (AwaitingReturn, Canceled),
        (PendingReview, Queued),
        (PendingReview, Rejected),
        (PendingReview, Canceled),
        (Queued, Processing),
        (Queued, Canceled),
        (Processing, Succeeded),
        (Processing, Failed),
        (Processing, Abnormal),
        (Abnormal, Processing),
    ];

    #[test]
    fn only_the_spec_transitions_exist() {
        for &from in RefundStatus::ALL {
            for &to in RefundStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_have_no_way_out() {
        for &from in RefundStatus::ALL.iter().filter(|s| s.is_final()) {
            assert!(
                RefundStatus::ALL.iter().all(|&to| !from.can_become(to)),
                "{from}"
            );
        }
    }

    #[test]
    fn money_is_held_exactly_while_under_way() {
        let held: Vec<_> = RefundStatus::ALL
            .iter()
            .filter(|s| s.holds_money())
            .collect();
        assert_eq!(
            held,
            [
                &AwaitingReturn,
                &PendingReview,
                &Queued,
                &Processing,
                &Abnormal
            ]
        );
    }

    #[test]
    fn cancel_only_before_dispatch() {
        for &s in RefundStatus::ALL {
            assert_eq!(s.can_become(Canceled), s.is_before_dispatch(), "{s}");
        }
    }

    #[test]
    fn ids_round_trip() {
        for &s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.id()), Some(s));
        }
        for &r in RefundReason::ALL {
            assert_eq!(RefundReason::parse(r.id()), Some(r));
        }
        assert_eq!(RefundStatus::parse("done"), None);
    }

    #[test]
    fn goods_reasons_are_cancel_and_quality() {
        let goods: Vec<_> = RefundReason::ALL
            .iter()
            .filter(|r| r.is_goods_reason())
            .collect();
        assert_eq!(
            goods,
            [&RefundReason::CustomerCancel, &RefundReason::QualityIssue]
        );
    }
}

/// Where a refund stands with its channel, which tells dispatch its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendState {
    /// Never sent, or the channel said it has no record: the next step is to send.
    NotSent,
    /// A request may have reached the channel: the next step is a query.
    Sent,
    /// The channel acknowledged the refund and has not confirmed it yet.
    Accepted,
}

string_enum!(SendState, "send state" {
    NotSent => "not_sent",
    Sent => "sent",
    Accepted => "accepted",
});
