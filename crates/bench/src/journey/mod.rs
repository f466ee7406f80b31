//! The whole journey of a refund (issue 13 item 3): from `queued` to `succeeded` through the
//! in-process channel simulators with the dispatch workers on, with and without simulated
//! faults, and what dispatch costs refund creation running at the same time.
//!
//! Per backend, each sub-phase on a fresh database (SQLite data directory or PostgreSQL
//! schema) with the `spread` scenario's merchants and payments made through the API:
//!
//! 1. **dispatch alone**: an API-only server (`YUANLU_DISPATCH_WORKERS=0`) creates the
//!    refunds (timed: creation alone); it is stopped and a server with the dispatch workers
//!    on is started on the same database; timed from its start until no refund is `queued`
//!    or `processing` (the bench reads the refunds' statuses from the database every 50 ms).
//! 2. the same with the simulators' faults (`YUANLU_SIM_FAULTS`, `--dispatch-faults`).
//! 3. **creation with dispatch on**: one server with the workers on from the start creates
//!    the refunds (timed) while they are dispatched, then the rest of the queue drains.
//!
//! After each sub-phase: every refund's status, the sends per refund (`refund.sent` audit
//! entries), the ledger check and the audit chain verification.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yuanlu_engine::clock::{Clock, SystemClock};
use yuanlu_engine::{Db, Engine};

use super::report::Run;
use super::*;

mod checks;
pub(crate) use checks::{Checked, check, describe};

/// How often the bench reads the refunds' statuses while dispatch drains.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long one HTTP request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a sub-phase's server keeps its data.
pub(crate) enum Place {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Place {
    /// A fresh place named `name`: a directory under `work`, or a new schema.
    pub(crate) async fn fresh(
        work: &Path,
        postgres: Option<&str>,
        name: &str,
    ) -> Result<Place, String> {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        match postgres {
            None => Ok(Place::Sqlite(dir)),
            Some(url) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let schema =
                    format!("yuanlu_bench_{}_{stamp}_{name}", std::process::id()).replace('-', "_");
                pg_execute(url, format!("CREATE SCHEMA {schema}")).await?;
                Ok(Place::Postgres {
                    url: url.to_string(),
                    schema,
                })
            }
        }
    }

    /// The server's `--database-url` (none on SQLite).
    pub(crate) fn server_url(&self) -> Option<String> {
        match self {
            Place::Sqlite(_) => None,
            Place::Postgres { url, schema } => Some(schema_url(url, schema)),
        }
    }

    /// A server's data directory (`n`-th server of the place).
    pub(crate) fn data_dir(&self, work: &Path, name: &str, n: usize) -> Result<PathBuf, String> {
        let dir = match self {
            // Every SQLite server of the place shares its file.
            Place::Sqlite(dir) => dir.clone(),
            Place::Postgres { .. } => work.join(format!("{name}-server-{n}")),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    pub(crate) async fn open(&self) -> Result<Db, String> {
        match self {
            Place::Sqlite(dir) => Db::open_sqlite(dir)
                .await
                .map_err(|e| format!("open SQLite in {}: {e}", dir.display())),
            Place::Postgres { url, schema } => Db::open_postgres(url, Some(schema))
                .await
                .map_err(|e| format!("connect to PostgreSQL: {e}")),
        }
    }

    /// Drops a PostgreSQL schema (the SQLite directory goes with the bench's temporary one).
    pub(crate) async fn remove(self) {
        match self {
            Place::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { url, schema } => {
                if let Err(why) =
                    pg_execute(&url, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await
                {
                    eprintln!("yuanlu bench: could not drop schema {schema}: {why}");
                }
            }
        }
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Creates `refunds` refunds from `clients` concurrent clients, client `c` talking to
/// `bases[c % bases.len()]` over one keep-alive connection; `merchant_refund_no` is
/// `<prefix>-<i>`. Returns the run and the created refunds' ids.
pub(crate) async fn create(
    bases: &[String],
    setup: &driver::Setup,
    refunds: usize,
    clients: usize,
    prefix: &str,
    label: &str,
) -> Result<(Run, Vec<String>), String> {
    if setup.payments.is_empty() || bases.is_empty() {
        return Err("the set-up made no payments".to_string());
    }
    let payments = Arc::new(setup.payments.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(label, refunds);
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..clients.max(1) {
        let url = format!("{}/v1/refunds", bases[c % bases.len()]);
        let (payments, next, bar) = (payments.clone(), next.clone(), bar.clone());
        let prefix = prefix.to_string();
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= refunds {
                    return (run, ids);
                }
                let (payment_id, key) = &payments[i % payments.len()];
                let body = json!({
                    "payment_id": payment_id,
                    "amount": REFUND_FEN,
                    "reason": "customer_cancel",
                    "merchant_refund_no": format!("{prefix}-{i}"),
                });
                let t0 = Instant::now();
                let answer = async {
                    let response = http
                        .post(&url)
                        .bearer_auth(&**key)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| format!("POST {url}: {e}"))?;
                    let status = response.status().as_u16();
                    let text = response
                        .text()
                        .await
                        .map_err(|e| format!("POST {url}: {e}"))?;
                    Ok::<_, String>((status, text))
                }
                .await;
                run.latencies_us.push(driver::micros(t0.elapsed()));
                match answer {
                    Ok((201, text)) => {
                        let id = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
                        match id {
                            Some(id) => {
                                run.ok += 1;
                                ids.push(id);
                            }
                            None => run.error(format!("201 without an id: {text}")),
                        }
                    }
                    Ok((status, text)) => run.error(format!("{status} {text}")),
                    Err(why) => run.error(why),
                }
                bar.inc(1);
            }
        }));
    }
    let mut total = Run::default();
    let mut ids = Vec::with_capacity(refunds);
    for task in tasks {
        let (run, made) = task.await.map_err(|e| format!("client task: {e}"))?;
        total.merge(run, 5);
        ids.extend(made);
    }
    total.elapsed = started.elapsed();
    bar.finish_and_clear();
    total.finish();
    Ok((total, ids))
}

/// Refunds by status.
pub(crate) async fn statuses(db: &Db) -> Result<BTreeMap<String, i64>, String> {
    let sql = "SELECT status, CAST(COUNT(*) AS BIGINT) FROM refunds GROUP BY status";
    let rows: Vec<(String, i64)> = match db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .map_err(|e| format!("count the refunds: {e}"))?;
    Ok(rows.into_iter().collect())
}

/// Refunds still in dispatch's hands.
fn in_flight(statuses: &BTreeMap<String, i64>) -> i64 {
    ["queued", "processing"]
        .iter()
        .map(|s| statuses.get(*s).copied().unwrap_or(0))
        .sum()
}

/// Waits until no refund is `queued` or `processing` (or `deadline` passes); returns when
/// that was seen, measured from `since`, and the statuses then.
pub(crate) async fn drained(
    db: &Db,
    since: Instant,
    deadline: Duration,
    label: &str,
    total: usize,
) -> Result<(Duration, BTreeMap<String, i64>), String> {
    let bar = progress(label, total);
    loop {
        let now = statuses(db).await?;
        let left = in_flight(&now);
        bar.set_position(u64::try_from(total as i64 - left).unwrap_or(0));
        if left == 0 {
            bar.finish_and_clear();
            return Ok((since.elapsed(), now));
        }
        if since.elapsed() > deadline {
            bar.finish_and_clear();
            return Err(format!(
                "dispatch did not drain within {deadline:?}: {now:?}"
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// What the journey measured on one backend.
pub(crate) struct JourneyRun {
    pub label: String,
    pub refunds: usize,
    /// Creation (closed loop) and whether dispatch ran at the same time.
    pub create: Run,
    pub create_with_dispatch: bool,
    /// From the dispatching server's start (or the first request) until none in flight.
    pub dispatch: Duration,
    pub checked: Checked,
}

impl JourneyRun {
    pub fn dispatch_per_sec(&self) -> f64 {
        let s = self.dispatch.as_secs_f64();
        if s > 0.0 {
            self.refunds as f64 / s
        } else {
            0.0
        }
    }
}

pub(crate) struct JourneyBackend {
    pub short: &'static str,
    pub runs: Vec<Result<JourneyRun, String>>,
}

/// The journey's settings, from the command line.
#[derive(Debug, Clone)]
pub struct JourneyPlan {
    pub refunds: usize,
    pub clients: usize,
    pub merchants: usize,
    pub faults: String,
    pub workers: usize,
}

impl JourneyPlan {
    fn creation_plan(&self) -> Plan {
        Plan {
            refunds: self.refunds,
            clients: self.clients,
            merchants: self.merchants,
            scenarios: vec![Scenario::Spread],
            with_dispatch: false,
            rates: Vec::new(),
            rate_connections: 0,
            preload_payments: 0,
        }
    }

    fn drain_deadline(&self) -> Duration {
        Duration::from_secs(120).max(Duration::from_millis(self.refunds as u64 * 20))
    }
}

/// The dispatch server's variables: its workers and, if any, the simulators' faults.
fn dispatch_env(plan: &JourneyPlan, faults: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![(
        "YUANLU_DISPATCH_WORKERS".to_string(),
        plan.workers.to_string(),
    )];
    if let Some(spec) = faults {
        env.push(("YUANLU_SIM_FAULTS".to_string(), spec.to_string()));
    }
    env
}

/// One backend's three sub-phases.
pub(crate) async fn run_backend(
    exe: &Path,
    plan: &JourneyPlan,
    postgres: Option<&str>,
    work: &Path,
) -> JourneyBackend {
    let short = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut runs = Vec::new();
    let faults = plan.faults.clone();
    for (name, faults, together) in [
        ("dispatch", None, false),
        ("dispatch-faults", Some(faults.as_str()), false),
        ("together", None, true),
    ] {
        let tag = format!(
            "journey-{}-{name}",
            if postgres.is_some() { "pg" } else { "sqlite" }
        );
        let place = match Place::fresh(work, postgres, &tag).await {
            Ok(place) => place,
            Err(why) => {
                runs.push(Err(why));
                continue;
            }
        };
        let result = sub_phase(exe, plan, &place, work, short, &tag, faults, together).await;
        place.remove().await;
        runs.push(result.map(|mut run| {
            run.label = match (faults, together) {
                (Some(spec), _) => format!("queued refunds drained, faults `{spec}`"),
                (None, false) => "queued refunds drained".to_string(),
                (None, true) => "created while dispatching".to_string(),
            };
            run
        }));
    }
    JourneyBackend { short, runs }
}

#[allow(clippy::too_many_arguments)]
async fn sub_phase(
    exe: &Path,
    plan: &JourneyPlan,
    place: &Place,
    work: &Path,
    short: &str,
    tag: &str,
    faults: Option<&str>,
    together: bool,
) -> Result<JourneyRun, String> {
    let admin_key = yuanlu_engine::ids::new_secret_key("bench");
    let dir = place.data_dir(work, tag, 0)?;
    let url = place.server_url();
    let creation = plan.creation_plan();
    let env = dispatch_env(plan, faults);
    let first_env = if together { env.clone() } else { Vec::new() };
    let server =
        driver::Server::start_env(exe, &dir, url.as_deref(), &admin_key, false, &first_env).await?;
    let outcome = async {
        let setup = driver::setup(&server, &creation, Scenario::Spread).await?;
        let label = format!("{short} journey: create ({tag})");
        let started = Instant::now();
        let (create, ids) = create(
            std::slice::from_ref(&server.base),
            &setup,
            plan.refunds,
            plan.clients,
            "journey",
            &label,
        )
        .await?;
        Ok::<_, String>((create, ids, started))
    }
    .await;
    let (create, ids, created_from) = match outcome {
        Ok(done) => done,
        Err(why) => {
            let log = server.stderr();
            server.stop().await;
            return Err(format!("{why}\nserver stderr:\n{log}"));
        }
    };
    let db = place.open().await?;
    let label = format!("{short} journey: dispatch ({tag})");
    let result = if together {
        let drained = drained(&db, created_from, plan.drain_deadline(), &label, ids.len()).await;
        let log = server.stderr();
        server.stop().await;
        drained.map_err(|why| format!("{why}\nserver stderr:\n{log}"))
    } else {
        server.stop().await;
        let started = Instant::now();
        let dispatcher =
            driver::Server::start_env(exe, &dir, url.as_deref(), &admin_key, true, &env).await?;
        let drained = drained(&db, started, plan.drain_deadline(), &label, ids.len()).await;
        let log = dispatcher.stderr();
        dispatcher.stop().await;
        drained.map_err(|why| format!("{why}\nserver stderr:\n{log}"))
    };
    let (dispatch, _) = match result {
        Ok(done) => done,
        Err(why) => {
            db.close().await;
            return Err(why);
        }
    };
    let checked = check(&db, &ids, true).await;
    db.close().await;
    Ok(JourneyRun {
        label: String::new(),
        refunds: ids.len(),
        create,
        create_with_dispatch: together,
        dispatch,
        checked: checked?,
    })
}

impl JourneyBackend {
    pub fn errors(&self) -> usize {
        self.runs
            .iter()
            .map(|r| match r {
                Ok(run) => run.checked.errors.len() + run.create.errors,
                Err(_) => 1,
            })
            .sum()
    }
}

/// The journey's section of the report.
pub(crate) fn markdown(plan: &JourneyPlan, backends: &[JourneyBackend]) -> String {
    let mut out = format!(
        "## The whole journey: dispatch ({} refunds)\n\n\
         | backend | phase | creation refunds/s | creation p50 / p99 ms | queued → final s | dispatched refunds/s | statuses at the end | sends / refund | sent twice | ledger | audit chain | errors |\n\
         | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: |\n",
        plan.refunds
    );
    for backend in backends {
        for run in &backend.runs {
            match run {
                Ok(run) => {
                    let c = &run.checked;
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0}{} | {:.1} / {:.1} | {:.2} | {:.0} | {} | {:.2} | {} | {} | {} | {} |",
                        backend.short,
                        run.label,
                        run.create.per_sec(),
                        if run.create_with_dispatch {
                            " (dispatch on)"
                        } else {
                            ""
                        },
                        run.create.percentile_ms(50.0),
                        run.create.percentile_ms(99.0),
                        run.dispatch.as_secs_f64(),
                        run.dispatch_per_sec(),
                        describe(&c.statuses),
                        c.sends as f64 / run.refunds.max(1) as f64,
                        c.sent_twice,
                        if c.ledger_balanced {
                            "balanced"
                        } else {
                            "NOT balanced"
                        },
                        if c.audit_ok {
                            format!("verified ({} entries)", c.audit_entries)
                        } else {
                            "BROKEN".to_string()
                        },
                        run.create.errors + c.errors.len(),
                    );
                }
                Err(why) => {
                    let first = why.lines().next().unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "| {} | failed: {first} | | | | | | | | | | 1 |",
                        backend.short
                    );
                }
            }
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "- each phase on a fresh database with {} merchants and their payments made through the API (untimed); refunds of 1.00 CNY from {} concurrent keep-alive clients; the server runs {} dispatch workers (`YUANLU_DISPATCH_WORKERS`, each leasing up to 32 refunds per pass) and the in-process simulators (`/sim`) at their default timings (channel answers at once, no confirmation delay)",
        plan.merchants, plan.clients, plan.workers
    );
    out.push_str("- queued refunds drained: an API-only server (`YUANLU_DISPATCH_WORKERS=0`) creates the refunds (creation alone), is stopped, and a server with the workers on starts on the same database; timed from its start (process spawn, migrations check and listening included) until the bench reads no `queued` or `processing` refund (it reads the statuses every 50 ms); dispatched refunds/s = refunds / that time\n");
    let _ = writeln!(
        out,
        "- faults: the same with `YUANLU_SIM_FAULTS={}`: a transient channel error on 10 % of the calls (decided per attempt, nothing booked), retried after the default `YUANLU_DISPATCH_RETRY_MS` (1 s, doubling, with jitter), so the tail waits for the retries",
        plan.faults
    );
    out.push_str("- created while dispatching: one server with the workers on from its start; creation refunds/s is the closed-loop creation while the workers dispatch (compare with the creation alone above); queued → final runs from the first request to the last refund leaving dispatch\n");
    out.push_str("- after each phase, from the database: every refund answered `201` stored once with the right sum, sends / refund = `refund.sent` audit entries per refund (1.00: each sent once), sent twice = refunds with two or more, `Engine::check_ledger` and `Engine::verify_audit`\n");
    for backend in backends {
        for run in backend.runs.iter().flatten() {
            for error in &run.checked.errors {
                let _ = writeln!(out, "- **{} error**: {error}", backend.short);
            }
            for sample in &run.create.error_samples {
                let _ = writeln!(out, "- {} creation error sample: {sample}", backend.short);
            }
        }
        for why in backend.runs.iter().filter_map(|r| r.as_ref().err()) {
            let _ = writeln!(out, "- **{} failed**: {why}", backend.short);
        }
    }
    out
}
