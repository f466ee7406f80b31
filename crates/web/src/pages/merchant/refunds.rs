//! The refund list with filters, the review queue, one refund's page (timeline, where the
//! money is, next step, by when), and its actions: approve, reject, cancel. The console
//! uses the same handlers under `/console/…` with the acquirer's principal.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use chrono::{NaiveDate, TimeZone};
use serde::Deserialize;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::refunds::{RefundQuery, ReviewNote};
use yuanlu_engine::views::Refund;

use super::checked_id;
use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, PageQuery, text};
use crate::present::views::Refund as ShownRefund;

#[derive(Debug, Default, Deserialize)]
pub struct ListFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub overdue: Option<String>,
}

#[derive(Template)]
#[template(path = "merchant/refunds.html")]
pub struct ListPage {
    pub ctx: Ctx,
    pub title: String,
    /// `/merchant` or `/console`.
    pub base: &'static str,
    pub action: String,
    pub filter: ListFilter,
    pub refunds: Vec<Refund>,
    pub show_filters: bool,
    pub statuses: Vec<&'static str>,
    pub channels: Vec<&'static str>,
}

fn day_start(
    ctx: &Ctx,
    value: Option<&str>,
    label: &str,
    plus_days: i64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, PageError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| PageError::invalid(ctx.lang, label))?;
    let day = day + chrono::Duration::days(plus_days);
    let at = day
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| PageError::invalid(ctx.lang, label))?;
    Ok(yuanlu_domain::time::shanghai()
        .from_local_datetime(&at)
        .single()
        .map(|d| d.with_timezone(&chrono::Utc)))
}

/// The refunds the filters name, through the same `list_refunds` as `GET /v1/refunds`.
pub async fn query(
    state: &AppState,
    ctx: &Ctx,
    who: &Principal,
    filter: &ListFilter,
) -> Result<Vec<Refund>, PageError> {
    let pick = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let status = pick(&filter.status)
        .map(|s| {
            RefundStatus::parse(&s).ok_or_else(|| PageError::invalid(ctx.lang, "field-status"))
        })
        .transpose()?;
    let channel = pick(&filter.channel);
    if channel
        .as_deref()
        .is_some_and(|c| Channel::parse(c).is_none())
    {
        return Err(PageError::invalid(ctx.lang, "field-channel"));
    }
    let q = RefundQuery {
        status,
        payment_id: None,
        channel,
        created_from: day_start(ctx, filter.from.as_deref(), "field-from", 0)?,
        created_to: day_start(ctx, filter.to.as_deref(), "field-to", 1)?,
        overdue: filter.overdue.as_deref() == Some("on"),
        limit: 100,
        starting_after: None,
    };
    Ok(state
        .engine
        .list_refunds(who, q)
        .await
        .map_err(|e| ctx.fail(e))?
        .data)
}

pub fn statuses() -> Vec<&'static str> {
    RefundStatus::ALL.iter().map(|s| s.id()).collect()
}

pub fn channels() -> Vec<&'static str> {
    Channel::ALL.iter().map(|c| c.id()).collect()
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(filter): PageQuery<ListFilter>,
) -> PageResult {
    let who = ctx.merchant()?;
    let refunds = query(&state, &ctx, &who, &filter).await?;
    let lang = ctx.lang;
    let title = ctx.t("nav-refunds");
    Ok(render(
        lang,
        &ListPage {
            ctx,
            title,
            base: "/merchant",
            action: "/merchant/refunds".into(),
            filter,
            refunds,
            show_filters: true,
            statuses: statuses(),
            channels: channels(),
        },
    ))
}

pub async fn review_queue(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.merchant()?;
    let filter = ListFilter {
        status: Some("pending_review".into()),
        ..ListFilter::default()
    };
    let refunds = query(&state, &ctx, &who, &filter).await?;
    let lang = ctx.lang;
    let title = ctx.t("nav-review");
    Ok(render(
        lang,
        &ListPage {
            ctx,
            title,
            base: "/merchant",
            action: "/merchant/review".into(),
            filter,
            refunds,
            show_filters: false,
            statuses: statuses(),
            channels: channels(),
        },
    ))
}

#[derive(Template)]
#[template(path = "refund.html")]
pub struct RefundPage {
    pub ctx: Ctx,
    pub base: &'static str,
    /// The refund with its timeline, next step and destination in the reader's language.
    pub refund: ShownRefund,
    /// Whether this reader may approve or reject it now.
    pub can_review: bool,
    pub can_cancel: bool,
    /// Staff usernames for the timeline and the review note.
    pub names: crate::pages::actors::ActorNames,
    /// The refund's evidence (证明材料), oldest first.
    pub evidence: Vec<yuanlu_engine::evidence::Evidence>,
}

impl RefundPage {
    /// An audit actor as people read it (a username, not `merchant:mch_…:…:usr_…`).
    pub fn actor(&self, actor: &str) -> String {
        self.names.name(&self.ctx, actor)
    }

    /// The first 12 hex digits of a SHA-256, enough to tell files apart on a page.
    pub fn short_sha(&self, sha256: &str) -> String {
        sha256.chars().take(12).collect()
    }

    pub fn file_kinds(&self) -> &'static [yuanlu_domain::evidence::EvidenceKind] {
        &super::evidence::FILE_KINDS
    }

    pub fn document_types(&self) -> &'static [yuanlu_domain::evidence::DocumentType] {
        super::evidence::document_types()
    }
}

pub async fn show_for(
    state: &AppState,
    ctx: Ctx,
    who: Principal,
    base: &'static str,
    id: &str,
) -> PageResult {
    let id = checked_id(&ctx, id)?;
    let refund = state
        .engine
        .get_refund(&who, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let pending = refund.status == RefundStatus::PendingReview;
    let can_review = pending
        && refund
            .review
            .as_ref()
            .is_some_and(|r| who.reviewer().may_review(r.required_by));
    let can_cancel = matches!(
        refund.status,
        RefundStatus::PendingReview | RefundStatus::AwaitingReturn | RefundStatus::Queued
    );
    let evidence = state
        .engine
        .list_evidence(&who, yuanlu_engine::evidence::Subject::refund(&id))
        .await
        .map_err(|e| ctx.fail(e))?;
    let names = crate::pages::actors::ActorNames::load(state, &who).await;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &RefundPage {
            ctx,
            base,
            refund: ShownRefund::of(lang, refund),
            can_review,
            can_cancel,
            names,
            evidence,
        },
    ))
}

pub async fn show(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.merchant()?;
    show_for(&state, ctx, who, "/merchant", &id).await
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    csrf: Option<String>,
    note: Option<String>,
}

/// Approve, reject or cancel, with a note; then back to the refund's page.
pub async fn act_for(
    state: &AppState,
    ctx: &Ctx,
    who: &Principal,
    base: &str,
    id: &str,
    action: &str,
    form: ActForm,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(ctx, id)?;
    let note = ReviewNote {
        note: text(ctx, form.note.as_deref(), "field-note")?,
    };
    let engine = &state.engine;
    match action {
        "approve" => engine.approve_refund(who, &id, note).await,
        "reject" => engine.reject_refund(who, &id, note).await,
        "cancel" => engine.cancel_refund(who, &id, note).await,
        _ => return Err(PageError::not_found(ctx.lang)),
    }
    .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&format!("{base}/refunds/{id}")).into_response())
}

pub async fn act(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    PageForm(form): PageForm<ActForm>,
) -> PageResult {
    let who = ctx.merchant()?;
    act_for(&state, &ctx, &who, "/merchant", &id, &action, form).await
}

impl ActForm {
    pub fn new(csrf: Option<String>, note: Option<String>) -> Self {
        ActForm { csrf, note }
    }
}
