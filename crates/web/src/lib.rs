//! yuanlu's HTTP edge. Handlers are thin: extract, call one engine use case, answer.
//!
//! - [`problem`]: errors as `application/problem+json` with stable codes.
//! - [`extract`]: JSON, query and bearer-key extractors that never answer 500 to bad input.
//! - [`api`]: the v1 routes, each with its OpenAPI description.
//! - [`app`]: the router with its layers, and the OpenAPI document.

pub mod api;
pub mod app;
pub mod extract;
pub mod problem;

pub use app::{AppState, router};
