//! `yuanlu demo` and `yuanlu serve --demo`: a believable month of a few merchants, made
//! through the engine's own use cases (payments, refunds, reviews, returns, dispatch to the
//! in-process simulators, reroutes, settlement) under a simulated clock that starts
//! `--days` days ago and moves day by day to now. Never by writing rows directly.
//!
//! Deterministic for a given `--seed`: the generator is a seeded SplitMix64, dispatch runs
//! one refund at a time (the simulators decide faults by the order they meet refunds).

mod day;
mod recon;
mod sale;
mod story;
mod world;

pub use story::{DEMO_PASSWORD, sign_ins};

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use yuanlu_domain::time::shanghai_date;
use yuanlu_engine::Db;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::{Clock, SimulatedClock, SystemClock};

use crate::cli::DemoArgs;

type CommandResult = Result<ExitCode, String>;

/// The file in the data directory recording the demo's "now" (so `serve --demo` resumes it).
pub const DEMO_FILE: &str = "demo.json";

/// `yuanlu demo`: refuses a database that already holds data.
pub async fn run(args: DemoArgs) -> CommandResult {
    let db = crate::database::open(&args.database).await?;
    let merchants = count(&db, "SELECT COUNT(*) FROM merchants").await?;
    let payments = count(&db, "SELECT COUNT(*) FROM payments").await?;
    if merchants + payments > 0 {
        db.close().await;
        return Err(format!(
            "the database of {} is not empty ({merchants} merchants, {payments} payments); \
             the demo fills only an empty one (use a fresh --data-dir)",
            args.database.data_dir.display()
        ));
    }
    let outcome = generate(db.clone(), &args).await;
    db.close().await;
    outcome
}

/// Runs the demo into `db` (empty) and reports; non-zero when audit or ledger fail.
pub async fn generate(db: Db, args: &DemoArgs) -> CommandResult {
    let started = std::time::Instant::now();
    let real_now = SystemClock.now();
    let first_day = shanghai_date(real_now) - Duration::days(i64::from(args.days));
    let clock = Arc::new(SimulatedClock::starting_at(day::opening(first_day)));
    let mut world = world::World::start(db, &args.database, clock.clone(), args.seed).await?;
    world.create_merchants().await?;
    story::staff_and_terminals(&mut world).await?;
    let bar = indicatif::ProgressBar::new(u64::from(args.days));
    bar.set_style(
        indicatif::ProgressStyle::with_template("demo {bar:40} {pos}/{len} days {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut date = first_day;
    let today = shanghai_date(real_now);
    let hold_day = last_business_day(&world.engine.calendar, first_day, today);
    while date < today {
        bar.set_message(date.to_string());
        day::run_day(&mut world, date, Some(date) == hold_day).await?;
        date = date.succ_opt().ok_or("date overflow")?;
        world.advance_to(day::opening(date));
        day::close_previous(&mut world, date).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    story::final_morning(&mut world).await?;
    let now = clock.now();
    save_now(&args.database.data_dir, now, args, &world)?;
    let ok = world.report(started.elapsed()).await?;
    world.stop().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The last business day in `first..today`, if any.
fn last_business_day(
    calendar: &yuanlu_domain::calendar::BusinessCalendar,
    first: NaiveDate,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let mut date = today.pred_opt()?;
    while date >= first {
        if calendar.is_business_day(date) {
            return Some(date);
        }
        date = date.pred_opt()?;
    }
    None
}

/// Whether the database holds no merchant yet.
pub async fn is_empty(db: &Db) -> Result<bool, String> {
    Ok(count(db, "SELECT COUNT(*) FROM merchants").await? == 0)
}

pub(crate) async fn count(db: &Db, sql: &'static str) -> Result<i64, String> {
    let result = match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
    };
    result.map_err(|e| format!("cannot read the database: {e}"))
}

fn save_now(
    dir: &std::path::Path,
    now: DateTime<Utc>,
    args: &DemoArgs,
    world: &world::World,
) -> Result<(), String> {
    let text = serde_json::json!({
        "now": now.to_rfc3339(),
        "days": args.days,
        "seed": args.seed,
        "reconciliations": world.reconciliations,
        "terminals": world.terminals,
    })
    .to_string();
    // It holds the demo terminal's master key: readable by its owner only.
    let path = dir.join(DEMO_FILE);
    let _ = std::fs::remove_file(&path);
    crate::admin_key::write_private(&path, &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The demo's "now" saved in the data directory, if a demo ran there.
pub fn saved_now(dir: &std::path::Path) -> Result<Option<DateTime<Utc>>, String> {
    let path = dir.join(DEMO_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let now = value
        .get("now")
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| format!("{} has no valid \"now\"", path.display()))?;
    Ok(Some(now.with_timezone(&Utc)))
}

/// A date as it appears in the demo's refund and order numbers (`20261204`).
pub fn label(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Whoever acts as the acquirer's operator.
pub fn admin() -> Principal {
    Principal::Admin
}
