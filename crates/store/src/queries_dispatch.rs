//! Dispatch's writes to a refund: the claim of due refunds under a lease, and one update
//! per intent (marking sent, releasing, recording the channel's acceptance or outcome, an
//! operator's reroute), each writing only its columns.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::on_conn;
use crate::queries_refunds::RefundRow;
use crate::sql::REFUND_COLUMNS;

impl Conn<'_> {
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
    pub async fn queue_refund_for_dispatch(
        &mut self,
        merchant_id: &str,
        id: &str,
        at_us: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE refunds SET next_attempt_at_us = $2 WHERE id = $1 AND merchant_id = $3";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(at_us)
            .bind(merchant_id)
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
            WHERE id = $1 AND merchant_id = $9";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.send_state.id())
            .bind(row.dispatch_attempts)
            .bind(row.query_errors)
            .bind(row.next_attempt_at_us)
            .bind(row.dispatched_at_us)
            .bind(&row.lease_owner)
            .bind(row.lease_until_us)
            .bind(&row.merchant_id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        one_refund(affected, &row.id)
    }

    /// The worker lets go of a refund it holds: no lease, the next attempt when `row` says
    /// (none: nothing to do), its failed queries and last error as `row` has them.
    pub async fn release_refund(&mut self, row: &RefundRow) -> StoreResult<()> {
        let sql = "UPDATE refunds SET lease_owner = NULL, lease_until_us = NULL, \
            next_attempt_at_us = $2, query_errors = $3, last_error = $4 WHERE id = $1 AND merchant_id = $5";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.next_attempt_at_us)
            .bind(row.query_errors)
            .bind(&row.last_error)
            .bind(&row.merchant_id)
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
            lease_until_us = $7, query_errors = $8 WHERE id = $1 AND merchant_id = $9";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(row.send_state.id())
            .bind(&row.channel_refund_id)
            .bind(row.expected_arrival_by_us)
            .bind(row.next_attempt_at_us)
            .bind(&row.lease_owner)
            .bind(row.lease_until_us)
            .bind(row.query_errors)
            .bind(&row.merchant_id)
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
            WHERE id = $1 AND merchant_id = $10";
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
            .bind(&row.merchant_id)
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
            next_attempt_at_us = $7 WHERE id = $1 AND merchant_id = $8";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.reroute_account)
            .bind(&row.reroute_account_sealed)
            .bind(&row.received_account)
            .bind(row.send_state.id())
            .bind(row.dispatch_attempts)
            .bind(row.next_attempt_at_us)
            .bind(&row.merchant_id)
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
