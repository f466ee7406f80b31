//! Two server processes on one PostgreSQL database (issue 13 item 5): refund creation and
//! dispatch through one `yuanlu serve`, then through two sharing one schema, and after each
//! run a check that nothing was doubled or lost.
//!
//! Each run on a fresh schema: the first server applies the migrations, the second starts
//! after it; the `spread` merchants and payments are made through the first (untimed);
//! then `--clients` keep-alive clients create the refunds, client `c` on server `c % n`
//! (timed), while every server's dispatch workers send them to its in-process simulators;
//! the run ends when no refund is `queued` or `processing`.
//!
//! The check: every refund answered `201` stored exactly once, the sum of the refunds, one
//! `refund.sent` and at most one `refund.succeeded` audit entry per refund, the ledger
//! balanced, the audit chains verified, and the simulators' books (each server has its own
//! in-process simulators): every refund booked by exactly one simulator, once, paid once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::journey::{self, Checked, JourneyPlan, Place};
use super::report::Run;
use super::*;

/// One run: `servers` processes.
pub(crate) struct MultiRun {
    pub servers: usize,
    pub refunds: usize,
    pub create: Run,
    /// From the first request until no refund was in flight.
    pub end_to_end: Duration,
    pub checked: Checked,
    /// Refunds each server's simulators booked (each server sent these).
    pub booked_by_server: Vec<usize>,
    /// Refunds booked by more than one simulator, or twice by one, or paid twice.
    pub booked_twice: usize,
    /// Refunds yuanlu created that no simulator booked.
    pub never_booked: usize,
    pub errors: Vec<String>,
}

/// Runs one then two servers on `url`.
pub(crate) async fn run(
    exe: &Path,
    plan: &JourneyPlan,
    url: &str,
    work: &Path,
) -> Vec<Result<MultiRun, String>> {
    let mut runs = Vec::new();
    for servers in [1, 2] {
        let tag = format!("multi-{servers}");
        let place = match Place::fresh(work, Some(url), &tag).await {
            Ok(place) => place,
            Err(why) => {
                runs.push(Err(why));
                continue;
            }
        };
        let result = run_one(exe, plan, &place, work, &tag, servers).await;
        place.remove().await;
        runs.push(result);
    }
    runs
}

async fn run_one(
    exe: &Path,
    plan: &JourneyPlan,
    place: &Place,
    work: &Path,
    tag: &str,
    count: usize,
) -> Result<MultiRun, String> {
    let admin_key = yuanlu_engine::ids::new_secret_key("bench");
    let url = place.server_url();
    // Servers sharing a database share the key that seals rerouted account numbers.
    let key_file = work.join(format!("{tag}-account.key"));
    std::fs::write(&key_file, format!("{}\n", "a5".repeat(32)))
        .map_err(|e| format!("cannot write {}: {e}", key_file.display()))?;
    let env = vec![
        (
            "YUANLU_DISPATCH_WORKERS".to_string(),
            plan.workers.to_string(),
        ),
        (
            "YUANLU_ACCOUNT_KEY_FILE".to_string(),
            key_file.display().to_string(),
        ),
    ];
    let mut servers = Vec::new();
    for n in 0..count {
        let dir = place.data_dir(work, tag, n)?;
        // One after the other: the first applies the migrations.
        match driver::Server::start_env(exe, &dir, url.as_deref(), &admin_key, true, &env).await {
            Ok(server) => servers.push(server),
            Err(why) => {
                for server in servers {
                    server.stop().await;
                }
                return Err(why);
            }
        }
    }
    let result = drive_and_check(plan, place, &servers, &admin_key).await;
    let logs: Vec<String> = servers.iter().map(|s| s.stderr()).collect();
    for server in servers {
        server.stop().await;
    }
    result.map_err(|why| format!("{why}\nserver stderr:\n{}", logs.join("\n---\n")))
}

async fn drive_and_check(
    plan: &JourneyPlan,
    place: &Place,
    servers: &[driver::Server],
    admin_key: &str,
) -> Result<MultiRun, String> {
    let Some(first) = servers.first() else {
        return Err("no server".to_string());
    };
    let creation = Plan {
        refunds: plan.refunds,
        clients: plan.clients,
        merchants: plan.merchants,
        scenarios: vec![Scenario::Spread],
        with_dispatch: true,
        rates: Vec::new(),
        rate_connections: 0,
        preload_payments: 0,
    };
    let setup = driver::setup(first, &creation, Scenario::Spread).await?;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let label = format!("PostgreSQL {} server(s): create", servers.len());
    let started = Instant::now();
    let (create, ids) =
        journey::create(&bases, &setup, plan.refunds, plan.clients, "multi", &label).await?;
    let db = place.open().await?;
    let label = format!("PostgreSQL {} server(s): dispatch", servers.len());
    let deadline = Duration::from_secs(120).max(Duration::from_millis(plan.refunds as u64 * 20));
    let drained = journey::drained(&db, started, deadline, &label, ids.len()).await;
    let checked = match drained {
        Ok(_) => journey::check(&db, &ids, true).await,
        Err(why) => Err(why),
    };
    db.close().await;
    let end_to_end = started.elapsed();
    let checked = checked?;
    let mut errors = checked.errors.clone();
    // The books of every server's simulators (the bench's refunds are all WeChat Pay).
    let mut booked: HashMap<String, (usize, u32)> = HashMap::new();
    let mut booked_by_server = Vec::new();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    for server in servers {
        let url = format!("{}/sim/wechat/sim/books", server.base);
        let response = http
            .get(&url)
            .bearer_auth(admin_key)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let books: Value = response
            .json()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status} {books}"));
        }
        let entries = books["refunds"].as_array().cloned().unwrap_or_default();
        booked_by_server.push(entries.len());
        for entry in entries {
            let no = entry["refund_no"].as_str().unwrap_or_default().to_string();
            let paid = u32::try_from(entry["paid_count"].as_u64().unwrap_or(0)).unwrap_or(0);
            let slot = booked.entry(no).or_insert((0, 0));
            slot.0 += 1;
            slot.1 += paid;
        }
    }
    let booked_twice = booked
        .values()
        .filter(|(n, paid)| *n > 1 || *paid > 1)
        .count();
    let never_booked = ids.iter().filter(|id| !booked.contains_key(*id)).count();
    if booked_twice > 0 {
        errors.push(format!(
            "{booked_twice} refunds booked or paid more than once across the simulators"
        ));
    }
    if never_booked > 0 {
        errors.push(format!("{never_booked} refunds never reached a simulator"));
    }
    if booked.len() != ids.len() {
        errors.push(format!(
            "the simulators booked {} refunds, yuanlu created {}",
            booked.len(),
            ids.len()
        ));
    }
    Ok(MultiRun {
        servers: servers.len(),
        refunds: ids.len(),
        create,
        end_to_end,
        checked,
        booked_by_server,
        booked_twice,
        never_booked,
        errors,
    })
}

pub(crate) fn errors(runs: &[Result<MultiRun, String>]) -> usize {
    runs.iter()
        .map(|r| match r {
            Ok(run) => run.errors.len() + run.create.errors,
            Err(_) => 1,
        })
        .sum()
}

pub(crate) fn markdown(plan: &JourneyPlan, runs: &[Result<MultiRun, String>]) -> String {
    let mut out = format!(
        "## Two server processes on one PostgreSQL database ({} refunds)\n\n\
         | servers | created | creation refunds/s | creation p50 / p99 ms | first request → all final s | end-to-end refunds/s | sent by each server | statuses at the end | booked twice / never | sent twice | ledger | audit chain | errors |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- | ---: |\n",
        plan.refunds
    );
    for run in runs {
        match run {
            Ok(run) => {
                let c = &run.checked;
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.1} / {:.1} | {:.2} | {:.0} | {} | {} | {} / {} | {} | {} | {} | {} |",
                    run.servers,
                    run.refunds,
                    run.create.per_sec(),
                    run.create.percentile_ms(50.0),
                    run.create.percentile_ms(99.0),
                    run.end_to_end.as_secs_f64(),
                    run.refunds as f64 / run.end_to_end.as_secs_f64().max(1e-9),
                    run.booked_by_server
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(" + "),
                    journey::describe(&c.statuses),
                    run.booked_twice,
                    run.never_booked,
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
                    run.errors.len() + run.create.errors,
                );
            }
            Err(why) => {
                let first = why.lines().next().unwrap_or_default();
                let _ = writeln!(out, "| | failed: {first} | | | | | | | | | | | 1 |");
            }
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "- each run on a fresh schema: `yuanlu serve` processes started one after the other on the same `--database-url`, each with {} dispatch workers and its own in-process simulators; {} merchants and their payments made through the first (untimed); {} keep-alive clients, client c on server c mod n, create the refunds (timed); the run ends when the bench reads no `queued` or `processing` refund (every 50 ms)",
        plan.workers, plan.merchants, plan.clients
    );
    out.push_str("- the check: every refund answered `201` stored exactly once and the sum of the refunds right; `refund.sent` audit entries per refund (sent twice: refunds with two or more); `Engine::check_ledger`; `Engine::verify_audit`; each server's simulator books (`GET /sim/wechat/sim/books`): every refund booked by exactly one simulator, once, paid once (booked twice), and none missing (never)\n");
    out.push_str("- the server processes, the load generator and PostgreSQL share the machine's cores: a second process adds no CPU, so this shows that two processes share one database correctly and what their coordination (row locks, `FOR UPDATE SKIP LOCKED` leases) costs, not how far more machines would scale\n");
    for run in runs {
        match run {
            Ok(run) => {
                for error in &run.errors {
                    let _ = writeln!(out, "- **{} server(s) error**: {error}", run.servers);
                }
                for sample in &run.create.error_samples {
                    let _ = writeln!(out, "- creation error sample: {sample}");
                }
            }
            Err(why) => {
                let _ = writeln!(out, "- **failed**: {why}");
            }
        }
    }
    out
}
