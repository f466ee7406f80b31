//! `yuanlu bench`: refund creation end to end against the bare database doing the same
//! writes, on one machine in one run (SPEC "Quality bars"; results in BENCHMARKS.md). The
//! program `yuanlu-bench` of this crate is what the `yuanlu` binary runs for `yuanlu bench
//! …`, so none of this ships in the binary.
//!
//! Per backend (SQLite, then PostgreSQL when a URL is given) and scenario (payments spread
//! over many merchants, or all on one hot merchant):
//!
//! 1. [`driver`]: the real binary as `yuanlu serve` in a child process; merchants and
//!    payments through the API (untimed); then refund creation over HTTP from concurrent
//!    keep-alive clients (timed, every request's latency recorded).
//! 2. [`baseline`]: a fresh database with the same migrations and rows, and per refund the
//!    same statements in the same transaction with the same durability, from a minimal
//!    sqlx loop; on PostgreSQL also `pgbench` with an equivalent script.
//! 3. [`report`]: refunds/s, latency percentiles, bytes stored per refund, the ratio.
//!
//! [`measure`] runs these phases per backend; [`storage`] measures where each side's data
//! lives; [`settle`] is the settlement benchmark.
//!
//! A benchmark is a program, not a test: nothing here asserts a speed.

pub mod args;
mod baseline;
mod driver;
mod explain;
mod journey;
mod matching;
mod measure;
mod multiproc;
mod preload;
mod report;
mod settle;
mod storage;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};

use crate::args::{BenchArgs, BenchCli, BenchScenario};
use measure::*;
use report::{BackendResult, Preload, RateRun, Report, ScenarioResult, Side, WalDelta};
use storage::*;

/// Refunds per payment (the rules allow 50); payments are made accordingly.
pub const REFUNDS_PER_PAYMENT: usize = 10;
/// Every payment: 10,000.00 CNY by WeChat Pay (room for 10,000 refunds, which pgbench's
/// random picks may pile onto a payment).
pub const PAYMENT_FEN: i64 = 1_000_000;
/// Every refund: 1.00 CNY, a small partial amount (never a void, never above the ratio).
pub const REFUND_FEN: i64 = 100;
/// PostgreSQL (15) backends flush their statistics at most every 10 s while idle: wait that
/// long around a timed phase so `pg_stat_wal` counts that phase's WAL syncs and no others.
const PG_STATS_SETTLE: Duration = Duration::from_secs(11);

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub refunds: usize,
    pub clients: usize,
    pub merchants: usize,
    pub scenarios: Vec<Scenario>,
    pub with_dispatch: bool,
    /// Open-loop phases (`--rate`): refunds per second, none when empty.
    pub rates: Vec<u64>,
    /// Connections of an open-loop phase (`--rate-connections`; 0: see [`Plan::connections`]).
    pub rate_connections: usize,
    /// Payments preloaded per scenario and side (`--preload-payments`).
    pub preload_payments: usize,
}

impl Plan {
    fn new(args: &BenchArgs) -> Plan {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Plan {
            refunds: size(args.refunds),
            clients: size(args.clients),
            merchants: size(args.merchants),
            scenarios: match args.scenario {
                BenchScenario::Spread => vec![Scenario::Spread],
                BenchScenario::Hot => vec![Scenario::Hot],
                BenchScenario::Both => vec![Scenario::Spread, Scenario::Hot],
            },
            with_dispatch: args.with_dispatch,
            rates: args.rate.iter().copied().filter(|&r| r > 0).collect(),
            rate_connections: size(args.rate_connections),
            preload_payments: size(args.preload_payments),
        }
    }

    /// Keep-alive connections of an open-loop phase at `rate`: as given, or enough for
    /// answers of up to 250 ms at that rate, and at least `--clients`.
    pub fn connections(&self, rate: u64) -> usize {
        if self.rate_connections > 0 {
            return self.rate_connections;
        }
        let quarter = usize::try_from(rate.div_ceil(4)).unwrap_or(usize::MAX);
        quarter.clamp(self.clients, 4_096.max(self.clients))
    }

    /// Every phase on a scenario's payments refunds each of them [`REFUNDS_PER_PAYMENT`]
    /// times; the rules allow [`REFUNDS_PER_PAYMENT_MAX`](yuanlu_domain::decide::REFUNDS_PER_PAYMENT_MAX).
    fn check(&self) -> Result<(), String> {
        let phases = 1 + self.rates.len();
        let max = usize::try_from(yuanlu_domain::decide::REFUNDS_PER_PAYMENT_MAX).unwrap_or(0);
        if phases * REFUNDS_PER_PAYMENT > max {
            return Err(format!(
                "at most {} rates: each phase refunds every payment {REFUNDS_PER_PAYMENT} times and a payment takes {max} refunds",
                max / REFUNDS_PER_PAYMENT - 1
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Spread,
    Hot,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Spread => "spread",
            Scenario::Hot => "hot",
        }
    }

    /// Marks the baseline's seeded ids: `pay_s…`, `pay_h…`.
    pub fn letter(self) -> char {
        match self {
            Scenario::Spread => 's',
            Scenario::Hot => 'h',
        }
    }

    pub fn merchants(self, plan: &Plan) -> usize {
        match self {
            Scenario::Spread => plan.merchants,
            Scenario::Hot => 1,
        }
    }

    /// Payment `j` belongs to merchant `j % merchants`; refund `i` goes to payment `i % payments`.
    pub fn payments(self, plan: &Plan) -> usize {
        plan.refunds
            .div_ceil(REFUNDS_PER_PAYMENT)
            .max(self.merchants(plan))
    }
}

/// A progress bar on stderr for a timed phase (hidden when stderr is not a terminal).
pub fn progress(label: &str, len: usize) -> ProgressBar {
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:<34} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}

/// The `yuanlu` binary the bench starts: `--server`, or `yuanlu` beside this program.
fn server_binary(cli: &BenchCli) -> Result<PathBuf, String> {
    if let Some(server) = &cli.server {
        return Ok(server.clone());
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let beside = me.with_file_name(format!("yuanlu{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!(
            "no yuanlu binary at {}: build it (`cargo build --release -p yuanlu`) or give --server",
            beside.display()
        ))
    }
}

pub async fn run(cli: BenchCli) -> Result<ExitCode, String> {
    let exe = server_binary(&cli)?;
    let args = cli.args;
    let plan = Plan::new(&args);
    plan.check()?;
    let work = tempfile::Builder::new()
        .prefix("yuanlu-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut backends = vec![run_backend(&exe, &plan, None, work.path()).await?];
    if let Some(url) = &args.database_url {
        backends.push(run_backend(&exe, &plan, Some(url), work.path()).await?);
    }
    let report = Report {
        command: std::env::args()
            .map(|arg| without_password(&arg))
            .collect::<Vec<_>>()
            .join(" "),
        settings: settings_lines(&plan, work.path()),
        backends,
    };
    let mut text = report.markdown();
    if args.matching_lines > 0 {
        eprintln!(
            "matching a generated {}-line statement …",
            args.matching_lines
        );
        let lines = args.matching_lines;
        let matching = tokio::task::spawn_blocking(move || matching::run(lines))
            .await
            .map_err(|e| format!("matching benchmark: {e}"))?;
        text.push('\n');
        text.push_str(&matching.markdown());
    }
    let mut journey_errors = 0;
    if args.dispatch_refunds > 0 {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let journey_plan = journey::JourneyPlan {
            refunds: size(args.dispatch_refunds),
            clients: plan.clients,
            merchants: plan.merchants,
            faults: args.dispatch_faults.clone(),
            workers: size(args.dispatch_workers),
        };
        let mut journeys = vec![journey::run_backend(&exe, &journey_plan, None, work.path()).await];
        if let Some(url) = &args.database_url {
            journeys.push(journey::run_backend(&exe, &journey_plan, Some(url), work.path()).await);
        }
        journey_errors += journeys
            .iter()
            .map(journey::JourneyBackend::errors)
            .sum::<usize>();
        text.push('\n');
        text.push_str(&journey::markdown(&journey_plan, &journeys));
        if let Some(url) = &args.database_url {
            let runs = multiproc::run(&exe, &journey_plan, url, work.path()).await;
            journey_errors += multiproc::errors(&runs);
            text.push('\n');
            text.push_str(&multiproc::markdown(&journey_plan, &runs));
        }
    }
    let mut settle_errors = 0;
    if args.settle_payments > 0 {
        let settled = settle_day(&args, work.path()).await;
        settle_errors = settled.errors();
        text.push('\n');
        text.push_str(&settled.markdown());
    }
    println!("{text}");
    if let Some(path) = &args.output {
        std::fs::write(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    let errors = report.errors();
    if errors > 0 {
        eprintln!("yuanlu bench: {errors} refund(s) were not created (see the error samples)");
        return Ok(ExitCode::FAILURE);
    }
    if journey_errors > 0 {
        eprintln!(
            "yuanlu bench: the dispatch phases found {journey_errors} error(s) (see the report)"
        );
        return Ok(ExitCode::FAILURE);
    }
    if settle_errors > 0 {
        eprintln!(
            "yuanlu bench: the settlement benchmark found {settle_errors} error(s) (see the report)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Settles a generated day of `--settle-payments` payments on SQLite (in `work`) and, given a
/// URL, on PostgreSQL in a fresh schema dropped afterwards.
async fn settle_day(args: &BenchArgs, work: &Path) -> settle::SettleResult {
    let payments = args.settle_payments;
    eprintln!("settling a day of {payments} payments …");
    let dir = work.join("settle-sqlite");
    let mut backends =
        vec![settle::run(settle::Target::Sqlite(&dir), payments, settle::MERCHANTS).await];
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(url) = &args.database_url {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let schema = format!("yuanlu_bench_{}_{stamp}_settle", std::process::id());
        let result = match pg_execute(url, format!("CREATE SCHEMA {schema}")).await {
            Ok(()) => {
                let target = settle::Target::Postgres {
                    url,
                    schema: &schema,
                };
                let result = settle::run(target, payments, settle::MERCHANTS).await;
                if let Err(why) =
                    pg_execute(url, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await
                {
                    eprintln!("yuanlu bench: could not drop schema {schema}: {why}");
                }
                result
            }
            Err(why) => Err(why),
        };
        backends.push(result);
    }
    settle::SettleResult {
        payments,
        merchants: settle::MERCHANTS,
        backends,
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`: the report may be
/// published.
fn without_password(arg: &str) -> String {
    let Some((scheme, rest)) = arg.split_once("://") else {
        return arg.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return arg.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => arg.to_string(),
    }
}

fn settings_lines(plan: &Plan, work: &Path) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{} refunds per scenario and side from {} concurrent clients (yuanlu: one keep-alive HTTP/1.1 connection each; baseline: one task each on the store's pool)",
            plan.refunds, plan.clients
        ),
        format!(
            "each refund {:.2} CNY of a {:.2} CNY WeChat Pay payment, {REFUNDS_PER_PAYMENT} refunds per payment; spread: payments over {} merchants; hot: all on one merchant",
            REFUND_FEN as f64 / 100.0,
            PAYMENT_FEN as f64 / 100.0,
            plan.merchants
        ),
        format!(
            "latencies: each request from send to the end of the answer (yuanlu), each transaction from pool acquisition to commit (baseline); only `201 Created` counts as created; set-up is not timed; SQLite files under {} (TMPDIR moves them; on a tmpfs fsync costs nothing)",
            work.display()
        ),
    ];
    lines.push(if plan.with_dispatch {
        "refunds are `queued` (`--with-dispatch`): yuanlu's dispatch workers send them to the in-process simulators while the bench runs, so their writes compete with creation; the baseline does no dispatch".to_string()
    } else {
        "refunds are `queued` (debited, with their ledger posting) on an API-only server (`YUANLU_DISPATCH_WORKERS=0`), so nothing competes with their creation; `--with-dispatch` runs the dispatch workers as well".to_string()
    });
    lines.push("the server runs with no `YUANLU_*` variable but its admin key: no simulator faults (`YUANLU_SIM_FAULTS` unset), default channel timings".to_string());
    if plan.preload_payments > 0 {
        lines.push(format!(
            "preloaded (`--preload-payments {}`, untimed): before each scenario's timed phases, {} captured payments bulk-loaded into yuanlu's database (its server idle) and into the baseline's, over the scenario's merchants, captured on the {} days before today (so today's day sums are unchanged), in capture-time order with ULID ids of their capture time, 40 % WeChat Pay, 30 % Alipay, 10 % each credit card, debit card and UnionPay QR, 1.00–300.00 CNY (one in 20 1,000–21,000 CNY), fees of the default fee table; only `payments` rows (no postings, audit entries or settlement runs for them); SQLite: multi-row INSERTs in transactions of 500,000 rows, then a WAL checkpoint; PostgreSQL: `COPY`, then `VACUUM (ANALYZE) payments` and `CHECKPOINT`",
            plan.preload_payments,
            plan.preload_payments,
            preload::DAYS,
        ));
    }
    if !plan.rates.is_empty() {
        let rates: Vec<String> = plan
            .rates
            .iter()
            .map(|&r| format!("{r}/s on {} connections", plan.connections(r)))
            .collect();
        lines.push(format!(
            "open loop (`--rate`): after each scenario's closed-loop phase, yuanlu gets {} more refunds on a fixed schedule at {} (see the section below)",
            plan.refunds,
            rates.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_the_report() {
        assert_eq!(
            without_password("postgres://bench:s3cret@db:5432/x"),
            "postgres://bench:***@db:5432/x"
        );
        assert_eq!(
            without_password("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(without_password("--refunds"), "--refunds");
    }
}
