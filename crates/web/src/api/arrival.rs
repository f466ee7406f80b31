//! `POST /v1/public/refunds/{id}/arrival`: the consumer confirms arrival (确认收款) or says
//! the money has not come. See `yuanlu_engine::arrival` for the rules.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use yuanlu_engine::arrival::ArrivalAnswer;

use super::public::{ClientKey, rate_limit};
use crate::AppState;
use crate::extract::{ApiJson, ApiPath};
use crate::problem::{ApiResult, Problem};

/// The consumer's answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerArrival {
    /// `true`: the money arrived; `false`: it has not.
    pub received: bool,
    /// The payment's reference number (`rrn`), or its payment id when it has none.
    pub reference: String,
}

/// After the channel reported the refund paid, the consumer says whether the money
/// arrived. "Received" is final and shows in reports as the time to confirmed arrival; "not
/// received" after the expected arrival date opens a `not_arrived` case at once (the answer
/// carries it), before that date it answers `wait_until`. 409 `invalid_transition` before
/// the channel's success, 409 `conflict` for "not received" after "received". Rate limited
/// like the lookup.
#[utoipa::path(post, path = "/v1/public/refunds/{id}/arrival", tag = "public",
    params(("id" = String, Path, description = "refund id, `rf_…`")),
    request_body = AnswerArrival,
    responses((status = 200, body = ArrivalAnswer), (status = "4XX", body = Problem)))]
pub async fn answer_arrival(
    State(state): State<AppState>,
    client: ClientKey,
    ApiPath(refund_id): ApiPath<String>,
    ApiJson(input): ApiJson<AnswerArrival>,
) -> ApiResult<Json<ArrivalAnswer>> {
    rate_limit(&state, &client)?;
    let answer = state
        .engine
        .public_answer_arrival(&refund_id, &input.reference, input.received)
        .await?;
    Ok(Json(answer))
}
