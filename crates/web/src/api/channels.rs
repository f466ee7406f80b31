//! `/v1/channels/{name}/notify`: callbacks from the payment channels. No bearer key: each
//! channel's connector verifies its own signature.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::ApiPath;
use crate::problem::{ApiResult, Problem};

/// What the channels expect back: `{"code": "SUCCESS"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackAck {
    pub code: &'static str,
}

/// Receives a channel's refund notification (`wechat`, `alipay`, `card`). Verified,
/// idempotent and order-independent: a late `processing` never overwrites `succeeded`.
#[utoipa::path(post, path = "/v1/channels/{name}/notify", tag = "channels",
    params(("name" = String, Path, description = "`wechat`, `alipay` or `card`")),
    request_body(content = String, description = "the channel's own callback body"),
    responses((status = 200, body = CallbackAck), (status = "4XX", body = Problem)))]
pub async fn channel_callback(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CallbackAck>> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    state.engine.handle_callback(&name, &headers, &body).await?;
    Ok(Json(CallbackAck { code: "SUCCESS" }))
}
