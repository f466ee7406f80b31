//! Acquirer operations: audit verification, the simulated clock, health.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yuanlu_engine::audit::{AuditVerification, ChainHead};

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiResult, Problem};

/// Longest single clock move: ten years.
pub const CLOCK_ADVANCE_SECONDS_MAX: i64 = 10 * 366 * 24 * 3600;

/// Walks the audit chains and names the first entry that was changed, removed or reordered.
/// `heads` are the chains' heads: keep them, and give them back later (`POST`, or `yuanlu
/// audit verify --expect-heads FILE`) to catch a chain whose tail was cut since.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerification), (status = "4XX", body = Problem)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<AuditVerification>> {
    who.require_admin()?;
    Ok(Json(state.engine.verify_audit().await?))
}

/// Heads kept from an earlier verification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectHeads {
    pub expect_heads: Vec<ChainHead>,
}

/// Like `GET`, and each chain must still hold the heads kept earlier: `ok: false` with
/// `shorter_than_kept_head` or `differs_from_kept_head` when it does not.
#[utoipa::path(post, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    request_body = ExpectHeads,
    responses((status = 200, body = AuditVerification), (status = "4XX", body = Problem)))]
pub async fn verify_audit_against(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<ExpectHeads>,
) -> ApiResult<Json<AuditVerification>> {
    who.require_admin()?;
    Ok(Json(
        state
            .engine
            .verify_audit_against(&input.expect_heads)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds to move forward, 1 to ten years.
    pub seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockNow {
    pub now: DateTime<Utc>,
}

/// Moves the simulated clock forward (exists only under `--clock simulated`); audited on
/// the `system` chain (`clock.advanced`: actor, seconds, from, to).
#[utoipa::path(post, path = "/v1/admin/clock/advance", tag = "admin", security(("bearer" = [])),
    request_body = AdvanceClock,
    responses((status = 200, body = ClockNow), (status = "4XX", body = Problem)))]
pub async fn advance_clock(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(input): ApiJson<AdvanceClock>,
) -> ApiResult<Json<ClockNow>> {
    who.require_admin()?;
    if !(1..=CLOCK_ADVANCE_SECONDS_MAX).contains(&input.seconds) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("seconds must be between 1 and {CLOCK_ADVANCE_SECONDS_MAX}"),
        )
        .with_field("seconds"));
    }
    let now = state
        .engine
        .advance_clock_audited(&who, input.seconds)
        .await?
        .ok_or_else(|| Problem::not_found("endpoint: the clock is not simulated"))?;
    Ok(Json(ClockNow { now }))
}

/// The simulated clock's time (exists only under `--clock simulated`).
#[utoipa::path(get, path = "/v1/admin/clock", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ClockNow), (status = "4XX", body = Problem)))]
pub async fn get_clock(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<ClockNow>> {
    who.require_admin()?;
    Ok(Json(ClockNow {
        now: state.engine.clock.now(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers and its database does.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.engine.database_answers().await.map_err(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database does not answer",
        )
    })?;
    Ok(Json(Health { status: "ok" }))
}
