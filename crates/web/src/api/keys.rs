//! API key management: `/v1/merchants/{id}/keys` (list; issuing is in `merchants`),
//! `/v1/keys/{id}/revoke`, `/v1/keys/{id}/rotate`, `/v1/admin/keys`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use yuanlu_engine::keys::{ApiKey, RotatedApiKey};
use yuanlu_engine::views::{CreatedApiKey, Page};

use super::bodies::RotateKey;
use super::{ListParams, page_limit};
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// The merchant's keys, newest first: id, role, prefix, created, last used, status —
/// never the secret. Admin, or the merchant's supervisor.
#[utoipa::path(get, path = "/v1/merchants/{id}/keys", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id"), ListParams),
    responses((status = 200, body = Page<ApiKey>), (status = "4XX", body = Problem)))]
pub async fn list_merchant_keys(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<ApiKey>>> {
    let limit = page_limit(params.limit)?;
    Ok(Json(
        state
            .engine
            .list_merchant_keys(&who, &id, limit, params.starting_after)
            .await?,
    ))
}

/// Revokes a key: the next request with it answers 401. Admin (any key), or a merchant
/// supervisor (its merchant's keys). The last working admin key cannot be revoked (409).
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "key id, `key_…`")),
    responses((status = 200, body = ApiKey), (status = "4XX", body = Problem)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(state.engine.revoke_key(&who, &id).await?))
}

/// Rotates a key: a new key with the same merchant and role, shown once; the old key keeps
/// working for `grace_seconds` (0–604800, default 86400), then answers 401.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "key id, `key_…`")),
    request_body = RotateKey,
    responses((status = 201, body = RotatedApiKey), (status = "4XX", body = Problem)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RotateKey>,
) -> ApiResult<(StatusCode, Json<RotatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.rotate_key(&who, &id, input.into()).await?),
    ))
}

/// The admin keys, newest first (admin only), including the one from `YUANLU_ADMIN_KEY`
/// or `admin.key` (`origin`).
#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = Page<ApiKey>), (status = "4XX", body = Problem)))]
pub async fn list_admin_keys(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<ApiKey>>> {
    let limit = page_limit(params.limit)?;
    Ok(Json(
        state
            .engine
            .list_admin_keys(&who, limit, params.starting_after)
            .await?,
    ))
}

/// Issues another admin key, shown once (admin only).
#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKey), (status = "4XX", body = Problem)))]
pub async fn create_admin_key(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_admin_key(&who).await?),
    ))
}
