//! The bench's command line: `yuanlu bench [OPTIONS]`, which the `yuanlu` binary hands to
//! this crate's `yuanlu-bench` program.

use std::path::PathBuf;

use clap::{Args, Parser};

/// `yuanlu-bench`: what `yuanlu bench` runs.
#[derive(Debug, Parser)]
#[command(name = "yuanlu bench", version, about)]
pub struct BenchCli {
    /// The `yuanlu` binary started as the server (default: `yuanlu` beside this program).
    #[arg(long, env = "YUANLU_BENCH_SERVER")]
    pub server: Option<PathBuf>,
    #[command(flatten)]
    pub args: BenchArgs,
}

/// Which payment distributions `yuanlu bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchScenario {
    /// Payments spread over `--merchants` merchants.
    Spread,
    /// Every payment on one hot merchant.
    Hot,
    /// Spread, then hot.
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Refunds created per scenario and backend (timed).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub refunds: u64,
    /// Concurrent clients, each with one keep-alive HTTP connection (or one task in the
    /// baseline).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub clients: u64,
    /// Merchants the payments are spread over (scenario `spread`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub merchants: u64,
    /// Also run on PostgreSQL (`postgres://user@host/db`); each run uses fresh schemas and
    /// drops them at the end.
    #[arg(long, env = "YUANLU_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, value_enum, default_value_t = BenchScenario::Both)]
    pub scenario: BenchScenario,
    /// Also write the report as Markdown to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also run the server's dispatch workers, which send the queued refunds to the
    /// in-process simulators while the bench runs. By default the server is API-only
    /// (`YUANLU_DISPATCH_WORKERS=0`): refund creation alone is measured.
    #[arg(long)]
    pub with_dispatch: bool,
    /// Lines of the generated statement matched against our records (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub matching_lines: usize,
    /// Payments of the business day settled through the engine, against the bare database
    /// settling the same day (0 skips it); loaded untimed into a fresh database per backend.
    #[arg(long, default_value_t = 1_000_000)]
    pub settle_payments: usize,
    /// Open-loop phases after the closed-loop ones: per backend and scenario, `--refunds`
    /// refunds sent to yuanlu on a fixed schedule of this many per second, latency counted
    /// from each request's due time (0 or absent: none; a list runs each rate, `500,1000`).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub rate: Vec<u64>,
    /// Keep-alive connections of an open-loop phase (0: the larger of `--clients` and a
    /// quarter of a second's requests at the rate).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub rate_connections: u64,
    /// Extra captured payments bulk-loaded (untimed) into yuanlu's and the baseline's
    /// database per scenario before its timed phase, over the scenario's merchants, captured
    /// on the 30 days before today.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub preload_payments: u64,
    /// Refunds of the dispatch phases (the whole journey, `queued` to `succeeded`, and on
    /// PostgreSQL one against two server processes); 0 skips them.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub dispatch_refunds: u64,
    /// The simulators' faults in the faulty dispatch phase (`YUANLU_SIM_FAULTS` syntax).
    #[arg(long, default_value = "error=0.1,seed=13")]
    pub dispatch_faults: String,
    /// Dispatch workers of each server in the dispatch phases (`YUANLU_DISPATCH_WORKERS`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub dispatch_workers: u64,
}
