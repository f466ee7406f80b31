//! `/v1/reports`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use yuanlu_domain::time::shanghai_day_bounds;
use yuanlu_engine::reports::{RefundReport, ReportQuery};

use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// The range and scope of a report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReportParams {
    /// Start, included: an RFC 3339 instant, or a date `YYYY-MM-DD` (its start in
    /// Asia/Shanghai). Default: 30 days before `to`.
    pub from: Option<String>,
    /// End: an RFC 3339 instant (excluded), or a date `YYYY-MM-DD` (included, to its end in
    /// Asia/Shanghai). Default: now.
    pub to: Option<String>,
    /// Admin only: one merchant.
    pub merchant_id: Option<String>,
}

/// An instant or a Shanghai date; `end` takes a date to its end.
fn bound(field: &str, value: Option<&str>, end: bool) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(instant.with_timezone(&Utc)));
    }
    // Years outside 1970–9999 are refused: far dates would overflow the day arithmetic.
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && (1970..=9999).contains(&date.year())
    {
        let (start, next) = shanghai_day_bounds(date);
        return Ok(Some(if end { next } else { start }));
    }
    Err(Problem::new(
        StatusCode::BAD_REQUEST,
        "validation_error",
        format!(
            "{field} must be a date such as 2026-11-21 (years 1970–9999) or an RFC 3339 instant"
        ),
    )
    .with_field(field))
}

/// Refunds (count and amount by status), time to arrival (p50/p90/p99 seconds from creation
/// to success), overdue refunds, cases and satisfaction — in total, per channel and per
/// merchant. A merchant key reports on its own merchant; the admin on all or one.
#[utoipa::path(get, path = "/v1/reports/refunds", tag = "reports", security(("bearer" = [])),
    params(ReportParams),
    responses((status = 200, body = RefundReport), (status = "4XX", body = Problem)))]
pub async fn refund_report(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> ApiResult<Json<RefundReport>> {
    let query = ReportQuery {
        from: bound("from", params.from.as_deref(), false)?,
        to: bound("to", params.to.as_deref(), true)?,
        merchant_id: params.merchant_id,
    };
    Ok(Json(state.engine.refund_report(&who, query).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_instants_or_shanghai_days() {
        let start = bound("from", Some("2026-11-21"), false).unwrap_or_default();
        let end = bound("to", Some("2026-11-21"), true).unwrap_or_default();
        assert_eq!(
            start.map(|d| d.to_rfc3339()).as_deref(),
            Some("2026-11-20T16:00:00+00:00")
        );
        assert_eq!(
            end.map(|d| d.to_rfc3339()).as_deref(),
            Some("2026-11-21T16:00:00+00:00")
        );
        assert!(bound("from", Some("2026-11-21T08:00:00+08:00"), false).is_ok());
        for bad in [
            "-262143-01-01",
            "+262142-12-31",
            "21/11/2026",
            "",
            "2026-13-01",
        ] {
            assert!(bound("from", Some(bad), false).is_err(), "{bad}");
        }
    }
}
