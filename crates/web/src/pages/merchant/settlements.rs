//! Settlement statements that explain the credited amount (入户金额) line by line, cases
//! and ratings, and the reports page with its charts.

use askama::Template;
use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use yuanlu_domain::time::{shanghai_date, shanghai_day_bounds};
use yuanlu_engine::auth::Principal;
use yuanlu_engine::cases::{Case, CaseQuery};
use yuanlu_engine::reports::{RefundReport, ReportQuery};

use crate::AppState;
use crate::pages::charts::{Bar, Chart};
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::PageQuery;
use crate::present::views::StatementView;

#[derive(Debug, Deserialize)]
pub struct DateParam {
    pub date: Option<String>,
}

#[derive(Template)]
#[template(path = "merchant/settlements.html")]
pub struct StatementsPage {
    pub ctx: Ctx,
    pub date: String,
    pub statements: Vec<StatementView>,
}

/// The date asked for, or yesterday (Shanghai), the latest date settlement can have run.
pub fn date_or_yesterday(
    state: &AppState,
    ctx: &Ctx,
    value: Option<&str>,
) -> Result<NaiveDate, PageError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| PageError::invalid(ctx.lang, "sale-date")),
        None => Ok(shanghai_date(state.engine.clock.now()) - Duration::days(1)),
    }
}

pub async fn statements_for(
    state: &AppState,
    ctx: Ctx,
    who: &Principal,
    date: Option<&str>,
) -> PageResult {
    let date = date_or_yesterday(state, &ctx, date)?;
    let statements = state
        .engine
        .list_statements(who, date, None)
        .await
        .map_err(|e| ctx.fail(e))?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &StatementsPage {
            ctx,
            date: date.to_string(),
            statements: StatementView::all(lang, statements),
        },
    ))
}

pub async fn statements(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<DateParam>,
) -> PageResult {
    let who = ctx.merchant()?;
    statements_for(&state, ctx, &who, q.date.as_deref()).await
}

#[derive(Template)]
#[template(path = "merchant/cases.html")]
pub struct CasesPage {
    pub ctx: Ctx,
    pub base: &'static str,
    pub cases: Vec<Case>,
    pub report: Option<RefundReport>,
}

pub async fn cases_of(
    state: &AppState,
    ctx: &Ctx,
    who: &Principal,
) -> Result<Vec<Case>, PageError> {
    let q = CaseQuery {
        status: None,
        refund_id: None,
        limit: 100,
        starting_after: None,
    };
    Ok(state
        .engine
        .list_cases(who, q)
        .await
        .map_err(|e| ctx.fail(e))?
        .data)
}

pub async fn cases(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.merchant()?;
    let cases = cases_of(&state, &ctx, &who).await?;
    let report = state
        .engine
        .refund_report(
            &who,
            ReportQuery {
                from: None,
                to: None,
                merchant_id: None,
            },
        )
        .await
        .ok();
    let lang = ctx.lang;
    Ok(render(
        lang,
        &CasesPage {
            ctx,
            base: "/merchant",
            cases,
            report,
        },
    ))
}

#[derive(Template)]
#[template(path = "merchant/reports.html")]
pub struct ReportsPage {
    pub ctx: Ctx,
    pub charts: Vec<Chart>,
    pub report: RefundReport,
}

/// Days shown on the "refunds per day" chart.
const REPORT_DAYS: i64 = 7;

pub async fn reports_for(state: &AppState, ctx: Ctx, who: &Principal) -> PageResult {
    let today = shanghai_date(state.engine.clock.now());
    let mut per_day = Vec::new();
    for back in (0..REPORT_DAYS).rev() {
        let day = today - Duration::days(back);
        let (from, to) = shanghai_day_bounds(day);
        let r = state
            .engine
            .refund_report(
                who,
                ReportQuery {
                    from: Some(from),
                    to: Some(to),
                    merchant_id: None,
                },
            )
            .await
            .map_err(|e| ctx.fail(e))?;
        let count = r.total.refunds.count;
        per_day.push(Bar {
            label: day.format("%m-%d").to_string(),
            value: count,
            shown: count.to_string(),
        });
    }
    let (from, _) = shanghai_day_bounds(today - Duration::days(29));
    let report = state
        .engine
        .refund_report(
            who,
            ReportQuery {
                from: Some(from),
                to: None,
                merchant_id: None,
            },
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    let channel = |c: &yuanlu_domain::channel::Channel| ctx.word("channel", c.id());
    let by_channel = report
        .by_channel
        .iter()
        .map(|c| Bar {
            label: channel(&c.channel),
            value: c.figures.refunds.count,
            shown: c.figures.refunds.count.to_string(),
        })
        .collect();
    let arrival = report
        .by_channel
        .iter()
        .map(|c| {
            let secs = c.figures.time_to_arrival.p50_seconds.unwrap_or(0);
            Bar {
                label: channel(&c.channel),
                value: secs,
                shown: ctx.t1("hours", "hours", &format!("{:.1}", secs as f64 / 3600.0)),
            }
        })
        .collect();
    let overdue = report
        .by_channel
        .iter()
        .map(|c| Bar {
            label: channel(&c.channel),
            value: c.figures.overdue,
            shown: c.figures.overdue.to_string(),
        })
        .collect();
    let stars = report
        .total
        .satisfaction
        .distribution
        .iter()
        .enumerate()
        .map(|(i, n)| Bar {
            label: "★".repeat(i + 1),
            value: *n,
            shown: n.to_string(),
        })
        .collect();
    let charts = vec![
        Chart::new("chart-per-day", ctx.t("chart-per-day"), per_day),
        Chart::new("chart-by-channel", ctx.t("chart-by-channel"), by_channel),
        Chart::new("chart-arrival", ctx.t("chart-arrival"), arrival),
        Chart::new("chart-overdue", ctx.t("chart-overdue"), overdue),
        Chart::new("chart-satisfaction", ctx.t("chart-satisfaction"), stars),
    ];
    let lang = ctx.lang;
    Ok(render(
        lang,
        &ReportsPage {
            ctx,
            charts,
            report,
        },
    ))
}

pub async fn reports(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.merchant()?;
    reports_for(&state, ctx, &who).await
}
