//! Reports: refunds, cases and ratings of a range, per merchant and channel.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_cases::overdue_condition;
use crate::rows_notify::*;

/// The scope of a report: refunds (or cases, or ratings) created in `[from_us, to_us)`,
/// of one merchant or of all.
#[derive(Debug, Clone, Default)]
pub struct ReportRange {
    pub merchant_id: Option<String>,
    pub from_us: i64,
    pub to_us: i64,
}

impl Conn<'_> {
    // --- reports ------------------------------------------------------------------------
    // (PostgreSQL sums BIGINT as NUMERIC; the casts keep both backends decoding `i64`.)

    /// Refunds created in the range: count and amount per merchant, channel and status.
    pub async fn report_refund_statuses(
        &mut self,
        range: &ReportRange,
    ) -> StoreResult<Vec<ReportStatusRow>> {
        let sql = "SELECT merchant_id, channel, status, COUNT(*) AS count, \
            CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount_fen FROM refunds \
            WHERE created_at_us >= $1 AND created_at_us < $2 AND ($3 IS NULL OR merchant_id = $3) \
            GROUP BY merchant_id, channel, status ORDER BY merchant_id, channel, status";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportStatusRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Creation-to-success durations of up to `limit` succeeded refunds created in the range.
    pub async fn report_arrival_durations(
        &mut self,
        range: &ReportRange,
        limit: i64,
    ) -> StoreResult<Vec<ReportDurationRow>> {
        let sql = "SELECT merchant_id, channel, succeeded_at_us - created_at_us AS duration_us FROM refunds \
            WHERE status = 'succeeded' AND succeeded_at_us IS NOT NULL \
            AND created_at_us >= $1 AND created_at_us < $2 AND ($3 IS NULL OR merchant_id = $3) \
            ORDER BY id LIMIT $4";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportDurationRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Refunds created in the range that are overdue now, per merchant and channel
    /// (`key` is `overdue`).
    pub async fn report_overdue(
        &mut self,
        range: &ReportRange,
        now_us: i64,
        unconfirmed_before_us: i64,
    ) -> StoreResult<Vec<ReportCountRow>> {
        let sql = format!(
            "SELECT r.merchant_id, r.channel, 'overdue' AS key, COUNT(*) AS count FROM refunds r \
             WHERE r.created_at_us >= $1 AND r.created_at_us < $2 AND ($3 IS NULL OR r.merchant_id = $3) \
             AND {} GROUP BY r.merchant_id, r.channel ORDER BY r.merchant_id, r.channel",
            overdue_condition("$4", "$5")
        );
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportCountRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(now_us)
        .bind(unconfirmed_before_us)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Cases opened in the range per merchant, channel of their refund and status (`key`).
    pub async fn report_cases(&mut self, range: &ReportRange) -> StoreResult<Vec<ReportCountRow>> {
        let sql = "SELECT c.merchant_id, r.channel, c.status AS key, COUNT(*) AS count \
            FROM cases c JOIN refunds r ON r.id = c.refund_id AND r.merchant_id = c.merchant_id \
            WHERE c.created_at_us >= $1 AND c.created_at_us < $2 AND ($3 IS NULL OR c.merchant_id = $3) \
            GROUP BY c.merchant_id, r.channel, c.status ORDER BY c.merchant_id, r.channel, c.status";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportCountRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Ratings given in the range per merchant, channel of the refund and rating.
    pub async fn report_ratings(
        &mut self,
        range: &ReportRange,
    ) -> StoreResult<Vec<ReportRatingRow>> {
        let sql = "SELECT f.merchant_id, r.channel, f.rating, COUNT(*) AS count \
            FROM feedback f JOIN refunds r ON r.id = f.refund_id AND r.merchant_id = f.merchant_id \
            WHERE f.created_at_us >= $1 AND f.created_at_us < $2 AND ($3 IS NULL OR f.merchant_id = $3) \
            GROUP BY f.merchant_id, r.channel, f.rating ORDER BY f.merchant_id, r.channel, f.rating";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportRatingRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }
}
