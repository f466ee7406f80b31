//! Who may see what of a refund, in one place.
//!
//! - The **acquirer** (admin keys, reviewers, the console) sees every refund whole.
//! - A **merchant** (its keys and staff) sees its own refunds whole: actors, notes,
//!   requesters' names, review reasons, tracking numbers. Which refunds are its own is the
//!   store's scope ([`crate::auth::Principal::merchant_scope`]).
//! - A **consumer** (the public lookup, no key) sees one refund as [`ConsumerRefund`]: status,
//!   amount, the merchant's name, where the money goes, the expected arrival, the timeline
//!   without who did it and without what staff typed (notes, names, review reasons,
//!   tracking numbers), and the next step. Other internal ids in what remains are replaced
//!   by `…`.
//!
//! The edge renders each view in the reader's language; it decides nothing about visibility.

use chrono::{DateTime, Utc};
use serde::Serialize;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;

use crate::public::scrub_internal_ids;
use crate::timeline::{EventFacts, MoneyAt, NextStep, Route, TimelineEvent};
use crate::views::Refund;

/// Who is reading a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Consumer,
    Merchant,
    Acquirer,
}

impl Party {
    /// Whether this reader sees what staff did and typed (actors, notes, names, reasons).
    pub fn is_staff(self) -> bool {
        !matches!(self, Party::Consumer)
    }
}

/// Where the money goes, as much as the consumer may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerDestination {
    /// Masked card or wallet account, e.g. `**** 0403`.
    pub account: Option<String>,
    pub bank: Option<String>,
    pub route: Route,
}

/// One event of the consumer's timeline: what happened and where the money is, without
/// who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    pub status: Option<RefundStatus>,
    pub facts: EventFacts,
    pub money_at: Option<MoneyAt>,
}

/// What a consumer sees of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerRefund {
    pub id: String,
    pub status: RefundStatus,
    /// Fen: the amount asked for.
    pub amount: i64,
    /// Fen: what the consumer gets, `amount` less the deductions (issue 15 item 2).
    pub consumer_amount: i64,
    /// Deductions agreed with the consumer and kept by the merchant, each with its reason.
    pub deductions: Vec<yuanlu_domain::deduction::Deduction>,
    pub currency: &'static str,
    pub merchant_name: String,
    pub channel: Channel,
    pub destination: ConsumerDestination,
    pub created_at: DateTime<Utc>,
    pub expected_arrival_by: Option<DateTime<Utc>>,
    pub timeline: Vec<ConsumerEvent>,
    pub next_step: Option<NextStep>,
}

/// The facts of an event as `party` may see them; `keep` is the refund's own id (the one
/// internal id a consumer may read).
pub fn facts_for(party: Party, facts: &EventFacts, keep: &str) -> EventFacts {
    if party.is_staff() {
        return facts.clone();
    }
    let scrub = |text: &Option<String>| text.as_deref().map(|t| scrub_internal_ids(t, keep));
    use EventFacts::*;
    match facts {
        Created { amount, .. } => Created {
            amount: *amount,
            requested_by_name: None,
            requested_by_role: None,
            review_reasons: Vec::new(),
        },
        Approved { .. } => Approved { note: None },
        Rejected { .. } => Rejected { note: None },
        Canceled { .. } => Canceled { note: None },
        GoodsReturned { .. } => GoodsReturned { tracking_no: None },
        Abnormal { .. } => Abnormal { note: None },
        OutcomeUnknown { .. } => OutcomeUnknown { note: None },
        Failed { .. } => Failed { note: None },
        Rerouted { .. } => Rerouted { note: None },
        // The note says how and by whom; consumers read only that the merchant paid.
        PaidByMerchant { .. } => PaidByMerchant { note: None },
        Sent {
            channel,
            rerouted_to,
        } => Sent {
            channel: *channel,
            rerouted_to: scrub(rerouted_to),
        },
        Succeeded { received_account } => Succeeded {
            received_account: scrub(received_account),
        },
        VoidCompleted | BecameRefund { .. } | Accepted | Rated { .. } | Other => facts.clone(),
    }
}

/// One timeline event as `party` may see it.
pub fn event_for(party: Party, event: &TimelineEvent, keep: &str) -> TimelineEvent {
    TimelineEvent {
        facts: facts_for(party, &event.facts, keep),
        actor: if party.is_staff() {
            event.actor.clone()
        } else {
            String::new()
        },
        ..event.clone()
    }
}

/// The consumer's view of a full refund view: only the allowed fields are copied.
pub fn consumer_view(refund: &Refund, merchant_name: &str) -> ConsumerRefund {
    let keep = refund.id.as_str();
    let scrub = |text: &Option<String>| text.as_deref().map(|t| scrub_internal_ids(t, keep));
    ConsumerRefund {
        id: refund.id.clone(),
        status: refund.status,
        amount: refund.amount,
        consumer_amount: refund.consumer_amount,
        deductions: refund.deductions.clone(),
        currency: refund.currency,
        merchant_name: merchant_name.to_string(),
        channel: refund.channel,
        destination: ConsumerDestination {
            account: scrub(&refund.destination.account),
            bank: refund.destination.bank.clone(),
            route: refund.destination.route,
        },
        created_at: refund.created_at,
        expected_arrival_by: refund.expected_arrival_by,
        timeline: refund
            .timeline
            .iter()
            // Evidence is the merchant's and the acquirer's: the consumer does not read that
            // the refund waited for it.
            .filter(|event| event.event != crate::timeline::action::EVIDENCE_COMPLETE)
            .map(|event| ConsumerEvent {
                at: event.at,
                event: event.event.clone(),
                status: event.status,
                facts: facts_for(Party::Consumer, &event.facts, keep),
                money_at: event.money_at,
            })
            .collect(),
        next_step: refund.next_step,
    }
}
