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
//! A benchmark is a program, not a test: nothing here asserts a speed.

pub mod args;
mod baseline;
mod driver;
mod explain;
mod matching;
mod preload;
mod report;
mod settle;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};

use crate::args::{BenchArgs, BenchCli, BenchScenario};
use report::{BackendResult, Preload, RateRun, Report, ScenarioResult, Side, WalDelta};

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

/// Where a side's data lives, to measure its size and WAL activity.
enum Storage {
    /// The SQLite database file (`…/yuanlu.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL schema.
    Postgres { url: String, schema: String },
}

impl Storage {
    /// Bytes stored: SQLite file plus WAL after a checkpoint; PostgreSQL: `refunds` and
    /// `audit_log` with their indexes (`pg_total_relation_size`).
    async fn bytes(&self) -> Result<u64, String> {
        match self {
            Storage::Sqlite(path) => sqlite_bytes(path).await,
            Storage::Postgres { url, schema } => {
                let mut conn = pg_connect(url, Some(schema)).await?;
                let bytes: i64 = sqlx::query_scalar(
                    "SELECT CAST(pg_total_relation_size('refunds') + pg_total_relation_size('audit_log') AS BIGINT)",
                )
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("measure the schema: {e}"))?;
                let _ = conn.close().await;
                Ok(u64::try_from(bytes).unwrap_or(0))
            }
        }
    }

    /// WAL syncs (`pg_stat_wal`) and the WAL position in bytes, cluster-wide; `None` on
    /// SQLite.
    async fn wal(&self) -> Result<Option<WalDelta>, String> {
        match self {
            Storage::Sqlite(_) => Ok(None),
            Storage::Postgres { url, .. } => {
                let mut conn = pg_connect(url, None).await?;
                let row: Result<(i64, i64), _> = sqlx::query_as(
                    "SELECT CAST(wal_sync AS BIGINT), \
                     CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS BIGINT) FROM pg_stat_wal",
                )
                .fetch_one(&mut conn)
                .await;
                let _ = conn.close().await;
                // pg_stat_wal is PostgreSQL 14+; older servers just get no WAL columns.
                Ok(row.ok().map(|(syncs, bytes)| WalDelta { syncs, bytes }))
            }
        }
    }

    /// Rows in `payments`.
    async fn payments(&self) -> Result<i64, String> {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM payments";
        let count = match self {
            Storage::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(false)
                    .journal_mode(SqliteJournalMode::Wal)
                    .disable_statement_logging();
                let mut conn = SqliteConnection::connect_with(&options)
                    .await
                    .map_err(|e| format!("open {}: {e}", path.display()))?;
                let count = sqlx::query_scalar(sql).fetch_one(&mut conn).await;
                let _ = conn.close().await;
                count
            }
            Storage::Postgres { url, schema } => {
                let mut conn = preload::pg_connect_quiet(url, schema).await?;
                let count = sqlx::query_scalar(sql).fetch_one(&mut conn).await;
                let _ = conn.close().await;
                count
            }
        };
        count.map_err(|e| format!("count the payments: {e}"))
    }

    /// Fresh statistics for the planner after the untimed set-up (PostgreSQL only).
    async fn analyze(&self) -> Result<(), String> {
        if let Storage::Postgres { url, schema } = self {
            let mut conn = pg_connect(url, Some(schema)).await?;
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .map_err(|e| format!("ANALYZE: {e}"))?;
            let _ = conn.close().await;
        }
        Ok(())
    }
}

async fn sqlite_bytes(path: &Path) -> Result<u64, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
    let _ = conn.close().await;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(size(path.to_path_buf()) + size(PathBuf::from(wal)))
}

async fn pg_connect(url: &str, schema: Option<&str>) -> Result<PgConnection, String> {
    let mut options =
        PgConnectOptions::from_str(url).map_err(|e| format!("bad PostgreSQL URL: {e}"))?;
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}

async fn pg_execute(url: &str, sql: String) -> Result<(), String> {
    let mut conn = pg_connect(url, None).await?;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

async fn pg_setting(url: &str, name: &'static str) -> String {
    let Ok(mut conn) = pg_connect(url, None).await else {
        return "?".to_string();
    };
    let sql = match name {
        "fsync" => "SHOW fsync",
        "server_version" => "SHOW server_version",
        _ => "SHOW synchronous_commit",
    };
    let value: String = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|_| "?".to_string());
    let _ = conn.close().await;
    value
}

/// The URL that puts a server in `schema` (as the end-to-end tests do).
fn schema_url(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// One backend: yuanlu's phases, then the baseline's, every scenario.
async fn run_backend(
    exe: &Path,
    plan: &Plan,
    postgres: Option<&str>,
    work: &Path,
) -> Result<BackendResult, String> {
    let Some(url) = postgres else {
        return measure_backend(exe, plan, None, work).await;
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let prefix = format!("yuanlu_bench_{}_{stamp}", std::process::id());
    let schemas = (format!("{prefix}_app"), format!("{prefix}_base"));
    pg_execute(url, format!("CREATE SCHEMA {}", schemas.0)).await?;
    pg_execute(url, format!("CREATE SCHEMA {}", schemas.1)).await?;
    let result = measure_backend(exe, plan, Some((url, &schemas.0, &schemas.1)), work).await;
    for schema in [&schemas.0, &schemas.1] {
        if let Err(why) = pg_execute(url, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await {
            eprintln!("yuanlu bench: could not drop schema {schema}: {why}");
        }
    }
    result
}

/// On PostgreSQL, waits for the backends' statistics (see [`PG_STATS_SETTLE`]).
async fn settle(postgres: bool, why: &str) {
    if postgres {
        let bar = ProgressBar::new_spinner();
        bar.set_message(format!(
            "waiting {} s for PostgreSQL's statistics ({why})",
            PG_STATS_SETTLE.as_secs()
        ));
        bar.enable_steady_tick(Duration::from_millis(200));
        tokio::time::sleep(PG_STATS_SETTLE).await;
        bar.finish_and_clear();
    }
}

fn per_refund(before: u64, after: u64, refunds: usize) -> Option<f64> {
    (refunds > 0).then(|| after.saturating_sub(before) as f64 / refunds as f64)
}

fn wal_delta(before: Option<WalDelta>, after: Option<WalDelta>) -> Option<WalDelta> {
    match (before, after) {
        (Some(b), Some(a)) => Some(WalDelta {
            syncs: a.syncs - b.syncs,
            bytes: a.bytes - b.bytes,
        }),
        _ => None,
    }
}

/// What yuanlu's server measured on one scenario.
struct YuanluPhases {
    /// Payments the set-up made through the API.
    payments: usize,
    side: Side,
    rates: Vec<RateRun>,
    /// How long `--preload-payments` took to load, if asked.
    preloaded: Option<Duration>,
    /// Payments in the database at the timed phases.
    payments_in_db: i64,
}

/// `postgres`: `(url, yuanlu's schema, the baseline's schema)`.
async fn measure_backend(
    exe: &Path,
    plan: &Plan,
    postgres: Option<(&str, &str, &str)>,
    work: &Path,
) -> Result<BackendResult, String> {
    let backend_name = match postgres {
        None => "SQLite (WAL, synchronous=FULL)".to_string(),
        Some((url, _, _)) => format!(
            "PostgreSQL {} (synchronous_commit={}, fsync={})",
            pg_setting(url, "server_version").await,
            pg_setting(url, "synchronous_commit").await,
            pg_setting(url, "fsync").await,
        ),
    };
    let tag = if postgres.is_some() { "pg" } else { "sqlite" };
    let app_dir = work.join(format!("{tag}-yuanlu"));
    let base_dir = work.join(format!("{tag}-baseline"));
    for dir in [&app_dir, &base_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let (app_storage, base_storage) = match postgres {
        None => (
            Storage::Sqlite(app_dir.join("yuanlu.db")),
            Storage::Sqlite(base_dir.join("yuanlu.db")),
        ),
        Some((url, app, base)) => (
            Storage::Postgres {
                url: url.to_string(),
                schema: app.to_string(),
            },
            Storage::Postgres {
                url: url.to_string(),
                schema: base.to_string(),
            },
        ),
    };
    let short = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    // yuanlu over HTTP.
    let admin_key = yuanlu_engine::ids::new_secret_key("bench");
    let server_url = postgres.map(|(url, app, _)| schema_url(url, app));
    let server = driver::Server::start(
        exe,
        &app_dir,
        server_url.as_deref(),
        &admin_key,
        plan.with_dispatch,
    )
    .await?;
    let mut yuanlu_sides = Vec::new();
    let mut failure = None;
    for &scenario in &plan.scenarios {
        let phase = async {
            let setup = driver::setup(&server, plan, scenario).await?;
            let preloaded = if plan.preload_payments > 0 {
                let label = format!("{short} {} preload yuanlu", scenario.name());
                let merchants = &setup.merchant_ids;
                let n = plan.preload_payments;
                Some(preload::load(&app_storage, scenario, merchants, n, &label).await?)
            } else {
                None
            };
            app_storage.analyze().await?;
            let payments_in_db = app_storage.payments().await?;
            settle(postgres.is_some(), "before").await;
            let bytes_before = app_storage.bytes().await?;
            let wal_before = app_storage.wal().await?;
            let label = format!("{short} {} yuanlu", scenario.name());
            let run = driver::drive(&server, &setup, plan, &label).await?;
            settle(postgres.is_some(), "after").await;
            let wal_after = app_storage.wal().await?;
            let bytes_after = app_storage.bytes().await?;
            let mut rates = Vec::new();
            for (k, &rate) in plan.rates.iter().enumerate() {
                let label = format!("{short} {} yuanlu {rate}/s", scenario.name());
                let connections = plan.connections(rate);
                let prefix = format!("rate{k}");
                let mut run = driver::drive_rate(
                    &server,
                    &setup,
                    plan.refunds,
                    rate,
                    connections,
                    &prefix,
                    &label,
                )
                .await?;
                run.payments_in_db = Some(payments_in_db);
                rates.push(run);
            }
            Ok::<_, String>(YuanluPhases {
                payments: setup.payments.len(),
                side: Side {
                    bytes_per_refund: per_refund(bytes_before, bytes_after, run.ok),
                    wal: wal_delta(wal_before, wal_after),
                    run,
                },
                rates,
                preloaded,
                payments_in_db,
            })
        };
        match phase.await {
            Ok(side) => yuanlu_sides.push(side),
            Err(why) => {
                failure = Some(format!("{why}\nserver stderr:\n{}", server.stderr()));
                break;
            }
        }
    }
    server.stop().await;
    if let Some(why) = failure {
        return Err(why);
    }

    // The bare database.
    let db = match postgres {
        None => baseline::open_sqlite(&base_dir).await?,
        Some((url, _, base)) => baseline::open_postgres(url, base).await?,
    };
    let mut scenarios = Vec::new();
    let mut notes = Vec::new();
    let mut plans = String::new();
    for (&scenario, phases) in plan.scenarios.iter().zip(yuanlu_sides) {
        let jobs = baseline::seed(&db, plan, scenario).await?;
        let preload = match phases.preloaded {
            Some(yuanlu_load) => {
                let merchants: Vec<String> = (0..scenario.merchants(plan))
                    .map(|k| baseline::seeded_id("mch", scenario, k))
                    .collect();
                let label = format!("{short} {} preload baseline", scenario.name());
                let n = plan.preload_payments;
                let baseline_load =
                    preload::load(&base_storage, scenario, &merchants, n, &label).await?;
                Some(Preload {
                    payments: n,
                    yuanlu_load,
                    baseline_load,
                })
            }
            None => None,
        };
        base_storage.analyze().await?;
        let base_payments = base_storage.payments().await?;
        settle(postgres.is_some(), "before").await;
        let bytes_before = base_storage.bytes().await?;
        let wal_before = base_storage.wal().await?;
        let label = format!("{short} {} baseline", scenario.name());
        let (run, statements) = baseline::drive(&db, &jobs, plan, &label).await?;
        if plans.is_empty()
            && let Some(job) = jobs.first()
        {
            plans = explain::section(&db, job, short)
                .await
                .unwrap_or_else(|why| format!("(no query plans: {why})"));
        }
        settle(postgres.is_some(), "after").await;
        let wal_after = base_storage.wal().await?;
        let bytes_after = base_storage.bytes().await?;
        let pgbench = match postgres {
            None => None,
            Some((url, _, base)) => {
                let bar = ProgressBar::new_spinner();
                bar.set_message(format!(
                    "{short} {} pgbench ({} s)",
                    scenario.name(),
                    baseline::PGBENCH_SECONDS
                ));
                bar.enable_steady_tick(Duration::from_millis(200));
                let result = baseline::pgbench(url, base, plan, scenario, work).await;
                bar.finish_and_clear();
                Some(result)
            }
        };
        let refunds = run.ok.max(1) as f64;
        scenarios.push(ScenarioResult {
            scenario,
            payments: phases.payments,
            merchants: scenario.merchants(plan),
            yuanlu: phases.side,
            baseline: Side {
                bytes_per_refund: per_refund(bytes_before, bytes_after, run.ok),
                wal: wal_delta(wal_before, wal_after),
                run,
            },
            statements_per_refund: statements as f64 / refunds,
            commits_per_refund: 1.0,
            pgbench,
            rates: phases.rates,
            preload,
            payments_in_db: (Some(phases.payments_in_db), Some(base_payments)),
        });
    }
    db.close().await;
    notes.push(format!(
        "statements per refund (counted in the baseline loop, which copies yuanlu's create path for a refund alone in its transaction): the API key lookup, then in one transaction (BEGIN{} … COMMIT) the payment, the refund number, the merchant, the two day sums (one statement), the settlement check, the balance row (read{}; inserted first if new){}, the refund insert, the payment counters, the audit head (read{}), the audit entry, the head update and the webhook lookup; yuanlu runs the same for the first refund of a merchant in a group commit, and skips the merchant, settlement check, balance, audit head and webhook reads for the next ones of the same transaction",
        if postgres.is_some() { "" } else { " IMMEDIATE" },
        if postgres.is_some() { " FOR UPDATE" } else { "" },
        ", the ledger posting of the queued refund on the balance row already locked (posting, its 3 entries in one statement, balance update)",
        if postgres.is_some() { " FOR UPDATE" } else { "" },
    ));
    if postgres.is_some() {
        notes.push("bytes stored: growth of `refunds` + `audit_log` with their indexes (`pg_total_relation_size`), divided by the refunds; WAL syncs come from `pg_stat_wal.wal_sync` (read 11 s after each phase, as idle backends report late) and WAL bytes from `pg_current_wal_lsn()`; both count the whole cluster, so anything else running on it is included; fewer syncs than commits means commits were grouped (one flush covered several)".to_string());
        notes.push(format!(
            "pgbench: `pgbench -n -M prepared -c {} -j {} -T {} -f <script>` with the same statements on random seeded payments (script written to the temporary directory); its refunds land in the baseline schema after the baseline's phase",
            plan.clients,
            plan.clients.min(2),
            baseline::PGBENCH_SECONDS
        ));
    } else {
        notes.push("durability: WAL with `synchronous=FULL` on both sides (the store's own connection options): each COMMIT fsyncs the WAL before it returns, so one fsync per refund, plus those of the automatic checkpoints (every 1,000 WAL pages)".to_string());
        notes.push("bytes stored: growth of `yuanlu.db` + `yuanlu.db-wal` after `PRAGMA wal_checkpoint(TRUNCATE)`, divided by the refunds (pages, so it includes the B-tree slack of every table and index the create path writes)".to_string());
    }
    Ok(BackendResult {
        short,
        backend: backend_name,
        scenarios,
        notes,
        plans,
    })
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
