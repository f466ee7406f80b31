//! Lists for operations staff (issue 16): settlement statements and reconciliations by date
//! (newest business date first, keyset pages on `(business_date, id)`), the queue of
//! reconciliation exceptions across imports, and the business dates the settlement
//! scheduler still has to settle. Indexes: migration 0016.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_ledger::StatementRow;
use crate::queries_recon::{ReconExceptionRow, ReconciliationRow};

/// Where a page of a date-ordered list starts: after this row (`business_date`, `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateCursor {
    pub business_date: String,
    pub id: String,
}

/// Filters of the statement list; `from`/`to` are inclusive `YYYY-MM-DD`.
#[derive(Debug, Clone, Default)]
pub struct StatementListFilter {
    pub merchant_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<DateCursor>,
    pub limit: i64,
}

/// Filters of the reconciliation list; `from`/`to` are inclusive `YYYY-MM-DD`.
#[derive(Debug, Clone, Default)]
pub struct ReconciliationListFilter {
    pub channel: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<DateCursor>,
    pub limit: i64,
}

/// Filters of the exception queue; pages go by exception id ascending (oldest first).
#[derive(Debug, Clone, Default)]
pub struct ExceptionQueueFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub merchant_id: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// An exception with the channel and business date of its import.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedExceptionRow {
    #[sqlx(flatten)]
    pub exception: ReconExceptionRow,
    pub channel: String,
    pub business_date: String,
}

const STATEMENT_COLUMNS: &str = "id, merchant_id, business_date, payout_date, payout_fen, closing_carried_fen, statement, created_at_us";
const RECONCILIATION_COLUMNS: &str = "id, merchant_id, channel, business_date, file_sha256, lines, records, exceptions, \
    status, report, created_by, created_at_us";
const QUEUED_EXCEPTION_COLUMNS: &str = "e.id, e.reconciliation_id, e.merchant_id, e.class, e.kind, e.line_no, e.our_ref, \
    e.channel_txn_id, e.our_amount_fen, e.channel_amount_fen, e.detail, e.status, e.resolution_note, e.resolved_by, \
    e.resolved_at_us, e.created_at_us, r.channel, r.business_date";

/// A page of a table listed by business date (statements, reconciliations).
struct DatePage<'a> {
    columns: &'static str,
    table: &'static str,
    /// The column `scope` filters on.
    scope_column: &'static str,
    scope: &'a Option<String>,
    from: &'a Option<String>,
    to: &'a Option<String>,
    after: &'a Option<DateCursor>,
    limit: i64,
}

fn cursor_parts(after: &Option<DateCursor>) -> (Option<String>, Option<String>) {
    match after {
        Some(c) => (Some(c.business_date.clone()), Some(c.id.clone())),
        None => (None, None),
    }
}

impl Conn<'_> {
    /// One statement by its id.
    pub async fn get_statement_by_id(&mut self, id: &str) -> StoreResult<Option<StatementRow>> {
        let sql = format!("SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, StatementRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// A page of statements, newest business date first (ties by id, descending).
    pub async fn list_statements_page(
        &mut self,
        filter: &StatementListFilter,
    ) -> StoreResult<Vec<StatementRow>> {
        let page = DatePage {
            columns: STATEMENT_COLUMNS,
            table: "settlement_statements",
            scope_column: "merchant_id",
            scope: &filter.merchant_id,
            from: &filter.from,
            to: &filter.to,
            after: &filter.after,
            limit: filter.limit,
        };
        self.date_page(&page).await
    }

    /// A page of reconciliations, newest business date first (ties by id, descending).
    pub async fn list_reconciliations_page(
        &mut self,
        filter: &ReconciliationListFilter,
    ) -> StoreResult<Vec<ReconciliationRow>> {
        let page = DatePage {
            columns: RECONCILIATION_COLUMNS,
            table: "reconciliations",
            scope_column: "channel",
            scope: &filter.channel,
            from: &filter.from,
            to: &filter.to,
            after: &filter.after,
            limit: filter.limit,
        };
        self.date_page(&page).await
    }

    /// The rows of `page`: one scope (a merchant, a channel) or all, between two business
    /// dates, newest first, after a `(business_date, id)` cursor.
    async fn date_page<R>(&mut self, page: &DatePage<'_>) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let DatePage {
            columns,
            table,
            scope_column,
            ..
        } = page;
        let sql = format!(
            "SELECT {columns} FROM {table} \
             WHERE ($1 IS NULL OR {scope_column} = $1) AND ($2 IS NULL OR business_date >= $2) \
             AND ($3 IS NULL OR business_date <= $3) \
             AND ($4 IS NULL OR business_date < $4 OR (business_date = $4 AND id < $5)) \
             ORDER BY business_date DESC, id DESC LIMIT $6"
        );
        let (after_date, after_id) = cursor_parts(page.after);
        Ok(on_conn!(self, |c| sqlx::query_as::<_, R>(AssertSqlSafe(
            sql.clone()
        ))
        .bind(page.scope)
        .bind(page.from)
        .bind(page.to)
        .bind(&after_date)
        .bind(&after_id)
        .bind(page.limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// A page of exceptions across every import, oldest first, with the import's channel
    /// and business date.
    pub async fn list_exception_queue(
        &mut self,
        filter: &ExceptionQueueFilter,
    ) -> StoreResult<Vec<QueuedExceptionRow>> {
        let sql = format!(
            "SELECT {QUEUED_EXCEPTION_COLUMNS} FROM recon_exceptions e \
             JOIN reconciliations r ON r.id = e.reconciliation_id \
             WHERE ($1 IS NULL OR e.status = $1) AND ($2 IS NULL OR r.channel = $2) \
             AND ($3 IS NULL OR e.merchant_id = $3) AND ($4 IS NULL OR e.id > $4) \
             ORDER BY e.id LIMIT $5"
        );
        Ok(on_conn!(self, |c| {
            sqlx::query_as::<_, QueuedExceptionRow>(AssertSqlSafe(sql.clone()))
                .bind(&filter.status)
                .bind(&filter.channel)
                .bind(&filter.merchant_id)
                .bind(&filter.starting_after)
                .bind(filter.limit)
                .fetch_all(&mut **c)
                .await
        })?)
    }

    /// Business dates up to `through` (inclusive) with ledger postings and no settlement
    /// run, oldest first, at most `limit`.
    pub async fn unsettled_activity_dates(
        &mut self,
        through: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let sql = "SELECT DISTINCT p.business_date FROM ledger_postings p WHERE p.business_date <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM settlement_runs r WHERE r.business_date = p.business_date) \
                   ORDER BY p.business_date LIMIT $2";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .bind(through)
            .bind(limit)
            .fetch_all(&mut **c)
            .await)?)
    }
}
