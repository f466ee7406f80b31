//! One backend measured: yuanlu's server and the baseline, every scenario, with the WAL
//! and size deltas of each timed phase.

use super::*;

/// One backend: yuanlu's phases, then the baseline's, every scenario.
pub(crate) async fn run_backend(
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
pub(crate) async fn settle(postgres: bool, why: &str) {
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

pub(crate) fn per_refund(before: u64, after: u64, refunds: usize) -> Option<f64> {
    (refunds > 0).then(|| after.saturating_sub(before) as f64 / refunds as f64)
}

pub(crate) fn wal_delta(before: Option<WalDelta>, after: Option<WalDelta>) -> Option<WalDelta> {
    match (before, after) {
        (Some(b), Some(a)) => Some(WalDelta {
            syncs: a.syncs - b.syncs,
            bytes: a.bytes - b.bytes,
        }),
        _ => None,
    }
}

/// What yuanlu's server measured on one scenario.
pub(crate) struct YuanluPhases {
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
// Long on purpose: one backend's phases in their fixed, timed order (server, preload, rates, baseline, pgbench); split, each step would take a dozen of the others' locals.
pub(crate) async fn measure_backend(
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
        "statements per refund (counted in the baseline loop, which copies yuanlu's create path for a refund alone in its transaction): the API key lookup, then in one transaction (BEGIN{} … COMMIT) the payment, the refund number, the merchant, the merchant day's running totals (one row), the settlement check, the balance row (read{}; inserted first if new){}, the refund insert, the refund added to its day's totals, the payment counters, the audit head (read{}), the audit entry, the head update and the webhook lookup; yuanlu runs the same for the first refund of a merchant in a group commit, and skips the merchant, settlement check, balance, audit head and webhook reads for the next ones of the same transaction",
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
