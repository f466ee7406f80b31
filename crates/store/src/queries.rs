//! The store's operations. Each is one SQL text run on either backend by [`on_conn!`];
//! the few that lock differ per backend and say why.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::on_conn;
use crate::rows::*;
use crate::sql::{
    API_KEY_COLUMNS, AUDIT_HEAD_INSERT, AUDIT_HEAD_UPDATE, AUDIT_INSERT, MERCHANT_BY_ID,
    PAYMENT_COLUMNS, REFUND_COLUMNS, REFUND_INSERT_COLUMNS, SETTLED_COUNT, UPDATE_PAYMENT_COUNTERS,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType};

/// A value bound to a dynamically built query.
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Int(i64),
}

/// Builds `WHERE … ORDER BY id DESC LIMIT n` with numbered placeholders valid on both backends.
#[derive(Debug, Default)]
struct ListQuery {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

impl ListQuery {
    fn push(&mut self, condition_with_placeholder: &str, value: Bind) {
        self.binds.push(value);
        let n = self.binds.len();
        self.conditions
            .push(condition_with_placeholder.replace('?', &format!("${n}")));
    }

    fn sql(&self, columns: &str, table: &str, limit: i64) -> String {
        let filter = if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        };
        format!("SELECT {columns} FROM {table}{filter} ORDER BY id DESC LIMIT {limit}")
    }
}

/// Filters of `GET /v1/payments`; `merchant_id` is always set for a merchant key.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub merchant_id: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// Filters of `GET /v1/refunds`.
#[derive(Debug, Clone, Default)]
pub struct RefundFilter {
    pub merchant_id: Option<String>,
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
    pub channel: Option<Channel>,
    pub created_from_us: Option<i64>,
    pub created_to_us: Option<i64>,
    /// `(now, unconfirmed_before)`: only refunds under way past their expected arrival at
    /// `now`, or sent before `unconfirmed_before` and still not confirmed by the channel.
    pub overdue: Option<(i64, i64)>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

impl Conn<'_> {
    // --- merchants and keys -------------------------------------------------------------

    pub async fn insert_merchant(&mut self, row: &MerchantRow) -> StoreResult<()> {
        on_conn!(self, |c| sqlx::query(
            "INSERT INTO merchants (id, name, settings, created_at_us) VALUES ($1, $2, $3, $4)"
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.settings)
        .bind(row.created_at_us)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn get_merchant(&mut self, id: &str) -> StoreResult<Option<MerchantRow>> {
        let sql = MERCHANT_BY_ID;
        Ok(on_conn!(self, |c| sqlx::query_as::<_, MerchantRow>(sql)
            .bind(id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    pub async fn insert_api_key(&mut self, row: &ApiKeyRow) -> StoreResult<()> {
        self.insert_api_key_if_new(row).await.map(|_| ())
    }

    /// Inserts the key unless its hash is stored already; `false` when it was.
    pub async fn insert_api_key_if_new(&mut self, row: &ApiKeyRow) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (key_hash) DO NOTHING"
        );
        let inserted = on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.key_hash)
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.role)
            .bind(row.created_at_us)
            .bind(&row.prefix)
            .bind(&row.origin)
            .bind(row.expires_at_us)
            .bind(row.revoked_at_us)
            .bind(row.last_used_at_us)
            .bind(&row.replaced_by)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// The key with this hash, whatever its state (the caller decides whether it is live).
    pub async fn find_api_key(&mut self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
        let sql = crate::sql::API_KEY_BY_HASH.as_str();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ApiKeyRow>(sql)
            .bind(key_hash)
            .fetch_optional(&mut **c)
            .await)?)
    }

    pub async fn get_api_key(&mut self, id: &str) -> StoreResult<Option<ApiKeyRow>> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ApiKeyRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// A page of one merchant's keys, or of the admin keys when `merchant_id` is `None`,
    /// newest first.
    pub async fn list_api_keys(
        &mut self,
        merchant_id: Option<&str>,
        starting_after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKeyRow>> {
        let mut query = ListQuery::default();
        match merchant_id {
            Some(id) => query.push("merchant_id = ?", Bind::Text(id.to_string())),
            None => query.conditions.push("role = 'admin'".to_string()),
        }
        if let Some(after) = starting_after {
            query.push("id < ?", Bind::Text(after.to_string()));
        }
        let sql = query.sql(API_KEY_COLUMNS, "api_keys", limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, ApiKeyRow>(AssertSqlSafe(sql.clone())),
            &query.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Marks the key revoked at `at_us` unless it already is; `false` when it was.
    pub async fn revoke_api_key(&mut self, id: &str, at_us: i64) -> StoreResult<bool> {
        let sql = "UPDATE api_keys SET revoked_at_us = $1 WHERE id = $2 AND revoked_at_us IS NULL";
        let changed = on_conn!(self, |c| sqlx::query(sql)
            .bind(at_us)
            .bind(id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Ends a rotated key's life at `expires_at_us` and names its successor.
    pub async fn expire_api_key(
        &mut self,
        id: &str,
        expires_at_us: i64,
        replaced_by: &str,
    ) -> StoreResult<()> {
        let sql = "UPDATE api_keys SET expires_at_us = $1, replaced_by = $2 WHERE id = $3";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(expires_at_us)
            .bind(replaced_by)
            .bind(id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a use; never moves `last_used_at_us` back.
    pub async fn touch_api_key(&mut self, id: &str, at_us: i64) -> StoreResult<()> {
        let sql = "UPDATE api_keys SET last_used_at_us = $1 \
            WHERE id = $2 AND (last_used_at_us IS NULL OR last_used_at_us < $1)";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(at_us)
            .bind(id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Admin keys that still work at `now_us`, other than `except_id`.
    pub async fn count_live_admin_keys(
        &mut self,
        now_us: i64,
        except_id: &str,
    ) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND id <> $1 \
            AND revoked_at_us IS NULL AND (expires_at_us IS NULL OR expires_at_us > $2)";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(except_id)
            .bind(now_us)
            .fetch_one(&mut **c)
            .await)?)
    }

    // --- payments -----------------------------------------------------------------------

    pub async fn insert_payment(&mut self, row: &PaymentRow) -> StoreResult<()> {
        let sql = "INSERT INTO payments (id, merchant_id, terminal_id, channel, amount_fen, currency, fee_fen, kind, \
            member, payer_account, payer_bank, batch_no, trace_no, rrn, order_no, shipping_status, phone, \
            captured_at_us, created_at_us) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.terminal_id)
            .bind(row.channel.id())
            .bind(row.amount_fen)
            .bind(&row.currency)
            .bind(row.fee_fen)
            .bind(row.kind.id())
            .bind(row.member)
            .bind(&row.payer_account)
            .bind(&row.payer_bank)
            .bind(&row.batch_no)
            .bind(&row.trace_no)
            .bind(&row.rrn)
            .bind(&row.order_no)
            .bind(&row.shipping_status)
            .bind(&row.phone)
            .bind(row.captured_at_us)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A payment of `merchant_id` (any merchant's when `None`, for the admin).
    pub async fn get_payment(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        self.select_payment(merchant_id, id, false).await
    }

    /// The payment, locked for the rest of the transaction. PostgreSQL: `FOR UPDATE`, so
    /// concurrent refunds of one payment queue behind each other. SQLite: the transaction
    /// already holds the database's write lock (`BEGIN IMMEDIATE`).
    pub async fn lock_payment(
        &mut self,
        merchant_id: &str,
        id: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        self.select_payment(Some(merchant_id), id, true).await
    }

    /// Locks these payments in id order, up front (PostgreSQL; SQLite's write transaction
    /// holds the only write lock already). A transaction that locks several payments this
    /// way before any merchant row cannot deadlock with another doing the same.
    pub async fn lock_payments_in_order(&mut self, ids: &[String]) -> StoreResult<()> {
        let Conn::Postgres(c) = self else {
            return Ok(());
        };
        let sql = "SELECT id FROM payments WHERE id = ANY($1) ORDER BY id FOR UPDATE";
        sqlx::query(sql).bind(ids).fetch_all(&mut **c).await?;
        Ok(())
    }

    async fn select_payment(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PaymentRow>> {
        let lock_clause = if lock && matches!(self, Conn::Postgres(_)) {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2){lock_clause}"
        );
        let merchant_id = merchant_id.map(str::to_string);
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PaymentRow>(
            AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(merchant_id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn update_payment_counters(
        &mut self,
        id: &str,
        counters: &PaymentCounters,
    ) -> StoreResult<()> {
        let sql = UPDATE_PAYMENT_COUNTERS;
        let result = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(counters.amount_refunded_fen)
            .bind(counters.amount_in_flight_fen)
            .bind(counters.fee_returned_fen)
            .bind(counters.refund_count)
            .bind(counters.voided)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        if result != 1 {
            return Err(StoreError::Corrupt(format!(
                "payment {id} vanished during its update"
            )));
        }
        Ok(())
    }

    pub async fn list_payments(&mut self, filter: &PaymentFilter) -> StoreResult<Vec<PaymentRow>> {
        let mut query = ListQuery::default();
        if let Some(merchant_id) = &filter.merchant_id {
            query.push("merchant_id = ?", Bind::Text(merchant_id.clone()));
        }
        if let Some(after) = &filter.starting_after {
            query.push("id < ?", Bind::Text(after.clone()));
        }
        let sql = query.sql(PAYMENT_COLUMNS, "payments", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, PaymentRow>(AssertSqlSafe(sql.clone())),
            &query.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Sales captured and refunds created (and not released) by a merchant in `[from, to)`.
    /// (PostgreSQL sums BIGINT as NUMERIC; the cast keeps both backends decoding `i64`.)
    pub async fn merchant_range_totals(
        &mut self,
        merchant_id: &str,
        from_us: i64,
        to_us: i64,
    ) -> StoreResult<RangeTotals> {
        // Both sums in one round trip.
        let sql = crate::sql::DAY_TOTALS.as_str();
        let (sales_fen, refunds_fen): (i64, i64) =
            on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
                .bind(merchant_id)
                .bind(from_us)
                .bind(to_us)
                .fetch_one(&mut **c)
                .await)?;
        Ok(RangeTotals {
            sales_fen,
            refunds_fen,
        })
    }

    /// Settlement has run for this business date (`YYYY-MM-DD`).
    pub async fn is_settled(&mut self, business_date: &str) -> StoreResult<bool> {
        let sql = SETTLED_COUNT;
        let count: i64 = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(business_date)
            .fetch_one(&mut **c)
            .await)?;
        Ok(count > 0)
    }

    // --- refunds ------------------------------------------------------------------------

    pub async fn insert_refund(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO refunds ({REFUND_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.payment_id)
            .bind(&row.merchant_refund_no)
            .bind(row.channel.id())
            .bind(row.refund_type.id())
            .bind(row.status.id())
            .bind(row.amount_fen)
            .bind(row.fee_refunded_fen)
            .bind(row.reason.id())
            .bind(&row.note)
            .bind(row.requested_by_role.id())
            .bind(&row.requested_by_name)
            .bind(&row.review_reasons)
            .bind(&row.required_reviewer)
            .bind(&row.review_note)
            .bind(&row.reviewed_by)
            .bind(&row.tracking_no)
            .bind(&row.failure_reason)
            .bind(row.expected_arrival_by_us)
            .bind(row.created_at_us)
            .bind(row.updated_at_us)
            .bind(row.next_attempt_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn find_refund_by_merchant_no(
        &mut self,
        merchant_id: &str,
        merchant_refund_no: &str,
    ) -> StoreResult<Option<RefundRow>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = $1 AND merchant_refund_no = $2"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(merchant_id)
        .bind(merchant_refund_no)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// A refund of `merchant_id` (any merchant's when `None`).
    pub async fn get_refund(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<Option<RefundRow>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2)"
        );
        let merchant_id = merchant_id.map(str::to_string);
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .bind(merchant_id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn refunds_of_payment(&mut self, payment_id: &str) -> StoreResult<Vec<RefundRow>> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY id");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(payment_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Moves a refund from `from_status` to `to_status`, recording the update's fields.
    /// Returns false if the refund was no longer in `from_status` (someone else moved it).
    pub async fn update_refund_status(
        &mut self,
        update: &RefundStatusUpdate<'_>,
    ) -> StoreResult<bool> {
        let sql = "UPDATE refunds SET status = $3, \
            review_note = COALESCE($4, review_note), reviewed_by = COALESCE($5, reviewed_by), \
            tracking_no = COALESCE($6, tracking_no), failure_reason = COALESCE($7, failure_reason), \
            updated_at_us = $8 WHERE id = $1 AND status = $2";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(update.refund_id)
            .bind(update.from_status.id())
            .bind(update.to_status.id())
            .bind(update.review_note)
            .bind(update.reviewed_by)
            .bind(update.tracking_no)
            .bind(update.failure_reason)
            .bind(update.at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// Changes a refund's type and the fee it returns: a void whose window passed before it
    /// completed becomes a refund (退货). Only for a refund that has not reached a channel.
    pub async fn update_refund_terms(
        &mut self,
        refund_id: &str,
        refund_type: RefundType,
        fee_refunded_fen: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE refunds SET type = $2, fee_refunded_fen = $3 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(refund_id)
            .bind(refund_type.id())
            .bind(fee_refunded_fen)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        if affected != 1 {
            return Err(StoreError::Corrupt(format!(
                "refund {refund_id} vanished during its update"
            )));
        }
        Ok(())
    }

    pub async fn list_refunds(&mut self, filter: &RefundFilter) -> StoreResult<Vec<RefundRow>> {
        let mut query = ListQuery::default();
        let text = |s: &Option<String>| s.clone().map(Bind::Text);
        if let Some(v) = text(&filter.merchant_id) {
            query.push("merchant_id = ?", v);
        }
        if let Some(v) = filter.status {
            query.push("status = ?", Bind::Text(v.id().to_string()));
        }
        if let Some(v) = text(&filter.payment_id) {
            query.push("payment_id = ?", v);
        }
        if let Some(v) = filter.channel {
            query.push("channel = ?", Bind::Text(v.id().to_string()));
        }
        if let Some(v) = filter.created_from_us {
            query.push("created_at_us >= ?", Bind::Int(v));
        }
        if let Some(v) = filter.created_to_us {
            query.push("created_at_us < ?", Bind::Int(v));
        }
        if let Some((now, unconfirmed_before)) = filter.overdue {
            query.binds.push(Bind::Int(now));
            query.binds.push(Bind::Int(unconfirmed_before));
            let (a, b) = (query.binds.len() - 1, query.binds.len());
            query.conditions.push(crate::sql::overdue_condition(
                "",
                &format!("${a}"),
                &format!("${b}"),
            ));
        }
        if let Some(v) = text(&filter.starting_after) {
            query.push("id < ?", v);
        }
        let sql = query.sql(REFUND_COLUMNS, "refunds", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, RefundRow>(AssertSqlSafe(sql.clone())),
            &query.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    // --- dispatch -----------------------------------------------------------------------

    /// Leases up to `limit` refunds that are due (`next_attempt_at_us <= now`) and not held
    /// by a live lease. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent workers in any
    /// number of processes take disjoint sets without waiting for each other. SQLite: the
    /// transaction holds the write lock, so the select and update are already atomic.
    pub async fn claim_due_refunds(
        &mut self,
        owner: &str,
        lease_until_us: i64,
        now_us: i64,
        limit: i64,
    ) -> StoreResult<Vec<RefundRow>> {
        let skip_locked = if matches!(self, Conn::Postgres(_)) {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE refunds SET lease_owner = $1, lease_until_us = $2 WHERE id IN (\
             SELECT id FROM refunds WHERE next_attempt_at_us <= $3 \
             AND (lease_until_us IS NULL OR lease_until_us < $3) \
             ORDER BY next_attempt_at_us LIMIT $4{skip_locked}) RETURNING {REFUND_COLUMNS}"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(owner)
        .bind(lease_until_us)
        .bind(now_us)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// A queued refund waits for a dispatch worker from `at_us` (after review or a return).
    pub async fn queue_refund_for_dispatch(&mut self, id: &str, at_us: i64) -> StoreResult<()> {
        let sql = "UPDATE refunds SET next_attempt_at_us = $2 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, id)
    }

    /// A request is about to leave for the channel: `send_state = sent`, one more attempt,
    /// failed queries forgotten, the next step (a query) scheduled, the first send's time,
    /// and the sending worker's lease.
    pub async fn mark_refund_sent(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET send_state = $2, dispatch_attempts = $3, query_errors = $4, \
            next_attempt_at_us = $5, dispatched_at_us = $6, lease_owner = $7, lease_until_us = $8 \
            WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.send_state.id())
            .bind(row.dispatch_attempts)
            .bind(row.query_errors)
            .bind(row.next_attempt_at_us)
            .bind(row.dispatched_at_us)
            .bind(&row.lease_owner)
            .bind(row.lease_until_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// The worker lets go of a refund it holds: no lease, the next attempt when `row` says
    /// (none: nothing to do), its failed queries and last error as `row` has them.
    pub async fn release_refund(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET lease_owner = NULL, lease_until_us = NULL, \
            next_attempt_at_us = $2, query_errors = $3, last_error = $4 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.next_attempt_at_us)
            .bind(row.query_errors)
            .bind(&row.last_error)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// The channel accepted the refund: its id for it, the expected arrival, when to poll
    /// it, and the lease as the worker leaves it (a callback leaves another's lease alone).
    pub async fn record_refund_accepted(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET send_state = $2, channel_refund_id = $3, \
            expected_arrival_by_us = $4, next_attempt_at_us = $5, lease_owner = $6, \
            lease_until_us = $7, query_errors = $8 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.send_state.id())
            .bind(&row.channel_refund_id)
            .bind(row.expected_arrival_by_us)
            .bind(row.next_attempt_at_us)
            .bind(&row.lease_owner)
            .bind(row.lease_until_us)
            .bind(row.query_errors)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// The refund leaves dispatch (succeeded, failed, abnormal, or paid by the merchant)
    /// with what the channel said: no lease, nothing scheduled, and the sealed account
    /// number of a reroute erased, in the transaction that writes its status.
    pub async fn record_refund_outcome(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET lease_owner = NULL, lease_until_us = NULL, \
            next_attempt_at_us = NULL, reroute_account_sealed = NULL, send_state = $2, \
            channel_refund_id = $3, received_account = $4, succeeded_at_us = $5, \
            expected_arrival_by_us = $6, last_error = $7, failure_reason = $8, query_errors = $9 \
            WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.send_state.id())
            .bind(&row.channel_refund_id)
            .bind(&row.received_account)
            .bind(row.succeeded_at_us)
            .bind(row.expected_arrival_by_us)
            .bind(&row.last_error)
            .bind(&row.failure_reason)
            .bind(row.query_errors)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// An operator's new route for an abnormal refund: the account (masked, and sealed
    /// whole for the channel), shown as its destination, sent again from its first attempt.
    pub async fn reroute_refund(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET reroute_account = $2, reroute_account_sealed = $3, \
            received_account = $4, send_state = $5, dispatch_attempts = $6, \
            next_attempt_at_us = $7 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.reroute_account)
            .bind(&row.reroute_account_sealed)
            .bind(&row.received_account)
            .bind(row.send_state.id())
            .bind(row.dispatch_attempts)
            .bind(row.next_attempt_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// The earliest `next_attempt_at_us` of any refund, for a worker deciding how long to wait.
    pub async fn next_due_at(&mut self) -> StoreResult<Option<i64>> {
        let sql =
            "SELECT MIN(next_attempt_at_us) FROM refunds WHERE next_attempt_at_us IS NOT NULL";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, Option<i64>>(
            sql
        )
        .fetch_one(&mut **c)
        .await)?)
    }

    // --- audit --------------------------------------------------------------------------

    /// The head of a chain, locked for the rest of the transaction (created if new).
    /// Appends to one chain are thereby ordered; other chains proceed in parallel.
    pub async fn lock_audit_head(
        &mut self,
        chain: &str,
        genesis_hash: &str,
    ) -> StoreResult<AuditHeadRow> {
        // Every chain but a brand-new one has its head: one statement then, two the first time.
        if let Some(head) = self.select_audit_head_for_update(chain).await? {
            return Ok(head);
        }
        let insert = AUDIT_HEAD_INSERT;
        on_conn!(self, |c| sqlx::query(insert)
            .bind(chain)
            .bind(genesis_hash)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        self.select_audit_head_for_update(chain)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("audit head of {chain} vanished while locked"))
            })
    }

    async fn select_audit_head_for_update(
        &mut self,
        chain: &str,
    ) -> StoreResult<Option<AuditHeadRow>> {
        let select = match self {
            Conn::Postgres(_) => {
                "SELECT chain, seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE"
            }
            Conn::Sqlite(_) => "SELECT chain, seq, hash FROM audit_heads WHERE chain = $1",
        };
        Ok(on_conn!(self, |c| sqlx::query_as::<_, AuditHeadRow>(
            select
        )
        .bind(chain)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Appends an entry and moves the chain's head to it.
    pub async fn append_audit(&mut self, row: &AuditRow) -> StoreResult<()> {
        let insert = AUDIT_INSERT;
        on_conn!(self, |c| sqlx::query(insert)
            .bind(&row.chain)
            .bind(row.seq)
            .bind(row.at_us)
            .bind(&row.actor)
            .bind(&row.action)
            .bind(&row.subject_id)
            .bind(&row.data)
            .bind(&row.prev_hash)
            .bind(&row.hash)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        let update = AUDIT_HEAD_UPDATE;
        on_conn!(self, |c| sqlx::query(update)
            .bind(&row.chain)
            .bind(row.seq)
            .bind(&row.hash)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn audit_heads(&mut self) -> StoreResult<Vec<AuditHeadRow>> {
        let sql = "SELECT chain, seq, hash FROM audit_heads ORDER BY chain";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, AuditHeadRow>(sql)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// Chain names present in the log, including any whose head row was removed.
    pub async fn audit_chains(&mut self) -> StoreResult<Vec<String>> {
        let sql =
            "SELECT DISTINCT chain FROM audit_log UNION SELECT chain FROM audit_heads ORDER BY 1";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(sql)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// Up to `limit` entries of a chain with `seq > after_seq`, in order.
    pub async fn audit_page(
        &mut self,
        chain: &str,
        after_seq: i64,
        up_to_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = "SELECT chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash FROM audit_log \
            WHERE chain = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, AuditRow>(sql)
            .bind(chain)
            .bind(after_seq)
            .bind(up_to_seq)
            .bind(limit)
            .fetch_all(&mut **c)
            .await)?)
    }

    /// The head of one chain, if it has one.
    pub async fn audit_head(&mut self, chain: &str) -> StoreResult<Option<AuditHeadRow>> {
        let sql = "SELECT chain, seq, hash FROM audit_heads WHERE chain = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, AuditHeadRow>(sql)
            .bind(chain)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// The highest sequence number stored in a chain (0 when empty).
    pub async fn audit_max_seq(&mut self, chain: &str) -> StoreResult<i64> {
        let sql = "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_log WHERE chain = $1";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(chain)
            .fetch_one(&mut **c)
            .await)?)
    }

    /// Every audit entry about one subject (a refund's timeline), oldest first.
    pub async fn audit_of_subject(&mut self, subject_id: &str) -> StoreResult<Vec<AuditRow>> {
        let sql = "SELECT chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash FROM audit_log \
            WHERE subject_id = $1 ORDER BY at_us, seq";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, AuditRow>(sql)
            .bind(subject_id)
            .fetch_all(&mut **c)
            .await)?)
    }
}

/// An update of one refund by id changed exactly that row (it is locked: it cannot vanish).
fn one_refund(affected: u64, id: &str) -> StoreResult<()> {
    if affected != 1 {
        return Err(StoreError::Corrupt(format!(
            "refund {id} vanished during its update"
        )));
    }
    Ok(())
}
