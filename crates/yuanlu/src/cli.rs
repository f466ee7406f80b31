//! The command line. Every flag can also come from its `YUANLU_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use yuanlu_engine::reconciliation::StatementChannel;

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
    /// Run the channel simulators (WeChat Pay, Alipay, card network) as a separate process,
    /// for several `yuanlu serve` processes to share (`serve --simulator-url`).
    Simulate(SimulateArgs),
    /// Benchmark refund creation end to end (real server over HTTP) against the bare
    /// database doing the same statements, on SQLite and, given a URL, PostgreSQL.
    #[command(disable_help_flag = true)]
    Bench(BenchForward),
    /// Settle a business date (T+1): one statement per merchant, payout and carried balance.
    Settle(SettleArgs),
    /// Ledger commands.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Import a channel statement (WeChat Pay, Alipay, card network, yuanlu CSV) for its
    /// business date and reconcile it against the books (对账).
    Reconcile(ReconcileArgs),
    /// Copy the embedded SQLite database into a new file while servers run (a consistent
    /// snapshot); PostgreSQL is backed up with pg_dump (docs/operations.md).
    Backup(BackupArgs),
    /// Fill an empty database with a believable month (merchants, payments, refunds of every
    /// kind, settlements), made through the engine under a simulated clock.
    Demo(DemoArgs),
    /// A POS terminal simulator: signs on with its TMK and runs sales, voids, refunds,
    /// reversals and settlement against a POS host, printing receipts (docs/pos.md).
    Pos(crate::pos::PosArgs),
    /// Staff accounts of the pages (merchant cashiers and supervisors, acquirer reviewers
    /// and admins).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an account. The password comes from --password-file, YUANLU_USER_PASSWORD, or
    /// a line on standard input.
    Add(UsersAddArgs),
}

#[derive(Debug, Clone, Args)]
pub struct UsersAddArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// 3–40 of a-z 0-9 . _ -
    #[arg(long)]
    pub username: String,
    /// cashier, supervisor (with --merchant), reviewer or admin.
    #[arg(long)]
    pub role: String,
    /// The merchant (mch_…) of a cashier or supervisor.
    #[arg(long)]
    pub merchant: Option<String>,
    /// A file holding the password (its first line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The backup file to create; an existing file is refused.
    #[arg(long)]
    pub to: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Days of history, ending today.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Seed of the generator: the same seed gives the same demo.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `yuanlu bench …`: handed whole to the `yuanlu-bench` program (crate `yuanlu-bench`), so
/// the benchmark is not in the shipped binary.
#[derive(Debug, Clone, Args)]
pub struct BenchForward {
    /// The bench's own arguments (`yuanlu bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    #[arg(
        long,
        env = "YUANLU_SIMULATOR_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
    /// File holding the secret shared with the servers, which signs requests and
    /// callbacks; or set `YUANLU_SIMULATOR_SECRET` (at least 16 bytes). No flag takes the
    /// secret itself.
    #[arg(long, value_name = "PATH")]
    pub simulator_secret_file: Option<PathBuf>,
    /// Faults, e.g. `lost=0.2,error=0.1,abnormal=0.05,slow=0.1,confirm_delay_ms=200,duplicate=0.3,out_of_order=0.3,latency=0..20,seed=7`.
    #[arg(long, env = "YUANLU_SIM_FAULTS")]
    pub faults: Option<String>,
}

/// Where refunds go, and how patiently.
#[derive(Debug, Clone, Args)]
pub struct ChannelArgs {
    /// Base URL of a `yuanlu simulate` process; without it the simulators run in this
    /// process under `/sim` (their books then live in memory and reset on restart).
    #[arg(long, env = "YUANLU_SIMULATOR_URL")]
    pub simulator_url: Option<String>,
    /// File holding the `yuanlu simulate` process's secret; or set
    /// `YUANLU_SIMULATOR_SECRET` (at least 16 bytes). No flag takes the secret itself.
    #[arg(long, value_name = "PATH")]
    pub simulator_secret_file: Option<PathBuf>,
    /// Faults of the in-process simulators (same syntax as `yuanlu simulate --faults`).
    #[arg(long, env = "YUANLU_SIM_FAULTS")]
    pub sim_faults: Option<String>,
    /// How long a channel call may take before its outcome counts as unknown.
    #[arg(long, env = "YUANLU_CHANNEL_TIMEOUT_MS", default_value_t = 10_000)]
    pub channel_timeout_ms: u64,
    /// First retry delay after a channel error (doubles per attempt, with jitter).
    #[arg(long, env = "YUANLU_DISPATCH_RETRY_MS", default_value_t = 1_000)]
    pub dispatch_retry_ms: u64,
    /// Dispatch workers in this process (0: an API-only process; another process sends).
    #[arg(long, env = "YUANLU_DISPATCH_WORKERS", default_value_t = 2)]
    pub dispatch_workers: usize,
    /// First delay between queries of a refund the channel accepted but has not confirmed.
    #[arg(long, env = "YUANLU_DISPATCH_POLL_MS", default_value_t = 30_000)]
    pub dispatch_poll_ms: u64,
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
pub enum LedgerCommand {
    /// Prove the ledger balances; exit status 0 only if it does.
    Check(DatabaseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SettleArgs {
    /// The business date to settle, `YYYY-MM-DD` (Asia/Shanghai; must have ended).
    #[arg(long)]
    pub date: chrono::NaiveDate,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain; exit status 0 only if it is intact.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Heads kept from an earlier run: a saved `GET /v1/audit/verify` answer or `yuanlu
    /// audit verify` output (`{"heads": [...]}`), or a bare `[{chain, seq, hash}]`. Fails
    /// when a chain is shorter than, or differs at, a kept head.
    #[arg(long)]
    pub expect_heads: Option<PathBuf>,
    /// Print the report as JSON (the only format; accepted for scripts that ask for it).
    #[arg(long)]
    pub json: bool,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory of the embedded SQLite database and the generated admin and account keys.
    #[arg(long, env = "YUANLU_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `postgres://user@host/db` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "YUANLU_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PEM certificates trusted besides the system's roots, for PostgreSQL over TLS and
    /// outgoing HTTPS (channels, webhooks).
    #[arg(long, env = "YUANLU_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "YUANLU_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub channels: ChannelArgs,
    /// `simulated` or `simulated=2026-11-11T10:00:00+08:00` to run on a clock that an admin
    /// moves forward with `POST /v1/admin/clock/advance`. The real clock is the default.
    #[arg(long, env = "YUANLU_CLOCK", value_parser = parse_clock)]
    pub clock: Option<ClockChoice>,
    /// Reverse proxies (`ADDR[,ADDR]`, IPs or CIDR ranges) whose `X-Forwarded-For` or
    /// `Forwarded` header names the client for the public endpoints' rate limit. Without
    /// it the TCP peer is the client and those headers are ignored.
    #[arg(long, env = "YUANLU_TRUSTED_PROXY")]
    pub trusted_proxy: Option<yuanlu_web::client_addr::TrustedProxies>,
    /// Let webhooks go to loopback/private/link-local addresses (tests, on-premise receivers).
    #[arg(long, env = "YUANLU_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Also serve `GET /metrics` here, without a key (on the main listener it needs the admin key).
    #[arg(long, env = "YUANLU_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Also serve POS terminals (China UnionPay ISO 8583 over TCP) here; off unless given
    /// (docs/pos.md).
    #[arg(long, env = "YUANLU_POS_LISTEN")]
    pub pos_listen: Option<SocketAddr>,
    /// How long a request may take before it is abandoned (its transaction rolled back)
    /// and answered 503 `request_timeout`.
    #[arg(long, env = "YUANLU_REQUEST_TIMEOUT_MS", default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_timeout_ms: u64,
    /// On an empty database, first fill it with `yuanlu demo` (30 days); then serve on a
    /// simulated clock set to the demo's "now" (kept in `<data-dir>/demo.json`).
    #[arg(long)]
    pub demo: bool,
    /// When the server settles the day before by itself, `HH:MM` in Asia/Shanghai (on the
    /// server's clock, the simulated one too), catching up missed dates at start-up; `off`
    /// leaves settlement to `POST /v1/settlements/run` and `yuanlu settle`.
    #[arg(long, env = "YUANLU_SETTLE_AT", default_value = "02:00", value_parser = parse_settle_at)]
    pub settle_at: SettleAt,
    /// Where evidence files (sale vouchers, receipt photos) are kept, named by their SHA-256;
    /// default `<data-dir>/evidence`. Servers sharing one PostgreSQL database must share this
    /// directory too (docs/evidence.md).
    #[arg(long, env = "YUANLU_EVIDENCE_DIR")]
    pub evidence_dir: Option<PathBuf>,
}

/// `--settle-at`: a daily time, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleAt {
    Off,
    Daily(yuanlu_engine::settlement_schedule::SettleSchedule),
}

fn parse_settle_at(value: &str) -> Result<SettleAt, String> {
    if value == "off" {
        return Ok(SettleAt::Off);
    }
    yuanlu_engine::settlement_schedule::SettleSchedule::parse(value)
        .map(SettleAt::Daily)
        .map_err(|e| format!("{e}, or `off`"))
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

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// The statement's format and channel: `wechat` (WeChat Pay trade bill), `alipay`
    /// (Alipay bill, GBK), `card` (card network settlement file) or `yuanlu` (yuanlu's CSV).
    #[arg(long, value_parser = parse_channel)]
    pub channel: StatementChannel,
    /// The statement file.
    #[arg(long)]
    pub file: PathBuf,
    /// Print at most this many open exceptions (all are stored; the API lists them at
    /// `GET /v1/reconciliations/{id}/exceptions`).
    #[arg(long, default_value_t = 200)]
    pub show: usize,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_channel(value: &str) -> Result<StatementChannel, String> {
    StatementChannel::parse_id(value).ok_or_else(|| {
        let ids: Vec<&str> = StatementChannel::ALL.iter().map(|c| c.id()).collect();
        format!("use one of {}", ids.join(", "))
    })
}
