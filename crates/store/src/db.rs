//! Pools, connections and write transactions over either backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::StoreResult;

/// Connections per pool. SQLite serialises writers anyway; PostgreSQL gets enough for the
/// API and the workers on a small machine.
pub const POOL_CONNECTIONS_MAX: u32 = 16;
/// Page cache per SQLite connection, in KiB.
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;
/// How long a SQLite writer waits for the write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on one of the backends.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls it back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A connection taken from the pool for reads outside a transaction.
pub enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// A borrowed connection: where the queries run, inside a transaction or not.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Db {
    /// Opens (creating if needed) `yuanlu.db` under `data_dir`: WAL, and `synchronous=FULL`
    /// so a refund acknowledged to a caller survives a power cut, not only a process crash.
    pub async fn open_sqlite(data_dir: &Path) -> StoreResult<Db> {
        std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("yuanlu.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // SQLite's default page cache is 2 MB per connection: the create path's indexes
            // outgrow it at once, and every miss is a read() of the OS page cache.
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Connects to PostgreSQL. `schema`, if given, becomes the search path (tests use a
    /// fresh schema each).
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> StoreResult<Db> {
        Db::open_postgres_tls(url, schema, None).await
    }

    /// [`Db::open_postgres`], trusting the certificates of `ca_file` (PEM) besides the
    /// system's roots when the URL asks for TLS (`sslmode=require|verify-ca|verify-full`);
    /// an `sslrootcert` in the URL takes precedence.
    pub async fn open_postgres_tls(
        url: &str,
        schema: Option<&str>,
        ca_file: Option<&Path>,
    ) -> StoreResult<Db> {
        // sqlx's verify-ca/verify-full build their verifier with the process-default
        // crypto provider, which rustls cannot pick by itself when two are compiled in
        // (aws-lc-rs for reqwest, ring for sqlx): name aws-lc-rs. An already installed default
        // (any) is kept.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(ca_file) = ca_file
            && !url.contains("sslrootcert=")
        {
            options = options.ssl_root_cert(ca_file);
        }
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Db::Postgres(pool))
    }

    /// Opens the database a URL names: `postgres://…` or `sqlite://path/to/dir`.
    /// `ca_file`: extra trusted roots for PostgreSQL over TLS (`--ca-file`).
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        ca_file: Option<&Path>,
    ) -> StoreResult<Db> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::open_postgres_tls(url, None, ca_file).await
            }
            _ => Db::open_sqlite(data_dir).await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so read-then-write transactions never fail half way with "locked".
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A connection for reads.
    pub async fn acquire(&self) -> StoreResult<PooledConn> {
        Ok(match self {
            Db::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(&mut *tx),
            Tx::Postgres(tx) => Conn::Postgres(&mut *tx),
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PooledConn::Sqlite(c) => Conn::Sqlite(&mut *c),
            PooledConn::Postgres(c) => Conn::Postgres(&mut *c),
        }
    }
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Runs the same code on whichever backend a [`Conn`] holds; `$c` is bound to the
/// backend's `&mut Connection`, so `fetch_*(&mut *$c)` type-checks per backend.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => $body,
            $crate::Conn::Postgres($c) => $body,
        }
    };
}
