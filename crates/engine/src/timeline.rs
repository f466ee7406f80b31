//! A refund's timeline as data: every audit entry about it, as what happened (an
//! [`EventFacts`] with its amounts, dates, notes and accounts), who did it and where the
//! money is now ([`MoneyAt`]); and for a refund under way, what happens next ([`NextStep`]).
//!
//! No sentence is written here: the edge renders these in the reader's language
//! (`yuanlu_web::present`, with the `timeline.ftl` message files of `yuanlu-words`). Which
//! facts each reader may see is decided in [`crate::audience`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::review::RequiredReviewer;
use yuanlu_domain::time::from_micros;
use yuanlu_store::AuditRow;

/// Audit actions about refunds, which are also the timeline's event names.
pub mod action {
    pub const CREATED: &str = "refund.created";
    pub const APPROVED: &str = "refund.approved";
    pub const REJECTED: &str = "refund.rejected";
    pub const CANCELED: &str = "refund.canceled";
    pub const GOODS_RETURNED: &str = "refund.goods_returned";
    pub const VOID_COMPLETED: &str = "refund.void_completed";
    /// A void approved after its window passed became a refund (退货).
    pub const BECAME_REFUND: &str = "refund.void_window_passed";
    pub const SENT: &str = "refund.sent";
    pub const ACCEPTED: &str = "refund.accepted";
    pub const SUCCEEDED: &str = "refund.succeeded";
    pub const ABNORMAL: &str = "refund.abnormal";
    /// Dispatch gave up without a definitive answer; the refund waits, abnormal, for an operator.
    pub const OUTCOME_UNKNOWN: &str = "refund.outcome_unknown";
    pub const FAILED: &str = "refund.failed";
    pub const REROUTED: &str = "refund.rerouted";
    /// The merchant paid the consumer directly (an operator's reroute to the merchant).
    pub const PAID_BY_MERCHANT: &str = "refund.paid_by_merchant";
    /// The consumer rated the refund (written by `public_feedback`).
    pub const RATED: &str = "refund.feedback";
    /// The evidence the merchant requires is all there (证明材料): the refund goes on.
    pub const EVIDENCE_COMPLETE: &str = "refund.evidence_complete";
}

/// Which way the money goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Back along the payment's route, to the card or wallet it was paid from (`account`
    /// and `bank` are the payment's, masked).
    Original,
    /// Where the channel, or an operator's reroute, says the money went (`account`).
    Reported,
    /// The merchant paid the consumer directly (an operator's reroute to the merchant).
    Merchant,
}

/// Where the money goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub channel: Channel,
    /// Masked card or wallet account (`**** 0403`), or the account the channel reported.
    pub account: Option<String>,
    pub bank: Option<String>,
    pub route: Route,
}

/// Where a refund's money is after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MoneyAt {
    /// Still with the merchant's account at the acquirer, held for this refund.
    HeldForRefund,
    /// Sent to the channel, not yet confirmed.
    WithChannel { channel: Channel },
    /// A void: the payment was reversed before settlement; nothing was taken from the payer.
    Reversed,
    /// Paid to the consumer by the merchant directly; the hold went back to the merchant.
    PaidByMerchant,
    /// Credited to the refund's destination.
    Credited,
    /// Returned by the channel (the original route is closed); held until rerouted.
    HeldForReroute,
    /// Held by the acquirer while the channel's answer is unknown.
    HeldOutcomeUnknown,
    /// Stays with the merchant: nothing was refunded.
    StaysWithMerchant,
}

/// What happened, as data. Notes, names, review reasons and tracking numbers are staff's
/// (see [`crate::audience`]); amounts are fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventFacts {
    /// The refund was asked for; `then` is where it went (queued, review, awaiting return).
    Created {
        amount: Option<i64>,
        requested_by_name: Option<String>,
        /// `merchant` or `consumer`.
        requested_by_role: Option<String>,
        /// Review reason ids, e.g. `large_amount` (left out when none, as for consumers).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        review_reasons: Vec<String>,
    },
    Approved {
        note: Option<String>,
    },
    Rejected {
        note: Option<String>,
    },
    /// Canceled before it was sent.
    Canceled {
        note: Option<String>,
    },
    /// The merchant recorded the returned goods.
    GoodsReturned {
        tracking_no: Option<String>,
    },
    /// Voided (撤销) at the acquirer: the payment and its whole fee reversed.
    VoidCompleted,
    /// A void's window passed (its business date ended or was settled): it became a refund
    /// (退货) returning `fee_refunded` of the fee.
    BecameRefund {
        /// `YYYY-MM-DD`.
        business_date: Option<String>,
        settled: bool,
        fee_refunded: Option<i64>,
    },
    /// Sent along the original route, or (with `rerouted_to`) again to a rerouted account.
    Sent {
        channel: Option<Channel>,
        rerouted_to: Option<String>,
    },
    /// The channel accepted it and will confirm.
    Accepted,
    /// The channel refunded it, to `received_account` where it says.
    Succeeded {
        received_account: Option<String>,
    },
    /// The channel could not refund along the original route.
    Abnormal {
        note: Option<String>,
    },
    /// No definitive answer from the channel; held for an operator.
    OutcomeUnknown {
        note: Option<String>,
    },
    Failed {
        note: Option<String>,
    },
    /// Rerouted by the acquirer.
    Rerouted {
        note: Option<String>,
    },
    /// The merchant paid the consumer directly; `note` says how and by whom.
    PaidByMerchant {
        note: Option<String>,
    },
    /// The consumer rated it 1–5.
    Rated {
        rating: i64,
    },
    /// An event this version does not know; its name is the entry's `event`.
    Other,
}

/// One event of a refund's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    /// The event's stable name, e.g. `refund.approved`.
    pub event: String,
    /// The refund's status after the event.
    pub status: Option<RefundStatus>,
    /// Who did it (an operator, a merchant key, or `system`).
    pub actor: String,
    /// What happened.
    pub facts: EventFacts,
    /// Where the money is after the event (none for events that leave no status).
    pub money_at: Option<MoneyAt>,
}

/// What happens next for a refund under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// The merchant records the returned goods with their tracking number.
    RecordReturn,
    /// A reviewer approves or rejects it: a merchant supervisor (or the acquirer), or only
    /// the acquirer.
    Review { reviewer: RequiredReviewer },
    /// It is sent to the channel along the original route.
    Send { channel: Channel },
    /// The channel confirms it and the money reaches the destination (by `by`, when known).
    Confirm { channel: Channel },
    /// An operator reroutes it to a bank account given by the consumer, or to the merchant.
    Reroute,
}

/// What happens next, and by when where that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NextStep {
    pub step: Step,
    pub by: Option<DateTime<Utc>>,
}

/// Where the money is while a refund is in `status`.
pub fn money_at(
    status: RefundStatus,
    refund_type: RefundType,
    destination: &Destination,
) -> MoneyAt {
    use RefundStatus::*;
    match status {
        AwaitingReturn | PendingReview | Queued => MoneyAt::HeldForRefund,
        Processing => MoneyAt::WithChannel {
            channel: destination.channel,
        },
        Succeeded if refund_type == RefundType::Void => MoneyAt::Reversed,
        Succeeded if destination.route == Route::Merchant => MoneyAt::PaidByMerchant,
        Succeeded => MoneyAt::Credited,
        Abnormal => MoneyAt::HeldForReroute,
        Failed | Rejected | Canceled => MoneyAt::StaysWithMerchant,
    }
}

/// The timeline from the refund's audit entries, oldest first.
pub fn timeline(
    entries: &[AuditRow],
    refund_type: RefundType,
    destination: &Destination,
) -> Vec<TimelineEvent> {
    entries
        .iter()
        .map(|entry| {
            let data: serde_json::Value = serde_json::from_str(&entry.data).unwrap_or_default();
            let status = data
                .get("status")
                .and_then(|s| s.as_str())
                .and_then(RefundStatus::parse);
            TimelineEvent {
                at: from_micros(entry.at_us),
                event: entry.action.clone(),
                status,
                actor: entry.actor.clone(),
                facts: facts(&entry.action, &data),
                money_at: if entry.action == action::OUTCOME_UNKNOWN {
                    Some(MoneyAt::HeldOutcomeUnknown)
                } else {
                    status.map(|s| money_at(s, refund_type, destination))
                },
            }
        })
        .collect()
}

fn text(data: &serde_json::Value, key: &str) -> Option<String> {
    data.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The facts of one audit entry, read from its stored data.
fn facts(action: &str, data: &serde_json::Value) -> EventFacts {
    let note = || text(data, "note");
    let fen = |key: &str| data.get(key).and_then(|a| a.as_i64());
    match action {
        action::CREATED => EventFacts::Created {
            amount: fen("amount"),
            requested_by_name: text(data, "requested_by_name"),
            requested_by_role: text(data, "requested_by_role"),
            review_reasons: text(data, "review_reasons")
                .map(|r| {
                    r.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        },
        action::APPROVED => EventFacts::Approved { note: note() },
        action::REJECTED => EventFacts::Rejected { note: note() },
        action::CANCELED => EventFacts::Canceled { note: note() },
        action::GOODS_RETURNED => EventFacts::GoodsReturned {
            tracking_no: text(data, "tracking_no"),
        },
        action::VOID_COMPLETED => EventFacts::VoidCompleted,
        action::BECAME_REFUND => EventFacts::BecameRefund {
            business_date: text(data, "business_date"),
            settled: data.get("settled").and_then(|s| s.as_bool()) == Some(true),
            fee_refunded: fen("fee_refunded"),
        },
        action::SENT => EventFacts::Sent {
            channel: text(data, "channel").and_then(|c| Channel::parse(&c)),
            rerouted_to: text(data, "rerouted_to"),
        },
        action::ACCEPTED => EventFacts::Accepted,
        action::SUCCEEDED => EventFacts::Succeeded {
            received_account: text(data, "received_account"),
        },
        action::ABNORMAL => EventFacts::Abnormal { note: note() },
        action::OUTCOME_UNKNOWN => EventFacts::OutcomeUnknown { note: note() },
        action::FAILED => EventFacts::Failed { note: note() },
        action::REROUTED => EventFacts::Rerouted { note: note() },
        action::PAID_BY_MERCHANT => EventFacts::PaidByMerchant { note: note() },
        action::RATED => EventFacts::Rated {
            rating: fen("rating").unwrap_or(0),
        },
        _ => EventFacts::Other,
    }
}

/// What happens next for a refund still under way; `expected_by` is its expected arrival.
pub fn next_step(
    status: RefundStatus,
    required: Option<RequiredReviewer>,
    destination: &Destination,
    expected_by: Option<DateTime<Utc>>,
) -> Option<NextStep> {
    use RefundStatus::*;
    let step = match status {
        AwaitingReturn => Step::RecordReturn,
        PendingReview => Step::Review {
            reviewer: required.unwrap_or(RequiredReviewer::Merchant),
        },
        Queued => Step::Send {
            channel: destination.channel,
        },
        Processing => {
            return Some(NextStep {
                step: Step::Confirm {
                    channel: destination.channel,
                },
                by: expected_by,
            });
        }
        Abnormal => Step::Reroute,
        Succeeded | Failed | Rejected | Canceled => return None,
    };
    Some(NextStep { step, by: None })
}
