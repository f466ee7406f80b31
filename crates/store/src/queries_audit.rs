//! The audit log and its chains' heads: rows and queries.

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::on_conn;
use crate::sql::{AUDIT_HEAD_INSERT, AUDIT_HEAD_UPDATE, AUDIT_INSERT};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub chain: String,
    pub seq: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub subject_id: String,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditHeadRow {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

impl Conn<'_> {
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
