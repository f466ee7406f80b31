//! Reconciliation's operations (see `queries.rs` for the conventions): imports, their
//! exceptions, and the day's records an import is matched against.
//!
//! Exceptions are written with multi-row `INSERT`s, so a statement of a million lines costs
//! tens of thousands of statements at most, not a million round trips. Every batch of the
//! same size runs the same SQL text (prepared once per connection); only the last, shorter
//! batch of an import has a text of its own. The batch size differs per backend (see
//! [`exceptions_per_insert`]); the SQL does not.

use sqlx::AssertSqlSafe;

use crate::db::{Backend, Conn};
use crate::error::{StoreError, StoreResult};
use crate::on_conn;

/// Rows per multi-row `INSERT` of exceptions on PostgreSQL: 500 × 16 columns = 8,000 bound
/// values, well under its 65,535; a round trip per 500 rows.
pub const RECON_EXCEPTIONS_PER_INSERT_POSTGRES: usize = 500;
/// Rows per multi-row `INSERT` of exceptions on SQLite: 32 × 16 = 512 bound values. SQLite
/// runs in process (no round trips), but sqlx finds each `$N` parameter by name and SQLite
/// looks a name up by a linear search, so binding one statement is quadratic in its
/// parameters: measured on 100,000 rows, 500-row batches took 15 s, 32-row batches 2 s.
pub const RECON_EXCEPTIONS_PER_INSERT_SQLITE: usize = 32;

/// The rows per exception `INSERT` on a connection's backend.
pub fn exceptions_per_insert(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => RECON_EXCEPTIONS_PER_INSERT_SQLITE,
        Backend::Postgres => RECON_EXCEPTIONS_PER_INSERT_POSTGRES,
    }
}

/// One statement import as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconciliationRow {
    pub id: String,
    /// `''`: an import is acquirer-wide (see the migration).
    pub merchant_id: String,
    pub channel: String,
    pub business_date: String,
    pub file_sha256: String,
    pub lines: i64,
    pub records: i64,
    pub exceptions: i64,
    /// `clean`, `open` or `resolved`.
    pub status: String,
    /// JSON: counts and amounts per class.
    pub report: String,
    pub created_by: String,
    pub created_at_us: i64,
}

/// One exception (a statement line or record that did not match) as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconExceptionRow {
    pub id: String,
    pub reconciliation_id: String,
    /// `''` for a statement line yuanlu has no record of.
    pub merchant_id: String,
    pub class: String,
    pub kind: String,
    pub line_no: Option<i64>,
    pub our_ref: Option<String>,
    pub channel_txn_id: Option<String>,
    pub our_amount_fen: Option<i64>,
    pub channel_amount_fen: Option<i64>,
    pub detail: String,
    /// `open` or `resolved`.
    pub status: String,
    pub resolution_note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at_us: Option<i64>,
    pub created_at_us: i64,
}

/// A payment as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconPaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub amount_fen: i64,
    pub fee_fen: i64,
    /// The card network's reference, the one channel number yuanlu keeps for a payment.
    pub rrn: Option<String>,
    pub voided: bool,
    pub amount_refunded_fen: i64,
}

/// A refund as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconRefundRow {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    #[sqlx(try_from = "String")]
    pub status: yuanlu_domain::refund::RefundStatus,
    pub amount_fen: i64,
    pub channel_refund_id: Option<String>,
    /// Where the money went (`paid by the merchant directly` after a reroute to the merchant).
    pub received_account: Option<String>,
}

/// Filters of an exception list; pages go by id ascending (file order within an import).
#[derive(Debug, Clone, Default)]
pub struct ReconExceptionFilter {
    pub reconciliation_id: Option<String>,
    pub status: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

const RECONCILIATION_COLUMNS: &str = "id, merchant_id, channel, business_date, file_sha256, lines, records, exceptions, \
    status, report, created_by, created_at_us";

const EXCEPTION_COLUMNS: &str = "id, reconciliation_id, merchant_id, class, kind, line_no, our_ref, channel_txn_id, \
    our_amount_fen, channel_amount_fen, detail, status, resolution_note, resolved_by, resolved_at_us, created_at_us";

/// Columns of [`EXCEPTION_COLUMNS`].
const EXCEPTION_COLUMN_COUNT: usize = 16;

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT INTO recon_exceptions (…) VALUES (…), (…), …` for `rows` rows.
fn exceptions_insert_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|r| {
            format!(
                "({})",
                placeholders(r * EXCEPTION_COLUMN_COUNT + 1, EXCEPTION_COLUMN_COUNT)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO recon_exceptions ({EXCEPTION_COLUMNS}) VALUES {values}")
}

macro_rules! bind_exceptions {
    ($query:expr, $rows:expr) => {{
        let mut query = $query;
        for row in $rows {
            query = query
                .bind(&row.id)
                .bind(&row.reconciliation_id)
                .bind(&row.merchant_id)
                .bind(&row.class)
                .bind(&row.kind)
                .bind(row.line_no)
                .bind(&row.our_ref)
                .bind(&row.channel_txn_id)
                .bind(row.our_amount_fen)
                .bind(row.channel_amount_fen)
                .bind(&row.detail)
                .bind(&row.status)
                .bind(&row.resolution_note)
                .bind(&row.resolved_by)
                .bind(row.resolved_at_us)
                .bind(row.created_at_us);
        }
        query
    }};
}

macro_rules! bind_texts {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = query.bind(*value);
        }
        query
    }};
}

impl Conn<'_> {
    pub async fn insert_reconciliation(&mut self, row: &ReconciliationRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO reconciliations ({RECONCILIATION_COLUMNS}) VALUES ({})",
            placeholders(1, 12)
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.channel)
            .bind(&row.business_date)
            .bind(&row.file_sha256)
            .bind(row.lines)
            .bind(row.records)
            .bind(row.exceptions)
            .bind(&row.status)
            .bind(&row.report)
            .bind(&row.created_by)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Writes exceptions in batches of [`exceptions_per_insert`] rows.
    pub async fn insert_recon_exceptions(&mut self, rows: &[ReconExceptionRow]) -> StoreResult<()> {
        let per_insert = exceptions_per_insert(self.backend());
        let full_sql = exceptions_insert_sql(per_insert);
        for batch in rows.chunks(per_insert) {
            let sql = if batch.len() == per_insert {
                full_sql.clone()
            } else {
                exceptions_insert_sql(batch.len())
            };
            let inserted = on_conn!(self, |c| bind_exceptions!(
                sqlx::query(AssertSqlSafe(sql.clone())),
                batch
            )
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
            if inserted != batch.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "inserted {inserted} of {} reconciliation exceptions",
                    batch.len()
                )));
            }
        }
        Ok(())
    }

    pub async fn get_reconciliation(&mut self, id: &str) -> StoreResult<Option<ReconciliationRow>> {
        let sql = format!("SELECT {RECONCILIATION_COLUMNS} FROM reconciliations WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReconciliationRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// The import of this file for this channel, if any. The file's bytes determine its
    /// business date, so channel and hash find the one row of `(channel, business_date,
    /// file_sha256)` before the file is parsed.
    pub async fn find_reconciliation_by_file(
        &mut self,
        channel: &str,
        file_sha256: &str,
    ) -> StoreResult<Option<ReconciliationRow>> {
        let sql = format!(
            "SELECT {RECONCILIATION_COLUMNS} FROM reconciliations WHERE channel = $1 AND file_sha256 = $2 \
             ORDER BY id LIMIT 1"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReconciliationRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(channel)
        .bind(file_sha256)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn set_reconciliation_status(&mut self, id: &str, status: &str) -> StoreResult<()> {
        let sql = "UPDATE reconciliations SET status = $2 WHERE id = $1";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(status)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Exceptions of an import still open.
    pub async fn count_open_recon_exceptions(
        &mut self,
        reconciliation_id: &str,
    ) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM recon_exceptions WHERE reconciliation_id = $1 AND status = 'open'";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(reconciliation_id)
            .fetch_one(&mut **c)
            .await)?)
    }

    pub async fn get_recon_exception(
        &mut self,
        id: &str,
    ) -> StoreResult<Option<ReconExceptionRow>> {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReconExceptionRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Resolves an open exception. Returns false if it was not open (already resolved).
    pub async fn resolve_recon_exception(
        &mut self,
        id: &str,
        note: &str,
        resolved_by: &str,
        at_us: i64,
    ) -> StoreResult<bool> {
        let sql = "UPDATE recon_exceptions SET status = 'resolved', resolution_note = $2, resolved_by = $3, \
            resolved_at_us = $4 WHERE id = $1 AND status = 'open'";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(note)
            .bind(resolved_by)
            .bind(at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// A page of exceptions, by id ascending.
    pub async fn list_recon_exceptions(
        &mut self,
        filter: &ReconExceptionFilter,
    ) -> StoreResult<Vec<ReconExceptionRow>> {
        let sql = format!(
            "SELECT {EXCEPTION_COLUMNS} FROM recon_exceptions WHERE ($1 IS NULL OR reconciliation_id = $1) \
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReconExceptionRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(&filter.reconciliation_id)
        .bind(&filter.status)
        .bind(&filter.starting_after)
        .bind(filter.limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Payments captured in `[from_us, to_us)` on one of `channels`.
    pub async fn recon_payments_of_day(
        &mut self,
        channels: &[&str],
        from_us: i64,
        to_us: i64,
    ) -> StoreResult<Vec<ReconPaymentRow>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, merchant_id, amount_fen, fee_fen, rrn, voided, amount_refunded_fen \
             FROM payments WHERE captured_at_us >= $1 AND captured_at_us < $2 \
             AND channel IN ({}) ORDER BY id",
            placeholders(3, channels.len())
        );
        Ok(on_conn!(self, |c| bind_texts!(
            sqlx::query_as::<_, ReconPaymentRow>(AssertSqlSafe(sql.clone()))
                .bind(from_us)
                .bind(to_us),
            channels
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Merchants with a settlement statement for `business_date`.
    pub async fn merchants_settled_on(&mut self, business_date: &str) -> StoreResult<Vec<String>> {
        let sql = "SELECT merchant_id FROM settlement_statements WHERE business_date = $1 ORDER BY merchant_id";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .bind(business_date)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// For the payments captured in `[from_us, to_us)` on `channels`: what settlement has
    /// credited their merchant for each so far — the sum, over the payment's ledger
    /// postings on business dates (from `business_date` on) that have a settlement statement
    /// for the merchant, of sale net of fee, minus voids and refunds debited net of the fee
    /// they return, plus refunds credited back, plus the deductions the merchant keeps. Payments without such postings are absent.
    pub async fn recon_settled_nets(
        &mut self,
        channels: &[&str],
        from_us: i64,
        to_us: i64,
        business_date: &str,
    ) -> StoreResult<Vec<(String, i64)>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT l.payment_id, CAST(SUM(CASE l.event \
               WHEN 'payment_captured' THEN l.amount_fen - l.fee_fen \
               WHEN 'refund_released' THEN l.amount_fen - l.fee_fen \
               WHEN 'refund_queued' THEN l.fee_fen - l.amount_fen \
               WHEN 'void_completed' THEN l.fee_fen - l.amount_fen \
               WHEN 'refund_deducted' THEN l.amount_fen \
               WHEN 'deduction_released' THEN -l.amount_fen \
               ELSE 0 END) AS BIGINT) \
             FROM settlement_statements s JOIN ledger_postings l \
               ON l.merchant_id = s.merchant_id AND l.business_date = s.business_date \
             WHERE s.business_date >= $3 AND l.payment_id IN (SELECT p.id FROM payments p \
               WHERE p.captured_at_us >= $1 AND p.captured_at_us < $2 AND p.channel IN ({})) \
             GROUP BY l.payment_id",
            placeholders(4, channels.len())
        );
        Ok(on_conn!(self, |c| bind_texts!(
            sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql.clone()))
                .bind(from_us)
                .bind(to_us)
                .bind(business_date),
            channels
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Refunds on `channels` that reached the channel in `[from_us, to_us)`: succeeded then,
    /// or (not succeeded) sent then. Two index range scans (see the migration's partial
    /// indexes) instead of one scan of every refund.
    pub async fn recon_refunds_of_day(
        &mut self,
        channels: &[&str],
        from_us: i64,
        to_us: i64,
    ) -> StoreResult<Vec<ReconRefundRow>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        // What the channel pays is the consumer's amount: the refund less its deductions.
        let columns = "id, merchant_id, payment_id, status, amount_fen - deducted_fen AS amount_fen, \
             channel_refund_id, received_account";
        let channel_list = placeholders(3, channels.len());
        let sql = format!(
            "SELECT {columns} FROM refunds WHERE succeeded_at_us IS NOT NULL \
             AND succeeded_at_us >= $1 AND succeeded_at_us < $2 AND channel IN ({channel_list}) \
             UNION ALL \
             SELECT {columns} FROM refunds WHERE succeeded_at_us IS NULL AND dispatched_at_us IS NOT NULL \
             AND dispatched_at_us >= $1 AND dispatched_at_us < $2 AND channel IN ({channel_list}) \
             ORDER BY id"
        );
        Ok(on_conn!(self, |c| bind_texts!(
            sqlx::query_as::<_, ReconRefundRow>(AssertSqlSafe(sql.clone()))
                .bind(from_us)
                .bind(to_us),
            channels
        )
        .fetch_all(&mut **c)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_insert_numbers_every_value() {
        let sql = exceptions_insert_sql(2);
        assert!(sql.ends_with(&format!(
            "VALUES ({}), ({})",
            placeholders(1, 16),
            placeholders(17, 16)
        )));
        assert!(sql.contains("$32)"));
        assert!(!sql.contains("$33"));
    }
}
