//! The consumer's answers to "has the money arrived?" (migration 0025).

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::queries_reports::ReportDurationRow;
use crate::queries_reports::ReportRange;

/// A refund's arrival answer as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ArrivalAnswerRow {
    pub refund_id: String,
    pub merchant_id: String,
    /// 1 for "received", 0 for "not received": the latest answer.
    pub received: i64,
    pub answered_at_us: i64,
    /// When the consumer said "received"; final once set.
    pub received_at_us: Option<i64>,
    /// The `not_arrived` case a "not received" opened.
    pub case_id: Option<String>,
}

impl Conn<'_> {
    pub async fn get_arrival_answer(
        &mut self,
        refund_id: &str,
    ) -> StoreResult<Option<ArrivalAnswerRow>> {
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ArrivalAnswerRow>(
            "SELECT refund_id, merchant_id, received, answered_at_us, received_at_us, case_id \
             FROM refund_arrival_answers WHERE refund_id = $1"
        )
        .bind(refund_id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Writes the refund's latest answer (a case id once set is kept).
    pub async fn put_arrival_answer(&mut self, row: &ArrivalAnswerRow) -> StoreResult<()> {
        on_conn!(self, |c| sqlx::query(
            "INSERT INTO refund_arrival_answers \
             (refund_id, merchant_id, received, answered_at_us, received_at_us, case_id) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (refund_id, merchant_id) DO UPDATE SET received = excluded.received, \
             answered_at_us = excluded.answered_at_us, received_at_us = excluded.received_at_us, \
             case_id = COALESCE(excluded.case_id, refund_arrival_answers.case_id)"
        )
        .bind(&row.refund_id)
        .bind(&row.merchant_id)
        .bind(row.received)
        .bind(row.answered_at_us)
        .bind(row.received_at_us)
        .bind(&row.case_id)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Creation-to-confirmed-arrival durations of up to `limit` refunds created in the range
    /// that their consumer said were received.
    pub async fn report_confirmed_durations(
        &mut self,
        range: &ReportRange,
        limit: i64,
    ) -> StoreResult<Vec<ReportDurationRow>> {
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| {
            sqlx::query_as::<_, ReportDurationRow>(
            "SELECT r.merchant_id, r.channel, a.received_at_us - r.created_at_us AS duration_us \
             FROM refunds r JOIN refund_arrival_answers a ON a.refund_id = r.id AND a.merchant_id = r.merchant_id \
             WHERE a.received_at_us IS NOT NULL \
             AND r.created_at_us >= $1 AND r.created_at_us < $2 AND ($3 IS NULL OR r.merchant_id = $3) \
             ORDER BY r.id LIMIT $4"
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await
        })?)
    }
}
