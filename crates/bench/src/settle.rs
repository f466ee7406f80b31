//! Settlement of one business date with many payments (`--settle-payments N`): the engine's
//! `run_settlement`, as `yuanlu settle` runs it, against the bare database doing the day's
//! aggregate and the statement writes in one transaction, in the same run.
//!
//! Per backend (SQLite, then PostgreSQL when a URL is given), in a fresh database:
//!
//! 1. **set-up, untimed**: [`MERCHANTS`] merchants through `Engine::create_merchant`, then
//!    N payments captured on [`BUSINESS_DATE`] bulk-loaded by [`load`]: for each payment
//!    exactly the rows `Engine::record_payment` writes (the payment, its `payment_captured`
//!    posting with its entries, the merchant's balance and its `payment.recorded` audit
//!    entry, hash-chained), with multi-row INSERTs in a few big transactions. The test
//!    `the_bulk_loader_writes_what_record_payment_writes` proves the loader faithful: the
//!    same payments recorded one by one through the engine give the same rows and the same
//!    statements.
//! 2. **baseline, timed**: in one transaction, one `INSERT … SELECT` reads the day's
//!    postings grouped by merchant and writes each merchant's statement (totals and every
//!    line as JSON, built by the database), then the payout postings, their entries, the
//!    balances and the settlement run. Its rows are then removed again (untimed).
//! 3. **yuanlu, timed**: `Engine::run_settlement` for the date.
//! 4. **check**: the statements' net amounts sum to the net computed from the generated
//!    payments, every merchant with payments has a statement, and the ledger balances.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use indicatif::ProgressBar;
use serde_json::json;
use sqlx::AssertSqlSafe;
use yuanlu_domain::audit::{AuditContent, entry_hash};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::payment_fee;
use yuanlu_domain::ledger::{balances, merchant_balance};
use yuanlu_domain::money::CURRENCY;
use yuanlu_domain::payment::PaymentKind;
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_domain::time::{shanghai_date, shanghai_day_bounds, to_micros};
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::{Clock, SimulatedClock};
use yuanlu_engine::ids::{self, new_id};
use yuanlu_engine::ledger::{LedgerEvent, POSTING, PostingFacts, posting_for};
use yuanlu_engine::merchants::CreateMerchant;
use yuanlu_engine::{Db, Engine};
use yuanlu_store::{Backend, Conn};

/// Merchants the day's payments are spread over.
pub const MERCHANTS: usize = 1_000;
/// The day every payment is captured on: Tuesday 2026-03-10, paid out Wednesday 11th.
pub const BUSINESS_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 3, 10) {
    Some(date) => date,
    None => NaiveDate::MIN,
};
/// Payments per loading transaction.
const LOAD_TX_PAYMENTS: usize = 50_000;
/// Payments whose rows are built and inserted together.
const LOAD_CHUNK_PAYMENTS: usize = 2_000;
/// Bound parameters per multi-row INSERT (SQLite allows 32,766, PostgreSQL 65,535).
const BINDS_MAX: usize = 30_000;
/// Seed of the generated day (same data on every run and backend).
const SEED: u64 = 0x005e_771e_2026_0310;

/// The backend-specific part of a run.
pub enum Target<'a> {
    /// A fresh SQLite database in this directory.
    Sqlite(&'a Path),
    /// A fresh PostgreSQL schema (created and dropped by the caller).
    Postgres { url: &'a str, schema: &'a str },
}

/// What one backend measured.
pub struct BackendSettle {
    pub backend: &'static str,
    pub payments: usize,
    pub merchants_settled: usize,
    pub load: Duration,
    pub rows_loaded: RowsLoaded,
    pub yuanlu: Duration,
    pub baseline: Duration,
    pub expected_net_fen: i64,
    pub yuanlu_net_fen: i64,
    pub baseline_net_fen: i64,
    pub yuanlu_statement_bytes: i64,
    pub baseline_statement_bytes: i64,
    /// Wrong results (empty when every check passed).
    pub errors: Vec<String>,
}

/// Rows written by the loader, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowsLoaded {
    pub payments: usize,
    pub postings: usize,
    pub entries: usize,
    pub audit: usize,
}

/// The settlement benchmark's results, per backend.
pub struct SettleResult {
    pub payments: usize,
    pub merchants: usize,
    pub backends: Vec<Result<BackendSettle, String>>,
}

impl SettleResult {
    /// Wrong results and failed runs.
    pub fn errors(&self) -> usize {
        self.backends
            .iter()
            .map(|b| match b {
                Ok(b) => b.errors.len(),
                Err(_) => 1,
            })
            .sum()
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Settlement of a day ({} payments)\n\n\
             | backend | payments | merchants settled | yuanlu s | yuanlu payments/s | baseline s | baseline payments/s | ratio yuanlu/baseline | net amounts |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
            self.payments
        );
        let mut notes = Vec::new();
        for backend in &self.backends {
            match backend {
                Ok(b) => {
                    let per_second =
                        |took: Duration| b.payments as f64 / took.as_secs_f64().max(f64::EPSILON);
                    let check = if b.errors.is_empty() {
                        "equal to the generated data's".to_string()
                    } else {
                        format!("**{} error(s)**", b.errors.len())
                    };
                    out.push_str(&format!(
                        "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {check} |\n",
                        b.backend,
                        b.payments,
                        b.merchants_settled,
                        b.yuanlu.as_secs_f64(),
                        per_second(b.yuanlu),
                        b.baseline.as_secs_f64(),
                        per_second(b.baseline),
                        b.baseline.as_secs_f64() / b.yuanlu.as_secs_f64().max(f64::EPSILON),
                    ));
                    let r = b.rows_loaded;
                    notes.push(format!(
                        "{}: loaded (untimed) in {:.1} s: {} payments, {} postings, {} entries, {} audit entries; \
                         yuanlu {:.1} ms per merchant, statements {:.1} MB of JSON; baseline statements {:.1} MB; \
                         net {} fen expected, {} (yuanlu), {} (baseline)",
                        b.backend,
                        b.load.as_secs_f64(),
                        r.payments,
                        r.postings,
                        r.entries,
                        r.audit,
                        b.yuanlu.as_secs_f64() * 1e3 / b.merchants_settled.max(1) as f64,
                        b.yuanlu_statement_bytes as f64 / 1e6,
                        b.baseline_statement_bytes as f64 / 1e6,
                        b.expected_net_fen,
                        b.yuanlu_net_fen,
                        b.baseline_net_fen,
                    ));
                    for error in &b.errors {
                        notes.push(format!("**error** ({}): {error}", b.backend));
                    }
                }
                Err(why) => {
                    out.push_str(&format!("| failed | | | | | | | | {why} |\n"));
                    notes.push(format!("**error**: {why}"));
                }
            }
        }
        out.push('\n');
        notes.push(format!(
            "data: {} merchants (every 5th with a 0.20 % wallet rate, every 7th with 0.55 % on credit cards, the others the default fee table), \
             payments captured through business date {BUSINESS_DATE} (Asia/Shanghai) in time order, each on a random merchant: \
             40 % WeChat Pay, 30 % Alipay, 10 % each credit card, debit card (fee capped at 25.00 CNY) and UnionPay QR; \
             1.00–300.00 CNY, one in 20 1,000–21,000 CNY; the fee of each from its merchant's settings. \
             No refunds or voids (a refund's debit is one more posting of the same kind; see BENCHMARKS.md)",
            self.merchants
        ));
        notes.push("loading: the rows `Engine::record_payment` writes for each payment (payment, `payment_captured` posting and its entries, balance, hash-chained `payment.recorded` audit entry), as multi-row INSERTs in transactions of 50,000 payments; a test proves them equal to recording the payments one by one".to_string());
        notes.push("yuanlu: `Engine::run_settlement` as `yuanlu settle` calls it: the day's merchants, then per merchant one transaction (balance row locked, the day's postings read, the statement built with one explained line per payment, payout posting, statement row, audit entry)".to_string());
        notes.push("baseline: the bare database in one transaction: one `INSERT … SELECT` over the day's postings grouped by merchant writing each statement (totals and every line as JSON built by `json_group_array` / `json_agg`, without explanations), the payout postings and their two entries with `INSERT … SELECT`, one `UPDATE` of the balances and the run row; no audit entries. Run before yuanlu on the same data, its rows removed afterwards (untimed; PostgreSQL then `VACUUM ANALYZE`)".to_string());
        notes.push("before each timed phase the database is checkpointed (SQLite `PRAGMA wal_checkpoint(TRUNCATE)`, PostgreSQL `CHECKPOINT`), so neither side pays for writing home the load's or the other side's rows; durability as the store opens it (SQLite WAL with `synchronous=FULL`)".to_string());
        notes.push("ratio yuanlu/baseline: payments/s of yuanlu divided by those of the baseline (1.00 = as fast as the bare database)".to_string());
        for note in notes {
            out.push_str(&format!("- {note}\n"));
        }
        out
    }
}

/// Runs the benchmark on one backend (`payments` over `merchants`); `Err` when it could not
/// run at all.
pub async fn run(
    target: Target<'_>,
    payments: usize,
    merchants: usize,
) -> Result<BackendSettle, String> {
    let (backend, db) = match target {
        Target::Sqlite(dir) => (
            "SQLite",
            Db::open_sqlite(dir)
                .await
                .map_err(|e| format!("open SQLite in {}: {e}", dir.display()))?,
        ),
        Target::Postgres { url, schema } => (
            "PostgreSQL",
            Db::open_postgres(url, Some(schema))
                .await
                .map_err(|e| format!("connect to PostgreSQL: {e}"))?,
        ),
    };
    let result = run_on(backend, &db, payments, merchants).await;
    db.close().await;
    result
}

// Long on purpose: the settlement benchmark's four steps on one backend, in order (set-up, baseline, yuanlu, check).
async fn run_on(
    backend: &'static str,
    db: &Db,
    payments: usize,
    merchant_count: usize,
) -> Result<BackendSettle, String> {
    db.migrate().await.map_err(|e| format!("migrate: {e}"))?;
    let (day_start, day_end) = shanghai_day_bounds(BUSINESS_DATE);
    let clock = Arc::new(SimulatedClock::starting_at(
        day_start - chrono::Duration::hours(1),
    ));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let engine = Engine::new(db.clone(), dyn_clock);

    let bar = super::progress(&format!("{backend} settle: merchants"), merchant_count);
    let merchants = create_merchants(&engine, merchant_count, &bar).await?;
    bar.finish_and_clear();
    let bar = super::progress(&format!("{backend} settle: load payments"), payments);
    let started = Instant::now();
    let loaded = load(db, &merchants, payments, |_| new_id(ids::PAYMENT), &bar).await?;
    bar.finish_and_clear();
    let load = started.elapsed();
    if db.backend() == Backend::Postgres {
        execute(db, "ANALYZE").await?;
    }
    // Settle at 02:00 the next morning.
    clock.advance(day_end + chrono::Duration::hours(2) - clock.now());
    let now = clock.now();

    let busy = spinner(&format!("{backend} settle: checkpoint"));
    quiesce(db).await?;
    busy.finish_and_clear();
    let busy = spinner(&format!("{backend} settle: baseline"));
    let base = baseline(db, BUSINESS_DATE, now).await?;
    busy.finish_and_clear();
    let busy = spinner(&format!("{backend} settle: removing the baseline's rows"));
    undo_baseline(db, BUSINESS_DATE).await?;
    quiesce(db).await?;
    busy.finish_and_clear();

    let busy = spinner(&format!("{backend} settle: yuanlu run_settlement"));
    let started = Instant::now();
    let statements = engine
        .run_settlement(&Principal::Admin, BUSINESS_DATE)
        .await
        .map_err(|e| format!("run_settlement: {e}"))?;
    let yuanlu = started.elapsed();
    busy.finish_and_clear();

    let mut errors = Vec::new();
    if base.net_fen != loaded.expected_net_fen {
        errors.push(format!(
            "the baseline's statements net {} fen, the generated payments {} fen",
            base.net_fen, loaded.expected_net_fen
        ));
    }
    let yuanlu_net: i64 = statements.iter().map(|s| s.statement.net_fen).sum();
    let sales: i64 = statements.iter().map(|s| s.statement.sales_count).sum();
    let payout: i64 = statements.iter().map(|s| s.payout).sum();
    if yuanlu_net != loaded.expected_net_fen {
        errors.push(format!(
            "yuanlu's statements net {yuanlu_net} fen, the generated payments {} fen",
            loaded.expected_net_fen
        ));
    }
    if payout != loaded.expected_net_fen {
        errors.push(format!(
            "yuanlu paid out {payout} fen, expected {} fen (no merchant has a debt)",
            loaded.expected_net_fen
        ));
    }
    if usize::try_from(sales).ok() != Some(payments) {
        errors.push(format!(
            "yuanlu's statements count {sales} sales, {payments} were loaded"
        ));
    }
    if statements.len() != loaded.merchants_with_payments {
        errors.push(format!(
            "{} statements for {} merchants with payments",
            statements.len(),
            loaded.merchants_with_payments
        ));
    }
    let check = engine
        .check_ledger()
        .await
        .map_err(|e| format!("ledger check: {e}"))?;
    if !check.balanced {
        errors.push(format!(
            "the ledger does not balance after settlement: {check:?}"
        ));
    }
    let (_, _, yuanlu_bytes) = statement_totals(db, BUSINESS_DATE).await?;
    Ok(BackendSettle {
        backend,
        payments,
        merchants_settled: statements.len(),
        load,
        rows_loaded: loaded.rows,
        yuanlu,
        baseline: base.took,
        expected_net_fen: loaded.expected_net_fen,
        yuanlu_net_fen: yuanlu_net,
        baseline_net_fen: base.net_fen,
        yuanlu_statement_bytes: yuanlu_bytes,
        baseline_statement_bytes: base.statement_bytes,
        errors,
    })
}

fn spinner(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

mod baseline;
mod day;
mod load;

use baseline::*;
pub use day::*;
pub use load::*;

#[cfg(test)]
mod tests;
