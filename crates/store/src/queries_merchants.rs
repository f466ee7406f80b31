//! Merchants and their API keys: rows and queries.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::list::{Bind, ListQuery, bind_all};
use crate::on_conn;
use crate::sql::{API_KEY_COLUMNS, MERCHANT_BY_ID};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub settings: String,
    pub created_at_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_hash: String,
    pub id: String,
    /// `None` for an admin key.
    pub merchant_id: Option<String>,
    /// `admin`, `supervisor` or `staff`.
    pub role: String,
    pub created_at_us: i64,
    pub prefix: Option<String>,
    pub origin: Option<String>,
    pub expires_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
    pub replaced_by: Option<String>,
}

impl Conn<'_> {
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
}
