//! Multi-row statements over both backends: one statement for a whole batch of rows
//! (PostgreSQL `UNNEST` of one array per column; SQLite a multi-row `VALUES`, split only
//! past its variable limit). Used by the batched refund create ([`crate::queries_refund_batch`]).

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
/// SQLite's limit on bound variables per statement (`SQLITE_MAX_VARIABLE_NUMBER` since
/// 3.32); a multi-row statement is split so that no part binds more.
pub const SQLITE_VARIABLES_MAX: usize = 32_766;
/// Rows per multi-row `VALUES` on SQLite (well under its compound-select limit of 500).
pub const SQLITE_ROWS_MAX: usize = 500;

/// One column of a multi-row statement: a value per row.
#[derive(Debug, Clone)]
pub enum Col {
    Text(Vec<String>),
    OptText(Vec<Option<String>>),
    Int(Vec<i64>),
    OptInt(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl Col {
    pub(crate) fn len(&self) -> usize {
        match self {
            Col::Text(v) => v.len(),
            Col::OptText(v) => v.len(),
            Col::Int(v) => v.len(),
            Col::OptInt(v) => v.len(),
            Col::Bool(v) => v.len(),
        }
    }

    fn pg_array(&self) -> &'static str {
        match self {
            Col::Text(_) | Col::OptText(_) => "text[]",
            Col::Int(_) | Col::OptInt(_) => "bigint[]",
            Col::Bool(_) => "boolean[]",
        }
    }
}

/// `UNNEST($first::text[], …) AS v(names)` for these columns.
pub fn pg_unnest(cols: &[Col], names: &[&str], first: usize) -> String {
    let arrays: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, col)| format!("${}::{}", first + i, col.pg_array()))
        .collect();
    format!("UNNEST({}) AS v({})", arrays.join(", "), names.join(", "))
}

/// `(?, ?), (?, ?)`: `rows` rows of `width` placeholders.
pub fn sqlite_values(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

/// How many rows of `width` columns one SQLite statement may bind.
pub fn sqlite_chunk(width: usize) -> usize {
    (SQLITE_VARIABLES_MAX / width.max(1)).clamp(1, SQLITE_ROWS_MAX)
}

macro_rules! bind_pg_cols {
    ($query:expr, $cols:expr) => {{
        let mut query = $query;
        for col in $cols {
            query = match col {
                Col::Text(v) => query.bind(v.clone()),
                Col::OptText(v) => query.bind(v.clone()),
                Col::Int(v) => query.bind(v.clone()),
                Col::OptInt(v) => query.bind(v.clone()),
                Col::Bool(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}

macro_rules! bind_sqlite_rows {
    ($query:expr, $cols:expr, $rows:expr) => {{
        let mut query = $query;
        for row in $rows {
            for col in $cols {
                query = match col {
                    Col::Text(v) => query.bind(v[row].clone()),
                    Col::OptText(v) => query.bind(v[row].clone()),
                    Col::Int(v) => query.bind(v[row]),
                    Col::OptInt(v) => query.bind(v[row]),
                    Col::Bool(v) => query.bind(v[row]),
                };
            }
        }
        query
    }};
}

/// `= ANY($1)` / `IN (?, …)` over one text key, for a statement `prefix … WHERE key`.
pub(crate) async fn fetch_by_keys<T>(
    conn: &mut Conn<'_>,
    select: &str,
    key: &str,
    keys: &[String],
    order: &str,
) -> StoreResult<Vec<T>>
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        Conn::Postgres(c) => {
            let sql = format!("{select} WHERE {key} = ANY($1){order}");
            Ok(sqlx::query_as::<_, T>(AssertSqlSafe(sql))
                .bind(keys.to_vec())
                .fetch_all(&mut **c)
                .await?)
        }
        Conn::Sqlite(c) => {
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(sqlite_chunk(1)) {
                let sql = format!(
                    "{select} WHERE {key} IN ({}){order}",
                    vec!["?"; chunk.len()].join(", ")
                );
                let mut query = sqlx::query_as::<_, T>(AssertSqlSafe(sql));
                for k in chunk {
                    query = query.bind(k.clone());
                }
                out.extend(query.fetch_all(&mut **c).await?);
            }
            Ok(out)
        }
    }
}

/// Runs `head (columns) <rows>` as multi-row statements: PostgreSQL
/// `head SELECT * FROM UNNEST(…) AS v(names) tail`, SQLite `head VALUES (…), (…) tail`.
/// Returns the rows affected.
pub(crate) async fn insert_rows(
    conn: &mut Conn<'_>,
    head: &str,
    names: &[&str],
    cols: &[Col],
    tail: &str,
) -> StoreResult<u64> {
    let rows = cols.first().map_or(0, Col::len);
    if rows == 0 {
        return Ok(0);
    }
    match conn {
        Conn::Postgres(c) => {
            let sql = format!("{head} SELECT * FROM {}{tail}", pg_unnest(cols, names, 1));
            let query = bind_pg_cols!(sqlx::query(AssertSqlSafe(sql)), cols);
            Ok(query.execute(&mut **c).await?.rows_affected())
        }
        Conn::Sqlite(c) => {
            let mut affected = 0;
            let chunk = sqlite_chunk(cols.len());
            let mut start = 0;
            while start < rows {
                let end = (start + chunk).min(rows);
                let sql = format!(
                    "{head} VALUES {}{tail}",
                    sqlite_values(end - start, cols.len())
                );
                let query = bind_sqlite_rows!(sqlx::query(AssertSqlSafe(sql)), cols, start..end);
                affected += query.execute(&mut **c).await?.rows_affected();
                start = end;
            }
            Ok(affected)
        }
    }
}

/// `UPDATE table SET a = v.a, … FROM <rows> AS v(key, a, …) WHERE table.key = v.key`, one
/// statement per batch (PostgreSQL `UNNEST`, SQLite a `VALUES` named by a `WITH`).
pub(crate) async fn update_rows(
    conn: &mut Conn<'_>,
    table: &str,
    names: &[&str],
    cols: &[Col],
) -> StoreResult<u64> {
    let rows = cols.first().map_or(0, Col::len);
    if rows == 0 {
        return Ok(0);
    }
    let key = names[0];
    let sets: Vec<String> = names[1..].iter().map(|n| format!("{n} = v.{n}")).collect();
    let sets = sets.join(", ");
    match conn {
        Conn::Postgres(c) => {
            let sql = format!(
                "UPDATE {table} SET {sets} FROM {} WHERE {table}.{key} = v.{key}",
                pg_unnest(cols, names, 1)
            );
            let query = bind_pg_cols!(sqlx::query(AssertSqlSafe(sql)), cols);
            Ok(query.execute(&mut **c).await?.rows_affected())
        }
        Conn::Sqlite(c) => {
            let mut affected = 0;
            let chunk = sqlite_chunk(cols.len());
            let mut start = 0;
            while start < rows {
                let end = (start + chunk).min(rows);
                let sql = format!(
                    "WITH v({}) AS (VALUES {}) UPDATE {table} SET {sets} FROM v WHERE {table}.{key} = v.{key}",
                    names.join(", "),
                    sqlite_values(end - start, cols.len())
                );
                let query = bind_sqlite_rows!(sqlx::query(AssertSqlSafe(sql)), cols, start..end);
                affected += query.execute(&mut **c).await?.rows_affected();
                start = end;
            }
            Ok(affected)
        }
    }
}

/// A table of one row per key that a batch locks, and creates where missing: the merchants'
/// balance rows, the audit chains' heads.
pub(crate) struct RowPerKey<T> {
    /// `SELECT … FROM table`, its first column the key.
    pub select: &'static str,
    pub key: &'static str,
    /// `INSERT INTO table (columns)` of a new row.
    pub insert: &'static str,
    pub columns: &'static [&'static str],
    /// What a row is, for the corrupt-data message.
    pub what: &'static str,
    pub key_of: fn(&T) -> &str,
}

/// The rows these keys (sorted) have, locked in key order on PostgreSQL (SQLite's write lock
/// is already the batch's); a key without a row is absent.
pub(crate) async fn select_locked<T>(
    conn: &mut Conn<'_>,
    table: &RowPerKey<T>,
    keys: &[String],
) -> StoreResult<HashMap<String, T>>
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    let order = match conn {
        Conn::Postgres(_) => format!(" ORDER BY {} FOR UPDATE", table.key),
        Conn::Sqlite(_) => String::new(),
    };
    let rows: Vec<T> = fetch_by_keys(conn, table.select, table.key, keys, &order).await?;
    Ok(rows
        .into_iter()
        .map(|row| ((table.key_of)(&row).to_string(), row))
        .collect())
}

/// [`select_locked`], creating the missing rows first (`fresh` gives their columns; a row
/// another transaction created meanwhile is kept) and reading them back, locked.
pub(crate) async fn lock_or_create<T>(
    conn: &mut Conn<'_>,
    table: &RowPerKey<T>,
    keys: &[String],
    fresh: impl FnOnce(&[String]) -> Vec<Col>,
) -> StoreResult<HashMap<String, T>>
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    let mut found = select_locked(conn, table, keys).await?;
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !found.contains_key(*k))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(found);
    }
    let conflict = format!(" ON CONFLICT ({}) DO NOTHING", table.key);
    insert_rows(
        conn,
        table.insert,
        table.columns,
        &fresh(&missing),
        &conflict,
    )
    .await?;
    let added = select_locked(conn, table, &missing).await?;
    if let Some(key) = missing.iter().find(|k| !added.contains_key(*k)) {
        return Err(StoreError::Corrupt(format!(
            "{} of {key} vanished while locked",
            table.what
        )));
    }
    found.extend(added);
    Ok(found)
}
