//! The database commands (`yuanlu migrate`, `yuanlu audit verify`) and [`open`], which every
//! command that reads or writes the books uses: below the commands, so none of them depends
//! on `serve`.

use std::process::ExitCode;
use std::sync::Arc;

use yuanlu_engine::clock::SystemClock;
use yuanlu_engine::{Db, Engine};

use crate::cli::DatabaseArgs;

type CommandResult = Result<ExitCode, String>;

pub(crate) async fn open(args: &DatabaseArgs) -> Result<Db, String> {
    yuanlu_store::db::check_database_url(args.database_url.as_deref())
        .map_err(|e| e.to_string())?;
    let db = Db::open(
        args.database_url.as_deref(),
        &args.data_dir,
        args.ca_file.as_deref(),
    )
    .await
    .map_err(|e| format!("cannot open the database: {e}"))?;
    db.migrate()
        .await
        .map_err(|e| format!("cannot apply migrations: {e}"))?;
    Ok(db)
}

pub(crate) fn describe(args: &DatabaseArgs) -> String {
    match &args.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL".to_string(),
        _ => format!("SQLite in {}", args.data_dir.join("yuanlu.db").display()),
    }
}

pub async fn migrate(args: DatabaseArgs) -> CommandResult {
    let db = open(&args).await?;
    db.close().await;
    println!("migrations applied ({})", describe(&args));
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_verify(args: crate::cli::AuditVerifyArgs) -> CommandResult {
    let kept = match &args.expect_heads {
        Some(path) => kept_heads(path)?,
        None => Vec::new(),
    };
    let db = open(&args.database).await?;
    let engine = Engine::new(db.clone(), Arc::new(SystemClock));
    let report = engine
        .verify_audit_against(&kept)
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if let Some(bad) = &report.first_bad {
        eprintln!(
            "yuanlu: audit chain {} is broken at seq {}: {:?}",
            bad.chain, bad.seq, bad.problem
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The heads in a file kept from an earlier verification: `{"heads": [...]}` (an earlier
/// report), `{"expect_heads": [...]}` (the `POST` body) or a bare array.
fn kept_heads(path: &std::path::Path) -> Result<Vec<yuanlu_engine::audit::ChainHead>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let heads = match value {
        serde_json::Value::Object(mut object) => object
            .remove("heads")
            .or_else(|| object.remove("expect_heads"))
            .ok_or_else(|| format!("{} has no \"heads\"", path.display()))?,
        array => array,
    };
    serde_json::from_value(heads).map_err(|e| {
        format!(
            "{}: heads must be [{{chain, seq, hash}}]: {e}",
            path.display()
        )
    })
}
