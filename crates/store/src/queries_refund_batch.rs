//! The statements of a batch of refund creates (issue 13): a group-committed batch reads
//! what its creates need with one statement per table (`= ANY($1)` on PostgreSQL, `IN (…)`
//! on SQLite) and writes each table with one multi-row statement (PostgreSQL: `UNNEST` of
//! one array per column; SQLite: a multi-row `VALUES`, split only past its variable limit),
//! so a batch costs the same number of statements whatever its size.
//!
//! Locking is the one of the single create, for every row of the batch at once and in one
//! global order: the payments (by id), then the merchants' balance rows (by merchant), then
//! their audit heads (by chain). Two batches (of two servers on one PostgreSQL) therefore
//! never wait for each other in a cycle.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::multi_row::{
    Col, RowPerKey, fetch_by_keys, insert_rows, lock_or_create, select_locked, sqlite_chunk,
    sqlite_values, update_rows,
};
use crate::queries_audit::{AuditHeadRow, AuditRow};
use crate::queries_ledger::{BalanceRow, EntryRow, PostingRow};
use crate::queries_merchants::MerchantRow;
use crate::queries_ops::SettingsVersionRow;
use crate::queries_payments::{PaymentCounters, PaymentRow};
use crate::queries_refunds::RefundRow;
use crate::rows_notify::WebhookOutboxRow;
use crate::sql::{PAYMENT_COLUMNS, REFUND_COLUMNS, REFUND_INSERT_COLUMNS};

/// The statement texts of a batch, public so that the bench runs the very same ones.
pub mod sql {
    use super::*;

    /// Refunds by `(merchant_id, merchant_refund_no)`.
    pub fn refunds_by_no_pg() -> String {
        format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE (merchant_id, merchant_refund_no) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))"
        )
    }
    pub fn refunds_by_no_sqlite(n: usize) -> String {
        format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE (merchant_id, merchant_refund_no) IN (VALUES {})",
            sqlite_values(n, 2)
        )
    }
}

impl Conn<'_> {
    /// The payments of a batch (each id once, sorted), locked in id order on PostgreSQL.
    pub async fn lock_payments_batch(&mut self, ids: &[String]) -> StoreResult<Vec<PaymentRow>> {
        let select = format!("SELECT {PAYMENT_COLUMNS} FROM payments");
        let order = match self {
            Conn::Postgres(_) => " ORDER BY id FOR UPDATE",
            Conn::Sqlite(_) => " ORDER BY id",
        };
        fetch_by_keys(self, &select, "id", ids, order).await
    }

    /// The refunds these `(merchant_id, merchant_refund_no)` name.
    pub async fn refunds_by_merchant_nos(
        &mut self,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<RefundRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Conn::Postgres(c) => {
                let (merchants, nos): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
                Ok(
                    sqlx::query_as::<_, RefundRow>(AssertSqlSafe(sql::refunds_by_no_pg()))
                        .bind(merchants)
                        .bind(nos)
                        .fetch_all(&mut **c)
                        .await?,
                )
            }
            Conn::Sqlite(c) => {
                let mut out = Vec::new();
                for chunk in keys.chunks(sqlite_chunk(2)) {
                    let mut query = sqlx::query_as::<_, RefundRow>(AssertSqlSafe(
                        sql::refunds_by_no_sqlite(chunk.len()),
                    ));
                    for (merchant, no) in chunk {
                        query = query.bind(merchant.clone()).bind(no.clone());
                    }
                    out.extend(query.fetch_all(&mut **c).await?);
                }
                Ok(out)
            }
        }
    }

    pub async fn merchants_by_ids(&mut self, ids: &[String]) -> StoreResult<Vec<MerchantRow>> {
        let select = "SELECT id, name, settings, created_at_us FROM merchants";
        fetch_by_keys(self, select, "id", ids, "").await
    }

    /// Every stored settings version of these merchants, by merchant and version.
    pub async fn settings_versions_of(
        &mut self,
        merchant_ids: &[String],
    ) -> StoreResult<Vec<SettingsVersionRow>> {
        let select = "SELECT merchant_id, version, effective_from_us, settings, changed_by \
            FROM merchant_settings_versions";
        fetch_by_keys(
            self,
            select,
            "merchant_id",
            merchant_ids,
            " ORDER BY merchant_id, version",
        )
        .await
    }

    /// The merchants (of these, sorted) that have a webhook.
    pub async fn merchants_with_webhook(
        &mut self,
        merchant_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = fetch_by_keys(
            self,
            "SELECT merchant_id FROM merchant_webhooks",
            "merchant_id",
            merchant_ids,
            "",
        )
        .await?;
        Ok(rows.into_iter().map(|(m,)| m).collect())
    }

    /// The business dates (of these) that settlement has run for.
    pub async fn settled_dates(&mut self, dates: &[String]) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = fetch_by_keys(
            self,
            "SELECT DISTINCT business_date FROM settlement_runs",
            "business_date",
            dates,
            "",
        )
        .await?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    /// The balance rows of these merchants (sorted), locked in merchant order (created if
    /// new): one statement, three when a merchant has none yet.
    pub async fn lock_balances(
        &mut self,
        merchant_ids: &[String],
    ) -> StoreResult<HashMap<String, BalanceRow>> {
        let rows = lock_or_create(self, &BALANCES, merchant_ids, |missing| {
            vec![
                Col::Text(missing.to_vec()),
                Col::Int(vec![0; missing.len()]),
                Col::Int(vec![0; missing.len()]),
            ]
        })
        .await?;
        Ok(balances_by_merchant(rows))
    }

    /// The balance rows these merchants (sorted) have, locked in merchant order; a merchant
    /// without one is absent.
    pub async fn lock_existing_balances(
        &mut self,
        merchant_ids: &[String],
    ) -> StoreResult<HashMap<String, BalanceRow>> {
        let rows = select_locked(self, &BALANCES, merchant_ids).await?;
        Ok(balances_by_merchant(rows))
    }

    /// The heads of these chains (sorted), locked in chain order (created if new).
    pub async fn lock_audit_heads(
        &mut self,
        chains: &[String],
        genesis_hash: &str,
    ) -> StoreResult<HashMap<String, AuditHeadRow>> {
        lock_or_create(self, &AUDIT_HEADS, chains, |missing| {
            vec![
                Col::Text(missing.to_vec()),
                Col::Int(vec![0; missing.len()]),
                Col::Text(vec![genesis_hash.to_string(); missing.len()]),
            ]
        })
        .await
    }

    /// The heads these chains (sorted) have, locked in chain order; a new chain is absent.
    pub async fn lock_existing_audit_heads(
        &mut self,
        chains: &[String],
    ) -> StoreResult<HashMap<String, AuditHeadRow>> {
        select_locked(self, &AUDIT_HEADS, chains).await
    }

    /// New refunds, one multi-row statement.
    pub async fn insert_refunds(&mut self, rows: &[RefundRow]) -> StoreResult<()> {
        let names: Vec<&str> = REFUND_INSERT_COLUMNS.split(", ").collect();
        let text = |f: fn(&RefundRow) -> String| Col::Text(rows.iter().map(f).collect());
        let opt = |f: fn(&RefundRow) -> Option<String>| Col::OptText(rows.iter().map(f).collect());
        let cols = vec![
            text(|r| r.id.clone()),
            text(|r| r.merchant_id.clone()),
            text(|r| r.payment_id.clone()),
            text(|r| r.merchant_refund_no.clone()),
            text(|r| r.channel.id().to_string()),
            text(|r| r.refund_type.id().to_string()),
            text(|r| r.status.id().to_string()),
            Col::Int(rows.iter().map(|r| r.amount_fen).collect()),
            Col::Int(rows.iter().map(|r| r.fee_refunded_fen).collect()),
            text(|r| r.reason.id().to_string()),
            opt(|r| r.note.clone()),
            text(|r| r.requested_by_role.id().to_string()),
            opt(|r| r.requested_by_name.clone()),
            text(|r| r.review_reasons.clone()),
            opt(|r| r.required_reviewer.clone()),
            opt(|r| r.review_note.clone()),
            opt(|r| r.reviewed_by.clone()),
            opt(|r| r.tracking_no.clone()),
            opt(|r| r.failure_reason.clone()),
            Col::OptInt(rows.iter().map(|r| r.expected_arrival_by_us).collect()),
            Col::Int(rows.iter().map(|r| r.created_at_us).collect()),
            Col::Int(rows.iter().map(|r| r.updated_at_us).collect()),
            Col::OptInt(rows.iter().map(|r| r.next_attempt_at_us).collect()),
        ];
        debug_assert_eq!(names.len(), cols.len());
        let head = format!("INSERT INTO refunds ({REFUND_INSERT_COLUMNS})");
        insert_rows(self, &head, &names, &cols, "").await?;
        Ok(())
    }

    /// Postings and their entries: two multi-row statements.
    pub async fn insert_postings(
        &mut self,
        postings: &[PostingRow],
        entries: &[EntryRow],
    ) -> StoreResult<()> {
        let names = [
            "id",
            "merchant_id",
            "event",
            "reference",
            "payment_id",
            "channel",
            "amount_fen",
            "fee_fen",
            "business_date",
            "at_us",
        ];
        let cols = vec![
            Col::Text(postings.iter().map(|p| p.id.clone()).collect()),
            Col::Text(postings.iter().map(|p| p.merchant_id.clone()).collect()),
            Col::Text(postings.iter().map(|p| p.event.clone()).collect()),
            Col::Text(postings.iter().map(|p| p.reference.clone()).collect()),
            Col::OptText(postings.iter().map(|p| p.payment_id.clone()).collect()),
            Col::OptText(postings.iter().map(|p| p.channel.clone()).collect()),
            Col::Int(postings.iter().map(|p| p.amount_fen).collect()),
            Col::Int(postings.iter().map(|p| p.fee_fen).collect()),
            Col::Text(postings.iter().map(|p| p.business_date.clone()).collect()),
            Col::Int(postings.iter().map(|p| p.at_us).collect()),
        ];
        let head = format!("INSERT INTO ledger_postings ({})", names.join(", "));
        insert_rows(self, &head, &names, &cols, "").await?;
        let names = [
            "posting_id",
            "line_no",
            "merchant_id",
            "account",
            "amount_fen",
        ];
        let cols = vec![
            Col::Text(entries.iter().map(|e| e.posting_id.clone()).collect()),
            Col::Int(entries.iter().map(|e| e.line_no).collect()),
            Col::Text(entries.iter().map(|e| e.merchant_id.clone()).collect()),
            Col::Text(entries.iter().map(|e| e.account.clone()).collect()),
            Col::Int(entries.iter().map(|e| e.amount_fen).collect()),
        ];
        let head = format!("INSERT INTO ledger_entries ({})", names.join(", "));
        insert_rows(self, &head, &names, &cols, "").await?;
        Ok(())
    }

    /// Sets these merchants' balances: one `UPDATE … FROM`.
    pub async fn set_balances(&mut self, balances: &[(String, BalanceRow)]) -> StoreResult<()> {
        let cols = vec![
            Col::Text(balances.iter().map(|(m, _)| m.clone()).collect()),
            Col::Int(balances.iter().map(|(_, b)| b.unsettled_fen).collect()),
            Col::Int(balances.iter().map(|(_, b)| b.carried_fen).collect()),
        ];
        let names = ["merchant_id", "unsettled_fen", "carried_fen"];
        let affected = update_rows(self, "merchant_balances", &names, &cols).await?;
        if affected != balances.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} of {} balance rows updated",
                affected,
                balances.len()
            )));
        }
        Ok(())
    }

    /// Sets these payments' refund counters: one `UPDATE … FROM`.
    pub async fn set_payment_counters(
        &mut self,
        counters: &[(String, PaymentCounters)],
    ) -> StoreResult<()> {
        let cols = vec![
            Col::Text(counters.iter().map(|(id, _)| id.clone()).collect()),
            Col::Int(
                counters
                    .iter()
                    .map(|(_, c)| c.amount_refunded_fen)
                    .collect(),
            ),
            Col::Int(
                counters
                    .iter()
                    .map(|(_, c)| c.amount_in_flight_fen)
                    .collect(),
            ),
            Col::Int(counters.iter().map(|(_, c)| c.fee_returned_fen).collect()),
            Col::Int(counters.iter().map(|(_, c)| c.refund_count).collect()),
            Col::Bool(counters.iter().map(|(_, c)| c.voided).collect()),
        ];
        let names = [
            "id",
            "amount_refunded_fen",
            "amount_in_flight_fen",
            "fee_returned_fen",
            "refund_count",
            "voided",
        ];
        let affected = update_rows(self, "payments", &names, &cols).await?;
        if affected != counters.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} of {} payments updated: a payment vanished during its update",
                affected,
                counters.len()
            )));
        }
        Ok(())
    }

    /// Appends audit entries (each chain's in order) and moves every chain's head to its
    /// last one: two statements.
    pub async fn append_audits(&mut self, rows: &[AuditRow]) -> StoreResult<()> {
        let names = [
            "chain",
            "seq",
            "at_us",
            "actor",
            "action",
            "subject_id",
            "data",
            "prev_hash",
            "hash",
        ];
        let cols = vec![
            Col::Text(rows.iter().map(|r| r.chain.clone()).collect()),
            Col::Int(rows.iter().map(|r| r.seq).collect()),
            Col::Int(rows.iter().map(|r| r.at_us).collect()),
            Col::Text(rows.iter().map(|r| r.actor.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.action.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.subject_id.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.data.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.prev_hash.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.hash.clone()).collect()),
        ];
        let head = format!("INSERT INTO audit_log ({})", names.join(", "));
        insert_rows(self, &head, &names, &cols, "").await?;
        let mut last: Vec<&AuditRow> = Vec::new();
        for row in rows {
            match last.iter_mut().find(|r| r.chain == row.chain) {
                Some(slot) if slot.seq < row.seq => *slot = row,
                Some(_) => {}
                None => last.push(row),
            }
        }
        let cols = vec![
            Col::Text(last.iter().map(|r| r.chain.clone()).collect()),
            Col::Int(last.iter().map(|r| r.seq).collect()),
            Col::Text(last.iter().map(|r| r.hash.clone()).collect()),
        ];
        update_rows(self, "audit_heads", &["chain", "seq", "hash"], &cols).await?;
        Ok(())
    }

    /// Webhook events: one multi-row statement.
    pub async fn insert_webhook_events(&mut self, rows: &[WebhookOutboxRow]) -> StoreResult<()> {
        let names: Vec<&str> = crate::queries_notify::WEBHOOK_OUTBOX_COLUMNS
            .split(',')
            .map(str::trim)
            .collect();
        let cols = vec![
            Col::Text(rows.iter().map(|r| r.id.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.merchant_id.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.event_type.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.refund_id.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.payload.clone()).collect()),
            Col::Text(rows.iter().map(|r| r.status.clone()).collect()),
            Col::Int(rows.iter().map(|r| r.attempts).collect()),
            Col::OptInt(rows.iter().map(|r| r.next_attempt_at_us).collect()),
            Col::OptText(rows.iter().map(|r| r.lease_owner.clone()).collect()),
            Col::OptText(rows.iter().map(|r| r.last_error.clone()).collect()),
            Col::Int(rows.iter().map(|r| r.created_at_us).collect()),
            Col::OptInt(rows.iter().map(|r| r.delivered_at_us).collect()),
        ];
        debug_assert_eq!(names.len(), cols.len());
        let head = format!(
            "INSERT INTO webhook_outbox ({})",
            crate::queries_notify::WEBHOOK_OUTBOX_COLUMNS
        );
        insert_rows(self, &head, &names, &cols, "").await?;
        Ok(())
    }
}

/// A balance row with its merchant, as read.
#[derive(sqlx::FromRow)]
struct MerchantBalance {
    merchant_id: String,
    unsettled_fen: i64,
    carried_fen: i64,
}

const BALANCES: RowPerKey<MerchantBalance> = RowPerKey {
    select: "SELECT merchant_id, unsettled_fen, carried_fen FROM merchant_balances",
    key: "merchant_id",
    insert: "INSERT INTO merchant_balances (merchant_id, unsettled_fen, carried_fen)",
    columns: &["merchant_id", "unsettled_fen", "carried_fen"],
    what: "balance row",
    key_of: |row| &row.merchant_id,
};

const AUDIT_HEADS: RowPerKey<AuditHeadRow> = RowPerKey {
    select: "SELECT chain, seq, hash FROM audit_heads",
    key: "chain",
    insert: "INSERT INTO audit_heads (chain, seq, hash)",
    columns: &["chain", "seq", "hash"],
    what: "audit head",
    key_of: |row| &row.chain,
};

fn balances_by_merchant(rows: HashMap<String, MerchantBalance>) -> HashMap<String, BalanceRow> {
    rows.into_iter()
        .map(|(merchant_id, row)| {
            let balance = BalanceRow {
                unsettled_fen: row.unsettled_fen,
                carried_fen: row.carried_fen,
            };
            (merchant_id, balance)
        })
        .collect()
}
