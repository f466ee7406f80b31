//! Where a side's data lives (a SQLite file, a PostgreSQL schema), its size and WAL
//! activity, and the PostgreSQL helpers the bench uses around its phases.

use super::*;

/// Where a side's data lives, to measure its size and WAL activity.
pub(crate) enum Storage {
    /// The SQLite database file (`…/yuanlu.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL schema.
    Postgres { url: String, schema: String },
}

impl Storage {
    /// Bytes stored: SQLite file plus WAL after a checkpoint; PostgreSQL: `refunds` and
    /// `audit_log` with their indexes (`pg_total_relation_size`).
    pub(crate) async fn bytes(&self) -> Result<u64, String> {
        match self {
            Storage::Sqlite(path) => sqlite_bytes(path).await,
            Storage::Postgres { url, schema } => {
                let mut conn = pg_connect(url, Some(schema)).await?;
                let bytes: i64 = sqlx::query_scalar(
                    "SELECT CAST(pg_total_relation_size('refunds') + pg_total_relation_size('audit_log') AS BIGINT)",
                )
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("measure the schema: {e}"))?;
                let _ = conn.close().await;
                Ok(u64::try_from(bytes).unwrap_or(0))
            }
        }
    }

    /// WAL syncs (`pg_stat_wal`) and the WAL position in bytes, cluster-wide; `None` on
    /// SQLite.
    pub(crate) async fn wal(&self) -> Result<Option<WalDelta>, String> {
        match self {
            Storage::Sqlite(_) => Ok(None),
            Storage::Postgres { url, .. } => {
                let mut conn = pg_connect(url, None).await?;
                let row: Result<(i64, i64), _> = sqlx::query_as(
                    "SELECT CAST(wal_sync AS BIGINT), \
                     CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS BIGINT) FROM pg_stat_wal",
                )
                .fetch_one(&mut conn)
                .await;
                let _ = conn.close().await;
                // pg_stat_wal is PostgreSQL 14+; older servers just get no WAL columns.
                Ok(row.ok().map(|(syncs, bytes)| WalDelta { syncs, bytes }))
            }
        }
    }

    /// Rows in `payments`.
    pub(crate) async fn payments(&self) -> Result<i64, String> {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM payments";
        let count = match self {
            Storage::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(false)
                    .journal_mode(SqliteJournalMode::Wal)
                    .disable_statement_logging();
                let mut conn = SqliteConnection::connect_with(&options)
                    .await
                    .map_err(|e| format!("open {}: {e}", path.display()))?;
                let count = sqlx::query_scalar(sql).fetch_one(&mut conn).await;
                let _ = conn.close().await;
                count
            }
            Storage::Postgres { url, schema } => {
                let mut conn = preload::pg_connect_quiet(url, schema).await?;
                let count = sqlx::query_scalar(sql).fetch_one(&mut conn).await;
                let _ = conn.close().await;
                count
            }
        };
        count.map_err(|e| format!("count the payments: {e}"))
    }

    /// Fresh statistics for the planner after the untimed set-up (PostgreSQL only).
    pub(crate) async fn analyze(&self) -> Result<(), String> {
        if let Storage::Postgres { url, schema } = self {
            let mut conn = pg_connect(url, Some(schema)).await?;
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .map_err(|e| format!("ANALYZE: {e}"))?;
            let _ = conn.close().await;
        }
        Ok(())
    }
}

pub(crate) async fn sqlite_bytes(path: &Path) -> Result<u64, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
    let _ = conn.close().await;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(size(path.to_path_buf()) + size(PathBuf::from(wal)))
}

pub(crate) async fn pg_connect(url: &str, schema: Option<&str>) -> Result<PgConnection, String> {
    let mut options =
        PgConnectOptions::from_str(url).map_err(|e| format!("bad PostgreSQL URL: {e}"))?;
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}

pub(crate) async fn pg_execute(url: &str, sql: String) -> Result<(), String> {
    let mut conn = pg_connect(url, None).await?;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

pub(crate) async fn pg_setting(url: &str, name: &'static str) -> String {
    let Ok(mut conn) = pg_connect(url, None).await else {
        return "?".to_string();
    };
    let sql = match name {
        "fsync" => "SHOW fsync",
        "server_version" => "SHOW server_version",
        _ => "SHOW synchronous_commit",
    };
    let value: String = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|_| "?".to_string());
    let _ = conn.close().await;
    value
}

/// The URL that puts a server in `schema` (as the end-to-end tests do).
pub(crate) fn schema_url(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}
