//! Deductions agreed with the consumer (migration 0033, issue 15 item 2): one row per line,
//! and their sum on the refund (`refunds.deducted_fen`).

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;

/// One deduction of a refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeductionRow {
    pub refund_id: String,
    /// 1-based.
    pub line_no: i64,
    pub merchant_id: String,
    pub kind: String,
    pub amount_fen: i64,
    pub reason: String,
}

const DEDUCTION_COLUMNS: &str = "refund_id, line_no, merchant_id, kind, amount_fen, reason";

impl Conn<'_> {
    /// Writes a new refund's deductions (all of one refund, in one statement) and their sum
    /// on the refund. Called right after the refund's row is inserted, in its transaction.
    pub async fn insert_refund_deductions(&mut self, rows: &[DeductionRow]) -> StoreResult<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let values = (0..rows.len())
            .map(|r| {
                let n = r * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO refund_deductions ({DEDUCTION_COLUMNS}) VALUES {values}");
        on_conn!(self, |c| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for row in rows {
                query = query
                    .bind(&row.refund_id)
                    .bind(row.line_no)
                    .bind(&row.merchant_id)
                    .bind(&row.kind)
                    .bind(row.amount_fen)
                    .bind(&row.reason);
            }
            query.execute(&mut **c).await.map(|r| r.rows_affected())
        })?;
        let total: i64 = rows.iter().map(|r| r.amount_fen).sum();
        let sql = "UPDATE refunds SET deducted_fen = $1 WHERE id = $2";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(total)
            .bind(&first.refund_id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A refund's deductions, in their order.
    pub async fn refund_deductions(&mut self, refund_id: &str) -> StoreResult<Vec<DeductionRow>> {
        let sql = format!(
            "SELECT {DEDUCTION_COLUMNS} FROM refund_deductions WHERE refund_id = $1 ORDER BY line_no"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, DeductionRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(refund_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// The deductions of several refunds of one merchant, by refund then line.
    pub async fn deductions_of_refunds(
        &mut self,
        merchant_id: &str,
        refund_ids: &[String],
    ) -> StoreResult<Vec<DeductionRow>> {
        if refund_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (2..2 + refund_ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {DEDUCTION_COLUMNS} FROM refund_deductions \
             WHERE merchant_id = $1 AND refund_id IN ({marks}) ORDER BY refund_id, line_no"
        );
        Ok(on_conn!(self, |c| {
            let mut query =
                sqlx::query_as::<_, DeductionRow>(AssertSqlSafe(sql.clone())).bind(merchant_id);
            for id in refund_ids {
                query = query.bind(id);
            }
            query.fetch_all(&mut **c).await
        })?)
    }
}
