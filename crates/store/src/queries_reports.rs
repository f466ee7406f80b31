//! Reports: refunds, cases and ratings of a range, per merchant and channel.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_cases::overdue_condition;

/// Refunds of one merchant, channel and status: how many, how much.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportStatusRow {
    pub merchant_id: String,
    pub channel: String,
    pub status: String,
    pub count: i64,
    pub amount_fen: i64,
}

/// Time from creation to success of one succeeded refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportDurationRow {
    pub merchant_id: String,
    pub channel: String,
    pub duration_us: i64,
}

/// A count per merchant, channel and a text key (a case status, `overdue`, …).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportCountRow {
    pub merchant_id: String,
    pub channel: String,
    pub key: String,
    pub count: i64,
}

/// Ratings given per merchant, channel and rating (1–5).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRatingRow {
    pub merchant_id: String,
    pub channel: String,
    pub rating: i64,
    pub count: i64,
}

/// The scope of a report: refunds (or cases, or ratings) created in `[from_us, to_us)`,
/// of one merchant or of all.
#[derive(Debug, Clone, Default)]
pub struct ReportRange {
    pub merchant_id: Option<String>,
    pub from_us: i64,
    pub to_us: i64,
}

impl Conn<'_> {
    /// The rows of a report query whose `$1`, `$2` and `$3` are the range's bounds and its
    /// merchant (`NULL` for all), and whose further placeholders are `extra`, in order.
    async fn report_rows<R>(
        &mut self,
        sql: &str,
        range: &ReportRange,
        extra: &[i64],
    ) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| {
            let mut query = sqlx::query_as::<_, R>(AssertSqlSafe(sql.to_string()))
                .bind(range.from_us)
                .bind(range.to_us)
                .bind(merchant_id.clone());
            for value in extra {
                query = query.bind(*value);
            }
            query.fetch_all(&mut **c).await
        })?)
    }

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
        self.report_rows(sql, range, &[]).await
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
        self.report_rows(sql, range, &[limit]).await
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
        self.report_rows(&sql, range, &[now_us, unconfirmed_before_us])
            .await
    }

    /// Cases opened in the range per merchant, channel of their refund and status (`key`).
    pub async fn report_cases(&mut self, range: &ReportRange) -> StoreResult<Vec<ReportCountRow>> {
        let sql = "SELECT c.merchant_id, r.channel, c.status AS key, COUNT(*) AS count \
            FROM cases c JOIN refunds r ON r.id = c.refund_id AND r.merchant_id = c.merchant_id \
            WHERE c.created_at_us >= $1 AND c.created_at_us < $2 AND ($3 IS NULL OR c.merchant_id = $3) \
            GROUP BY c.merchant_id, r.channel, c.status ORDER BY c.merchant_id, r.channel, c.status";
        self.report_rows(sql, range, &[]).await
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
        self.report_rows(sql, range, &[]).await
    }
}
