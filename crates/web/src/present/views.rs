//! The views that carry prose, as the API answers them and the pages show them: the
//! engine's data with its sentences rendered in the reader's language. Field names and meanings are the contract of `shared/SPEC.md`; the
//! structured fields beside the sentences (`facts`, `money`, `step`, `route`) were added so a
//! client can render its own words.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::deduction::Deduction;
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType};
use yuanlu_domain::settlement::Statement;
use yuanlu_engine::audience::{self, ConsumerEvent as EngineConsumerEvent, Party};
use yuanlu_engine::public::ConsumerRefund as EngineConsumerRefund;
use yuanlu_engine::settlement::StatementView as EngineStatementView;
use yuanlu_engine::timeline::{EventFacts, MoneyAt, Route, Step, TimelineEvent as EngineEvent};
use yuanlu_engine::views::{self, Page, RequestedBy, Review};
use yuanlu_words::Lang;

use super::{refund as say_refund, statement as say_statement};

/// Where the money goes back to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Destination {
    pub channel: Channel,
    pub account: Option<String>,
    pub bank: Option<String>,
    /// In words, e.g. "the credit card **** 1234 it was paid with".
    pub description: String,
    /// Which way: back along the payment's route, to the account the channel reported, or
    /// paid by the merchant directly.
    pub route: Route,
}

/// One event of a refund's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    /// The event's stable name, e.g. `refund.approved`.
    pub event: String,
    /// The refund's status after the event.
    pub status: Option<RefundStatus>,
    /// Who did it (an operator, a merchant key, or `system`).
    pub actor: String,
    /// What happened, in words (the reader's language).
    pub description: String,
    /// Where the money is after the event, in words.
    pub money_at: String,
    /// What happened, as data (`kind` and its amounts in fen, dates, notes, accounts).
    pub facts: EventFacts,
    /// Where the money is after the event, as data.
    pub money: Option<MoneyAt>,
}

/// What happens next.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextStep {
    pub description: String,
    /// By when it is expected, where that is known.
    pub by: Option<DateTime<Utc>>,
    /// The step as data.
    pub step: Step,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refund {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub merchant_refund_no: String,
    pub channel: Channel,
    #[serde(rename = "type")]
    pub refund_type: RefundType,
    pub status: RefundStatus,
    /// Fen.
    pub amount: i64,
    pub currency: &'static str,
    /// Fee returned to the merchant by this refund, in fen.
    pub fee_refunded: i64,
    /// What the consumer gets, in fen: `amount` less the deductions; the channel is sent
    /// this much.
    pub consumer_amount: i64,
    /// Deductions agreed with the consumer and kept by the merchant (issue 15 item 2).
    pub deductions: Vec<Deduction>,
    pub reason: RefundReason,
    pub note: Option<String>,
    pub requested_by: RequestedBy,
    pub review: Option<Review>,
    pub destination: Destination,
    pub tracking_no: Option<String>,
    pub failure_reason: Option<String>,
    /// When the money is expected at its destination; set once a channel accepts it.
    pub expected_arrival_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<TimelineEvent>,
    /// For a refund still under way: what happens next.
    pub next_step: Option<NextStep>,
    /// 证明材料: the evidence the merchant's settings required when the refund was asked
    /// for, what it carries, and what is missing (while missing, it waits in
    /// `pending_review` and cannot be approved).
    pub evidence: yuanlu_engine::evidence::RefundEvidence,
}

fn event(lang: Lang, e: &EngineEvent, destination: &str) -> TimelineEvent {
    TimelineEvent {
        at: e.at,
        event: e.event.clone(),
        status: e.status,
        actor: e.actor.clone(),
        description: say_refund::event(lang, &e.facts, &e.event, e.status),
        money_at: say_refund::money_at(lang, e.money_at, destination),
        facts: e.facts.clone(),
        money: e.money_at,
    }
}

fn next_step(
    lang: Lang,
    next: Option<&yuanlu_engine::timeline::NextStep>,
    destination: &str,
) -> Option<NextStep> {
    next.map(|n| NextStep {
        description: say_refund::next_step(lang, n, destination),
        by: n.by,
        step: n.step,
    })
}

impl Refund {
    /// A refund as staff read it (the merchant's own, or any for the acquirer).
    pub fn of(lang: Lang, r: views::Refund) -> Refund {
        let place = say_refund::destination(lang, &r.destination);
        let keep = r.id.clone();
        Refund {
            timeline: r
                .timeline
                .iter()
                .map(|e| {
                    event(
                        lang,
                        &audience::event_for(Party::Merchant, e, &keep),
                        &place,
                    )
                })
                .collect(),
            next_step: next_step(lang, r.next_step.as_ref(), &place),
            destination: Destination {
                channel: r.destination.channel,
                account: r.destination.account,
                bank: r.destination.bank,
                description: place,
                route: r.destination.route,
            },
            id: r.id,
            merchant_id: r.merchant_id,
            payment_id: r.payment_id,
            merchant_refund_no: r.merchant_refund_no,
            channel: r.channel,
            refund_type: r.refund_type,
            status: r.status,
            amount: r.amount,
            currency: r.currency,
            fee_refunded: r.fee_refunded,
            consumer_amount: r.consumer_amount,
            deductions: r.deductions,
            reason: r.reason,
            note: r.note,
            requested_by: r.requested_by,
            review: r.review,
            tracking_no: r.tracking_no,
            failure_reason: r.failure_reason,
            expected_arrival_by: r.expected_arrival_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            evidence: r.evidence,
        }
    }

    pub fn page(lang: Lang, page: Page<views::Refund>) -> Page<Refund> {
        Page {
            data: page.data.into_iter().map(|r| Refund::of(lang, r)).collect(),
            has_more: page.has_more,
        }
    }
}

/// Where the money goes, as much as the consumer may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsumerDestination {
    /// Masked card or wallet account, e.g. `**** 0403`.
    pub account: Option<String>,
    pub bank: Option<String>,
    pub description: String,
    pub route: Route,
}

/// One event of the consumer's timeline: what happened and where the money is, without
/// who did it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsumerEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    pub status: Option<RefundStatus>,
    pub description: String,
    pub money_at: String,
    /// What happened, as data (without what staff typed).
    pub facts: EventFacts,
    /// Where the money is, as data.
    pub money: Option<MoneyAt>,
}

/// What a consumer sees of a refund.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsumerRefund {
    pub id: String,
    pub status: RefundStatus,
    /// Fen: the amount asked for.
    pub amount: i64,
    /// Fen: what the consumer gets, `amount` less the deductions (issue 15 item 2).
    pub consumer_amount: i64,
    /// Deductions agreed with the consumer and kept by the merchant, each with its reason.
    pub deductions: Vec<Deduction>,
    /// With deductions: what the consumer gets and why, in one sentence of the reader's
    /// language, e.g. "You get 95.00 (100.00 requested, less 5.00 handling fee: opened box)."
    pub amount_said: Option<String>,
    pub currency: &'static str,
    pub merchant_name: String,
    pub channel: Channel,
    pub destination: ConsumerDestination,
    pub created_at: DateTime<Utc>,
    pub expected_arrival_by: Option<DateTime<Utc>>,
    pub timeline: Vec<ConsumerEvent>,
    pub next_step: Option<NextStep>,
}

fn consumer_event(lang: Lang, e: &EngineConsumerEvent, destination: &str) -> ConsumerEvent {
    ConsumerEvent {
        at: e.at,
        event: e.event.clone(),
        status: e.status,
        description: say_refund::event(lang, &e.facts, &e.event, e.status),
        money_at: say_refund::money_at(lang, e.money_at, destination),
        facts: e.facts.clone(),
        money: e.money_at,
    }
}

impl ConsumerRefund {
    pub fn of(lang: Lang, r: EngineConsumerRefund) -> ConsumerRefund {
        let d = &r.destination;
        let place = say_refund::destination_parts(
            lang,
            r.channel,
            d.account.as_deref(),
            d.bank.as_deref(),
            d.route,
        );
        ConsumerRefund {
            timeline: r
                .timeline
                .iter()
                .map(|e| consumer_event(lang, e, &place))
                .collect(),
            next_step: next_step(lang, r.next_step.as_ref(), &place),
            destination: ConsumerDestination {
                account: r.destination.account,
                bank: r.destination.bank,
                description: place,
                route: r.destination.route,
            },
            amount_said: say_refund::amount_said(
                lang,
                r.status,
                r.amount,
                r.consumer_amount,
                &r.deductions,
            ),
            id: r.id,
            status: r.status,
            amount: r.amount,
            consumer_amount: r.consumer_amount,
            deductions: r.deductions,
            currency: r.currency,
            merchant_name: r.merchant_name,
            channel: r.channel,
            created_at: r.created_at,
            expected_arrival_by: r.expected_arrival_by,
        }
    }
}

/// A merchant's statement for a business date, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementView {
    pub id: String,
    pub merchant_id: String,
    pub business_date: String,
    pub payout_date: String,
    /// What is credited to the merchant's bank account, in fen (入户金额).
    pub payout: i64,
    /// Debt carried to later payouts, in fen (≤ 0).
    pub closing_carried: i64,
    /// Why the payout is what it is, in words (the reader's language).
    pub explanation: Vec<String>,
    /// The statement; each line's `explanation` is in the reader's language.
    pub statement: Statement,
}

impl StatementView {
    pub fn of(lang: Lang, v: EngineStatementView) -> StatementView {
        let mut statement = v.statement;
        for line in &mut statement.lines {
            line.explanation = say_statement::line(lang, line);
        }
        StatementView {
            explanation: say_statement::summary(lang, &statement),
            statement,
            id: v.id,
            merchant_id: v.merchant_id,
            business_date: v.business_date,
            payout_date: v.payout_date,
            payout: v.payout,
            closing_carried: v.closing_carried,
        }
    }

    pub fn all(lang: Lang, views: Vec<EngineStatementView>) -> Vec<StatementView> {
        views
            .into_iter()
            .map(|v| StatementView::of(lang, v))
            .collect()
    }
}
