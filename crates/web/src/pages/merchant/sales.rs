//! Finding the original sale, and refunding it: the amount and reason, a confirmation that
//! shows the refundable amount and whether it will be a void (撤销) or a refund (退货), then
//! the same `create_refund` as `POST /v1/refunds`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use chrono::NaiveDate;
use serde::Deserialize;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundReason, RequesterRole};
use yuanlu_domain::time::shanghai_date;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::payment_search::PaymentFilters;
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund, RequestedByInput};
use yuanlu_engine::views::Payment;

use super::checked_id;
use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, PageQuery, parse_yuan, text};

/// Sales shown for one search.
const SALES_SHOWN_MAX: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct SaleFilter {
    pub date: Option<String>,
    pub amount: Option<String>,
    pub last4: Option<String>,
    pub rrn: Option<String>,
    pub trace: Option<String>,
    pub terminal: Option<String>,
    pub order: Option<String>,
}

#[derive(Template)]
#[template(path = "merchant/sales.html")]
pub struct SalesPage {
    pub ctx: Ctx,
    pub filter: SaleFilter,
    pub payments: Vec<Payment>,
    pub searched: bool,
}

fn field(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `/merchant`: the sale finder, over the same indexed search as `GET /v1/payments`.
pub async fn find_sale(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(filter): PageQuery<SaleFilter>,
) -> PageResult {
    let who = ctx.merchant()?;
    let date = field(&filter.date)
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| PageError::invalid(ctx.lang, "sale-date"))?;
    let amount = field(&filter.amount)
        .map(|a| parse_yuan(a).ok_or_else(|| PageError::invalid(ctx.lang, "field-amount")))
        .transpose()?;
    for value in [
        &filter.last4,
        &filter.rrn,
        &filter.trace,
        &filter.terminal,
        &filter.order,
    ] {
        text(&ctx, value.as_deref(), "field-form")?;
    }
    let filters = PaymentFilters {
        business_date: date,
        amount,
        last4: field(&filter.last4).map(str::to_string),
        rrn: field(&filter.rrn).map(str::to_string),
        trace_no: field(&filter.trace).map(str::to_string),
        terminal_id: field(&filter.terminal).map(str::to_string),
        order_no: field(&filter.order).map(str::to_string),
        limit: SALES_SHOWN_MAX,
        ..PaymentFilters::default()
    };
    let payments = state
        .engine
        .search_payments(&who, &filters)
        .await
        .map_err(|e| ctx.fail(e))?
        .data;
    let searched = [
        &filter.date,
        &filter.amount,
        &filter.last4,
        &filter.rrn,
        &filter.trace,
        &filter.terminal,
        &filter.order,
    ]
    .iter()
    .any(|v| field(v).is_some());
    let lang = ctx.lang;
    Ok(render(
        lang,
        &SalesPage {
            ctx,
            filter,
            payments,
            searched,
        },
    ))
}

#[derive(Template)]
#[template(path = "merchant/payment.html")]
pub struct PaymentPage {
    pub ctx: Ctx,
    pub payment: Payment,
    pub reasons: Vec<&'static str>,
}

pub const REASONS: [&str; 7] = [
    "customer_cancel",
    "quality_issue",
    "not_shipped",
    "payment_failure",
    "duplicate_charge",
    "system_error",
    "other",
];

async fn payment_of(
    state: &AppState,
    ctx: &Ctx,
    who: &Principal,
    id: &str,
) -> Result<Payment, PageError> {
    let id = checked_id(ctx, id)?;
    state
        .engine
        .get_payment(who, &id)
        .await
        .map_err(|e| ctx.fail(e))
}

pub async fn payment_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> PageResult {
    let who = ctx.merchant()?;
    let payment = payment_of(&state, &ctx, &who, &id).await?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &PaymentPage {
            ctx,
            payment,
            reasons: REASONS.to_vec(),
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    csrf: Option<String>,
    amount: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    consumer: Option<String>,
    refund_no: Option<String>,
}

/// The checked form: what the confirmation shows and the create sends.
pub struct Ask {
    pub amount: i64,
    pub reason: RefundReason,
    pub note: Option<String>,
    pub consumer: bool,
    pub refund_no: String,
}

impl Ask {
    /// The amount as the form carries it, `12.30`.
    pub fn amount_text(&self) -> String {
        format!("{}.{:02}", self.amount / 100, self.amount % 100)
    }
}

fn checked_ask(ctx: &Ctx, payment: &Payment, form: &RefundForm) -> Result<Ask, PageError> {
    let amount = match field(&form.amount) {
        None => payment.refundable,
        Some(a) => parse_yuan(a)
            .filter(|fen| *fen > 0)
            .ok_or_else(|| PageError::invalid(ctx.lang, "field-amount"))?,
    };
    let reason = form
        .reason
        .as_deref()
        .and_then(RefundReason::parse)
        .ok_or_else(|| PageError::invalid(ctx.lang, "field-reason"))?;
    let note = text(ctx, form.note.as_deref(), "field-note")?;
    let refund_no = match text(ctx, form.refund_no.as_deref(), "field-refund-no")? {
        Some(no) => no,
        None => format!(
            "W{}",
            yuanlu_engine::ids::new_id("r")
                .trim_start_matches("r_")
                .to_uppercase()
        ),
    };
    Ok(Ask {
        amount,
        reason,
        note,
        consumer: form.consumer.as_deref() == Some("on"),
        refund_no,
    })
}

/// What the refund will be: a void when a card or UnionPay QR sale is refunded in full on
/// its own day (before that day's settlement), a refund otherwise — the engine decides.
pub fn expected_type(payment: &Payment, amount: i64, today: NaiveDate) -> &'static str {
    let card_like = matches!(
        payment.channel,
        Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr
    );
    if card_like
        && amount == payment.amount
        && payment.amount_refunded == 0
        && payment.amount_in_flight == 0
        && shanghai_date(payment.captured_at) == today
    {
        "void"
    } else {
        "refund"
    }
}

#[derive(Template)]
#[template(path = "merchant/confirm.html")]
pub struct ConfirmPage {
    pub ctx: Ctx,
    pub payment: Payment,
    pub ask: Ask,
    pub refund_type: &'static str,
}

pub async fn preview(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<RefundForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    let who = ctx.merchant()?;
    let payment = payment_of(&state, &ctx, &who, &id).await?;
    let ask = checked_ask(&ctx, &payment, &form)?;
    let refund_type = expected_type(
        &payment,
        ask.amount,
        shanghai_date(state.engine.clock.now()),
    );
    let lang = ctx.lang;
    Ok(render(
        lang,
        &ConfirmPage {
            ctx,
            payment,
            ask,
            refund_type,
        },
    ))
}

pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<RefundForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    let who = ctx.merchant()?;
    let payment = payment_of(&state, &ctx, &who, &id).await?;
    let ask = checked_ask(&ctx, &payment, &form)?;
    let (role_word, username) = ctx
        .user
        .as_ref()
        .map(|u| (u.role.id(), u.username.clone()))
        .unwrap_or_default();
    let input = CreateRefund {
        payment_id: payment.id.clone(),
        amount: Some(ask.amount.into()),
        reason: ask.reason,
        merchant_refund_no: ask.refund_no,
        note: ask.note,
        requested_by: Some(RequestedByInput {
            role: Some(if ask.consumer {
                RequesterRole::Consumer
            } else {
                RequesterRole::Merchant
            }),
            name: Some(format!("{role_word} {username}")),
        }),
        deductions: Vec::new(),
    };
    let refund = match state
        .engine
        .create_refund(&who, input)
        .await
        .map_err(|e| ctx.fail(e))?
    {
        CreateOutcome::Created(r) | CreateOutcome::Existing(r) => r,
    };
    Ok(Redirect::to(&format!("/merchant/refunds/{}", refund.id)).into_response())
}

/// Used by the template: today's refundable amount and the sale's words.
impl PaymentPage {
    pub fn void_today(&self) -> bool {
        matches!(
            self.payment.channel,
            Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr
        )
    }
}
