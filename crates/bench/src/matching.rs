//! Statement matching: `reconcile` on a generated statement against a plain in-memory hash
//! join of the same two sides (the best any matcher could do), in the same run.

use std::time::{Duration, Instant};

use yuanlu_reconcile::{
    DiscrepancySpec, StatementChannel, generate_statement, plain_hash_join, reconcile,
};

/// Best of this many timed runs of each side.
pub const MATCHING_RUNS: usize = 3;

/// What one matching benchmark measured.
pub struct MatchingResult {
    pub lines: usize,
    pub reconcile: Duration,
    pub hash_join: Duration,
    /// Non-matched items found (the injected discrepancies).
    pub exceptions: usize,
}

impl MatchingResult {
    pub fn lines_per_second(&self, took: Duration) -> f64 {
        self.lines as f64 / took.as_secs_f64().max(f64::EPSILON)
    }

    pub fn markdown(&self) -> String {
        let ours = self.lines_per_second(self.reconcile);
        let plain = self.lines_per_second(self.hash_join);
        format!(
            "## Statement matching\n\n\
             | side | lines | best of {MATCHING_RUNS} ms | lines/s |\n| --- | ---: | ---: | ---: |\n\
             | yuanlu `reconcile` | {lines} | {r:.0} | {ours:.0} |\n\
             | plain hash join | {lines} | {h:.0} | {plain:.0} |\n\n\
             - ratio yuanlu/hash join (lines/s): {ratio:.2}; {exceptions} exceptions found (the injected discrepancies)\n\
             - generated WeChat Pay statement and our records in memory (parsing is not timed here: `yuanlu reconcile` shows its progress)\n",
            lines = self.lines,
            r = self.reconcile.as_secs_f64() * 1e3,
            h = self.hash_join.as_secs_f64() * 1e3,
            ratio = ours / plain.max(f64::EPSILON),
            exceptions = self.exceptions,
        )
    }
}

/// Generates `lines` lines (with a few injected discrepancies) and times both sides.
pub fn run(lines: usize) -> MatchingResult {
    let spec = DiscrepancySpec::each(StatementChannel::Wechat, 10);
    let (statement, records, _) = generate_statement(lines, 20_261_122, &spec);
    let mut reconcile_best = Duration::MAX;
    let mut join_best = Duration::MAX;
    let mut exceptions = 0;
    for _ in 0..MATCHING_RUNS {
        let started = Instant::now();
        let report = reconcile(&statement, &records);
        reconcile_best = reconcile_best.min(started.elapsed());
        exceptions = report.items.len();
        let started = Instant::now();
        let matched = plain_hash_join(&statement.lines, &records);
        join_best = join_best.min(started.elapsed());
        std::hint::black_box(matched);
    }
    MatchingResult {
        lines,
        reconcile: reconcile_best,
        hash_join: join_best,
        exceptions,
    }
}
