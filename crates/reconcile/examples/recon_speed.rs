//! Statement matching speed against a plain in-memory hash join of the same two sides.
//!
//! ```text
//! cargo run --release -p yuanlu-reconcile --example recon_speed [-- LINES [RUNS]]
//! ```
//!
//! Generates a WeChat statement of LINES lines (default 1 000 000) with a few discrepancies
//! of each class and our records, then times, RUNS times each (default 5), `reconcile` and
//! `plain_hash_join`, and prints the best run of each in lines per second and their ratio.
//! Also times reading the statement file, for information.

use std::time::{Duration, Instant};

use yuanlu_reconcile::{
    DiscrepancySpec, StatementChannel, generate, parse, plain_hash_join, reconcile,
};

fn best<T>(runs: usize, mut work: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let out = std::hint::black_box(work());
        best = best.min(start.elapsed());
        last = Some(out);
    }
    match last {
        Some(out) => (best, out),
        None => unreachable!("at least one run"),
    }
}

fn per_second(lines: usize, time: Duration) -> f64 {
    lines as f64 / time.as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

    let spec = DiscrepancySpec::each(StatementChannel::Wechat, 10);
    let generated = generate(lines, 2026, &spec);
    let statement = &generated.statement;
    let records = &generated.records;
    println!(
        "statement: {} lines ({:.1} MB WeChat bill), {} records, {} injected discrepancies",
        statement.lines.len(),
        generated.bytes.len() as f64 / 1e6,
        records.len(),
        generated.injected.len()
    );

    let (parse_time, parsed) = best(1, || {
        parse(StatementChannel::Wechat, &generated.bytes, &mut |_| {})
    });
    match parsed {
        Ok(parsed) => println!(
            "parse (WeChat bill):  {:>8.1} ms  {:>12.0} lines/s  ({} lines)",
            parse_time.as_secs_f64() * 1e3,
            per_second(statement.lines.len(), parse_time),
            parsed.lines.len()
        ),
        Err(error) => println!("parse failed: {error}"),
    }

    let (recon_time, report) = best(runs, || reconcile(statement, records));
    let (join_time, joined) = best(runs, || plain_hash_join(&statement.lines, records));
    let n = statement.lines.len();
    println!(
        "reconcile:            {:>8.1} ms  {:>12.0} lines/s  ({} items)",
        recon_time.as_secs_f64() * 1e3,
        per_second(n, recon_time),
        report.items.len()
    );
    println!(
        "plain hash join:      {:>8.1} ms  {:>12.0} lines/s  ({} equal amounts)",
        join_time.as_secs_f64() * 1e3,
        per_second(n, join_time),
        joined
    );
    println!(
        "reconcile / plain hash join time: {:.2}x (best of {runs})",
        recon_time.as_secs_f64() / join_time.as_secs_f64()
    );
}
