//! The pages' download links (issue 16): `/merchant/exports/{list}` and
//! `/console/exports/{list}` give the same CSV/XLSX as `GET /v1/exports/{list}`, for the
//! signed-in user (a merchant's staff: its own refunds and statements; acquirer staff:
//! every list, reconciliations for admins as in the API), with the list's filters and
//! `format` in the query string.

use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde::de::DeserializeOwned;
use yuanlu_engine::auth::Principal;

use super::ctx::Ctx;
use super::error::{PageError, PageResult};
use crate::AppState;
use crate::api::exports::{self, FormatParams};
use crate::api::recon_lists::{ExceptionQueueParams, ReconciliationListParams};
use crate::api::refunds::RefundListParams;
use crate::api::settlements::StatementParams;

fn query<T: DeserializeOwned>(ctx: &Ctx, uri: &Uri) -> Result<T, PageError> {
    Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| PageError::invalid(ctx.lang, "filter"))
}

async fn export(state: &AppState, ctx: &Ctx, who: &Principal, list: &str, uri: &Uri) -> PageResult {
    let format: FormatParams = query(ctx, uri)?;
    let engine = &state.engine;
    let answer: Result<Response, crate::problem::Problem> = match list {
        "refunds" => {
            exports::export::<RefundListParams>(engine, who, &format, query(ctx, uri)?).await
        }
        "settlements" => {
            exports::export::<StatementParams>(engine, who, &format, query(ctx, uri)?).await
        }
        "reconciliations" => {
            exports::export::<ReconciliationListParams>(engine, who, &format, query(ctx, uri)?)
                .await
        }
        "reconciliation-exceptions" => {
            exports::export::<ExceptionQueueParams>(engine, who, &format, query(ctx, uri)?).await
        }
        _ => return Err(PageError::not_found(ctx.lang)),
    };
    answer.map_err(|problem| PageError::problem(ctx.lang, problem))
}

/// `/merchant/exports/{refunds|settlements}`.
pub async fn merchant(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(list): Path<String>,
    uri: Uri,
) -> PageResult {
    let who = ctx.merchant()?;
    if !matches!(list.as_str(), "refunds" | "settlements") {
        return Err(PageError::not_found(ctx.lang));
    }
    export(&state, &ctx, &who, &list, &uri).await
}

/// `/console/exports/{refunds|settlements|reconciliations|reconciliation-exceptions}`.
pub async fn console(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(list): Path<String>,
    uri: Uri,
) -> PageResult {
    let who = ctx.acquirer()?;
    export(&state, &ctx, &who, &list, &uri).await
}
