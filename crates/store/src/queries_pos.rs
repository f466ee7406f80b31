//! POS terminals and their journal (migration 0013): what the POS host reads and writes.

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub merchant_no: String,
    pub tmk_sealed: String,
    pub mak_sealed: Option<String>,
    pub batch_no: Option<String>,
    pub signed_on_at_us: Option<i64>,
    pub created_at_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PosJournalRow {
    pub terminal_ref: String,
    pub batch_no: String,
    pub trace_no: String,
    pub mti: String,
    /// `sale`, `void`, `refund`, `preauth`, `preauth_void`, `completion`, `completion_void`,
    /// `reversal`, `settlement`, `batch_upload`.
    pub kind: String,
    pub merchant_id: String,
    pub amount_fen: i64,
    pub card_masked: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub response_code: Option<String>,
    pub answer_hex: Option<String>,
    pub payment_id: Option<String>,
    pub refund_id: Option<String>,
    pub original_rrn: Option<String>,
    pub original_trace_no: Option<String>,
    pub reversed: bool,
    pub business_date: String,
    pub created_at_us: i64,
    /// Of a `preauth`: `None` while open, `voided` or `completed` (migration 0021).
    pub preauth_state: Option<String>,
    /// Of a closed `preauth`: the RRN of the void or completion that closed it.
    pub closed_by_rrn: Option<String>,
    /// When the handler claimed the row (a lease: see `take_over_claim`).
    pub claimed_at_us: i64,
}

const TERMINAL_COLUMNS: &str = "id, merchant_id, terminal_id, merchant_no, tmk_sealed, mak_sealed, \
    batch_no, signed_on_at_us, created_at_us";
const JOURNAL_COLUMNS: &str = "terminal_ref, batch_no, trace_no, mti, kind, merchant_id, amount_fen, \
    card_masked, rrn, auth_code, response_code, answer_hex, payment_id, refund_id, original_rrn, \
    original_trace_no, reversed, business_date, created_at_us, preauth_state, closed_by_rrn, \
    claimed_at_us";

/// Approved, unreversed amounts and counts of one batch, as settlement compares them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTotals {
    pub debit_fen: i64,
    pub debit_count: i64,
    pub credit_fen: i64,
    pub credit_count: i64,
}

impl Conn<'_> {
    /// Inserts a terminal; `false` when its 41/42 pair is registered already.
    pub async fn insert_terminal(&mut self, row: &TerminalRow) -> StoreResult<bool> {
        let sql = "INSERT INTO pos_terminals (id, merchant_id, terminal_id, merchant_no, tmk_sealed, \
            mak_sealed, batch_no, signed_on_at_us, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
            ON CONFLICT (terminal_id, merchant_no) DO NOTHING";
        let done = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.terminal_id)
            .bind(&row.merchant_no)
            .bind(&row.tmk_sealed)
            .bind(&row.mak_sealed)
            .bind(&row.batch_no)
            .bind(row.signed_on_at_us)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn find_terminal(
        &mut self,
        terminal_id: &str,
        merchant_no: &str,
    ) -> StoreResult<Option<TerminalRow>> {
        let sql = format!(
            "SELECT {TERMINAL_COLUMNS} FROM pos_terminals WHERE terminal_id = $1 AND merchant_no = $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, TerminalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(terminal_id)
        .bind(merchant_no)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Terminals of one merchant, or all of them, in registration order.
    pub async fn list_terminals(
        &mut self,
        merchant_id: Option<&str>,
    ) -> StoreResult<Vec<TerminalRow>> {
        let sql = format!(
            "SELECT {TERMINAL_COLUMNS} FROM pos_terminals \
             WHERE (CAST($1 AS TEXT) IS NULL OR merchant_id = $1) ORDER BY id LIMIT 1000"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, TerminalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Records a sign-on: the new sealed MAK and the batch the terminal is on.
    pub async fn sign_on_terminal(
        &mut self,
        id: &str,
        mak_sealed: &str,
        batch_no: &str,
        at_us: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE pos_terminals SET mak_sealed = $2, batch_no = $3, signed_on_at_us = $4 WHERE id = $1";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(mak_sealed)
            .bind(batch_no)
            .bind(at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Claims a journal slot for a request; `false` when the same terminal, batch, trace
    /// and MTI were claimed before (a repeat).
    pub async fn claim_journal(&mut self, row: &PosJournalRow) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO pos_journal ({JOURNAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
             ON CONFLICT (terminal_ref, batch_no, trace_no, mti, merchant_id) DO NOTHING"
        );
        let done = on_conn!(self, |c| sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&row.terminal_ref)
            .bind(&row.batch_no)
            .bind(&row.trace_no)
            .bind(&row.mti)
            .bind(&row.kind)
            .bind(&row.merchant_id)
            .bind(row.amount_fen)
            .bind(&row.card_masked)
            .bind(&row.rrn)
            .bind(&row.auth_code)
            .bind(&row.response_code)
            .bind(&row.answer_hex)
            .bind(&row.payment_id)
            .bind(&row.refund_id)
            .bind(&row.original_rrn)
            .bind(&row.original_trace_no)
            .bind(row.reversed)
            .bind(&row.business_date)
            .bind(row.created_at_us)
            .bind(&row.preauth_state)
            .bind(&row.closed_by_rrn)
            .bind(row.claimed_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Writes the answer of a claimed request.
    pub async fn answer_journal(&mut self, row: &PosJournalRow) -> StoreResult<()> {
        let sql = "UPDATE pos_journal SET response_code = $5, answer_hex = $6, rrn = $7, auth_code = $8, \
            payment_id = $9, refund_id = $10, amount_fen = $11, card_masked = $12, original_rrn = $13 \
            WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.terminal_ref)
            .bind(&row.batch_no)
            .bind(&row.trace_no)
            .bind(&row.mti)
            .bind(&row.response_code)
            .bind(&row.answer_hex)
            .bind(&row.rrn)
            .bind(&row.auth_code)
            .bind(&row.payment_id)
            .bind(&row.refund_id)
            .bind(row.amount_fen)
            .bind(&row.card_masked)
            .bind(&row.original_rrn)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn get_journal(
        &mut self,
        terminal_ref: &str,
        batch_no: &str,
        trace_no: &str,
        mti: &str,
    ) -> StoreResult<Option<PosJournalRow>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM pos_journal \
             WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PosJournalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(terminal_ref)
        .bind(batch_no)
        .bind(trace_no)
        .bind(mti)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// The approved sale of a merchant with this RRN (the original of a void or refund).
    pub async fn find_sale_by_rrn(
        &mut self,
        merchant_id: &str,
        rrn: &str,
    ) -> StoreResult<Option<PosJournalRow>> {
        self.find_approved_by_rrn(merchant_id, rrn, "sale").await
    }

    /// The approved request of `kind` of a merchant with this RRN.
    pub async fn find_approved_by_rrn(
        &mut self,
        merchant_id: &str,
        rrn: &str,
        kind: &str,
    ) -> StoreResult<Option<PosJournalRow>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM pos_journal WHERE merchant_id = $1 AND rrn = $2 \
             AND kind = $3 AND response_code = '00' ORDER BY created_at_us LIMIT 1"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PosJournalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(rrn)
        .bind(kind)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// The merchant's latest approved, unreversed pre-authorisation with this auth code
    /// (field 38), open or not.
    pub async fn find_preauth_by_auth_code(
        &mut self,
        merchant_id: &str,
        auth_code: &str,
    ) -> StoreResult<Option<PosJournalRow>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM pos_journal WHERE merchant_id = $1 AND auth_code = $2 \
             AND kind = 'preauth' AND response_code = '00' AND reversed = FALSE \
             ORDER BY created_at_us DESC LIMIT 1"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PosJournalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(auth_code)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// The pre-authorisation a void or completion with this RRN closed.
    pub async fn find_preauth_closed_by(
        &mut self,
        merchant_id: &str,
        closer_rrn: &str,
    ) -> StoreResult<Option<PosJournalRow>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM pos_journal WHERE merchant_id = $1 \
             AND closed_by_rrn = $2 AND kind = 'preauth' LIMIT 1"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PosJournalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(closer_rrn)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Closes an open pre-authorisation (`voided` or `completed`) for the request with RRN
    /// `by`; `true` also when `by` had closed it already (a retry).
    pub async fn close_preauth(
        &mut self,
        key: &PosJournalRow,
        state: &str,
        by: &str,
    ) -> StoreResult<bool> {
        let sql = "UPDATE pos_journal SET preauth_state = $5, closed_by_rrn = $6 \
            WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4 \
            AND kind = 'preauth' AND reversed = FALSE \
            AND (preauth_state IS NULL OR (preauth_state = $5 AND closed_by_rrn = $6))";
        let done = on_conn!(self, |c| sqlx::query(sql)
            .bind(&key.terminal_ref)
            .bind(&key.batch_no)
            .bind(&key.trace_no)
            .bind(&key.mti)
            .bind(state)
            .bind(by)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Reopens a pre-authorisation the request with RRN `by` had closed; `false` when it
    /// was not closed by it.
    pub async fn reopen_preauth(&mut self, key: &PosJournalRow, by: &str) -> StoreResult<bool> {
        let sql = "UPDATE pos_journal SET preauth_state = NULL, closed_by_rrn = NULL \
            WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4 \
            AND kind = 'preauth' AND closed_by_rrn = $5";
        let done = on_conn!(self, |c| sqlx::query(sql)
            .bind(&key.terminal_ref)
            .bind(&key.batch_no)
            .bind(&key.trace_no)
            .bind(&key.mti)
            .bind(by)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Takes over a claimed request still unanswered since `claimed_at_us` (its host died
    /// before answering); `true` when this caller now holds it.
    pub async fn take_over_claim(
        &mut self,
        key: &PosJournalRow,
        claimed_at_us: i64,
        now_us: i64,
    ) -> StoreResult<bool> {
        let sql = "UPDATE pos_journal SET claimed_at_us = $6 \
            WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4 \
            AND response_code IS NULL AND claimed_at_us = $5";
        let done = on_conn!(self, |c| sqlx::query(sql)
            .bind(&key.terminal_ref)
            .bind(&key.batch_no)
            .bind(&key.trace_no)
            .bind(&key.mti)
            .bind(claimed_at_us)
            .bind(now_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// The id of the merchant's payment recorded with this RRN at this terminal (field 41),
    /// if any: how a taken-over sale finds out whether its first run got that far.
    pub async fn pos_payment_by_rrn(
        &mut self,
        merchant_id: &str,
        terminal_id: &str,
        rrn: &str,
    ) -> StoreResult<Option<String>> {
        let sql = "SELECT id FROM payments WHERE rrn = $1 AND merchant_id = $2 AND terminal_id = $3 \
            ORDER BY created_at_us LIMIT 1";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .bind(rrn)
            .bind(merchant_id)
            .bind(terminal_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// The approved requests of a batch with this trace that move money (sale, void,
    /// refund, completion, completion void), as a batch upload line names them.
    pub async fn journal_of_trace(
        &mut self,
        terminal_ref: &str,
        batch_no: &str,
        trace_no: &str,
    ) -> StoreResult<Vec<PosJournalRow>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM pos_journal \
             WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 \
             AND kind IN ('sale', 'void', 'refund', 'completion', 'completion_void') \
             ORDER BY mti"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PosJournalRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(terminal_ref)
        .bind(batch_no)
        .bind(trace_no)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Marks an approved request reversed; `false` when it already was.
    pub async fn mark_journal_reversed(
        &mut self,
        terminal_ref: &str,
        batch_no: &str,
        trace_no: &str,
        mti: &str,
    ) -> StoreResult<bool> {
        let sql = "UPDATE pos_journal SET reversed = TRUE \
            WHERE terminal_ref = $1 AND batch_no = $2 AND trace_no = $3 AND mti = $4 AND reversed = FALSE";
        let done = on_conn!(self, |c| sqlx::query(sql)
            .bind(terminal_ref)
            .bind(batch_no)
            .bind(trace_no)
            .bind(mti)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Of a batch's approved, unreversed requests: sales and completions less their voids
    /// (debits) and refunds (credits). Pre-authorisations move no money and are left out.
    pub async fn batch_totals(
        &mut self,
        terminal_ref: &str,
        batch_no: &str,
    ) -> StoreResult<BatchTotals> {
        let sql = "SELECT \
            CAST(COALESCE(SUM(CASE kind WHEN 'sale' THEN amount_fen WHEN 'completion' THEN amount_fen \
                WHEN 'void' THEN -amount_fen WHEN 'completion_void' THEN -amount_fen ELSE 0 END), 0) AS BIGINT), \
            CAST(COALESCE(SUM(CASE kind WHEN 'sale' THEN 1 WHEN 'completion' THEN 1 \
                WHEN 'void' THEN -1 WHEN 'completion_void' THEN -1 ELSE 0 END), 0) AS BIGINT), \
            CAST(COALESCE(SUM(CASE kind WHEN 'refund' THEN amount_fen ELSE 0 END), 0) AS BIGINT), \
            CAST(COALESCE(SUM(CASE kind WHEN 'refund' THEN 1 ELSE 0 END), 0) AS BIGINT) \
            FROM pos_journal WHERE terminal_ref = $1 AND batch_no = $2 AND response_code = '00' \
            AND reversed = FALSE";
        let (debit_fen, debit_count, credit_fen, credit_count): (i64, i64, i64, i64) =
            on_conn!(self, |c| sqlx::query_as(sql)
                .bind(terminal_ref)
                .bind(batch_no)
                .fetch_one(&mut **c)
                .await)?;
        Ok(BatchTotals {
            debit_fen,
            debit_count,
            credit_fen,
            credit_count,
        })
    }
}
