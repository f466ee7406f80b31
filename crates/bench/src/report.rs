//! What a bench run measured, percentiles, and the report (Markdown, also printed).

use std::fmt::Write as _;
use std::time::Duration;

use super::Scenario;

/// One timed phase: every request's latency, successes and errors, wall time.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub ok: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
    pub latencies_us: Vec<u64>,
    pub elapsed: Duration,
}

/// Error answers kept per run.
const SAMPLES_MAX: usize = 5;

impl Run {
    pub fn error(&mut self, why: String) {
        self.errors += 1;
        if self.error_samples.len() < SAMPLES_MAX {
            self.error_samples.push(why);
        }
    }

    pub fn merge(&mut self, other: Run, samples_max: usize) {
        self.ok += other.ok;
        self.errors += other.errors;
        for sample in other.error_samples {
            if self.error_samples.len() < samples_max {
                self.error_samples.push(sample);
            }
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// Sorts the latencies for [`Run::percentile_ms`].
    pub fn finish(&mut self) {
        self.latencies_us.sort_unstable();
    }

    /// Successful refunds per second of wall time.
    pub fn per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// Nearest-rank percentile (`p` in 0..=100) of the sorted latencies, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1_000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us.last().copied().unwrap_or(0) as f64 / 1_000.0
    }
}

/// Nearest-rank percentile of sorted values; 0 for none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// PostgreSQL WAL activity during a phase (`pg_stat_wal`, cluster-wide).
#[derive(Debug, Clone, Copy, Default)]
pub struct WalDelta {
    pub syncs: i64,
    pub bytes: i64,
}

/// One side (yuanlu or the baseline) of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub run: Run,
    /// Growth of the stored data divided by the refunds created.
    pub bytes_per_refund: Option<f64>,
    pub wal: Option<WalDelta>,
}

/// `pgbench` with the equivalent custom script.
#[derive(Debug, Clone, Default)]
pub struct Pgbench {
    pub tps: f64,
    pub transactions: u64,
    pub latency_avg_ms: Option<f64>,
    pub seconds: u64,
}

/// An open-loop phase of yuanlu (`--rate`): requests due on a fixed schedule.
#[derive(Debug, Clone, Default)]
pub struct RateRun {
    /// Refunds per second the schedule asks for.
    pub rate: u64,
    pub connections: usize,
    /// Latencies from each request's due time to the end of its answer; `elapsed` from the
    /// first due time to the last answer.
    pub run: Run,
    /// Requests that found every connection busy at their due time.
    pub late: usize,
    /// Every request's send time minus its due time, sorted, in µs.
    pub lag_us: Vec<u64>,
    /// Payments in the database during the phase.
    pub payments_in_db: Option<i64>,
}

impl RateRun {
    /// Requests sent (answered or failed).
    pub fn sent(&self) -> usize {
        self.run.ok + self.run.errors
    }
}

/// `--preload-payments`: what was loaded before a scenario's timed phases.
#[derive(Debug, Clone, Default)]
pub struct Preload {
    /// Payments loaded into each side's database.
    pub payments: usize,
    pub yuanlu_load: Duration,
    pub baseline_load: Duration,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub payments: usize,
    pub merchants: usize,
    pub yuanlu: Side,
    pub baseline: Side,
    /// Statements the baseline ran per refund (the list of yuanlu's create path).
    pub statements_per_refund: f64,
    pub commits_per_refund: f64,
    /// `None` on SQLite; the reason it did not run otherwise.
    pub pgbench: Option<Result<Pgbench, String>>,
    /// yuanlu's open-loop phases (`--rate`), after its closed-loop one.
    pub rates: Vec<RateRun>,
    /// Set when payments were preloaded (`--preload-payments`).
    pub preload: Option<Preload>,
    /// Payments in each side's database at its timed phase (yuanlu, baseline).
    pub payments_in_db: (Option<i64>, Option<i64>),
}

impl ScenarioResult {
    pub fn ratio(&self) -> Option<f64> {
        let base = self.baseline.run.per_sec();
        (base > 0.0).then(|| self.yuanlu.run.per_sec() / base)
    }
}

#[derive(Debug, Clone)]
pub struct BackendResult {
    /// `SQLite` or `PostgreSQL`, for the summary.
    pub short: &'static str,
    /// With the version and durability settings, for the section title.
    pub backend: String,
    pub scenarios: Vec<ScenarioResult>,
    pub notes: Vec<String>,
    /// The create path's query plans (a Markdown section), or why there are none.
    pub plans: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub command: String,
    pub settings: Vec<String>,
    pub backends: Vec<BackendResult>,
}

impl Report {
    /// Requests that were not answered 201, over every run.
    pub fn errors(&self) -> usize {
        self.backends
            .iter()
            .flat_map(|b| &b.scenarios)
            .map(|s| {
                s.yuanlu.run.errors
                    + s.baseline.run.errors
                    + s.rates.iter().map(|r| r.run.errors).sum::<usize>()
            })
            .sum()
    }

    /// The report as Markdown (tables read well in a terminal too).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# yuanlu bench: refund creation\n");
        let _ = writeln!(out, "Command: `{}`\n", self.command);
        for line in &self.settings {
            let _ = writeln!(out, "- {line}");
        }
        let _ = writeln!(out, "\n## Summary\n");
        let _ = writeln!(
            out,
            "| backend | scenario | yuanlu refunds/s | baseline refunds/s | ratio yuanlu/baseline | yuanlu p50 / p99 / max ms | errors |"
        );
        let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        for backend in &self.backends {
            for s in &backend.scenarios {
                let y = &s.yuanlu.run;
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {} | {:.1} / {:.1} / {:.1} | {} |",
                    backend.short,
                    s.scenario.name(),
                    y.per_sec(),
                    s.baseline.run.per_sec(),
                    s.ratio().map_or("-".to_string(), |r| format!("{r:.2}")),
                    y.percentile_ms(50.0),
                    y.percentile_ms(99.0),
                    y.max_ms(),
                    y.errors + s.baseline.run.errors,
                );
            }
        }
        rate_section(&mut out, &self.backends);
        for backend in &self.backends {
            backend_section(&mut out, backend);
        }
        out
    }
}

/// The open-loop phases (`--rate`), if any.
fn rate_section(out: &mut String, backends: &[BackendResult]) {
    let phases: Vec<(&BackendResult, &ScenarioResult, &RateRun)> = backends
        .iter()
        .flat_map(|b| {
            b.scenarios
                .iter()
                .flat_map(move |s| s.rates.iter().map(move |r| (b, s, r)))
        })
        .collect();
    if phases.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## yuanlu at a fixed rate (open loop)\n");
    let _ = writeln!(
        out,
        "| backend | scenario | payments in database | target refunds/s | sent | created | seconds | achieved refunds/s | p50 / p99 / max ms from due time | late (no free connection) | send lag p99 / max ms | connections | errors |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (backend, s, r) in &phases {
        let y = &r.run;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1} / {:.1} / {:.1} | {} | {:.1} / {:.1} | {} | {} |",
            backend.short,
            s.scenario.name(),
            r.payments_in_db.map_or("-".to_string(), |n| n.to_string()),
            r.rate,
            r.sent(),
            y.ok,
            y.elapsed.as_secs_f64(),
            y.per_sec(),
            y.percentile_ms(50.0),
            y.percentile_ms(99.0),
            y.max_ms(),
            r.late,
            percentile(&r.lag_us, 99.0) as f64 / 1_000.0,
            r.lag_us.last().copied().unwrap_or(0) as f64 / 1_000.0,
            r.connections,
            y.errors,
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- request i is due at start + i / rate and is sent then on a free keep-alive connection (all opened before the start); its latency runs from its due time to the end of its answer, so queueing behind a slow server counts (no coordinated omission); a request that finds every connection busy waits for one and counts as late; send lag is the send time minus the due time (timer granularity 1 ms, and the load generator shares the machine)"
    );
    let _ = writeln!(
        out,
        "- achieved: refunds created divided by the time from the first due time to the last answer; each phase runs on the scenario's server and payments right after its closed-loop phase, with `merchant_refund_no` of its own"
    );
    for (backend, s, r) in &phases {
        for sample in &r.run.error_samples {
            let _ = writeln!(
                out,
                "  - {} {} at {}/s error: {}",
                backend.short,
                s.scenario.name(),
                r.rate,
                sample.chars().take(300).collect::<String>()
            );
        }
    }
}

fn backend_section(out: &mut String, backend: &BackendResult) {
    let _ = writeln!(out, "\n## {}\n", backend.backend);
    let has_wal = backend
        .scenarios
        .iter()
        .any(|s| s.yuanlu.wal.is_some() || s.baseline.wal.is_some());
    let _ = write!(
        out,
        "| scenario | side | refunds | seconds | refunds/s | p50 ms | p99 ms | max ms | errors | bytes stored/refund |"
    );
    if has_wal {
        let _ = write!(out, " WAL syncs/refund | WAL bytes/refund |");
    }
    let _ = writeln!(out);
    let _ = write!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    if has_wal {
        let _ = write!(out, " ---: | ---: |");
    }
    let _ = writeln!(out);
    for s in &backend.scenarios {
        let name = format!(
            "{} ({} merchant{}, {} payments)",
            s.scenario.name(),
            s.merchants,
            if s.merchants == 1 { "" } else { "s" },
            s.payments
        );
        side_row(out, &name, "yuanlu (HTTP)", &s.yuanlu, has_wal);
        side_row(out, &name, "baseline (sqlx loop)", &s.baseline, has_wal);
        match &s.pgbench {
            None => {}
            Some(Ok(p)) => {
                let _ = write!(
                    out,
                    "| {name} | pgbench (same script) | {} | {} | {:.0} | avg {} | | | | |",
                    p.transactions,
                    p.seconds,
                    p.tps,
                    p.latency_avg_ms
                        .map_or("-".to_string(), |l| format!("{l:.1}")),
                );
                if has_wal {
                    let _ = write!(out, " | |");
                }
                let _ = writeln!(out);
            }
            Some(Err(why)) => {
                let _ = write!(out, "| {name} | pgbench | not run: {why} | | | | | | | |");
                if has_wal {
                    let _ = write!(out, " | |");
                }
                let _ = writeln!(out);
            }
        }
    }
    let _ = writeln!(out);
    for s in &backend.scenarios {
        let _ = writeln!(
            out,
            "- {}: ratio yuanlu/baseline {}; per refund {:.1} SQL statements and {:.1} commit (each a durable flush: one fsync unless commits are grouped)",
            s.scenario.name(),
            s.ratio().map_or("-".to_string(), |r| format!("{r:.2}")),
            s.statements_per_refund,
            s.commits_per_refund,
        );
        if let Some(p) = &s.preload {
            let count = |n: Option<i64>| n.map_or("?".to_string(), |n| n.to_string());
            let _ = writeln!(
                out,
                "- {}: payments in the database at the timed phase: yuanlu {}, baseline {}, of which {} preloaded (untimed: {:.1} s into yuanlu's, {:.1} s into the baseline's)",
                s.scenario.name(),
                count(s.payments_in_db.0),
                count(s.payments_in_db.1),
                p.payments,
                p.yuanlu_load.as_secs_f64(),
                p.baseline_load.as_secs_f64(),
            );
        }
        for (side, run) in [("yuanlu", &s.yuanlu.run), ("baseline", &s.baseline.run)] {
            for sample in &run.error_samples {
                let _ = writeln!(
                    out,
                    "  - {side} error: {}",
                    sample.chars().take(300).collect::<String>()
                );
            }
        }
    }
    for note in &backend.notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out, "\n{}", backend.plans);
}

fn side_row(out: &mut String, scenario: &str, side: &str, s: &Side, has_wal: bool) {
    let r = &s.run;
    let _ = write!(
        out,
        "| {scenario} | {side} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} |",
        r.ok,
        r.elapsed.as_secs_f64(),
        r.per_sec(),
        r.percentile_ms(50.0),
        r.percentile_ms(99.0),
        r.max_ms(),
        r.errors,
        s.bytes_per_refund
            .map_or("-".to_string(), |b| format!("{b:.0}")),
    );
    if has_wal {
        let per = |v: i64| {
            if r.ok > 0 {
                format!("{:.2}", v as f64 / r.ok as f64)
            } else {
                "-".to_string()
            }
        };
        match s.wal {
            Some(w) => {
                let _ = write!(out, " {} | {} |", per(w.syncs), per(w.bytes));
            }
            None => {
                let _ = write!(out, " - | - |");
            }
        }
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
