//! `/v1/reconciliations` and `/v1/reconciliation-exceptions`: statement imports (对账) and
//! the exceptions they open. Admin only.
//!
//! The import takes the statement file itself as the body (`text/csv` or
//! `application/octet-stream`, up to [`STATEMENT_BYTES_MAX`]), not JSON: its route carries a
//! body limit of its own ([`import_routes`]) instead of the API's 64 KiB.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;
use yuanlu_engine::reconciliation::{
    ExceptionQuery, ExceptionStatus, ReconError, ReconException, ReconciliationView,
    StatementChannel,
};
use yuanlu_engine::views::Page;

use super::bodies::ResolveException;
use super::page_limit;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// The largest statement file accepted over HTTP (a million-line WeChat bill is ~250 MB
/// less than this; larger files go through `yuanlu reconcile`).
pub const STATEMENT_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Content types a statement may be sent as.
pub const STATEMENT_CONTENT_TYPES: [&str; 3] =
    ["text/csv", "application/octet-stream", "text/plain"];

impl From<ReconError> for Problem {
    fn from(error: ReconError) -> Self {
        match error {
            ReconError::Engine(error) => error.into(),
            ReconError::AlreadyResolved(detail) => {
                Problem::new(StatusCode::CONFLICT, "invalid_transition", detail)
            }
        }
    }
}

/// The import route with its own body limit, for `api_routes`.
pub fn import_routes() -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = routes!(import_reconciliation);
    (
        schemas,
        paths,
        method_router.layer(DefaultBodyLimit::max(STATEMENT_BYTES_MAX)),
    )
}

fn bad(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "validation_error", detail).with_field(field)
}

/// `?channel=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ImportParams {
    /// The statement's format and channel: `wechat` (WeChat Pay trade bill), `alipay`
    /// (Alipay bill, GBK), `card` (card network settlement file) or `yuanlu` (yuanlu's CSV).
    pub channel: Option<String>,
}

/// Imports a channel statement for its business date and matches it against yuanlu's
/// payments and refunds of that date. The body is the file itself. 201 with the report;
/// 200 with the stored report when the same file was imported before. A malformed file is
/// refused with 400 naming its line (`detail`: `file: line 7: …`) and nothing is stored.
/// Every line or record not `matched` opens an exception.
#[utoipa::path(post, path = "/v1/reconciliations", tag = "reconciliations", security(("bearer" = [])),
    params(ImportParams),
    request_body(content = String, content_type = "text/csv",
        description = "The statement file as the channel issued it (the Alipay bill in GBK); `application/octet-stream` is accepted too. Up to 256 MiB."),
    responses((status = 201, body = ReconciliationView, description = "imported"),
               (status = 200, body = ReconciliationView, description = "this file was imported before: the stored reconciliation"),
               (status = "4XX", body = Problem)))]
pub async fn import_reconciliation(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<ImportParams>,
    request: Request,
) -> ApiResult<(StatusCode, Json<ReconciliationView>)> {
    // Everything that can refuse the request is checked before the body is read.
    who.require_admin()?;
    let ids = StatementChannel::ALL.map(StatementChannel::id).join(", ");
    let channel = match params.channel.as_deref() {
        None => return Err(bad("channel", format!("give ?channel= one of {ids}"))),
        Some(id) => StatementChannel::parse_id(id).ok_or_else(|| {
            bad(
                "channel",
                format!("unknown channel {id:?}; use one of {ids}"),
            )
        })?,
    };
    let bytes = crate::extract::file_body(
        request,
        &state,
        &STATEMENT_CONTENT_TYPES,
        STATEMENT_BYTES_MAX,
        "import it with `yuanlu reconcile`",
    )
    .await?;
    let view = state
        .engine
        .import_statement(&who, channel, &bytes, &mut |_| {})
        .await?;
    let status = if view.already_imported {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

/// A reconciliation: counts and amounts per class, exceptions opened and still open.
#[utoipa::path(get, path = "/v1/reconciliations/{id}", tag = "reconciliations", security(("bearer" = [])),
    params(("id" = String, Path, description = "reconciliation id, `recon_…`")),
    responses((status = 200, body = ReconciliationView), (status = "4XX", body = Problem)))]
pub async fn get_reconciliation(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ReconciliationView>> {
    Ok(Json(state.engine.get_reconciliation(&who, &id).await?))
}

/// Filters of an exception list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExceptionListParams {
    /// `open` or `resolved`.
    pub status: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// An exception id from the previous page.
    pub starting_after: Option<String>,
}

/// A reconciliation's exceptions, in file order (statement lines first, then records the
/// statement does not list).
#[utoipa::path(get, path = "/v1/reconciliations/{id}/exceptions", tag = "reconciliations", security(("bearer" = [])),
    params(("id" = String, Path, description = "reconciliation id, `recon_…`"), ExceptionListParams),
    responses((status = 200, body = Page<ReconException>), (status = "4XX", body = Problem)))]
pub async fn list_exceptions(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ExceptionListParams>,
) -> ApiResult<Json<Page<ReconException>>> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            ExceptionStatus::parse(s).ok_or_else(|| {
                bad(
                    "status",
                    format!("unknown status {s:?}; use open or resolved"),
                )
            })
        })
        .transpose()?;
    let query = ExceptionQuery {
        status,
        limit: page_limit(params.limit)?,
        starting_after: params.starting_after,
    };
    Ok(Json(state.engine.list_exceptions(&who, &id, query).await?))
}

/// One reconciliation exception.
#[utoipa::path(get, path = "/v1/reconciliation-exceptions/{id}", tag = "reconciliations", security(("bearer" = [])),
    params(("id" = String, Path, description = "exception id, `rex_…`")),
    responses((status = 200, body = ReconException), (status = "4XX", body = Problem)))]
pub async fn get_exception(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ReconException>> {
    Ok(Json(state.engine.get_exception(&who, &id).await?))
}

/// Resolves an open exception with a note (required); audited. 409 `invalid_transition`
/// if it was resolved before.
#[utoipa::path(post, path = "/v1/reconciliation-exceptions/{id}/resolve", tag = "reconciliations", security(("bearer" = [])),
    params(("id" = String, Path, description = "exception id, `rex_…`")),
    request_body = ResolveException,
    responses((status = 200, body = ReconException), (status = "4XX", body = Problem)))]
pub async fn resolve_exception(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ResolveException>,
) -> ApiResult<Json<ReconException>> {
    let note = input.note.unwrap_or_default();
    Ok(Json(
        state.engine.resolve_exception(&who, &id, &note).await?,
    ))
}
