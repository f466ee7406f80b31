//! `/docs`: the API reference, Swagger UI rendering `/openapi.json`. The viewer's files are
//! built into the binary (utoipa-swagger-ui's `vendored` feature: taken from a crate at
//! build time, never downloaded), so the page works offline and loads nothing from a CDN.

use axum::Router;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the reference is served.
pub const DOCS_PATH: &str = "/docs";

/// The viewer's routes: `/docs` (redirects to `/docs/`), `/docs/` and its assets.
pub fn viewer<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    SwaggerUi::new(DOCS_PATH)
        .config(Config::from("/openapi.json"))
        .into()
}
