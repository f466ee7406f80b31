//! The ledger's and settlement's operations (see `queries.rs` for the conventions).

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::on_conn;
use crate::sql::{BALANCE_INSERT, BALANCE_UPDATE, POSTING_INSERT, entries_insert_sql};

/// One posting as stored, with its entries.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PostingRow {
    pub id: String,
    pub merchant_id: String,
    pub event: String,
    pub reference: String,
    pub payment_id: Option<String>,
    pub channel: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub business_date: String,
    pub at_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRow {
    pub posting_id: String,
    pub line_no: i64,
    pub merchant_id: String,
    pub account: String,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct BalanceRow {
    pub unsettled_fen: i64,
    pub carried_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub id: String,
    pub merchant_id: String,
    pub business_date: String,
    pub payout_date: String,
    pub payout_fen: i64,
    pub closing_carried_fen: i64,
    pub statement: String,
    pub created_at_us: i64,
}

/// Sums that prove the ledger: every entry, and per merchant account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub entries: i64,
    pub postings: i64,
    pub sum_fen: i64,
}

const POSTING_COLUMNS: &str = "id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us";
const STATEMENT_COLUMNS: &str = "id, merchant_id, business_date, payout_date, payout_fen, closing_carried_fen, statement, created_at_us";

impl Conn<'_> {
    pub async fn insert_posting(
        &mut self,
        posting: &PostingRow,
        entries: &[EntryRow],
    ) -> StoreResult<()> {
        let sql = POSTING_INSERT;
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&posting.id)
            .bind(&posting.merchant_id)
            .bind(&posting.event)
            .bind(&posting.reference)
            .bind(&posting.payment_id)
            .bind(&posting.channel)
            .bind(posting.amount_fen)
            .bind(posting.fee_fen)
            .bind(&posting.business_date)
            .bind(posting.at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        // A posting has two or three entries: one statement for all of them.
        if entries.is_empty() {
            return Ok(());
        }
        let sql = entries_insert_sql(entries.len());
        on_conn!(self, |c| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for entry in entries {
                query = query
                    .bind(&entry.posting_id)
                    .bind(entry.line_no)
                    .bind(&entry.merchant_id)
                    .bind(&entry.account)
                    .bind(entry.amount_fen);
            }
            query.execute(&mut **c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The merchant's balance row, locked for the rest of the transaction (created if new).
    pub async fn lock_balance(&mut self, merchant_id: &str) -> StoreResult<BalanceRow> {
        // Almost every merchant has its row already: one statement then, two the first time.
        if let Some(row) = self.select_balance_for_update(merchant_id).await? {
            return Ok(row);
        }
        let insert = BALANCE_INSERT;
        on_conn!(self, |c| sqlx::query(insert)
            .bind(merchant_id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        self.select_balance_for_update(merchant_id)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "balance row of {merchant_id} vanished while locked"
                ))
            })
    }

    async fn select_balance_for_update(
        &mut self,
        merchant_id: &str,
    ) -> StoreResult<Option<BalanceRow>> {
        let select = match self {
            Conn::Postgres(_) => {
                "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE"
            }
            Conn::Sqlite(_) => {
                "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1"
            }
        };
        Ok(on_conn!(self, |c| sqlx::query_as::<_, BalanceRow>(select)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// The merchant's balance without locking (zero if it has none yet).
    pub async fn get_balance(&mut self, merchant_id: &str) -> StoreResult<BalanceRow> {
        let sql = "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1";
        let row = on_conn!(self, |c| sqlx::query_as::<_, BalanceRow>(sql)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?;
        Ok(row.unwrap_or_default())
    }

    pub async fn set_balance(&mut self, merchant_id: &str, balance: BalanceRow) -> StoreResult<()> {
        let sql = BALANCE_UPDATE;
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(merchant_id)
            .bind(balance.unsettled_fen)
            .bind(balance.carried_fen)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        if affected != 1 {
            return Err(StoreError::Corrupt(format!(
                "no balance row for merchant {merchant_id}"
            )));
        }
        Ok(())
    }

    /// A merchant's postings of one business date, oldest first.
    pub async fn postings_of_day(
        &mut self,
        merchant_id: &str,
        business_date: &str,
    ) -> StoreResult<Vec<PostingRow>> {
        // The day's postings of a merchant come in pages of one value each, a JSON array of
        // arrays built by the database, not as one row each: settling a busy day reads a
        // million postings, and handing them over row by row (SQLite: a channel hop per
        // row from the connection's thread) cost more than the rest of the settlement.
        // Pages keep each value far below the databases' limits on one value (1 GB).
        const PAGE: i64 = 50_000;
        const SQLITE: &str = "SELECT json_group_array(json_array(id, event, reference, payment_id, channel, amount_fen, fee_fen, at_us) ORDER BY at_us, id) FROM (SELECT id, event, reference, payment_id, channel, amount_fen, fee_fen, at_us FROM ledger_postings WHERE merchant_id = $1 AND business_date = $2 AND (at_us, id) > ($3, $4) ORDER BY at_us, id LIMIT $5) AS page";
        const POSTGRES: &str = "SELECT CAST(COALESCE(json_agg(json_build_array(id, event, reference, payment_id, channel, amount_fen, fee_fen, at_us) ORDER BY at_us, id), '[]') AS TEXT) FROM (SELECT id, event, reference, payment_id, channel, amount_fen, fee_fen, at_us FROM ledger_postings WHERE merchant_id = $1 AND business_date = $2 AND (at_us, id) > ($3, $4) ORDER BY at_us, id LIMIT $5) AS page";
        type Packed = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
            i64,
        );
        let mut postings = Vec::new();
        let (mut after_at, mut after_id) = (i64::MIN, String::new());
        loop {
            let packed: Option<String> = match self {
                Conn::Sqlite(c) => {
                    sqlx::query_scalar(SQLITE)
                        .bind(merchant_id)
                        .bind(business_date)
                        .bind(after_at)
                        .bind(&after_id)
                        .bind(PAGE)
                        .fetch_one(&mut **c)
                        .await?
                }
                Conn::Postgres(c) => {
                    sqlx::query_scalar(POSTGRES)
                        .bind(merchant_id)
                        .bind(business_date)
                        .bind(after_at)
                        .bind(&after_id)
                        .bind(PAGE)
                        .fetch_one(&mut **c)
                        .await?
                }
            };
            let rows: Vec<Packed> = serde_json::from_str(packed.as_deref().unwrap_or("[]"))
                .map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the postings of {merchant_id} on {business_date}: {e}"
                    ))
                })?;
            let full = rows.len() as i64 == PAGE;
            postings.extend(rows.into_iter().map(
                |(id, event, reference, payment_id, channel, amount_fen, fee_fen, at_us)| {
                    PostingRow {
                        id,
                        merchant_id: merchant_id.to_string(),
                        event,
                        reference,
                        payment_id,
                        channel,
                        amount_fen,
                        fee_fen,
                        business_date: business_date.to_string(),
                        at_us,
                    }
                },
            ));
            match postings.last() {
                Some(last) if full => {
                    after_at = last.at_us;
                    after_id = last.id.clone();
                }
                _ => return Ok(postings),
            }
        }
    }

    /// Merchants with postings on a business date.
    pub async fn merchants_active_on(&mut self, business_date: &str) -> StoreResult<Vec<String>> {
        let sql = "SELECT DISTINCT merchant_id FROM ledger_postings WHERE business_date = $1 ORDER BY merchant_id";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .bind(business_date)
            .fetch_all(&mut **c)
            .await)?)
    }

    pub async fn insert_statement(&mut self, row: &StatementRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO settlement_statements ({STATEMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.business_date)
            .bind(&row.payout_date)
            .bind(row.payout_fen)
            .bind(row.closing_carried_fen)
            .bind(&row.statement)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn get_statement(
        &mut self,
        merchant_id: &str,
        business_date: &str,
    ) -> StoreResult<Option<StatementRow>> {
        let sql = format!(
            "SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE merchant_id = $1 AND business_date = $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, StatementRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(business_date)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Statements of a business date (all merchants, or one), by merchant.
    pub async fn statements_of_day(
        &mut self,
        merchant_id: Option<&str>,
        business_date: &str,
    ) -> StoreResult<Vec<StatementRow>> {
        let sql = format!(
            "SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE business_date = $1 \
             AND ($2 IS NULL OR merchant_id = $2) ORDER BY merchant_id"
        );
        let merchant_id = merchant_id.map(str::to_string);
        Ok(on_conn!(self, |c| sqlx::query_as::<_, StatementRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(business_date)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Marks a business date settled (idempotent).
    pub async fn mark_settled(&mut self, business_date: &str, at_us: i64) -> StoreResult<()> {
        let sql = "INSERT INTO settlement_runs (business_date, ran_at_us) VALUES ($1, $2) ON CONFLICT (business_date) DO NOTHING";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(business_date)
            .bind(at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Count and sum of every entry: the sum must be zero.
    pub async fn ledger_totals(&mut self) -> StoreResult<LedgerTotals> {
        let sql =
            "SELECT COUNT(*), CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM ledger_entries";
        let (entries, sum_fen): (i64, i64) =
            on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
                .fetch_one(&mut **c)
                .await)?;
        let postings_sql = "SELECT COUNT(*) FROM ledger_postings";
        let postings: i64 = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(postings_sql)
            .fetch_one(&mut **c)
            .await)?;
        Ok(LedgerTotals {
            entries,
            postings,
            sum_fen,
        })
    }

    /// Postings whose entries do not sum to zero (ids, at most `limit`).
    pub async fn unbalanced_postings(&mut self, limit: i64) -> StoreResult<Vec<String>> {
        let sql = "SELECT posting_id FROM ledger_entries GROUP BY posting_id HAVING SUM(amount_fen) <> 0 ORDER BY posting_id LIMIT $1";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .bind(limit)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// Per account, the sum of its entries (merchant accounts and acquirer accounts).
    pub async fn account_sums(&mut self) -> StoreResult<Vec<(String, i64)>> {
        let sql = "SELECT account, CAST(SUM(amount_fen) AS BIGINT) FROM ledger_entries GROUP BY account ORDER BY account";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (String, i64)>(sql)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// Up to `limit` postings with ids after `after` (`""` for the first page), by id: the
    /// ledger check walks every posting in pages.
    pub async fn postings_after(
        &mut self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<PostingRow>> {
        let sql = format!(
            "SELECT {POSTING_COLUMNS} FROM ledger_postings WHERE id > $1 ORDER BY id LIMIT $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PostingRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// The entries of the postings with ids from `first` to `last`, by posting and line.
    pub async fn entries_of_postings(
        &mut self,
        first: &str,
        last: &str,
    ) -> StoreResult<Vec<EntryRow>> {
        let sql = "SELECT posting_id, line_no, merchant_id, account, amount_fen FROM ledger_entries \
                   WHERE posting_id >= $1 AND posting_id <= $2 ORDER BY posting_id, line_no";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, EntryRow>(sql)
            .bind(first)
            .bind(last)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// Every merchant balance row.
    pub async fn all_balances(&mut self) -> StoreResult<Vec<(String, i64, i64)>> {
        let sql = "SELECT merchant_id, unsettled_fen, carried_fen FROM merchant_balances ORDER BY merchant_id";
        Ok(on_conn!(self, |c| {
            sqlx::query_as::<_, (String, i64, i64)>(sql)
                .fetch_all(&mut **c)
                .await
        })?)
    }
}
