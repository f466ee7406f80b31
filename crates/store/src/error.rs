//! Storage errors.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. a repeated `merchant_refund_no`).
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    /// A stored value could not be read back as the domain expects.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database aborted the transaction to break a deadlock or a serialization
    /// conflict with a concurrent one: running it again is the remedy.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // A stored value a row cannot be read from, such as a text that names no value of
        // the enum its column holds (rows parse their enums as they are read). sqlx 0.9.0
        // does not carry a `TryFrom` error's words through (it says "unprintable"), so the
        // column is named and the enum's refusal said in general.
        if let sqlx::Error::ColumnDecode { index, source } = &error {
            let source = source.to_string();
            let why = if source.starts_with("unprintable error") {
                "a stored text that names no known value".to_string()
            } else {
                source
            };
            return StoreError::Corrupt(format!("column {index}: {why}"));
        }
        if let Some(db_error) = error.as_database_error() {
            if db_error.is_unique_violation() {
                return StoreError::UniqueViolation(db_error.message().to_string());
            }
            // PostgreSQL: 40P01 deadlock_detected, 40001 serialization_failure.
            if matches!(db_error.code().as_deref(), Some("40P01" | "40001")) {
                return StoreError::Conflict(db_error.message().to_string());
            }
        }
        StoreError::Database(error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
