//! `/console/…`: the acquirer's console for reviewers and admins, over the same use cases
//! as the admin key's API calls.

pub mod merchant_settings;
pub mod merchants;
pub mod ops;
pub mod recon;
pub mod reroute;
pub mod staff;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(ops::review_queue))
        .route("/console/overdue", get(ops::overdue))
        .route("/console/refunds/{id}", get(ops::show))
        .route("/console/refunds/{id}/{action}", post(ops::act))
        .route("/console/cases", get(ops::cases))
        .route("/console/cases/{id}/{action}", post(ops::case_act))
        .route("/console/exceptions", get(ops::exceptions))
        .route(
            "/console/exceptions/{id}/resolve",
            post(ops::resolve_exception),
        )
        .route("/console/audit", get(ops::audit))
        .route("/console/staff", get(staff::page).post(staff::add))
        .merge(recon::routes())
        .merge(merchants::routes())
        .merge(merchant_settings::routes())
}
