//! `GET /metrics` in the Prometheus text format, and the HTTP latency histograms.
//!
//! One process-wide recorder ([`install`]) collects the `metrics` facade's counters,
//! gauges and histograms; a scrape refreshes the gauges from the database
//! ([`yuanlu_engine::Engine::refresh_gauges`]) and renders. On the main listener the route
//! needs the admin key; `--metrics-listen` serves [`metrics_router`] without one, on an
//! address meant for the monitoring network only.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use yuanlu_engine::Engine;

use crate::AppState;
use crate::extract::Auth;
use crate::problem::{ApiResult, Problem};

/// Request latency by `method`, `route` (the matched template, e.g. `/v1/refunds/{id}`;
/// `unmatched` for unknown paths, so raw paths never become labels) and `status`.
pub const HTTP_DURATION: &str = "yuanlu_http_request_duration_seconds";
/// Histogram buckets of [`HTTP_DURATION`], in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; `None` if another recorder was installed first
/// (then `/metrics` answers 503).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), HTTP_BUCKETS);
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::error!(%error, "metrics recorder not built");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    yuanlu_engine::metrics::describe();
                    metrics::describe_histogram!(
                        HTTP_DURATION,
                        metrics::Unit::Seconds,
                        "HTTP request latency by method, route template and status."
                    );
                    Some(handle)
                }
                Err(error) => {
                    tracing::error!(%error, "another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware: times every request into [`HTTP_DURATION`].
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Refreshes the gauges and renders every series.
async fn render(engine: &Engine) -> ApiResult<Response> {
    let Some(handle) = install() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "metrics are not collected in this process",
        ));
    };
    engine.refresh_gauges().await?;
    handle.run_upkeep();
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response())
}

/// `GET /metrics` on the main listener: the admin key only (the series show volumes per
/// channel across all merchants).
pub async fn metrics_with_admin_key(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Response> {
    who.require_admin()?;
    render(&state.engine).await
}

/// The router of `--metrics-listen`: `GET /metrics` without a key.
pub fn metrics_router(engine: Engine) -> Router {
    install();
    Router::new()
        .route(
            "/metrics",
            get(|State(engine): State<Engine>| async move { render(&engine).await }),
        )
        .with_state(engine)
}
