//! Consumer feedback and the consumer lookup by receipt number and phone.

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;

/// A consumer's rating of an ended refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedbackRow {
    pub refund_id: String,
    pub merchant_id: String,
    pub rating: i64,
    pub comment: Option<String>,
    pub created_at_us: i64,
}

/// The consumer lookup by receipt number and phone (see
/// [`Conn::public_lookup_by_no`]); public so a test can read its query plan.
pub const PUBLIC_LOOKUP_BY_NO_SQL: &str = "SELECT r.id, (p.phone IS NOT NULL AND p.phone LIKE $2) AS phone_matches \
    FROM refunds r JOIN payments p ON p.id = r.payment_id AND p.merchant_id = r.merchant_id \
    WHERE r.merchant_refund_no = $1 ORDER BY r.id LIMIT $3";

impl Conn<'_> {
    // --- feedback and the consumer lookup -----------------------------------------------

    /// Records a rating unless the refund already has one. Returns whether it was recorded.
    pub async fn insert_feedback(&mut self, row: &FeedbackRow) -> StoreResult<bool> {
        let sql = "INSERT INTO feedback (refund_id, merchant_id, rating, comment, created_at_us) \
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_id, merchant_id) DO NOTHING";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.refund_id)
            .bind(&row.merchant_id)
            .bind(row.rating)
            .bind(&row.comment)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    pub async fn get_feedback(&mut self, refund_id: &str) -> StoreResult<Option<FeedbackRow>> {
        let sql = "SELECT refund_id, merchant_id, rating, comment, created_at_us FROM feedback \
            WHERE refund_id = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, FeedbackRow>(sql)
            .bind(refund_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Up to `limit` refunds (of any merchant) with this `merchant_refund_no`, in id order,
    /// each with whether its payment's phone ends with `phone_last4` (4 digits, checked by
    /// the caller). Reads the index `refunds_by_merchant_refund_no` (see
    /// [`PUBLIC_LOOKUP_BY_NO_SQL`]).
    pub async fn public_lookup_by_no(
        &mut self,
        merchant_refund_no: &str,
        phone_last4: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, bool)>> {
        let pattern = format!("%{phone_last4}");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (String, bool)>(
            PUBLIC_LOOKUP_BY_NO_SQL
        )
        .bind(merchant_refund_no)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// A refund's wrong-facts count of the public lookup: `(window_start_us, failures)`.
    pub async fn public_lookup_failures(
        &mut self,
        refund_id: &str,
    ) -> StoreResult<Option<(i64, i64)>> {
        let sql =
            "SELECT window_start_us, failures FROM public_lookup_failures WHERE refund_id = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(refund_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Counts one wrong-facts lookup of a refund in one statement (so concurrent failures on
    /// any server all count): within the window that began after `window_from_us` the
    /// count goes up, otherwise a new window starts at `now_us`. Returns
    /// `(window_start_us, failures)` after the count.
    pub async fn record_public_lookup_failure(
        &mut self,
        refund_id: &str,
        now_us: i64,
        window_from_us: i64,
    ) -> StoreResult<(i64, i64)> {
        // The refund's merchant is read with it: the counter is kept on the refund's shard.
        let sql = "INSERT INTO public_lookup_failures (refund_id, merchant_id, window_start_us, failures) \
            SELECT id, merchant_id, $2, 1 FROM refunds WHERE id = $1 \
            ON CONFLICT (refund_id, merchant_id) DO UPDATE SET \
            failures = CASE WHEN public_lookup_failures.window_start_us > $3 \
                THEN public_lookup_failures.failures + 1 ELSE 1 END, \
            window_start_us = CASE WHEN public_lookup_failures.window_start_us > $3 \
                THEN public_lookup_failures.window_start_us ELSE $2 END \
            RETURNING window_start_us, failures";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(refund_id)
            .bind(now_us)
            .bind(window_from_us)
            .fetch_one(&mut **c)
            .await)?)
    }
}
