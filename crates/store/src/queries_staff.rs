//! The store's operations for staff accounts of the pages and their sessions.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffUserRow {
    pub id: String,
    pub username: String,
    /// `cashier`, `supervisor` (with a merchant), `reviewer` or `admin` (acquirer).
    pub role: String,
    pub merchant_id: Option<String>,
    /// Argon2id in PHC string format.
    pub password_hash: String,
    pub created_at_us: i64,
    pub disabled_at_us: Option<i64>,
}

/// A signed-in session as stored; the token itself is only ever in the browser's cookie.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffSessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at_us: i64,
    pub expires_at_us: i64,
}

const USER_COLUMNS: &str =
    "id, username, role, merchant_id, password_hash, created_at_us, disabled_at_us";

impl Conn<'_> {
    pub async fn insert_staff_user(&mut self, row: &StaffUserRow) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(
            "INSERT INTO staff_users (id, username, role, merchant_id, password_hash, created_at_us, disabled_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&row.id)
        .bind(&row.username)
        .bind(&row.role)
        .bind(&row.merchant_id)
        .bind(&row.password_hash)
        .bind(row.created_at_us)
        .bind(row.disabled_at_us)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn find_staff_user(&mut self, username: &str) -> StoreResult<Option<StaffUserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM staff_users WHERE username = $1");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, StaffUserRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(username)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// Staff of one merchant, or of the acquirer when `merchant_id` is `None`, by username.
    pub async fn list_staff_users(
        &mut self,
        merchant_id: Option<&str>,
    ) -> StoreResult<Vec<StaffUserRow>> {
        let sql = match merchant_id {
            Some(_) => format!(
                "SELECT {USER_COLUMNS} FROM staff_users WHERE merchant_id = $1 ORDER BY username LIMIT 500"
            ),
            None => format!("SELECT {USER_COLUMNS} FROM staff_users ORDER BY username LIMIT 500"),
        };
        Ok(on_conn!(self, |c| {
            let query = sqlx::query_as::<_, StaffUserRow>(AssertSqlSafe(sql.clone()));
            let query = match merchant_id {
                Some(id) => query.bind(id.to_string()),
                None => query,
            };
            query.fetch_all(&mut **c).await
        })?)
    }

    pub async fn insert_staff_session(&mut self, row: &StaffSessionRow) -> StoreResult<()> {
        on_conn!(self, |c| {
            sqlx::query(
            "INSERT INTO staff_sessions (token_hash, user_id, csrf_token, created_at_us, expires_at_us) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(&row.token_hash)
        .bind(&row.user_id)
        .bind(&row.csrf_token)
        .bind(row.created_at_us)
        .bind(row.expires_at_us)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The session a token hash names, with its user, if it has not expired at `now_us`
    /// and its user is not disabled.
    pub async fn find_staff_session(
        &mut self,
        token_hash: &str,
        now_us: i64,
    ) -> StoreResult<Option<(StaffSessionRow, StaffUserRow)>> {
        let session = on_conn!(self, |c| sqlx::query_as::<_, StaffSessionRow>(
            "SELECT token_hash, user_id, csrf_token, created_at_us, expires_at_us \
             FROM staff_sessions WHERE token_hash = $1 AND expires_at_us > $2"
        )
        .bind(token_hash)
        .bind(now_us)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(session) = session else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM staff_users WHERE id = $1 AND disabled_at_us IS NULL"
        );
        let user = on_conn!(self, |c| sqlx::query_as::<_, StaffUserRow>(AssertSqlSafe(
            sql.clone()
        ))
        .bind(&session.user_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(user.map(|user| (session, user)))
    }

    /// Ends a session, and every session that expired before `now_us`.
    pub async fn delete_staff_session(&mut self, token_hash: &str, now_us: i64) -> StoreResult<()> {
        on_conn!(self, |c| sqlx::query(
            "DELETE FROM staff_sessions WHERE token_hash = $1 OR expires_at_us <= $2"
        )
        .bind(token_hash)
        .bind(now_us)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
