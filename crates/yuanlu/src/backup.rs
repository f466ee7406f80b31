//! `yuanlu backup --to FILE`: a consistent copy of the embedded SQLite database, taken while
//! servers write to it. PostgreSQL is refused: pg_dump does that (docs/operations.md).

use std::process::ExitCode;

use yuanlu_store::backup::backup_sqlite;
use yuanlu_store::db::{Backend, check_database_url};

use crate::cli::BackupArgs;

pub async fn run(args: BackupArgs) -> Result<ExitCode, String> {
    let url = args.database.database_url.as_deref();
    match check_database_url(url).map_err(|e| e.to_string())? {
        Backend::Postgres => Err(
            "yuanlu backup copies the embedded SQLite database; back up PostgreSQL with pg_dump (`pg_dump -Fc -f yuanlu.dump URL`, restore with pg_restore; see docs/operations.md)".to_string(),
        ),
        Backend::Sqlite => {
            let bytes = backup_sqlite(&args.database.data_dir, &args.to)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "backed up {} into {} ({bytes} bytes)",
                args.database.data_dir.display(),
                args.to.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
