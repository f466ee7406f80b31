//! `/status`: the consumer's page. No sign-in; the consumer names the refund with facts
//! from the receipt, through the same public lookup as the API (the same per-client limit
//! and per-refund lock on wrong guesses), and sees only what the API's consumer view holds.

pub mod request;
pub mod status;
pub mod tickets;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status::form_page).post(status::look_up))
        .route("/status/feedback", post(status::feedback))
        .route("/status/case", post(status::open_case))
        .route("/status/arrival", post(status::answer_arrival))
        .route(
            "/status/request",
            get(request::form_page).post(request::ask),
        )
        .layer(Extension(Arc::new(tickets::Tickets::default())))
}
