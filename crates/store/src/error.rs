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
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(db_error) = error.as_database_error()
            && db_error.is_unique_violation()
        {
            return StoreError::UniqueViolation(db_error.message().to_string());
        }
        StoreError::Database(error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
