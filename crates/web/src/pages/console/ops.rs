//! The console's operations: review queue, overdue and abnormal refunds (with reroute back
//! to the merchant), cases, reconciliation exceptions, and the audit check.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yuanlu_engine::audit::AuditVerification;
use yuanlu_engine::cases::{AssignCase, ResolveCase};
use yuanlu_engine::reconciliation::{ExceptionQuery, ReconException};

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, PageQuery, text};
use crate::pages::merchant::checked_id;
use crate::pages::merchant::refunds::{
    ActForm, ListFilter, ListPage, act_for, channels, query, show_for, statuses,
};
use crate::pages::merchant::settlements::{CasesPage, cases_of};
use crate::problem::Problem;

pub async fn review_queue(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.acquirer()?;
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
            base: "/console",
            action: "/console".into(),
            filter,
            refunds,
            show_filters: false,
            statuses: statuses(),
            channels: channels(),
        },
    ))
}

pub async fn overdue(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.acquirer()?;
    let overdue = ListFilter {
        overdue: Some("on".into()),
        ..ListFilter::default()
    };
    let mut refunds = query(&state, &ctx, &who, &overdue).await?;
    let abnormal = ListFilter {
        status: Some("abnormal".into()),
        ..ListFilter::default()
    };
    for r in query(&state, &ctx, &who, &abnormal).await? {
        if !refunds.iter().any(|x| x.id == r.id) {
            refunds.push(r);
        }
    }
    let lang = ctx.lang;
    let title = ctx.t("nav-overdue");
    Ok(render(
        lang,
        &ListPage {
            ctx,
            title,
            base: "/console",
            action: "/console/overdue".into(),
            filter: overdue,
            refunds,
            show_filters: false,
            statuses: statuses(),
            channels: channels(),
        },
    ))
}

pub async fn show(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.acquirer()?;
    show_for(&state, ctx, who, "/console", &id).await
}

#[derive(Debug, Deserialize)]
pub struct ConsoleActForm {
    csrf: Option<String>,
    note: Option<String>,
    paid_by: Option<String>,
    /// A reroute's target: `merchant` (the default) or `bank_account`.
    to: Option<String>,
    method: Option<String>,
    account_number: Option<String>,
    bank: Option<String>,
    holder: Option<String>,
}

impl From<ConsoleActForm> for super::reroute::RerouteForm {
    fn from(form: ConsoleActForm) -> Self {
        super::reroute::RerouteForm {
            to: form.to,
            method: form.method,
            paid_by: form.paid_by,
            note: form.note,
            account_number: form.account_number,
            bank: form.bank,
            holder: form.holder,
        }
    }
}

pub async fn act(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    PageForm(form): PageForm<ConsoleActForm>,
) -> PageResult {
    let who = ctx.acquirer()?;
    if action != "reroute" {
        let form = ActForm::new(form.csrf, form.note);
        return act_for(&state, &ctx, &who, "/console", &id, &action, form).await;
    }
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let input = super::reroute::input(&ctx, form.into())?;
    state
        .engine
        .reroute_refund(&who, &id, input)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&format!("/console/refunds/{id}")).into_response())
}

pub async fn cases(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.acquirer()?;
    let cases = cases_of(&state, &ctx, &who).await?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &CasesPage {
            ctx,
            base: "/console",
            cases,
            report: None,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct CaseActForm {
    csrf: Option<String>,
    owner: Option<String>,
    resolution: Option<String>,
}

pub async fn case_act(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    PageForm(form): PageForm<CaseActForm>,
) -> PageResult {
    let who = ctx.acquirer()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let result = match action.as_str() {
        "assign" => {
            let owner = text(&ctx, form.owner.as_deref(), "case-owner")?.unwrap_or_default();
            state
                .engine
                .assign_case(&who, &id, AssignCase { owner })
                .await
        }
        "resolve" => {
            let resolution =
                text(&ctx, form.resolution.as_deref(), "case-resolution")?.unwrap_or_default();
            state
                .engine
                .resolve_case(&who, &id, ResolveCase { resolution })
                .await
        }
        _ => return Err(PageError::not_found(ctx.lang)),
    };
    result.map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    Ok(Redirect::to("/console/cases").into_response())
}

#[derive(Template)]
#[template(path = "console/exceptions.html")]
pub struct ExceptionsPage {
    pub ctx: Ctx,
    pub reconciliation: String,
    pub exceptions: Vec<ReconException>,
}

#[derive(Debug, Deserialize)]
pub struct ReconParam {
    reconciliation: Option<String>,
}

pub async fn exceptions(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<ReconParam>,
) -> PageResult {
    let who = ctx.acquirer()?;
    let reconciliation = q.reconciliation.unwrap_or_default().trim().to_string();
    let exceptions = if reconciliation.is_empty() {
        Vec::new()
    } else {
        let id = checked_id(&ctx, &reconciliation)?;
        let q = ExceptionQuery {
            status: None,
            limit: 100,
            starting_after: None,
        };
        state
            .engine
            .list_exceptions(&who, &id, q)
            .await
            .map_err(|e| ctx.fail(e))?
            .data
    };
    let lang = ctx.lang;
    Ok(render(
        lang,
        &ExceptionsPage {
            ctx,
            reconciliation,
            exceptions,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    csrf: Option<String>,
    note: Option<String>,
    reconciliation: Option<String>,
}

pub async fn resolve_exception(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ResolveForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let note = text(&ctx, form.note.as_deref(), "field-note")?.unwrap_or_default();
    state
        .engine
        .resolve_exception(&who, &id, &note)
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?;
    let back = form
        .reconciliation
        .filter(|r| r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_default();
    let to = if back.is_empty() {
        "/console/reconciliations".to_string()
    } else {
        format!("/console/reconciliations/{back}")
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    pub ctx: Ctx,
    pub audit: AuditVerification,
}

pub async fn audit(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.acquirer()?;
    let audit = state.engine.verify_audit().await.map_err(|e| ctx.fail(e))?;
    let lang = ctx.lang;
    Ok(render(lang, &AuditPage { ctx, audit }))
}
