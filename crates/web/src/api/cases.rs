//! `/v1/cases`: complaints (工单) about a refund.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use yuanlu_engine::cases::{CaseError, CaseOutcome, CaseQuery, CaseStatus};
use yuanlu_engine::views::Page;

use super::bodies::{AssignCase, OpenCase, ResolveCase};
use super::page_limit;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::present::ApiLang;
use crate::present::case::Case;
use crate::present::lang::LangParam;
use crate::problem::{ApiResult, Problem};

impl From<CaseError> for Problem {
    fn from(error: CaseError) -> Self {
        match error {
            CaseError::Engine(error) => error.into(),
            CaseError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            CaseError::InvalidTransition(detail) => {
                Problem::new(StatusCode::CONFLICT, "invalid_transition", detail)
            }
            CaseError::Locked {
                retry_after_seconds,
            } => Problem::rate_limited(
                "too many wrong facts were given for this refund; its lookup is locked",
                retry_after_seconds,
            ),
        }
    }
}

/// Opens a case on a refund (a merchant on its own refunds, the admin on any). 201 with the
/// new case, or 200 with the open case of the same refund and kind.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", security(("bearer" = [])),
    params(LangParam),
    request_body = OpenCase,
    responses((status = 201, body = Case, description = "opened"),
               (status = 200, body = Case, description = "a case of this refund and kind is already open: that case"),
               (status = "4XX", body = Problem)))]
pub async fn open_case(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiJson(input): ApiJson<OpenCase>,
) -> ApiResult<(StatusCode, Json<Case>)> {
    Ok(match state.engine.open_case(&who, input.into()).await? {
        CaseOutcome::Created(case) => (StatusCode::CREATED, Json(Case::of(lang, *case))),
        CaseOutcome::Existing(case) => (StatusCode::OK, Json(Case::of(lang, *case))),
    })
}

/// Filters of the case list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CaseListParams {
    /// `open` or `resolved`.
    pub status: Option<String>,
    pub refund_id: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// A case id from the previous page.
    pub starting_after: Option<String>,
}

/// Cases, newest first (a merchant sees its own).
#[utoipa::path(get, path = "/v1/cases", tag = "cases", security(("bearer" = [])),
    params(CaseListParams, LangParam),
    responses((status = 200, body = Page<Case>), (status = "4XX", body = Problem)))]
pub async fn list_cases(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiQuery(params): ApiQuery<CaseListParams>,
) -> ApiResult<Json<Page<Case>>> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            CaseStatus::parse(s).ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    format!("status must be open or resolved, not {s:?}"),
                )
                .with_field("status")
            })
        })
        .transpose()?;
    let query = CaseQuery {
        status,
        refund_id: params.refund_id,
        limit: page_limit(params.limit)?,
        starting_after: params.starting_after,
    };
    Ok(Json(Case::page(
        lang,
        state.engine.list_cases(&who, query).await?,
    )))
}

/// A case with its timeline.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "case id, `case_…`"), LangParam),
    responses((status = 200, body = Case), (status = "4XX", body = Problem)))]
pub async fn get_case(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Case>> {
    Ok(Json(Case::of(
        lang,
        state.engine.get_case(&who, &id).await?,
    )))
}

/// Resolves an open case with what was done (the merchant of its refund, or the admin).
#[utoipa::path(post, path = "/v1/cases/{id}/resolve", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "case id"), LangParam),
    request_body = ResolveCase,
    responses((status = 200, body = Case), (status = "4XX", body = Problem)))]
pub async fn resolve_case(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ResolveCase>,
) -> ApiResult<Json<Case>> {
    Ok(Json(Case::of(
        lang,
        state.engine.resolve_case(&who, &id, input.into()).await?,
    )))
}

/// Gives an open case an owner (admin).
#[utoipa::path(post, path = "/v1/cases/{id}/assign", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "case id"), LangParam),
    request_body = AssignCase,
    responses((status = 200, body = Case), (status = "4XX", body = Problem)))]
pub async fn assign_case(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AssignCase>,
) -> ApiResult<Json<Case>> {
    Ok(Json(Case::of(
        lang,
        state.engine.assign_case(&who, &id, input.into()).await?,
    )))
}
