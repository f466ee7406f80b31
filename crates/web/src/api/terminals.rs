//! `/v1/terminals`: POS terminals that speak ISO 8583 to the POS host (`docs/pos.md`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use yuanlu_engine::terminals::{CreatedTerminal, TerminalList};

use super::bodies::RegisterTerminal;
use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiResult, Problem};

/// Admin: registers a terminal (field 41 `terminal_id`, field 42 `merchant_no`) of a
/// merchant. The answer carries its terminal master key `tmk`, shown once.
#[utoipa::path(post, path = "/v1/terminals", tag = "terminals", security(("bearer" = [])),
    request_body = RegisterTerminal,
    responses((status = 201, body = CreatedTerminal), (status = "4XX", body = Problem)))]
pub async fn register_terminal(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<RegisterTerminal>,
) -> ApiResult<(StatusCode, Json<CreatedTerminal>)> {
    let created = state.engine.register_terminal(&who, input.into()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The terminals the caller may see (all for the admin, its own for a merchant), without
/// their keys.
#[utoipa::path(get, path = "/v1/terminals", tag = "terminals", security(("bearer" = [])),
    responses((status = 200, body = TerminalList), (status = "4XX", body = Problem)))]
pub async fn list_terminals(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<TerminalList>> {
    Ok(Json(state.engine.list_terminals(&who).await?))
}
