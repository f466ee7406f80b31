//! `/v1/merchants`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use yuanlu_engine::views::{CreatedApiKey, CreatedMerchant, Merchant};

use super::bodies::{CreateApiKey, CreateMerchant};
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::problem::{ApiResult, Problem};

/// Onboards a merchant; the answer carries its supervisor API key, shown once.
#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", security(("bearer" = [])),
    request_body = CreateMerchant,
    responses((status = 201, body = CreatedMerchant), (status = "4XX", body = Problem)))]
pub async fn create_merchant(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<CreateMerchant>,
) -> ApiResult<(StatusCode, Json<CreatedMerchant>)> {
    let created = state.engine.create_merchant(&who, input.into()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A merchant with its settings (admin, or that merchant).
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    responses((status = 200, body = Merchant), (status = "4XX", body = Problem)))]
pub async fn get_merchant(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Merchant>> {
    Ok(Json(state.engine.get_merchant(&who, &id).await?))
}

/// Issues another key for the merchant (`staff` may ask for refunds; `supervisor` may also
/// approve the reviews a merchant may give). Admin or the merchant's supervisor.
#[utoipa::path(post, path = "/v1/merchants/{id}/keys", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id")),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = "4XX", body = Problem)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_api_key(&who, &id, input.into()).await?),
    ))
}
