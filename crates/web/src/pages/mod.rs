//! The pages people use: the merchant back office (`/merchant/…`), the acquirer console
//! (`/console/…`) and the consumer's status page (`/status`), with sign-in at `/login`.
//! Server-rendered askama templates (`crates/web/templates/`), no script; each handler is a
//! thin layer over the same engine use case the API calls, with the same principal.
//!
//! - [`layer`]: security headers (CSP), the anonymous CSRF cookie, the language cookie.
//! - [`ctx`]: language, who is signed in, the CSRF token, and how to say things.
//! - [`signin`]: `/login`, `/logout` and the sign-in rate limits.
//! - [`consumer`], [`merchant`], [`console`]: the three rooms.

pub mod actors;
pub mod charts;
pub mod console;
pub mod consumer;
pub mod cookies;
pub mod ctx;
pub mod error;
pub mod exports;
pub mod form;
pub mod layer;
pub mod merchant;
pub mod multipart;
pub mod signin;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_console;

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::AppState;
use ctx::Ctx;

/// The stylesheet, served from the binary.
const SITE_CSS: &str = include_str!("../../assets/site.css");

/// Every page route, with the page layer around them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/site.css", get(site_css))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/logout", post(signin::logout))
        .merge(consumer::routes())
        .merge(merchant::routes())
        .merge(console::routes())
        .route("/merchant/exports/{list}", get(exports::merchant))
        .route("/console/exports/{list}", get(exports::console))
        .layer(Extension(Arc::new(signin::SignInLimits::default())))
        .layer(axum::middleware::from_fn(layer::page_layer))
}

/// `/`: signed-in staff go to their room; everyone else to sign-in, which offers the
/// consumer's status page.
async fn home(ctx: Ctx) -> Response {
    let to = match &ctx.user {
        Some(u) if u.role.is_merchant_staff() => "/merchant",
        Some(_) => "/console",
        None => "/login",
    };
    Redirect::to(to).into_response()
}

async fn site_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SITE_CSS,
    )
        .into_response()
}
