//! A refund's timeline: every audit entry about it, told as what happened, who did it and
//! where the money is now; and for a refund under way, what happens next.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::money::format_cny;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::review::RequiredReviewer;
use yuanlu_domain::time::from_micros;
use yuanlu_store::AuditRow;

/// Where the money goes back to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Destination {
    pub channel: Channel,
    pub account: Option<String>,
    pub bank: Option<String>,
    /// In words, e.g. "the credit card **** 1234 it was paid with".
    pub description: String,
}

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
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    /// The event's stable name, e.g. `refund.approved`.
    pub event: String,
    /// The refund's status after the event.
    pub status: Option<RefundStatus>,
    /// Who did it (an operator, a merchant key, or `system`).
    pub actor: String,
    /// What happened, in words.
    pub description: String,
    /// Where the money is after the event.
    pub money_at: String,
    /// What happened as the consumer may read it: without reviewers' notes, review
    /// reasons, names or numbers typed by staff (see [`crate::public::consumer_view`]).
    #[serde(skip)]
    pub public_description: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextStep {
    pub description: String,
    /// By when it is expected, where that is known.
    pub by: Option<DateTime<Utc>>,
}

/// An instant as people in China read it: `2026-11-25 23:59 (Asia/Shanghai)`.
pub fn shanghai_text(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&yuanlu_domain::time::shanghai())
        .format("%Y-%m-%d %H:%M (Asia/Shanghai)")
        .to_string()
}

/// Where the money is while a refund is in `status`.
pub fn money_at(
    status: RefundStatus,
    refund_type: RefundType,
    destination: &Destination,
) -> String {
    use RefundStatus::*;
    match status {
        AwaitingReturn | PendingReview | Queued => {
            "still with the merchant's account at the acquirer; held for this refund".to_string()
        }
        Processing => format!("sent to {}; not yet confirmed", destination.channel.display_name()),
        Succeeded if refund_type == RefundType::Void => {
            "the payment was reversed before settlement; nothing was taken from the payer".to_string()
        }
        Succeeded if destination.description == crate::transition::PAID_BY_MERCHANT => {
            "paid to the consumer by the merchant directly; the amount held for it went back to the merchant's balance".to_string()
        }
        Succeeded => format!("credited to {}", destination.description),
        Abnormal => "returned by the channel (the original route is closed); held by the acquirer until rerouted".to_string(),
        Failed | Rejected | Canceled => "stays with the merchant; nothing was refunded".to_string(),
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
                description: describe(&entry.action, &data, status, Audience::Staff),
                public_description: describe(&entry.action, &data, status, Audience::Consumer),
                money_at: if entry.action == action::OUTCOME_UNKNOWN {
                    "held by the acquirer; the channel may still pay it, so it stays held until an operator decides".to_string()
                } else {
                    status
                        .map(|s| money_at(s, refund_type, destination))
                        .unwrap_or_default()
                },
            }
        })
        .collect()
}

fn text<'a>(data: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// Who reads a description: staff see the notes and review reasons, consumers do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Staff,
    Consumer,
}

fn describe(
    action: &str,
    data: &serde_json::Value,
    status: Option<RefundStatus>,
    audience: Audience,
) -> String {
    let staff = audience == Audience::Staff;
    // Free texts typed by staff: shown to staff only.
    let staff_text = |key: &str| if staff { text(data, key) } else { None };
    let note = staff_text("note")
        .map(|n| format!(": {n}"))
        .unwrap_or_default();
    match action {
        action::CREATED => {
            let who = match (
                staff_text("requested_by_name"),
                staff_text("requested_by_role"),
            ) {
                (Some(name), Some(role)) => format!("{name} ({role})"),
                (None, Some(role)) => format!("the {role}"),
                (Some(name), None) => name.to_string(),
                (None, None) => "the merchant".to_string(),
            };
            let amount = data
                .get("amount")
                .and_then(|a| a.as_i64())
                .map(format_cny)
                .unwrap_or_default();
            let then = match status {
                Some(RefundStatus::Queued) => {
                    " · approved automatically (no review needed)".to_string()
                }
                Some(RefundStatus::PendingReview) => match staff_text("review_reasons") {
                    Some(reasons) => format!(" · waits for review ({reasons})"),
                    None => " · waits for review".to_string(),
                },
                Some(RefundStatus::AwaitingReturn) => {
                    " · waits for the goods to come back".to_string()
                }
                _ => String::new(),
            };
            format!("refund of {amount} CNY asked for by {who}{then}")
        }
        action::APPROVED => format!("approved{note}"),
        action::REJECTED => format!("rejected{note}"),
        action::CANCELED => format!("canceled before it was sent{note}"),
        action::GOODS_RETURNED => match staff_text("tracking_no") {
            Some(tracking) => {
                format!("the merchant recorded the returned goods (tracking number {tracking})")
            }
            None if staff => {
                "the merchant recorded the returned goods (tracking number ?)".to_string()
            }
            None => "the merchant recorded the returned goods".to_string(),
        },
        action::VOID_COMPLETED => {
            "voided (撤销) at the acquirer: the payment and its whole fee were reversed".to_string()
        }
        action::BECAME_REFUND => {
            let date = text(data, "business_date").unwrap_or("?");
            let why = if data.get("settled").and_then(|s| s.as_bool()) == Some(true) {
                format!("business date {date} was settled")
            } else {
                format!("business date {date} is over")
            };
            let fee = data
                .get("fee_refunded")
                .and_then(|f| f.as_i64())
                .map(format_cny)
                .unwrap_or_default();
            format!(
                "void window passed ({why}); becomes a refund (退货) sent to the channel, returning {fee} CNY of the fee"
            )
        }
        action::SENT if text(data, "rerouted_to").is_some() => {
            let to = text(data, "rerouted_to").unwrap_or_default();
            format!("sent again, to {to} (rerouted by the acquirer)")
        }
        action::SENT => {
            let channel = text(data, "channel").and_then(yuanlu_domain::channel::Channel::parse);
            let name = channel.map_or("the channel", |c| c.display_name());
            format!("sent to {name} along the original route")
        }
        action::ACCEPTED => "accepted by the channel; waiting for its confirmation".to_string(),
        action::SUCCEEDED => {
            let to = text(data, "received_account")
                .map(|a| format!(" to {a}"))
                .unwrap_or_default();
            format!("refunded by the channel{to}")
        }
        action::ABNORMAL => format!("the channel could not refund along the original route{note}"),
        action::OUTCOME_UNKNOWN => format!(
            "no definitive answer from the channel; held for an operator, who decides after a final query{note}"
        ),
        action::FAILED => format!("failed{note}"),
        action::REROUTED => format!("rerouted by the acquirer{note}"),
        // The note says how and by whom; consumers read only that the merchant paid.
        action::PAID_BY_MERCHANT if staff => format!(
            "refunded: {}",
            text(data, "note").unwrap_or(crate::transition::PAID_BY_MERCHANT)
        ),
        action::PAID_BY_MERCHANT => "refunded: paid by the merchant directly".to_string(),
        "refund.feedback" => {
            let rating = data.get("rating").and_then(|r| r.as_i64()).unwrap_or(0);
            format!("the consumer rated it {rating}/5")
        }
        other => other.to_string(),
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
    let description = match status {
        AwaitingReturn => "the merchant records the returned goods with their tracking number".to_string(),
        PendingReview => match required {
            Some(RequiredReviewer::Acquirer) => "a reviewer at the acquirer approves or rejects it".to_string(),
            _ => "a merchant supervisor (or the acquirer) approves or rejects it".to_string(),
        },
        Queued => format!("it is sent to {} along the original route", destination.channel.display_name()),
        Processing => {
            let by = expected_by.map(|t| format!(", and the money reaches {} by {}", destination.description, shanghai_text(t))).unwrap_or_default();
            return Some(NextStep { description: format!("{} confirms it{by}", destination.channel.display_name()), by: expected_by });
        }
        Abnormal => "an operator reroutes it to a bank account given by the consumer, or back to the merchant".to_string(),
        Succeeded | Failed | Rejected | Canceled => return None,
    };
    Some(NextStep {
        description,
        by: None,
    })
}
