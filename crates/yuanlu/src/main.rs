//! `yuanlu`: one binary for the server and the operator's commands.
//!
//! - [`cli`]: the command line (a contract: scripts depend on its flags).
//! - [`database`]: opening the database (every command's), `migrate`, `audit verify`.
//! - [`serve`]: start-up wiring: admin key, clock, channels, workers, HTTP server.
//! - [`reconcile_cli`], [`users`], [`books`], [`demo`], [`pos`]: the other commands; each
//!   takes its arguments from `cli` and its database from `database`, never from `serve`.
//! - [`admin_key`]: where the admin key comes from.
//! - [`account_key`]: where the key sealing rerouted account numbers comes from.
//! - [`bench`]: `yuanlu bench …` runs the separate `yuanlu-bench` program (crate `bench`).
//! - [`backup`]: `yuanlu backup`, a copy of the embedded database taken while servers run.

mod account_key;
mod admin_key;
mod backup;
mod bench;
mod books;
mod calendar;
mod channels;
mod cli;
mod database;
mod demo;
mod pos;
mod reconcile_cli;
mod secrets;
mod serve;
mod users;
mod workers;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{AuditCommand, Cli, Command, LedgerCommand, UsersCommand};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YUANLU_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Migrate(db) => database::migrate(db).await,
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => database::audit_verify(args).await,
        Command::Calendar(args) => calendar::run(args),
        Command::Simulate(args) => serve::simulate(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Settle(args) => books::settle(args).await,
        Command::Users {
            command: UsersCommand::Add(args),
        } => users::add(args).await,
        Command::Ledger {
            command: LedgerCommand::Check(db),
        } => books::ledger_check(db).await,
        Command::Reconcile(args) => reconcile_cli::run(args).await,
        Command::Backup(args) => backup::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Pos(args) => pos::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("yuanlu: {error}");
            ExitCode::FAILURE
        }
    }
}
