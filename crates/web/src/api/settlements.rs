//! `/v1/settlements` and `/v1/ledger/check`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yuanlu_engine::ledger::LedgerCheck;
use yuanlu_engine::ops_lists::StatementListQuery;
use yuanlu_engine::settlement::parse_business_date;
use yuanlu_engine::views::Page;

use super::page_limit;

use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::present::ApiLang;
use crate::present::lang::LangParam;
use crate::present::views::StatementView;
use crate::problem::{ApiResult, Problem};

/// `POST /v1/settlements/run`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSettlement {
    /// `YYYY-MM-DD`, a day that has ended in Asia/Shanghai.
    pub business_date: String,
}

/// The statements a settlement run wrote (or found, when the date was settled before).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementRunResult {
    pub business_date: String,
    pub statements: Vec<StatementView>,
}

/// Admin: settles a business date (T+1: paid out on the next business day). Re-running a
/// settled date returns the same statements and moves no money.
#[utoipa::path(post, path = "/v1/settlements/run", tag = "settlements", security(("bearer" = [])),
    params(LangParam),
    request_body = RunSettlement,
    responses((status = 200, body = SettlementRunResult), (status = "4XX", body = Problem)))]
pub async fn run_settlement(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiJson(input): ApiJson<RunSettlement>,
) -> ApiResult<Json<SettlementRunResult>> {
    let date = parse_business_date(&input.business_date)?;
    let statements = state.engine.run_settlement(&who, date).await?;
    Ok(Json(SettlementRunResult {
        business_date: input.business_date,
        statements: StatementView::all(lang, statements),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatementParams {
    /// `YYYY-MM-DD`: one business date. Given alone (without `limit` or
    /// `starting_after`), every statement of that date in one answer, by merchant, as
    /// before; otherwise the same as `from` = `to` = this date.
    pub business_date: Option<String>,
    /// Admin only: one merchant's statements (a merchant key sees only its own; naming
    /// another merchant gives an empty list).
    pub merchant_id: Option<String>,
    /// `YYYY-MM-DD`, inclusive: statements of business dates from this one.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive: statements of business dates up to this one.
    pub to: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// A statement id (`stl_…`) from the previous page.
    pub starting_after: Option<String>,
}

fn optional_date(field: &str, value: Option<&str>) -> Result<Option<NaiveDate>, Problem> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    format!("{field} must be a date as YYYY-MM-DD"),
                )
                .with_field(field)
            })
        })
        .transpose()
}

impl StatementParams {
    /// The history query these parameters ask for (not the one-date answer).
    pub fn history_query(&self) -> Result<StatementListQuery, Problem> {
        let mut from = optional_date("from", self.from.as_deref())?;
        let mut to = optional_date("to", self.to.as_deref())?;
        if let Some(date) = optional_date("business_date", self.business_date.as_deref())? {
            from = Some(from.map_or(date, |f| f.max(date)));
            to = Some(to.map_or(date, |t| t.min(date)));
        }
        Ok(StatementListQuery {
            merchant_id: self.merchant_id.clone(),
            from,
            to,
            limit: page_limit(self.limit)?,
            starting_after: self.starting_after.clone(),
        })
    }
}

/// Statements, newest business date first (ties by id): a merchant's own statement
/// history, or (admin) every merchant's or one's, over a date range (`from`, `to`),
/// paged (`limit`, `starting_after`). With `business_date` alone: that date's statements,
/// all in one answer, by merchant.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements", security(("bearer" = [])),
    params(StatementParams, LangParam),
    responses((status = 200, body = Page<StatementView>), (status = "4XX", body = Problem)))]
pub async fn list_settlements(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> ApiResult<Json<Page<StatementView>>> {
    let one_date = params.limit.is_none()
        && params.starting_after.is_none()
        && params.from.is_none()
        && params.to.is_none();
    if let (Some(date), true) = (params.business_date.as_deref(), one_date) {
        let date = parse_business_date(date)?;
        let data = state
            .engine
            .list_statements(&who, date, params.merchant_id.as_deref())
            .await?;
        return Ok(Json(Page {
            data: StatementView::all(lang, data),
            has_more: false,
        }));
    }
    let query = params.history_query()?;
    let page = state.engine.list_statement_history(&who, query).await?;
    Ok(Json(Page {
        data: StatementView::all(lang, page.data),
        has_more: page.has_more,
    }))
}

/// One statement with its explanation; another merchant's is `not_found` to a merchant key.
#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements", security(("bearer" = [])),
    params(("id" = String, Path, description = "statement id, `stl_…`"), LangParam),
    responses((status = 200, body = StatementView), (status = "4XX", body = Problem)))]
pub async fn get_settlement(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<StatementView>> {
    Ok(Json(StatementView::of(
        lang,
        state.engine.get_statement_by_id(&who, &id).await?,
    )))
}

/// Admin: proves the ledger balances, per posting, in total, and per merchant.
#[utoipa::path(get, path = "/v1/ledger/check", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, body = LedgerCheck), (status = "4XX", body = Problem)))]
pub async fn check_ledger(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<LedgerCheck>> {
    who.require_admin()?;
    Ok(Json(state.engine.check_ledger().await?))
}
