//! Notifications: the merchant's webhook endpoint, the webhook events and the SMS outbox.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use yuanlu_engine::notify::{
    CreatedWebhook, OutboxQuery, SmsMessage, WebhookDelivery, WebhookEndpoint,
};
use yuanlu_engine::views::Page;

use super::bodies::SetWebhook;
use super::page_limit;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// Sets the merchant's webhook URL (admin or the merchant's supervisor) and answers with a
/// new signing secret, shown once. Every status change of the merchant's refunds is then
/// POSTed to the URL, signed `Yuanlu-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`, at least once (de-duplicate by the event `id`), retried with backoff
/// for 24 hours until a 2xx answer. A URL whose host is not a public internet address
/// (loopback, private, link-local, CGNAT, …; resolved now and again at every delivery) is
/// refused with 400 `webhook_url_not_allowed`, unless the server runs with
/// `--allow-private-webhooks` (docs/security.md).
#[utoipa::path(put, path = "/v1/merchants/{id}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    request_body = SetWebhook,
    responses((status = 200, body = CreatedWebhook), (status = "4XX", body = Problem)))]
pub async fn set_webhook(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SetWebhook>,
) -> ApiResult<Json<CreatedWebhook>> {
    Ok(Json(
        state.engine.set_webhook(&who, &id, input.into()).await?,
    ))
}

/// The merchant's webhook URL (without its secret).
#[utoipa::path(get, path = "/v1/merchants/{id}/webhook", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    responses((status = 200, body = WebhookEndpoint), (status = "4XX", body = Problem)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(state.engine.get_webhook(&who, &id).await?))
}

/// Filters of the outbox lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OutboxListParams {
    pub refund_id: Option<String>,
    /// Webhooks: `pending`, `delivered`, `given_up`. SMS: `pending`, `sent`, `given_up`.
    pub status: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// An id from the previous page.
    pub starting_after: Option<String>,
}

fn outbox_query(params: OutboxListParams, statuses: &[&str]) -> ApiResult<OutboxQuery> {
    if let Some(status) = params.status.as_deref()
        && !statuses.contains(&status)
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("status must be one of {}", statuses.join(", ")),
        )
        .with_field("status"));
    }
    Ok(OutboxQuery {
        refund_id: params.refund_id,
        status: params.status,
        limit: page_limit(params.limit)?,
        starting_after: params.starting_after,
    })
}

/// Webhook events and their delivery, newest first (admin: all; a merchant: its own).
#[utoipa::path(get, path = "/v1/notifications/webhooks", tag = "notifications", security(("bearer" = [])),
    params(OutboxListParams),
    responses((status = 200, body = Page<WebhookDelivery>), (status = "4XX", body = Problem)))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<OutboxListParams>,
) -> ApiResult<Json<Page<WebhookDelivery>>> {
    let query = outbox_query(params, &["pending", "delivered", "given_up"])?;
    Ok(Json(
        state.engine.list_webhook_deliveries(&who, query).await?,
    ))
}

/// SMS sent to consumers, newest first (admin: all; a merchant: its own); phones masked.
#[utoipa::path(get, path = "/v1/notifications/sms", tag = "notifications", security(("bearer" = [])),
    params(OutboxListParams),
    responses((status = 200, body = Page<SmsMessage>), (status = "4XX", body = Problem)))]
pub async fn list_sms(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<OutboxListParams>,
) -> ApiResult<Json<Page<SmsMessage>>> {
    let query = outbox_query(params, &["pending", "sent", "given_up"])?;
    Ok(Json(state.engine.list_sms(&who, query).await?))
}
