//! `/status/request`: the consumer asks for a refund with the payment slip's reference
//! number and the last four digits of the card (or phone) that paid, through the same use
//! case and limits as `POST /v1/public/refund-requests`; the answer is the status page of
//! the new request, which waits for the merchant's review.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use yuanlu_domain::refund::RefundReason;
use yuanlu_engine::ops::consumer::ConsumerRefundRequest;
use yuanlu_engine::refunds::AskedAmount;

use super::status::StatusPage;
use super::tickets::{Ticket, Tickets};
use crate::AppState;
use crate::api::public::{ClientKey, rate_limit};
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, parse_yuan, text};
use crate::present::views::ConsumerRefund as ShownRefund;
use crate::problem::Problem;

#[derive(Template)]
#[template(path = "consumer/request.html")]
pub struct RequestPage {
    pub ctx: Ctx,
    pub reasons: Vec<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct RequestForm {
    csrf: Option<String>,
    reference: Option<String>,
    last4: Option<String>,
    amount: Option<String>,
    reason: Option<String>,
    description: Option<String>,
    contact: Option<String>,
}

pub async fn form_page(ctx: Ctx) -> Response {
    let lang = ctx.lang;
    let reasons = RefundReason::ALL.iter().map(|r| r.id()).collect();
    render(lang, &RequestPage { ctx, reasons })
}

pub async fn ask(
    State(state): State<AppState>,
    Extension(tickets): Extension<Arc<Tickets>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<RequestForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    rate_limit(&state, &client).map_err(|p| PageError::problem(ctx.lang, p))?;
    let reference = text(&ctx, form.reference.as_deref(), "status-reference")?
        .ok_or_else(|| PageError::invalid(ctx.lang, "status-reference"))?;
    let last4 = text(&ctx, form.last4.as_deref(), "request-last4")?
        .ok_or_else(|| PageError::invalid(ctx.lang, "request-last4"))?;
    let amount = match text(&ctx, form.amount.as_deref(), "field-amount")? {
        None => None,
        Some(typed) => {
            Some(AskedAmount::from(parse_yuan(&typed).ok_or_else(|| {
                PageError::invalid(ctx.lang, "field-amount")
            })?))
        }
    };
    let reason = form
        .reason
        .as_deref()
        .and_then(RefundReason::parse)
        .ok_or_else(|| PageError::invalid(ctx.lang, "request-reason"))?;
    let outcome = state
        .engine
        .public_request_refund(ConsumerRefundRequest {
            reference,
            last4,
            amount,
            reason,
            description: text(&ctx, form.description.as_deref(), "request-description")?,
            contact: text(&ctx, form.contact.as_deref(), "status-case-contact")?,
        })
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let answer = outcome.answer;
    let ticket = tickets.issue(
        &state.engine,
        Ticket {
            refund_id: answer.refund_id.clone(),
            reference: answer.reference.clone(),
        },
    );
    let notice = Some(ctx.t1("request-sent", "refund", &answer.refund_id));
    let lang = ctx.lang;
    Ok(render(
        lang,
        &StatusPage {
            ctx,
            number: answer.refund_id,
            refund: Some(ShownRefund::of(lang, answer.refund)),
            ticket,
            late: false,
            ended: false,
            answerable: false,
            notice,
        },
    ))
}
