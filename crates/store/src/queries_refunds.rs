//! Refunds: rows, their status changes and lists.

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::list::{Bind, ListQuery, bind_all};
use crate::on_conn;
use crate::sql::{REFUND_COLUMNS, REFUND_INSERT_COLUMNS};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole, SendState};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub merchant_refund_no: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    #[sqlx(rename = "type", try_from = "String")]
    pub refund_type: RefundType,
    #[sqlx(try_from = "String")]
    pub status: RefundStatus,
    pub amount_fen: i64,
    pub fee_refunded_fen: i64,
    #[sqlx(try_from = "String")]
    pub reason: RefundReason,
    pub note: Option<String>,
    #[sqlx(try_from = "String")]
    pub requested_by_role: RequesterRole,
    pub requested_by_name: Option<String>,
    pub review_reasons: String,
    pub required_reviewer: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_by: Option<String>,
    pub tracking_no: Option<String>,
    pub failure_reason: Option<String>,
    pub expected_arrival_by_us: Option<i64>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    // Dispatch (migration 0002).
    pub dispatch_attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_us: Option<i64>,
    #[sqlx(try_from = "String")]
    pub send_state: SendState,
    pub dispatched_at_us: Option<i64>,
    pub channel_refund_id: Option<String>,
    pub received_account: Option<String>,
    pub succeeded_at_us: Option<i64>,
    pub reroute_account: Option<String>,
    pub last_error: Option<String>,
    /// Confirmation queries failed in a row since the channel last answered (migration 0010).
    pub query_errors: i64,
    /// The full number of `reroute_account`, sealed (migration 0012); NULL once it left dispatch.
    pub reroute_account_sealed: Option<String>,
    /// The sum of the refund's deductions (migration 0033): the consumer gets
    /// `amount_fen - deducted_fen`. Written after the row by `insert_refund_deductions`.
    #[sqlx(default)]
    pub deducted_fen: i64,
}

/// A status change of a refund, with what it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundStatusUpdate<'a> {
    pub refund_id: &'a str,
    /// The refund's merchant (its shard).
    pub merchant_id: &'a str,
    pub from_status: RefundStatus,
    pub to_status: RefundStatus,
    pub review_note: Option<&'a str>,
    pub reviewed_by: Option<&'a str>,
    pub tracking_no: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
    pub at_us: i64,
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

/// A refund by id, of the merchant `$2`: a router query (one shard).
pub static REFUND_OF_MERCHANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1 AND merchant_id = $2")
});
/// A refund by id of any merchant (the acquirer's; `$2` is NULL): every shard is asked.
pub static REFUND_OF_ANY_MERCHANT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1 AND $2 IS NULL"));

impl Conn<'_> {
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
        // A merchant's refund is read on its merchant's shard alone (docs/scaling.md).
        let sql = match merchant_id {
            Some(_) => REFUND_OF_MERCHANT.as_str(),
            None => REFUND_OF_ANY_MERCHANT.as_str(),
        };
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(sql)
            .bind(id)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// The refunds of a payment (of `merchant_id`, the payment's merchant).
    pub async fn refunds_of_payment(
        &mut self,
        merchant_id: &str,
        payment_id: &str,
    ) -> StoreResult<Vec<RefundRow>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 AND merchant_id = $2 ORDER BY id"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, RefundRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(payment_id)
        .bind(merchant_id)
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
            updated_at_us = $8 WHERE id = $1 AND merchant_id = $9 AND status = $2";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(update.refund_id)
            .bind(update.from_status.id())
            .bind(update.to_status.id())
            .bind(update.review_note)
            .bind(update.reviewed_by)
            .bind(update.tracking_no)
            .bind(update.failure_reason)
            .bind(update.at_us)
            .bind(update.merchant_id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// Changes a refund's type and the fee it returns: a void whose window passed before it
    /// completed becomes a refund (退货). Only for a refund that has not reached a channel.
    pub async fn update_refund_terms(
        &mut self,
        merchant_id: &str,
        refund_id: &str,
        refund_type: RefundType,
        fee_refunded_fen: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE refunds SET type = $2, fee_refunded_fen = $3 WHERE id = $1 AND merchant_id = $4";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(refund_id)
            .bind(refund_type.id())
            .bind(fee_refunded_fen)
            .bind(merchant_id)
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
}
