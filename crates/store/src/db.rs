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
/// Prepared statements a SQLite writer connection keeps. A batch's statements bind one
/// placeholder per row (`IN (?, …)`, multi-row `VALUES`), so each batch size is its own
/// statement text: sqlx's default of 100 made the writer prepare most statements anew.
pub const WRITER_STATEMENT_CACHE: usize = 1024;
/// Page cache per SQLite connection, in KiB.
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;
/// How long a SQLite writer waits for the write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the background checkpointer copies SQLite's WAL home (see [`Checkpoints`]).
pub const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// The environment variable that chooses [`Checkpoints`]: `background` (the default) or
/// `inline`; for measuring one against the other (`yuanlu bench` passes it to the server).
pub const SQLITE_CHECKPOINT_ENV: &str = "YUANLU_SQLITE_CHECKPOINT";

/// Who writes SQLite's WAL back into the database file.
///
/// SQLite's default (`inline`) checkpoints inside the COMMIT that takes the WAL past 1,000
/// pages: that commit — and every writer queued behind the one write lock — waits while
/// the checkpoint copies the pages and fsyncs the database file. On the refund create path
/// that was every few tens of milliseconds, tens of milliseconds each: the p99 of issue 13.
/// `background` turns the automatic checkpoint off (`wal_autocheckpoint=0`) and runs a
/// `PRAGMA wal_checkpoint(PASSIVE)` every [`SQLITE_CHECKPOINT_EVERY`] on a connection of its
/// own; a passive checkpoint never takes the write lock, so commits go on meanwhile, and
/// the WAL restarts from its beginning at the first commit after a complete one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    Background,
    Inline,
}

impl Checkpoints {
    /// From [`SQLITE_CHECKPOINT_ENV`]; anything but `inline` is the default.
    pub fn from_env() -> Checkpoints {
        match std::env::var(SQLITE_CHECKPOINT_ENV).as_deref() {
            Ok("inline") => Checkpoints::Inline,
            _ => Checkpoints::Background,
        }
    }
}

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
        Db::open_sqlite_with(data_dir, Checkpoints::from_env()).await
    }

    /// [`Db::open_sqlite`] with the checkpoints chosen.
    pub async fn open_sqlite_with(data_dir: &Path, checkpoints: Checkpoints) -> StoreResult<Db> {
        create_private_dir(data_dir).map_err(sqlx::Error::Io)?;
        let path = data_dir.join(SQLITE_FILE);
        create_private_file(&path).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // SQLite's default page cache is 2 MB per connection: the create path's indexes
            // outgrow it at once, and every miss is a read() of the OS page cache.
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
        let options = match checkpoints {
            Checkpoints::Background => options.pragma("wal_autocheckpoint", "0"),
            Checkpoints::Inline => options,
        };
        // No ping before each use: an embedded connection does not drop like a socket, and
        // the ping was a round trip to the connection's thread on every API request.
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        // SQLite creates -wal and -shm with the database file's mode; files left by an
        // older version are tightened here too.
        for suffix in ["", "-wal", "-shm"] {
            let file = data_dir.join(format!("{SQLITE_FILE}{suffix}"));
            if file.exists() {
                make_private(&file, 0o600).map_err(sqlx::Error::Io)?;
            }
        }
        if checkpoints == Checkpoints::Background {
            tokio::spawn(checkpoint_in_background(pool.clone()));
        }
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

    /// Opens the database a URL names: `postgres://…` (or `postgresql://…`), or `sqlite:`
    /// (or none) for the embedded SQLite under `data_dir`. Anything else is refused: a typo
    /// must not silently become an empty SQLite database. `ca_file`: extra trusted roots
    /// for PostgreSQL over TLS (`--ca-file`).
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        ca_file: Option<&Path>,
    ) -> StoreResult<Db> {
        match check_database_url(database_url).map_err(sqlx::Error::Configuration)? {
            Backend::Postgres => {
                Db::open_postgres_tls(database_url.unwrap_or_default(), None, ca_file).await
            }
            Backend::Sqlite => Db::open_sqlite(data_dir).await,
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

    /// A read transaction that sees one snapshot of the data, for reads that must agree with
    /// each other (the ledger check on a live server): no commit lands between them. Dropped,
    /// not committed.
    pub async fn begin_snapshot(&self) -> StoreResult<Tx> {
        Ok(match self {
            // WAL: a deferred transaction reads one snapshot from its first read on.
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN DEFERRED").await?),
            Db::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// A second pool of at most `connections` connections to the same database, with the
    /// same options, connected lazily: SQLite's refund writer takes its connection from it,
    /// so that its batches never queue behind the API's reads for a connection and its page
    /// cache (SQLite's is per connection) stays warm.
    pub fn writer_pool(&self, connections: u32) -> Db {
        let connections = connections.max(1);
        match self {
            // No ping before each batch either (see `open_sqlite_with`).
            Db::Sqlite(pool) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(connections)
                    .test_before_acquire(false)
                    .connect_lazy_with(
                        (*pool.connect_options())
                            .clone()
                            .statement_cache_capacity(WRITER_STATEMENT_CACHE),
                    ),
            ),
            Db::Postgres(pool) => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with((*pool.connect_options()).clone()),
            ),
        }
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

/// The background checkpointer of [`Checkpoints::Background`]: ends when the pool closes
/// (or with the runtime).
async fn checkpoint_in_background(pool: SqlitePool) {
    let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = pool.close_event() => return,
        }
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(%error, "SQLite background checkpoint failed; retrying");
        }
    }
}

/// The embedded database's file name in the data directory.
pub const SQLITE_FILE: &str = "yuanlu.db";

/// Which backend a `--database-url` names, or why it names none.
pub fn check_database_url(
    url: Option<&str>,
) -> Result<Backend, Box<dyn std::error::Error + Send + Sync>> {
    let Some(url) = url else {
        return Ok(Backend::Sqlite);
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Backend::Postgres);
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest.trim_start_matches('/').is_empty() {
            return Ok(Backend::Sqlite);
        }
        return Err("`sqlite:` takes no path: the embedded database lives in --data-dir (give `sqlite:` alone, or no --database-url)".into());
    }
    let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
    Err(format!(
        "--database-url must start with postgres://, postgresql:// or sqlite: (its scheme is {scheme})"
    )
    .into())
}

/// Creates `dir` (and missing parents) readable by the owner only (0700). An existing
/// directory is left as it is, with a warning when others may read it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if dir.is_dir() {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is readable by others; chmod 700 it");
            }
            return Ok(());
        }
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` empty with mode 0600 unless it exists.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn make_private(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn make_private(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
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
