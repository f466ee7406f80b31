//! `yuanlu settle` and `yuanlu ledger check`: the books from the command line.

use std::process::ExitCode;
use std::sync::Arc;

use yuanlu_domain::money::format_cny;
use yuanlu_engine::Engine;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::SystemClock;

use crate::cli::{DatabaseArgs, SettleArgs};

type CommandResult = Result<ExitCode, String>;

async fn engine(database: &DatabaseArgs) -> Result<Engine, String> {
    let db = crate::database::open(database).await?;
    let calendar = crate::calendar::load(&database.data_dir)?;
    Ok(Engine::new(db, Arc::new(SystemClock)).with_calendar(calendar))
}

/// Settles a date and prints each merchant's statement with its explanation.
pub async fn settle(args: SettleArgs) -> CommandResult {
    let engine = engine(&args.database).await?;
    let statements = engine
        .run_settlement(&Principal::Admin, args.date)
        .await
        .map_err(|e| e.to_string())?;
    let mut total_payout = 0;
    for statement in &statements {
        total_payout += statement.payout;
        println!(
            "{} {} payout {} on {} (carried {})",
            statement.id,
            statement.merchant_id,
            format_cny(statement.payout),
            statement.payout_date,
            format_cny(statement.closing_carried)
        );
        let summary =
            yuanlu_web::present::statement::summary(yuanlu_words::Lang::En, &statement.statement);
        for line in &summary {
            println!("    {line}");
        }
    }
    println!(
        "{}: {} statements, {} CNY paid out",
        args.date,
        statements.len(),
        format_cny(total_payout)
    );
    engine.db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Proves the ledger balances; exit status 0 only if it does.
pub async fn ledger_check(database: DatabaseArgs) -> CommandResult {
    let engine = engine(&database).await?;
    let check = engine.check_ledger().await.map_err(|e| e.to_string())?;
    engine.db.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&check).unwrap_or_default()
    );
    Ok(if check.balanced {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
