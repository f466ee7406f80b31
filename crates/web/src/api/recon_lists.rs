//! `GET /v1/reconciliations` (imports by channel and date) and
//! `GET /v1/reconciliation-exceptions` (one queue across imports). Admin only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use yuanlu_engine::ops_lists::{ExceptionQueueQuery, QueuedException, ReconciliationListQuery};
use yuanlu_engine::reconciliation::{ExceptionStatus, ReconciliationView, StatementChannel};
use yuanlu_engine::views::Page;

use super::page_limit;
use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

fn bad(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "validation_error", detail).with_field(field)
}

pub(crate) fn date_param(field: &str, value: Option<&str>) -> Result<Option<NaiveDate>, Problem> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| bad(field, format!("{field} must be a date as YYYY-MM-DD")))
        })
        .transpose()
}

fn channel_param(value: Option<&str>) -> Result<Option<String>, Problem> {
    value
        .map(|id| {
            StatementChannel::parse_id(id)
                .map(|c| c.id().to_string())
                .ok_or_else(|| {
                    let ids = StatementChannel::ALL.map(StatementChannel::id).join(", ");
                    bad(
                        "channel",
                        format!("unknown channel {id:?}; use one of {ids}"),
                    )
                })
        })
        .transpose()
}

/// Filters of the reconciliation list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReconciliationListParams {
    /// `wechat`, `alipay`, `card` or `yuanlu`.
    pub channel: Option<String>,
    /// `YYYY-MM-DD`, inclusive: statements of business dates from this one.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub to: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// A reconciliation id (`recon_…`) from the previous page.
    pub starting_after: Option<String>,
}

impl ReconciliationListParams {
    pub fn query(&self) -> Result<ReconciliationListQuery, Problem> {
        Ok(ReconciliationListQuery {
            channel: channel_param(self.channel.as_deref())?,
            from: date_param("from", self.from.as_deref())?,
            to: date_param("to", self.to.as_deref())?,
            limit: page_limit(self.limit)?,
            starting_after: self.starting_after.clone(),
        })
    }
}

/// Statement imports, newest business date first (ties by id), with their reports and
/// how many exceptions are still open.
#[utoipa::path(get, path = "/v1/reconciliations", tag = "reconciliations", security(("bearer" = [])),
    params(ReconciliationListParams),
    responses((status = 200, body = Page<ReconciliationView>), (status = "4XX", body = Problem)))]
pub async fn list_reconciliations(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<ReconciliationListParams>,
) -> ApiResult<Json<Page<ReconciliationView>>> {
    who.require_admin()?;
    let query = params.query()?;
    Ok(Json(state.engine.list_reconciliations(&who, query).await?))
}

/// Filters of the exception queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExceptionQueueParams {
    /// `open` or `resolved`; every exception without it.
    pub status: Option<String>,
    /// The import's channel: `wechat`, `alipay`, `card` or `yuanlu`.
    pub channel: Option<String>,
    /// The merchant of the payment or refund.
    pub merchant_id: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// An exception id (`rex_…`) from the previous page.
    pub starting_after: Option<String>,
}

impl ExceptionQueueParams {
    pub fn query(&self) -> Result<ExceptionQueueQuery, Problem> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                ExceptionStatus::parse(s).ok_or_else(|| {
                    bad(
                        "status",
                        format!("unknown status {s:?}; use open or resolved"),
                    )
                })
            })
            .transpose()?;
        Ok(ExceptionQueueQuery {
            status,
            channel: channel_param(self.channel.as_deref())?,
            merchant_id: self.merchant_id.clone(),
            limit: page_limit(self.limit)?,
            starting_after: self.starting_after.clone(),
        })
    }
}

/// One queue of reconciliation exceptions across every import, oldest first, each with
/// its import's channel and business date, its age (`age_seconds`, `age_days`) and the
/// money at stake (`amount`, `difference`); `?status=open` is the work still to do.
#[utoipa::path(get, path = "/v1/reconciliation-exceptions", tag = "reconciliations", security(("bearer" = [])),
    params(ExceptionQueueParams),
    responses((status = 200, body = Page<QueuedException>), (status = "4XX", body = Problem)))]
pub async fn exception_queue(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<ExceptionQueueParams>,
) -> ApiResult<Json<Page<QueuedException>>> {
    who.require_admin()?;
    let query = params.query()?;
    Ok(Json(state.engine.exception_queue(&who, query).await?))
}
