//! The router: v1 API, health, OpenAPI document, and the layers around them.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yuanlu_engine::Engine;

use crate::api;
use crate::extract::REQUEST_BODY_BYTES_MAX;
use crate::problem::Problem;

/// How long one request may take before it is abandoned and answered with 503
/// `request_timeout` (`yuanlu serve --request-timeout-ms`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    /// The public endpoints' per-address limit and trusted proxies.
    pub public: std::sync::Arc<crate::api::public::PublicAccess>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "yuanlu API",
        version = "1",
        description = "Refund back office for POS acquirers and their merchants. Amounts are integer fen (1/100 CNY). Errors are application/problem+json with a stable `code`."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI description, built together so they cannot disagree.
fn api_routes(simulated_clock: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::merchants::create_merchant))
        .routes(routes!(
            api::merchants::get_merchant,
            api::operations::update_merchant
        ))
        .routes(routes!(api::operations::settings_versions))
        .routes(routes!(
            api::merchants::create_api_key,
            api::keys::list_merchant_keys
        ))
        .routes(routes!(api::keys::revoke_key))
        .routes(routes!(api::keys::rotate_key))
        .routes(routes!(
            api::keys::list_admin_keys,
            api::keys::create_admin_key
        ))
        .routes(routes!(
            api::payments::record_payment,
            api::payments::list_payments
        ))
        .routes(routes!(api::payments::get_payment))
        .routes(routes!(api::operations::update_order))
        .routes(routes!(
            api::refunds::create_refund,
            api::refunds::list_refunds
        ))
        .routes(routes!(api::refunds::get_refund))
        .routes(api::evidence::refund_routes())
        .routes(routes!(api::evidence::refund_evidence_content))
        .routes(routes!(api::refunds::approve_refund))
        .routes(routes!(api::refunds::reject_refund))
        .routes(routes!(api::refunds::cancel_refund))
        .routes(routes!(api::refunds::record_return))
        .routes(routes!(api::refunds::reroute_refund))
        .routes(routes!(api::channels::channel_callback))
        .routes(routes!(
            api::terminals::register_terminal,
            api::terminals::list_terminals
        ))
        .routes(routes!(api::settlements::run_settlement))
        .routes(routes!(api::settlements::list_settlements))
        .routes(routes!(api::settlements::get_settlement))
        .routes(routes!(api::recon_lists::list_reconciliations))
        .routes(routes!(api::recon_lists::exception_queue))
        .routes(routes!(api::exports::export_refunds))
        .routes(routes!(api::exports::export_settlements))
        .routes(routes!(api::exports::export_reconciliations))
        .routes(routes!(api::exports::export_exceptions))
        .routes(routes!(api::settlements::check_ledger))
        .routes(routes!(
            api::notifications::set_webhook,
            api::notifications::get_webhook
        ))
        .routes(routes!(api::notifications::list_webhook_deliveries))
        .routes(routes!(api::notifications::list_sms))
        .routes(routes!(api::cases::open_case, api::cases::list_cases))
        .routes(routes!(api::cases::get_case))
        .routes(api::evidence::case_routes())
        .routes(routes!(api::evidence::case_evidence_content))
        .routes(routes!(api::cases::resolve_case))
        .routes(routes!(api::cases::assign_case))
        .routes(routes!(api::public::refund_by_number))
        .routes(routes!(api::public::refund_by_id))
        .routes(routes!(api::public::give_feedback))
        .routes(routes!(api::arrival::answer_arrival))
        .routes(routes!(api::public::open_public_case))
        .routes(routes!(api::operations::request_refund))
        .routes(routes!(api::reports::refund_report))
        .routes(api::reconciliations::import_routes())
        .routes(api::bank_statements::import_routes())
        .routes(routes!(api::bank_statements::get_bank_statement))
        .routes(routes!(api::reconciliations::get_reconciliation))
        .routes(routes!(api::reconciliations::list_exceptions))
        .routes(routes!(api::reconciliations::get_exception))
        .routes(routes!(api::reconciliations::resolve_exception))
        .routes(routes!(
            api::admin::verify_audit,
            api::admin::verify_audit_against
        ))
        .routes(routes!(api::admin::healthz));
    if simulated_clock {
        router.routes(routes!(api::admin::advance_clock, api::admin::get_clock))
    } else {
        router
    }
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi(simulated_clock: bool) -> utoipa::openapi::OpenApi {
    api_routes(simulated_clock).split_for_parts().1
}

/// The whole application, with the default [`REQUEST_TIMEOUT`].
pub fn router(state: AppState) -> Router {
    router_with_timeout(state, REQUEST_TIMEOUT)
}

/// The whole application; a request still unanswered after `request_timeout` (a query
/// waiting on a lock, a stalled database) is dropped — its transaction rolls back — and
/// answered 503 `request_timeout`, so no client hangs on it.
pub fn router_with_timeout(state: AppState, request_timeout: Duration) -> Router {
    let simulated = state.engine.clock.is_simulated();
    let (api, document) = api_routes(simulated).split_for_parts();
    let document = std::sync::Arc::new(document);
    crate::metrics::install();
    api.merge(crate::pages::routes())
        .route("/metrics", get(crate::metrics::metrics_with_admin_key))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .merge(crate::docs::viewer())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an internal error occurred; it was logged",
            )
            .into_response()
        }))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                answer_within(request_timeout, request, next)
            },
        ))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .with_state(state)
}

/// 503, not 408: the server was slow, not the client. The work is dropped unfinished, so
/// what it did is whatever committed before the deadline; a retry is safe (refunds are
/// idempotent by `merchant_refund_no`).
async fn answer_within(
    limit: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis(),
                "request abandoned at its deadline"
            );
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request was not answered within {} ms (the database is busy) and was abandoned; retry it",
                    limit.as_millis()
                ),
            );
            problem.retry_after_seconds = Some(1);
            problem.into_response()
        }
    }
}

async fn fallback() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "validation_error",
        "this endpoint does not take that method; see /openapi.json",
    )
    .into_response()
}
