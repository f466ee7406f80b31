//! A backup of the embedded SQLite database taken while servers write to it.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so the copy is one
//! consistent snapshot under concurrent writers (WAL lets them go on), and SQLite writes it
//! as a complete database file (not a copy of pages mid-checkpoint). PostgreSQL has its own
//! tools (pg_dump / pg_restore, docs/operations.md).

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::db::SQLITE_FILE;

/// Why a backup was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; a backup never overwrites a file (choose a new name)")]
    Exists(String),
    #[error("no database at {0} (is --data-dir right?)")]
    NoDatabase(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the backup failed: {0}")]
    Sqlite(#[from] sqlx::Error),
}

/// How long the backup waits for a writer's lock (it only reads; WAL rarely blocks it).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies `data_dir`'s database into `to`, a new file (mode 0600), synced to disk; returns
/// its size in bytes. An existing `to` is refused, and a failed backup leaves no file.
pub async fn backup_sqlite(data_dir: &Path, to: &Path) -> Result<u64, BackupError> {
    let source = data_dir.join(SQLITE_FILE);
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.display().to_string()));
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| BackupError::Io { path, source }
    };
    // Created here, empty and private, so an existing file is refused without a race
    // (VACUUM INTO accepts an empty file).
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(to) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(to.display().to_string()));
        }
        Err(e) => return Err(io(to)(e)),
    }
    let copied = vacuum_into(&source, to).await;
    if let Err(error) = copied {
        let _ = std::fs::remove_file(to);
        return Err(error);
    }
    // VACUUM INTO does not sync its output: a backup must survive a power cut too.
    let file = std::fs::File::open(to).map_err(io(to))?;
    file.sync_all().map_err(io(to))?;
    Ok(file.metadata().map_err(io(to))?.len())
}

async fn vacuum_into(source: &Path, to: &Path) -> Result<(), BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let target = to.to_str().ok_or_else(|| BackupError::Io {
        path: to.display().to_string(),
        source: std::io::Error::other("the backup path is not UTF-8"),
    })?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
