//! Issue 16 items 3–5: settings changes, order updates and the consumer's refund request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_engine::ops::settings::SettingsVersion;
use yuanlu_engine::views::{Merchant, Payment};

use super::bodies::{ConsumerRefundRequest, UpdateMerchant, UpdateOrder};
use super::public::{ClientKey, rate_limit};
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::present::lang::{ApiLang, LangParam};
use crate::present::views::ConsumerRefund;
use crate::problem::{ApiResult, Problem};

/// Changes a merchant's settings from now on (admin). Fee rates and caps apply to payments
/// recorded after the change, and a refund returns fee under the policy in force when its
/// payment was recorded; windows, review thresholds, the funding policy and the daily
/// refund limit (`daily_refund_limit: {amount_fen, count}`, 限额) apply to refunds asked
/// for after it; a channel's `arrival` rules to refunds its channel accepts after it.
/// Audited as `merchant.settings_changed` with `before` and `after`.
#[utoipa::path(patch, path = "/v1/merchants/{id}", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    request_body = UpdateMerchant,
    responses((status = 200, body = Merchant), (status = "4XX", body = Problem)))]
pub async fn update_merchant(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<UpdateMerchant>,
) -> ApiResult<Json<Merchant>> {
    Ok(Json(
        state
            .engine
            .update_merchant_settings(&who, &id, input.into())
            .await?,
    ))
}

/// The versions of a merchant's settings, oldest first, each with when it took effect and
/// who changed it; empty when they never changed (admin, or that merchant).
#[utoipa::path(get, path = "/v1/merchants/{id}/settings/versions", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "merchant id, `mch_…`")),
    responses((status = 200, body = Vec<SettingsVersion>), (status = "4XX", body = Problem)))]
pub async fn settings_versions(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<SettingsVersion>>> {
    Ok(Json(
        state.engine.merchant_settings_versions(&who, &id).await?,
    ))
}

/// Moves the payment's goods order (the merchant): `shipped`, `delivered` or `returned`
/// (with `tracking_no`). A goods refund asked for while the goods are out waits in
/// `awaiting_return`; once `returned`, refunds that waited move on and new ones do not wait.
/// Forward only: 409 `conflict` for a move back.
#[utoipa::path(post, path = "/v1/payments/{id}/order", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "payment id, `pay_…`")),
    request_body = UpdateOrder,
    responses((status = 200, body = Payment), (status = "4XX", body = Problem)))]
pub async fn update_order(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<UpdateOrder>,
) -> ApiResult<Json<Payment>> {
    Ok(Json(
        state.engine.update_order(&who, &id, input.into()).await?,
    ))
}

/// What the consumer gets back: the refund as the public lookup shows it (in the reader's
/// language), and the facts that look it up again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsumerRequestAnswer {
    pub refund_id: String,
    pub reference: String,
    pub refund: ConsumerRefund,
}

/// A consumer asks for a refund with the payment's reference (`rrn`, or the payment id when
/// it has none) and the last four digits of the card, wallet account or phone that paid. The
/// refund waits in the merchant's review queue (`consumer_request`); follow it with
/// `GET /v1/public/refunds/by-id/{refund_id}?reference=`. 201 with the new request, 200 with
/// the one still waiting for this payment. Rate limited as the lookup: per client address,
/// and 5 wrong last-four digits for a payment in an hour lock its requests (429
/// `rate_limited` with `Retry-After`).
#[utoipa::path(post, path = "/v1/public/refund-requests", tag = "public",
    params(LangParam),
    request_body = ConsumerRefundRequest,
    responses((status = 201, body = ConsumerRequestAnswer, description = "asked for"),
               (status = 200, body = ConsumerRequestAnswer, description = "a request for this payment is still waiting: that one"),
               (status = "4XX", body = Problem)))]
pub async fn request_refund(
    State(state): State<AppState>,
    client: ClientKey,
    ApiLang(lang): ApiLang,
    ApiJson(input): ApiJson<ConsumerRefundRequest>,
) -> ApiResult<(StatusCode, Json<ConsumerRequestAnswer>)> {
    rate_limit(&state, &client)?;
    let outcome = state.engine.public_request_refund(input.into()).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = outcome.answer;
    Ok((
        status,
        Json(ConsumerRequestAnswer {
            refund_id: answer.refund_id,
            reference: answer.reference,
            refund: ConsumerRefund::of(lang, answer.refund),
        }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_new_endpoints_are_documented() {
        let document = crate::app::openapi(false);
        let paths = &document.paths.paths;
        let merchant = paths
            .get("/v1/merchants/{id}")
            .map(|p| (p.get.is_some(), p.patch.is_some()));
        assert_eq!(
            merchant,
            Some((true, true)),
            "GET and PATCH /v1/merchants/{{id}}"
        );
        for path in [
            "/v1/merchants/{id}/settings/versions",
            "/v1/payments/{id}/order",
            "/v1/public/refund-requests",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        let schemas = document.components.map(|c| c.schemas).unwrap_or_default();
        for schema in [
            "UpdateMerchant",
            "UpdateOrder",
            "ConsumerRefundRequest",
            "DailyRefundLimit",
            "StepFigures",
        ] {
            assert!(schemas.contains_key(schema), "{schema} missing");
        }
    }
}
