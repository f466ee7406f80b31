//! `/v1/payments`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use yuanlu_engine::views::{Page, Payment};

use super::bodies::RecordPayment;
use super::payment_search::PaymentListParams;
use crate::AppState;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// Records a captured payment; the answer carries its merchant fee.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", security(("bearer" = [])),
    request_body = RecordPayment,
    responses((status = 201, body = Payment), (status = "4XX", body = Problem)))]
pub async fn record_payment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<RecordPayment>,
) -> ApiResult<(StatusCode, Json<Payment>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.record_payment(&who, input.into()).await?),
    ))
}

/// Payments, newest first; with filters, the search a cashier uses to find the original
/// sale (date, amount, last four digits of card or phone, reference, voucher number,
/// terminal, order number).
#[utoipa::path(get, path = "/v1/payments", tag = "payments", security(("bearer" = [])),
    params(PaymentListParams),
    responses((status = 200, body = Page<Payment>), (status = "4XX", body = Problem)))]
pub async fn list_payments(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<PaymentListParams>,
) -> ApiResult<Json<Page<Payment>>> {
    let filters = params.filters()?;
    Ok(Json(state.engine.search_payments(&who, &filters).await?))
}

/// A payment with `amount_refunded`, `refundable` and its refunds.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "payment id, `pay_…`")),
    responses((status = 200, body = Payment), (status = "4XX", body = Problem)))]
pub async fn get_payment(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Payment>> {
    Ok(Json(state.engine.get_payment(&who, &id).await?))
}
