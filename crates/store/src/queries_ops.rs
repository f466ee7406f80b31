//! Issue 16 items 3–6 (operations): settings versions, the daily refund limit's counts,
//! order updates, the consumer's refund request and the review/case handling times of the
//! report.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_reports::ReportRange;
use crate::rows::PaymentRow;
use crate::sql::PAYMENT_COLUMNS;

/// One stored version of a merchant's settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SettingsVersionRow {
    pub merchant_id: String,
    pub version: i64,
    pub effective_from_us: i64,
    /// The complete settings as JSON.
    pub settings: String,
    pub changed_by: String,
}

/// A duration per merchant and channel, for the report's percentiles.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpsDurationRow {
    pub merchant_id: String,
    pub channel: String,
    pub duration_us: i64,
}

impl Conn<'_> {
    // --- settings over time ---------------------------------------------------------------

    /// The merchant's row, locked for the rest of the transaction (PostgreSQL `FOR UPDATE`;
    /// SQLite's write transaction holds the write lock already): `(settings, created_at_us)`.
    /// `NO KEY`: payments and refunds that reference the merchant are not blocked.
    pub async fn lock_merchant_settings(
        &mut self,
        merchant_id: &str,
    ) -> StoreResult<Option<(String, i64)>> {
        let sql = match self {
            Conn::Postgres(_) => {
                "SELECT settings, created_at_us FROM merchants WHERE id = $1 FOR NO KEY UPDATE"
            }
            Conn::Sqlite(_) => "SELECT settings, created_at_us FROM merchants WHERE id = $1",
        };
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (String, i64)>(sql)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Replaces the merchant's current settings.
    pub async fn update_merchant_settings(
        &mut self,
        merchant_id: &str,
        settings: &str,
    ) -> StoreResult<()> {
        let sql = "UPDATE merchants SET settings = $2 WHERE id = $1";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(merchant_id)
            .bind(settings)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every stored settings version of the merchant, oldest first.
    pub async fn settings_versions(
        &mut self,
        merchant_id: &str,
    ) -> StoreResult<Vec<SettingsVersionRow>> {
        let sql = "SELECT merchant_id, version, effective_from_us, settings, changed_by \
            FROM merchant_settings_versions WHERE merchant_id = $1 ORDER BY version";
        Ok(on_conn!(self, |c| {
            sqlx::query_as::<_, SettingsVersionRow>(sql)
                .bind(merchant_id)
                .fetch_all(&mut **c)
                .await
        })?)
    }

    pub async fn insert_settings_version(&mut self, row: &SettingsVersionRow) -> StoreResult<()> {
        let sql = "INSERT INTO merchant_settings_versions \
            (merchant_id, version, effective_from_us, settings, changed_by) VALUES ($1, $2, $3, $4, $5)";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.merchant_id)
            .bind(row.version)
            .bind(row.effective_from_us)
            .bind(&row.settings)
            .bind(&row.changed_by)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    // --- orders ---------------------------------------------------------------------------

    /// Sets the order of a payment (number and shipping status).
    pub async fn update_payment_order(
        &mut self,
        payment_id: &str,
        order_no: &str,
        shipping_status: &str,
    ) -> StoreResult<()> {
        let sql = "UPDATE payments SET order_no = $2, shipping_status = $3 WHERE id = $1";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(payment_id)
            .bind(order_no)
            .bind(shipping_status)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    // --- the consumer's refund request ------------------------------------------------------

    /// Up to `limit` payments (of any merchant) whose reference number (`rrn`) or id is
    /// `reference`, in id order.
    pub async fn payments_by_reference(
        &mut self,
        reference: &str,
        limit: i64,
    ) -> StoreResult<Vec<PaymentRow>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE rrn = $1 \
             UNION SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND rrn IS NULL \
             ORDER BY id LIMIT $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PaymentRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(reference)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// A payment's wrong-facts count of consumer requests: `(window_start_us, failures)`.
    pub async fn public_request_failures(
        &mut self,
        payment_id: &str,
    ) -> StoreResult<Option<(i64, i64)>> {
        let sql =
            "SELECT window_start_us, failures FROM public_request_failures WHERE payment_id = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(payment_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Counts one wrong-facts request for a payment in one statement, as
    /// [`Conn::record_public_lookup_failure`] does for refunds.
    pub async fn record_public_request_failure(
        &mut self,
        payment_id: &str,
        now_us: i64,
        window_from_us: i64,
    ) -> StoreResult<(i64, i64)> {
        // The payment's merchant is read with it: the counter is kept on the payment's shard.
        let sql = "INSERT INTO public_request_failures (payment_id, merchant_id, window_start_us, failures) \
            SELECT id, merchant_id, $2, 1 FROM payments WHERE id = $1 \
            ON CONFLICT (payment_id, merchant_id) DO UPDATE SET \
            failures = CASE WHEN public_request_failures.window_start_us > $3 \
                THEN public_request_failures.failures + 1 ELSE 1 END, \
            window_start_us = CASE WHEN public_request_failures.window_start_us > $3 \
                THEN public_request_failures.window_start_us ELSE $2 END \
            RETURNING window_start_us, failures";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(payment_id)
            .bind(now_us)
            .bind(window_from_us)
            .fetch_one(&mut **c)
            .await)?)
    }

    // --- report: review and case handling times ----------------------------------------------

    /// Requested → decided of up to `limit` refunds created in the range that a reviewer
    /// approved or rejected: from the refund's creation to the first audit entry deciding it.
    pub async fn report_review_durations(
        &mut self,
        range: &ReportRange,
        limit: i64,
    ) -> StoreResult<Vec<OpsDurationRow>> {
        let sql = "SELECT r.merchant_id, r.channel, \
            MIN(a.at_us) - r.created_at_us AS duration_us FROM refunds r \
            JOIN audit_log a ON a.subject_id = r.id AND a.chain = r.merchant_id \
            AND a.action IN ('refund.approved', 'refund.rejected') \
            WHERE r.created_at_us >= $1 AND r.created_at_us < $2 AND ($3 IS NULL OR r.merchant_id = $3) \
            GROUP BY r.id, r.merchant_id, r.channel, r.created_at_us ORDER BY r.id LIMIT $4";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, OpsDurationRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Opened → resolved of up to `limit` cases opened in the range and resolved since.
    pub async fn report_case_durations(
        &mut self,
        range: &ReportRange,
        limit: i64,
    ) -> StoreResult<Vec<OpsDurationRow>> {
        let sql = "SELECT c.merchant_id, r.channel, c.resolved_at_us - c.created_at_us AS duration_us \
            FROM cases c JOIN refunds r ON r.id = c.refund_id AND r.merchant_id = c.merchant_id \
            WHERE c.status = 'resolved' AND c.resolved_at_us IS NOT NULL \
            AND c.created_at_us >= $1 AND c.created_at_us < $2 AND ($3 IS NULL OR c.merchant_id = $3) \
            ORDER BY c.id LIMIT $4";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, OpsDurationRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }
}
