//! Evidence on refunds and cases, and refunds held for the evidence their merchant requires
//! (migration 0032). The files themselves live outside the database (see
//! `yuanlu_engine::evidence`); a row names one by its SHA-256.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;

/// One piece of evidence as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: String,
    pub merchant_id: String,
    /// `refund` or `case`.
    pub subject_type: String,
    pub subject_id: String,
    pub kind: String,
    pub sha256: String,
    pub content_type: Option<String>,
    pub size_bytes: i64,
    pub checked_by: Option<String>,
    pub document_type: Option<String>,
    pub last_digits: Option<String>,
    pub created_by: String,
    pub created_at_us: i64,
}

/// A refund waiting for required evidence, or released from waiting.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EvidenceHoldRow {
    pub refund_id: String,
    pub merchant_id: String,
    /// Kind ids, comma-separated.
    pub required: String,
    pub created_at_us: i64,
    pub released_at_us: Option<i64>,
}

const EVIDENCE_COLUMNS: &str = "id, merchant_id, subject_type, subject_id, kind, sha256, \
    content_type, size_bytes, checked_by, document_type, last_digits, created_by, created_at_us";

const HOLD_COLUMNS: &str = "refund_id, merchant_id, required, created_at_us, released_at_us";

impl Conn<'_> {
    /// Inserts a piece of evidence; the same kind and SHA-256 on the same subject is a
    /// `UniqueViolation`.
    pub async fn insert_evidence(&mut self, row: &EvidenceRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO evidence ({EVIDENCE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.subject_type)
            .bind(&row.subject_id)
            .bind(&row.kind)
            .bind(&row.sha256)
            .bind(&row.content_type)
            .bind(row.size_bytes)
            .bind(&row.checked_by)
            .bind(&row.document_type)
            .bind(&row.last_digits)
            .bind(&row.created_by)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The evidence of this kind and SHA-256 on this subject, if any.
    pub async fn find_evidence(
        &mut self,
        subject_id: &str,
        kind: &str,
        sha256: &str,
    ) -> StoreResult<Option<EvidenceRow>> {
        let sql = format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence \
             WHERE subject_id = $1 AND kind = $2 AND sha256 = $3"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, EvidenceRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(subject_id)
        .bind(kind)
        .bind(sha256)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn get_evidence(&mut self, id: &str) -> StoreResult<Option<EvidenceRow>> {
        let sql = format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, EvidenceRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// A subject's evidence, oldest first.
    pub async fn list_evidence(&mut self, subject_id: &str) -> StoreResult<Vec<EvidenceRow>> {
        let sql = format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE subject_id = $1 \
             ORDER BY created_at_us, id"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, EvidenceRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(subject_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    pub async fn insert_evidence_hold(&mut self, row: &EvidenceHoldRow) -> StoreResult<()> {
        let sql =
            format!("INSERT INTO evidence_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.refund_id)
            .bind(&row.merchant_id)
            .bind(&row.required)
            .bind(row.created_at_us)
            .bind(row.released_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn get_evidence_hold(
        &mut self,
        refund_id: &str,
    ) -> StoreResult<Option<EvidenceHoldRow>> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM evidence_holds WHERE refund_id = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, EvidenceHoldRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(refund_id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Marks a hold released; false if it was released already.
    pub async fn release_evidence_hold(
        &mut self,
        refund_id: &str,
        at_us: i64,
    ) -> StoreResult<bool> {
        let moved = on_conn!(self, |c| sqlx::query(
            "UPDATE evidence_holds SET released_at_us = $2 \
             WHERE refund_id = $1 AND released_at_us IS NULL"
        )
        .bind(refund_id)
        .bind(at_us)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(moved == 1)
    }
}
