//! `/v1/settlements` and `/v1/ledger/check`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yuanlu_engine::ledger::LedgerCheck;
use yuanlu_engine::settlement::parse_business_date;
use yuanlu_engine::views::Page;

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
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
    /// `YYYY-MM-DD`.
    pub business_date: String,
    /// Admin only: one merchant's statement.
    pub merchant_id: Option<String>,
}

/// Statements of a business date: a merchant's own, or (admin) every merchant's.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements", security(("bearer" = [])),
    params(StatementParams, LangParam),
    responses((status = 200, body = Page<StatementView>), (status = "4XX", body = Problem)))]
pub async fn list_settlements(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> ApiResult<Json<Page<StatementView>>> {
    let date = parse_business_date(&params.business_date)?;
    let data = state
        .engine
        .list_statements(&who, date, params.merchant_id.as_deref())
        .await?;
    Ok(Json(Page {
        data: StatementView::all(lang, data),
        has_more: false,
    }))
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
