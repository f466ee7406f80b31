//! The yuanlu side of the bench: the real binary as `yuanlu serve` in a child process, set
//! up through its API (untimed), then refund creation over HTTP from concurrent clients,
//! each with one keep-alive connection (timed).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use super::report::{RateRun, Run};
use super::{PAYMENT_FEN, Plan, REFUND_FEN, Scenario, progress};

/// How long the server may take to apply its migrations and print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one HTTP request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Error answers kept verbatim for the report.
const ERROR_SAMPLES_MAX: usize = 5;

/// A running `yuanlu serve`, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    stderr_path: PathBuf,
    admin_key: String,
}

impl Server {
    /// Starts `exe serve --listen 127.0.0.1:0 --data-dir <data_dir> [--database-url <url>]`
    /// with a clean `YUANLU_*` environment and the given admin key, and waits for its
    /// listening line.
    pub async fn start(
        exe: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        admin_key: &str,
        with_dispatch: bool,
    ) -> Result<Server, String> {
        Self::start_env(exe, data_dir, database_url, admin_key, with_dispatch, &[]).await
    }

    /// [`Server::start`] with more `YUANLU_*` variables (set after the defaults, so they
    /// may override `YUANLU_DISPATCH_WORKERS`).
    pub async fn start_env(
        exe: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        admin_key: &str,
        with_dispatch: bool,
        env: &[(String, String)],
    ) -> Result<Server, String> {
        let stderr_path = data_dir.join("server-stderr.log");
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
        let mut cmd = Command::new(exe);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("YUANLU_") {
                cmd.env_remove(&key);
            }
        }
        // Who checkpoints SQLite's WAL and how many writers PostgreSQL gets (issue 13):
        // passed on, so that runs can compare.
        for name in [
            yuanlu_store::db::SQLITE_CHECKPOINT_ENV,
            yuanlu_engine::refund_writer::POSTGRES_WRITERS_ENV,
        ] {
            if let Ok(value) = std::env::var(name) {
                cmd.env(name, value);
            }
        }
        // Without dispatch the server is API-only, as a production API node can be: the
        // refunds stay `queued` and nothing competes with their creation.
        let workers = if with_dispatch { "2" } else { "0" };
        cmd.env("YUANLU_DISPATCH_WORKERS", workers);
        cmd.env("YUANLU_ADMIN_KEY", admin_key)
            .env("YUANLU_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the server's stdout is not piped")?;
        let mut lines = BufReader::new(stdout);
        let read_base = async {
            let mut seen = String::new();
            loop {
                let mut line = String::new();
                let read = lines
                    .read_line(&mut line)
                    .await
                    .map_err(|e| format!("reading the server's stdout: {e}"))?;
                if read == 0 {
                    return Err(format!("exited before listening; stdout:\n{seen}"));
                }
                seen.push_str(&line);
                if let Some(rest) = line.trim().strip_prefix("yuanlu listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok(url.trim_end_matches('/').to_string());
                }
            }
        };
        let base = match tokio::time::timeout(START_TIMEOUT, read_base).await {
            Ok(Ok(base)) => base,
            Ok(Err(why)) => {
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(format!("yuanlu serve {why}\nstderr:\n{log}"));
            }
            Err(_) => {
                return Err(format!(
                    "yuanlu serve did not listen within {START_TIMEOUT:?}"
                ));
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink).await;
        });
        Ok(Server {
            child,
            base,
            stderr_path,
            admin_key: admin_key.to_string(),
        })
    }

    /// Kills the server (SIGKILL: every acknowledged refund is already durable) and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// The server's stderr so far (for error reports).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Merchants and payments made through the API for one scenario.
pub struct Setup {
    /// `(payment_id, merchant key)`; refund `i` goes to payment `i % len`.
    pub payments: Vec<(String, Arc<str>)>,
    /// The scenario's merchants, in order (payment `j` is merchant `j % len`'s).
    pub merchant_ids: Vec<String>,
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let response = http
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn field(body: &Value, name: &str) -> Result<String, String> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no string {name:?} in {body}"))
}

/// The merchant settings of every bench merchant: the defaults, so refunds are `queued`
/// (debited from the merchant, with their ledger posting) as in production.
pub fn merchant_settings(_plan: &Plan) -> Value {
    json!({})
}

/// Creates the scenario's merchants and payments through the API (untimed).
pub async fn setup(server: &Server, plan: &Plan, scenario: Scenario) -> Result<Setup, String> {
    let http = client()?;
    let merchants_url = format!("{}/v1/merchants", server.base);
    let mut keys: Vec<Arc<str>> = Vec::new();
    let mut merchant_ids = Vec::new();
    for m in 0..scenario.merchants(plan) {
        let body = json!({
            "name": format!("bench {} {m}", scenario.name()),
            "settings": merchant_settings(plan),
        });
        let (status, answer) = post(&http, &merchants_url, &server.admin_key, &body).await?;
        if status != 201 {
            return Err(format!("create merchant: {status} {answer}"));
        }
        keys.push(Arc::from(field(&answer, "api_key")?));
        merchant_ids.push(field(&answer, "id")?);
    }
    let keys = Arc::new(keys);
    let count = scenario.payments(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let payments_url: Arc<str> = Arc::from(format!("{}/v1/payments", server.base));
    let mut tasks = Vec::new();
    for _ in 0..plan.clients.min(count) {
        let (keys, next, url) = (keys.clone(), next.clone(), payments_url.clone());
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= count {
                    return Ok::<_, String>(made);
                }
                let key = keys[j % keys.len()].clone();
                let body = json!({ "channel": "wechat", "amount": PAYMENT_FEN, "currency": "CNY" });
                let (status, answer) = post(&http, &url, &key, &body).await?;
                if status != 201 {
                    return Err(format!("record payment: {status} {answer}"));
                }
                made.push((j, field(&answer, "id")?, key));
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        let made = task.await.map_err(|e| format!("setup task: {e}"))??;
        all.extend(made);
    }
    all.sort_by_key(|(j, _, _)| *j);
    Ok(Setup {
        payments: all.into_iter().map(|(_, id, key)| (id, key)).collect(),
        merchant_ids,
    })
}

/// Creates `plan.refunds` refunds from `plan.clients` concurrent clients and times each.
pub async fn drive(
    server: &Server,
    setup: &Setup,
    plan: &Plan,
    label: &str,
) -> Result<Run, String> {
    if setup.payments.is_empty() {
        return Err("the set-up made no payments".to_string());
    }
    let refunds = plan.refunds;
    let payments = Arc::new(setup.payments.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = Arc::from(format!("{}/v1/refunds", server.base));
    let bar = progress(label, refunds);
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..plan.clients {
        let (payments, next, url, bar) = (payments.clone(), next.clone(), url.clone(), bar.clone());
        let http = client()?;
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= refunds {
                    return run;
                }
                let (payment_id, key) = &payments[i % payments.len()];
                let body = json!({
                    "payment_id": payment_id,
                    "amount": REFUND_FEN,
                    "reason": "customer_cancel",
                    "merchant_refund_no": format!("bench-{i}"),
                });
                let t0 = Instant::now();
                let outcome = post(&http, &url, key, &body).await;
                run.latencies_us.push(micros(t0.elapsed()));
                match outcome {
                    Ok((201, _)) => run.ok += 1,
                    Ok((status, answer)) => run.error(format!("{status} {answer}")),
                    Err(why) => run.error(why),
                }
                bar.inc(1);
            }
        }));
    }
    let mut total = Run::default();
    for task in tasks {
        let run = task.await.map_err(|e| format!("client task: {e}"))?;
        total.merge(run, ERROR_SAMPLES_MAX);
    }
    total.elapsed = started.elapsed();
    bar.finish_and_clear();
    total.finish();
    Ok(total)
}

/// Sends `refunds` refunds on a fixed schedule, `rate` a second, over `connections`
/// keep-alive connections (opened before the schedule starts): request `i` is due at
/// `start + i / rate` and is sent then on a free connection. Its latency runs from its due
/// time to the end of its answer, so time spent queueing behind a slow server counts (no
/// coordinated omission). A request that finds every connection busy waits for one and
/// counts as late. `merchant_refund_no` is `<prefix>-<i>`.
// Long on purpose: one timed run of concurrent clients with its progress and latency recording; split, the timing would be spread over functions.
pub async fn drive_rate(
    server: &Server,
    setup: &Setup,
    refunds: usize,
    rate: u64,
    connections: usize,
    prefix: &str,
    label: &str,
) -> Result<RateRun, String> {
    if setup.payments.is_empty() {
        return Err("the set-up made no payments".to_string());
    }
    if rate == 0 || connections == 0 {
        return Err("an open-loop phase needs a rate and connections".to_string());
    }
    let clients = (0..connections)
        .map(|_| client())
        .collect::<Result<Vec<_>, _>>()?;
    // Open every connection first: the schedule should not pay for TCP handshakes.
    let health = format!("{}/healthz", server.base);
    let mut warm = JoinSet::new();
    for http in &clients {
        let (http, url) = (http.clone(), health.clone());
        warm.spawn(async move {
            let response = http
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status();
            let _ = response.bytes().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("GET {url}: {status}"))
            }
        });
    }
    while let Some(done) = warm.join_next().await {
        done.map_err(|e| format!("warm-up task: {e}"))??;
    }

    let payments = Arc::new(setup.payments.clone());
    let url: Arc<str> = Arc::from(format!("{}/v1/refunds", server.base));
    let (idle_tx, mut idle_rx) = tokio::sync::mpsc::unbounded_channel::<reqwest::Client>();
    for http in clients {
        idle_tx
            .send(http)
            .map_err(|_| "the idle queue is closed".to_string())?;
    }
    let bar = progress(label, refunds);
    let mut total = Run::default();
    let mut late = 0;
    let mut lag_us = Vec::with_capacity(refunds);
    let mut tasks = JoinSet::new();
    let record = |total: &mut Run, done: Result<(u64, Result<(), String>), _>| match done {
        Ok((latency, outcome)) => {
            total.latencies_us.push(latency);
            match outcome {
                Ok(()) => total.ok += 1,
                Err(why) => total.error(why),
            }
        }
        Err(e) => total.error(format!("request task: {e}")),
    };
    let start = Instant::now() + Duration::from_millis(20);
    for i in 0..refunds {
        let due = start + schedule_offset(i, rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let http = match idle_rx.try_recv() {
            Ok(http) => http,
            Err(_) => {
                late += 1;
                idle_rx
                    .recv()
                    .await
                    .ok_or("the idle queue is closed".to_string())?
            }
        };
        lag_us.push(micros(Instant::now().saturating_duration_since(due)));
        let (payment_id, key) = &payments[i % payments.len()];
        let body = json!({
            "payment_id": payment_id,
            "amount": REFUND_FEN,
            "reason": "customer_cancel",
            "merchant_refund_no": format!("{prefix}-{i}"),
        });
        let (key, url, idle_tx, bar) = (key.clone(), url.clone(), idle_tx.clone(), bar.clone());
        tasks.spawn(async move {
            let outcome = post(&http, &url, &key, &body).await;
            let latency = micros(Instant::now().saturating_duration_since(due));
            let _ = idle_tx.send(http);
            bar.inc(1);
            let outcome = match outcome {
                Ok((201, _)) => Ok(()),
                Ok((status, answer)) => Err(format!("{status} {answer}")),
                Err(why) => Err(why),
            };
            (latency, outcome)
        });
        while let Some(done) = tasks.try_join_next() {
            record(&mut total, done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(&mut total, done);
    }
    total.elapsed = Instant::now().saturating_duration_since(start);
    bar.finish_and_clear();
    total.finish();
    lag_us.sort_unstable();
    Ok(RateRun {
        rate,
        connections,
        run: total,
        late,
        lag_us,
        payments_in_db: None,
    })
}

/// When request `i` of a schedule of `rate` a second is due, after the start.
pub fn schedule_offset(i: usize, rate: u64) -> Duration {
    let nanos = i as u128 * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

pub fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}
