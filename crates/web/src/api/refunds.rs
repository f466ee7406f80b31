//! `/v1/refunds`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::refunds::{CreateOutcome, RefundQuery};
use yuanlu_engine::views::Page;

use super::bodies::{CreateRefund, RecordReturn, RerouteInput, ReviewNote};
use super::page_limit;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::present::ApiLang;
use crate::present::lang::LangParam;
use crate::present::views::Refund;
use crate::problem::{ApiResult, Problem};

/// Asks for a refund. 201 with the new refund, or 200 with the existing one when the same
/// `merchant_refund_no` is repeated with the same payment and amount.
#[utoipa::path(post, path = "/v1/refunds", tag = "refunds", security(("bearer" = [])),
    params(LangParam),
    request_body = CreateRefund,
    responses((status = 201, body = Refund, description = "created"),
               (status = 200, body = Refund, description = "an idempotent repeat: the existing refund"),
               (status = "4XX", body = Problem)))]
pub async fn create_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiJson(input): ApiJson<CreateRefund>,
) -> ApiResult<(StatusCode, Json<Refund>)> {
    Ok(
        match state.engine.create_refund(&who, input.into()).await? {
            CreateOutcome::Created(refund) => {
                (StatusCode::CREATED, Json(Refund::of(lang, *refund)))
            }
            CreateOutcome::Existing(refund) => (StatusCode::OK, Json(Refund::of(lang, *refund))),
        },
    )
}

/// Filters of the refund list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RefundListParams {
    pub status: Option<String>,
    pub payment_id: Option<String>,
    pub channel: Option<String>,
    /// RFC 3339; refunds created at or after.
    pub created_from: Option<String>,
    /// RFC 3339; refunds created before.
    pub created_to: Option<String>,
    /// Only refunds under way past their expected arrival.
    pub overdue: Option<bool>,
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

fn bad(field: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "validation_error", detail).with_field(field)
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    bad(
                        field,
                        format!(
                            "{field} must be an RFC 3339 instant such as 2026-11-21T08:00:00+08:00"
                        ),
                    )
                })
        })
        .transpose()
}

/// Refunds, newest first, with the given filters.
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds", security(("bearer" = [])),
    params(RefundListParams, LangParam),
    responses((status = 200, body = Page<Refund>), (status = "4XX", body = Problem)))]
pub async fn list_refunds(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiQuery(params): ApiQuery<RefundListParams>,
) -> ApiResult<Json<Page<Refund>>> {
    let query = refund_query(params)?;
    Ok(Json(Refund::page(
        lang,
        state.engine.list_refunds(&who, query).await?,
    )))
}

/// The engine's query for the list's parameters (the list and its export share it).
pub(crate) fn refund_query(params: RefundListParams) -> Result<RefundQuery, Problem> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            RefundStatus::parse(s).ok_or_else(|| bad("status", format!("unknown status {s:?}")))
        })
        .transpose()?;
    if let Some(channel) = params.channel.as_deref()
        && Channel::parse(channel).is_none()
    {
        return Err(bad("channel", format!("unknown channel {channel:?}")));
    }
    let query = RefundQuery {
        status,
        payment_id: params.payment_id,
        channel: params.channel,
        created_from: instant("created_from", params.created_from.as_deref())?,
        created_to: instant("created_to", params.created_to.as_deref())?,
        overdue: params.overdue.unwrap_or(false),
        limit: page_limit(params.limit)?,
        starting_after: params.starting_after,
    };
    Ok(query)
}

/// A refund with its review, destination, timeline and next step.
#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id, `rf_…`"), LangParam),
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn get_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.get_refund(&who, &id).await?,
    )))
}

/// Approves a refund in `pending_review`. Reviews for `large_amount`, `refund_ratio` and
/// `late_refund` need the admin key; the others a merchant supervisor's key or the admin's.
#[utoipa::path(post, path = "/v1/refunds/{id}/approve", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id"), LangParam),
    request_body = ReviewNote,
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn approve_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ReviewNote>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.approve_refund(&who, &id, input.into()).await?,
    )))
}

/// Rejects a refund in `pending_review`; `note` (why) is required.
#[utoipa::path(post, path = "/v1/refunds/{id}/reject", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id"), LangParam),
    request_body = ReviewNote,
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn reject_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ReviewNote>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.reject_refund(&who, &id, input.into()).await?,
    )))
}

/// Cancels a refund before it is sent to its channel.
#[utoipa::path(post, path = "/v1/refunds/{id}/cancel", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id"), LangParam),
    request_body = ReviewNote,
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn cancel_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ReviewNote>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.cancel_refund(&who, &id, input.into()).await?,
    )))
}

/// Records the returned goods of a refund in `awaiting_return`.
#[utoipa::path(post, path = "/v1/refunds/{id}/return", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id"), LangParam),
    request_body = RecordReturn,
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn record_return(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RecordReturn>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.record_return(&who, &id, input.into()).await?,
    )))
}

/// Moves an `abnormal` refund on: to the consumer's bank account, or back to the merchant.
/// 409 `account_key_not_configured` for a bank account when the server has no account key.
#[utoipa::path(post, path = "/v1/refunds/{id}/reroute", tag = "refunds", security(("bearer" = [])),
    params(("id" = String, Path, description = "refund id"), LangParam),
    request_body = RerouteInput,
    responses((status = 200, body = Refund), (status = "4XX", body = Problem)))]
pub async fn reroute_refund(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiLang(lang): ApiLang,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RerouteInput>,
) -> ApiResult<Json<Refund>> {
    Ok(Json(Refund::of(
        lang,
        state.engine.reroute_refund(&who, &id, input.into()).await?,
    )))
}
