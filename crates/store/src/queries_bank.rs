//! Merchants' bank statement imports (migration 0024) and the payouts they are checked
//! against.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_ledger::StatementRow;

/// One bank statement import as stored; `report` is the whole report as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BankImportRow {
    pub id: String,
    pub merchant_id: String,
    pub file_sha256: String,
    pub first_date: String,
    pub last_date: String,
    pub lines: i64,
    pub paid: i64,
    pub different_amount: i64,
    pub missing: i64,
    pub pending: i64,
    pub unexplained: i64,
    pub report: String,
    pub created_by: String,
    pub created_at_us: i64,
}

const IMPORT_COLUMNS: &str = "id, merchant_id, file_sha256, first_date, last_date, lines, paid, \
    different_amount, missing, pending, unexplained, report, created_by, created_at_us";

const STATEMENT_COLUMNS: &str = "id, merchant_id, business_date, payout_date, payout_fen, \
    closing_carried_fen, statement, created_at_us";

impl Conn<'_> {
    pub async fn insert_bank_import(&mut self, row: &BankImportRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO bank_statement_imports ({IMPORT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.file_sha256)
            .bind(&row.first_date)
            .bind(&row.last_date)
            .bind(row.lines)
            .bind(row.paid)
            .bind(row.different_amount)
            .bind(row.missing)
            .bind(row.pending)
            .bind(row.unexplained)
            .bind(&row.report)
            .bind(&row.created_by)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The import of this file for this merchant, if there was one.
    pub async fn find_bank_import_by_file(
        &mut self,
        merchant_id: &str,
        file_sha256: &str,
    ) -> StoreResult<Option<BankImportRow>> {
        let sql = format!(
            "SELECT {IMPORT_COLUMNS} FROM bank_statement_imports \
             WHERE merchant_id = $1 AND file_sha256 = $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, BankImportRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(file_sha256)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn get_bank_import(&mut self, id: &str) -> StoreResult<Option<BankImportRow>> {
        let sql = format!("SELECT {IMPORT_COLUMNS} FROM bank_statement_imports WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, BankImportRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// A merchant's imports, newest first, at most `limit`.
    pub async fn list_bank_imports(
        &mut self,
        merchant_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<BankImportRow>> {
        let sql = format!(
            "SELECT {IMPORT_COLUMNS} FROM bank_statement_imports WHERE merchant_id = $1 \
             ORDER BY created_at_us DESC, id DESC LIMIT $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, BankImportRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// The merchant's statements with a payout (> 0) on a payout date from `from` to `to`
    /// (`YYYY-MM-DD`, both included), by payout date.
    pub async fn payouts_between(
        &mut self,
        merchant_id: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<StatementRow>> {
        let sql = format!(
            "SELECT {STATEMENT_COLUMNS} FROM settlement_statements \
             WHERE merchant_id = $1 AND payout_date >= $2 AND payout_date <= $3 AND payout_fen > 0 \
             ORDER BY payout_date, id"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, StatementRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **c)
        .await)?)
    }
}
