//! `/v1/merchants/{id}/bank-statements` and `/v1/bank-statements/{id}`: the merchant's bank
//! statement (银行对账单) imported to check settlement payouts against the credits the bank
//! booked (核对入户金额). The merchant's own keys or the admin. The import takes the CSV file
//! itself as the body, like a reconciliation import.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;
use yuanlu_engine::bank_statements::BankStatementView;

use super::reconciliations::STATEMENT_CONTENT_TYPES;
use crate::AppState;
use crate::extract::{ApiPath, Auth};
use crate::problem::{ApiResult, Problem};

/// The largest bank statement accepted: years of a shop's bookings are far smaller.
pub const BANK_STATEMENT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The import route with its own body limit, for `api_routes`.
pub fn import_routes() -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = routes!(import_bank_statement, list_bank_statements);
    (
        schemas,
        paths,
        method_router.layer(DefaultBodyLimit::max(BANK_STATEMENT_BYTES_MAX)),
    )
}

/// Imports the merchant's bank statement (a CSV of `date,amount,counterparty,reference`, or
/// `日期,金额,对方户名,摘要`; UTF-8 or GBK; see docs/bank-statements.md) and checks each
/// settlement payout of the days it covers: `paid`, `different_amount`, `missing` or
/// `pending`, with the credits nobody explains. 201 with the report; 200 with the stored
/// report when this merchant imported the same file before. A malformed file is refused with
/// 400 naming its line (`file: line 3: …`) and nothing is stored.
#[utoipa::path(post, path = "/v1/merchants/{id}/bank-statements", tag = "settlements", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    request_body(content = String, content_type = "text/csv",
        description = "The bank statement CSV (UTF-8 or GBK); `application/octet-stream` is accepted too. Up to 16 MiB."),
    responses((status = 201, body = BankStatementView, description = "imported"),
               (status = 200, body = BankStatementView, description = "this file was imported before: the stored report"),
               (status = "4XX", body = Problem)))]
pub async fn import_bank_statement(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(merchant_id): ApiPath<String>,
    request: Request,
) -> ApiResult<(StatusCode, Json<BankStatementView>)> {
    let bytes = crate::extract::file_body(
        request,
        &state,
        &STATEMENT_CONTENT_TYPES,
        BANK_STATEMENT_BYTES_MAX,
        "split it by month",
    )
    .await?;
    let import = state
        .engine
        .import_bank_statement(&who, &merchant_id, &bytes)
        .await?;
    let status = if import.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(import.view)))
}

/// A merchant's bank statement imports, newest first (at most 100).
#[derive(Debug, Serialize, ToSchema)]
pub struct BankStatementList {
    pub data: Vec<BankStatementView>,
}

/// The merchant's bank statement imports with their reports, newest first.
#[utoipa::path(get, path = "/v1/merchants/{id}/bank-statements", tag = "settlements", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    responses((status = 200, body = BankStatementList), (status = "4XX", body = Problem)))]
pub async fn list_bank_statements(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(merchant_id): ApiPath<String>,
) -> ApiResult<Json<BankStatementList>> {
    let data = state
        .engine
        .list_bank_statements(&who, &merchant_id)
        .await?;
    Ok(Json(BankStatementList { data }))
}

/// One bank statement import and its report.
#[utoipa::path(get, path = "/v1/bank-statements/{id}", tag = "settlements", security(("bearer" = [])),
    params(("id" = String, Path, description = "import id, `bsi_…`")),
    responses((status = 200, body = BankStatementView), (status = "4XX", body = Problem)))]
pub async fn get_bank_statement(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BankStatementView>> {
    Ok(Json(state.engine.get_bank_statement(&who, &id).await?))
}
