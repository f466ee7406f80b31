//! yuanlu's HTTP edge. Handlers are thin: extract, call one engine use case, answer.
//!
//! - [`problem`]: errors as `application/problem+json` with stable codes.
//! - [`extract`]: JSON, query and bearer-key extractors that never answer 500 to bad input.
//! - [`api`]: the v1 routes, each with its OpenAPI description.
//! - [`app`]: the router with its layers, and the OpenAPI document.
//! - [`metrics`]: `GET /metrics` (Prometheus) and the HTTP latency histograms.
//! - [`present`]: the engine's data in the reader's language (timelines, next steps,
//!   statements), for the API and the pages alike.

// Handlers return `Result<_, Problem>`; a problem is built once per failed request, so its
// size on the error path does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod app;
pub mod client_addr;
pub mod docs;
pub mod extract;
pub mod metrics;
pub mod pages;
pub mod present;
pub mod problem;

pub use app::{AppState, router, router_with_timeout};
