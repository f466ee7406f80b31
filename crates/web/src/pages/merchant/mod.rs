//! `/merchant/…`: the merchant back office for cashiers and supervisors, each page a thin
//! layer over the use case `/v1/…` calls with a merchant key of the same role.

pub mod evidence;
pub mod refunds;
pub mod sales;
pub mod settlements;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/merchant", get(sales::find_sale))
        .route("/merchant/payments/{id}", get(sales::payment_page))
        .route("/merchant/payments/{id}/preview", post(sales::preview))
        .route("/merchant/payments/{id}/refund", post(sales::confirm))
        .route("/merchant/refunds", get(refunds::list))
        .route("/merchant/review", get(refunds::review_queue))
        .route("/merchant/refunds/{id}", get(refunds::show))
        .route("/merchant/refunds/{id}/{action}", post(refunds::act))
        .route("/merchant/settlements", get(settlements::statements))
        .route("/merchant/cases", get(settlements::cases))
        .route("/merchant/reports", get(settlements::reports))
        .merge(evidence::routes())
}

/// A path id that can name something: `A-Z a-z 0-9 _`, at most 64 characters; anything
/// else is "not found" without a query.
pub fn checked_id(
    ctx: &crate::pages::ctx::Ctx,
    id: &str,
) -> Result<String, crate::pages::error::PageError> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id.to_string())
    } else {
        Err(crate::pages::error::PageError::not_found(ctx.lang))
    }
}
