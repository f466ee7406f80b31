//! The counts `GET /metrics` reports, read at scrape time.

use sqlx::AssertSqlSafe;

use crate::error::StoreResult;
use crate::queries_cases::overdue_condition;
use crate::{Conn, Db, on_conn};

/// Refund counts for the metrics gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundCounts {
    /// `(status, channel, count)` for every pair that has refunds.
    pub by_status_channel: Vec<(String, String, i64)>,
    /// Queued refunds whose dispatch is due (`next_attempt_at_us <= now`).
    pub queue_depth: i64,
    /// Overdue refunds (the rule of `GET /v1/refunds?overdue=true`).
    pub overdue: i64,
}

/// The grouped count; `refunds_by_status_channel` covers it.
pub const REFUNDS_BY_STATUS_CHANNEL_SQL: &str =
    "SELECT status, channel, COUNT(*) FROM refunds GROUP BY status, channel";

/// A pool's connections: open in total, idle among them, and the most it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl Db {
    pub fn pool_use(&self) -> PoolUse {
        let (size, idle, max) = match self {
            Db::Sqlite(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
            Db::Postgres(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
        };
        PoolUse {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }
}

impl Conn<'_> {
    /// Refunds by status and channel, the due queue and the overdue count at `now_us`
    /// (`unconfirmed_before_us`: sent before it and still not accepted counts as overdue).
    pub async fn refund_counts(
        &mut self,
        now_us: i64,
        unconfirmed_before_us: i64,
    ) -> StoreResult<RefundCounts> {
        let by_status_channel = on_conn!(self, |c| sqlx::query_as::<_, (String, String, i64)>(
            REFUNDS_BY_STATUS_CHANNEL_SQL
        )
        .fetch_all(&mut **c)
        .await)?;
        let queue_depth = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM refunds WHERE status = 'queued' AND next_attempt_at_us <= $1"
        )
        .bind(now_us)
        .fetch_one(&mut **c)
        .await)?;
        let overdue_sql = format!(
            "SELECT COUNT(*) FROM refunds r WHERE {}",
            overdue_condition("$1", "$2")
        );
        let overdue = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(AssertSqlSafe(
            overdue_sql.clone()
        ))
        .bind(now_us)
        .bind(unconfirmed_before_us)
        .fetch_one(&mut **c)
        .await)?;
        Ok(RefundCounts {
            by_status_channel,
            queue_depth,
            overdue,
        })
    }
}
