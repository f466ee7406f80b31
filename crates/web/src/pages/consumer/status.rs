//! The status form, its answer, the rating and the "not arrived" case.

use std::sync::Arc;

use crate::present::views::ConsumerRefund as ShownRefund;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::cases::CaseKind;
use yuanlu_engine::public::{ConsumerRefund, GiveFeedback, OpenPublicCase, RefundFacts};

use super::tickets::{Ticket, Tickets};
use crate::AppState;
use crate::api::public::{ClientKey, rate_limit};
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, text};
use crate::problem::Problem;

#[derive(Template)]
#[template(path = "consumer/status.html")]
pub struct StatusPage {
    pub ctx: Ctx,
    pub number: String,
    /// The refund as the consumer may see it, in the reader's language.
    pub refund: Option<ShownRefund>,
    pub ticket: String,
    pub late: bool,
    pub ended: bool,
    /// The channel paid and the consumer has not confirmed the money arrived: they may say
    /// whether it did (issue 15 item 3).
    pub answerable: bool,
    pub notice: Option<String>,
}

impl StatusPage {
    pub fn form(ctx: Ctx) -> Self {
        StatusPage {
            ctx,
            number: String::new(),
            refund: None,
            ticket: String::new(),
            late: false,
            ended: false,
            answerable: false,
            notice: None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LookupForm {
    csrf: Option<String>,
    number: Option<String>,
    last4: Option<String>,
    /// Whose last four digits `last4` are: `phone` (the default) or `card`.
    kind: Option<String>,
    reference: Option<String>,
}

pub async fn form_page(ctx: Ctx) -> Response {
    let lang = ctx.lang;
    render(lang, &StatusPage::form(ctx))
}

fn limited(state: &AppState, client: &ClientKey, ctx: &Ctx) -> Result<(), PageError> {
    rate_limit(state, client).map_err(|p| PageError::problem(ctx.lang, p))
}

/// The refund's payment reference as the engine checks it (its `rrn`, or the payment id).
async fn reference_of(state: &AppState, refund_id: &str) -> Option<String> {
    let refund = state
        .engine
        .get_refund(&Principal::Admin, refund_id)
        .await
        .ok()?;
    let payment = state
        .engine
        .get_payment(&Principal::Admin, &refund.payment_id)
        .await
        .ok()?;
    Some(payment.voucher.rrn.unwrap_or(payment.id))
}

pub async fn look_up(
    State(state): State<AppState>,
    Extension(tickets): Extension<Arc<Tickets>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<LookupForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    limited(&state, &client, &ctx)?;
    let number = text(&ctx, form.number.as_deref(), "status-number")?
        .ok_or_else(|| PageError::invalid(ctx.lang, "status-number"))?;
    let last4 = text(&ctx, form.last4.as_deref(), "status-last4")?;
    let reference = text(&ctx, form.reference.as_deref(), "status-reference")?;
    let by_card = match form.kind.as_deref() {
        None | Some("") | Some("phone") => false,
        Some("card") => true,
        Some(_) => return Err(PageError::invalid(ctx.lang, "status-last4-kind")),
    };
    let facts = match (last4, reference) {
        (Some(card_last4), _) if by_card => RefundFacts::ByCard {
            merchant_refund_no: number.clone(),
            card_last4,
        },
        (Some(phone_last4), _) => RefundFacts::ByNumber {
            merchant_refund_no: number.clone(),
            phone_last4,
        },
        (None, Some(reference)) => RefundFacts::ById {
            refund_id: number.clone(),
            reference,
        },
        (None, None) => return Err(PageError::invalid(ctx.lang, "status-last4")),
    };
    let refund = state
        .engine
        .public_refund(&facts)
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let ticket = match reference_of(&state, &refund.id).await {
        Some(reference) => tickets.issue(
            &state.engine,
            Ticket {
                refund_id: refund.id.clone(),
                reference,
            },
        ),
        None => String::new(),
    };
    Ok(result_page(&state, ctx, number, refund, ticket, None))
}

fn result_page(
    state: &AppState,
    ctx: Ctx,
    number: String,
    refund: ConsumerRefund,
    ticket: String,
    notice: Option<String>,
) -> Response {
    let now = state.engine.clock.now();
    let under_way = matches!(
        refund.status,
        RefundStatus::Processing | RefundStatus::Abnormal | RefundStatus::Queued
    );
    let late = under_way && refund.expected_arrival_by.is_some_and(|by| by < now)
        || refund.status == RefundStatus::Abnormal;
    let ended = matches!(
        refund.status,
        RefundStatus::Succeeded
            | RefundStatus::Failed
            | RefundStatus::Rejected
            | RefundStatus::Canceled
    );
    // "Received" is final (a later "not received" is a conflict): once said, no buttons.
    let confirmed = refund
        .timeline
        .iter()
        .any(|e| e.event == yuanlu_engine::arrival::RECEIVED_ACTION);
    let answerable = refund.status == RefundStatus::Succeeded && !confirmed;
    let lang = ctx.lang;
    render(
        lang,
        &StatusPage {
            ctx,
            number,
            refund: Some(ShownRefund::of(lang, refund)),
            ticket,
            late,
            ended,
            answerable,
            notice,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct FeedbackForm {
    csrf: Option<String>,
    ticket: Option<String>,
    rating: Option<String>,
    comment: Option<String>,
}

fn ticket_of(
    state: &AppState,
    ctx: &Ctx,
    tickets: &Tickets,
    id: Option<&str>,
) -> Result<Ticket, PageError> {
    id.and_then(|id| tickets.get(&state.engine, id))
        .ok_or_else(|| PageError::Status {
            status: StatusCode::BAD_REQUEST,
            lang: ctx.lang,
            message: ctx.t("status-ticket-expired"),
            detail: None,
        })
}

async fn reload(state: &AppState, ctx: &Ctx, ticket: &Ticket) -> Result<ConsumerRefund, PageError> {
    let facts = RefundFacts::ById {
        refund_id: ticket.refund_id.clone(),
        reference: ticket.reference.clone(),
    };
    state
        .engine
        .public_refund(&facts)
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))
}

pub async fn feedback(
    State(state): State<AppState>,
    Extension(tickets): Extension<Arc<Tickets>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<FeedbackForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    limited(&state, &client, &ctx)?;
    let ticket = ticket_of(&state, &ctx, &tickets, form.ticket.as_deref())?;
    let rating = form
        .rating
        .as_deref()
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| PageError::invalid(ctx.lang, "status-rating"))?;
    let comment = text(&ctx, form.comment.as_deref(), "status-comment")?;
    state
        .engine
        .public_feedback(
            &ticket.refund_id,
            GiveFeedback {
                rating,
                comment,
                reference: ticket.reference.clone(),
            },
        )
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let refund = reload(&state, &ctx, &ticket).await?;
    let notice = Some(ctx.t("status-thanks"));
    let id = form.ticket.unwrap_or_default();
    Ok(result_page(&state, ctx, String::new(), refund, id, notice))
}

#[derive(Debug, Deserialize)]
pub struct CaseForm {
    csrf: Option<String>,
    ticket: Option<String>,
    description: Option<String>,
    contact: Option<String>,
}

pub async fn open_case(
    State(state): State<AppState>,
    Extension(tickets): Extension<Arc<Tickets>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<CaseForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    limited(&state, &client, &ctx)?;
    let ticket = ticket_of(&state, &ctx, &tickets, form.ticket.as_deref())?;
    let description = text(&ctx, form.description.as_deref(), "status-case-description")?
        .unwrap_or_else(|| ctx.t("status-case-default"));
    let contact = text(&ctx, form.contact.as_deref(), "status-case-contact")?;
    let outcome = state
        .engine
        .public_open_case(OpenPublicCase {
            refund_id: Some(ticket.refund_id.clone()),
            reference: Some(ticket.reference.clone()),
            merchant_refund_no: None,
            phone_last4: None,
            kind: CaseKind::NotArrived,
            description,
            contact,
        })
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let refund = reload(&state, &ctx, &ticket).await?;
    let notice = Some(ctx.t1("status-case-opened", "case", &outcome.case.id));
    let id = form.ticket.unwrap_or_default();
    Ok(result_page(&state, ctx, String::new(), refund, id, notice))
}

#[derive(Debug, Deserialize)]
pub struct ArrivalForm {
    csrf: Option<String>,
    ticket: Option<String>,
    /// `yes` (the money arrived) or `no`.
    received: Option<String>,
}

/// The consumer's answer to "has the money arrived?" (确认收款, issue 15 item 3): the
/// engine's `public_answer_arrival` with the ticket's facts. "No" after the expected date
/// opens a `not_arrived` case at once; before it, the page says until when to wait.
pub async fn answer_arrival(
    State(state): State<AppState>,
    Extension(tickets): Extension<Arc<Tickets>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<ArrivalForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    limited(&state, &client, &ctx)?;
    let ticket = ticket_of(&state, &ctx, &tickets, form.ticket.as_deref())?;
    let received = match form.received.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(PageError::invalid(ctx.lang, "status-arrival-title")),
    };
    let answer = state
        .engine
        .public_answer_arrival(&ticket.refund_id, &ticket.reference, received)
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let notice = if answer.received {
        ctx.t("status-arrival-received")
    } else if let Some(case) = &answer.case {
        ctx.t1("status-arrival-case", "case", &case.id)
    } else if let Some(until) = answer.wait_until {
        ctx.t1("status-arrival-wait", "date", &ctx.when(until))
    } else {
        ctx.t("status-arrival-noted")
    };
    let refund = reload(&state, &ctx, &ticket).await?;
    let id = form.ticket.unwrap_or_default();
    Ok(result_page(
        &state,
        ctx,
        String::new(),
        refund,
        id,
        Some(notice),
    ))
}
