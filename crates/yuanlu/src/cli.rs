//! The command line. Every flag can also come from its `YUANLU_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "yuanlu",
    version,
    about = "yuanlu (原路): refund back office for POS acquirers and their merchants"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (applies migrations first).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Audit trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print China's business-day calendar: one `YYYY-MM-DD workday|holiday` line per date.
    Calendar(CalendarArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CalendarArgs {
    /// First date, `YYYY-MM-DD`.
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last date (inclusive), `YYYY-MM-DD`.
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// Years beyond the shipped 2024–2026 are loaded from `<data-dir>/calendar/cn-YYYY.txt`.
    #[arg(long, env = "YUANLU_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain; exit status 0 only if it is intact.
    Verify(DatabaseArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory of the embedded SQLite database and the generated admin key.
    #[arg(long, env = "YUANLU_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `postgres://user@host/db` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "YUANLU_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "YUANLU_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// `simulated` or `simulated=2026-11-11T10:00:00+08:00` to run on a clock that an admin
    /// moves forward with `POST /v1/admin/clock/advance`. The real clock is the default.
    #[arg(long, env = "YUANLU_CLOCK", value_parser = parse_clock)]
    pub clock: Option<ClockChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockChoice {
    Real,
    Simulated(Option<DateTime<Utc>>),
}

fn parse_clock(value: &str) -> Result<ClockChoice, String> {
    match value.split_once('=') {
        None if value == "real" => Ok(ClockChoice::Real),
        None if value == "simulated" => Ok(ClockChoice::Simulated(None)),
        Some(("simulated", start)) => DateTime::parse_from_rfc3339(start)
            .map(|d| ClockChoice::Simulated(Some(d.with_timezone(&Utc))))
            .map_err(|e| {
                format!("the start instant must be RFC 3339 (e.g. 2026-11-11T10:00:00+08:00): {e}")
            }),
        _ => Err("use `real`, `simulated` or `simulated=<RFC 3339 instant>`".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_flag_forms() {
        assert_eq!(parse_clock("real"), Ok(ClockChoice::Real));
        assert_eq!(parse_clock("simulated"), Ok(ClockChoice::Simulated(None)));
        let start = DateTime::parse_from_rfc3339("2026-11-11T02:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .ok();
        assert_eq!(
            parse_clock("simulated=2026-11-11T10:00:00+08:00"),
            Ok(ClockChoice::Simulated(start))
        );
        assert!(parse_clock("simulated=yesterday").is_err());
        assert!(parse_clock("fast").is_err());
    }
}
