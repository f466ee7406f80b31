//! Background workers of `yuanlu serve`: each runs its engine step in a loop, waits a little
//! when there was nothing to do, and stops when the server shuts down.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use yuanlu_engine::dispatch::DispatchConfig;
use yuanlu_engine::{Engine, EngineResult};

/// How long an idle worker waits before looking again.
pub const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long a worker whose step failed (e.g. the database is down) waits.
pub const ERROR_PAUSE: Duration = Duration::from_secs(2);
/// The most dispatch workers one process runs; each works a batch of refunds concurrently.
pub const DISPATCH_WORKERS_MAX: usize = 16;

/// Runs `step` until `shutdown` flips; `step` returns how much work it did.
fn spawn_loop<F, Fut>(
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = EngineResult<usize>> + Send,
{
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match step().await {
                Ok(0) => IDLE_POLL,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(worker = name, %error, "worker step failed");
                    ERROR_PAUSE
                }
            };
            if pause > Duration::ZERO {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    })
}

/// How often the overdue monitor scans.
pub const OVERDUE_SCAN_EVERY: Duration = Duration::from_secs(60);
/// Webhook deliveries and SMS handed over per pass.
pub const NOTIFICATIONS_PER_PASS: i64 = 64;

/// Runs `step` every `every` (and at once), until `shutdown` flips.
fn spawn_periodic<F, Fut>(
    name: &'static str,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = EngineResult<usize>> + Send,
{
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = step().await {
                tracing::warn!(worker = name, %error, "worker step failed");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Starts the webhook and SMS relays and the overdue monitor.
pub fn spawn_notifications(
    engine: &Engine,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let webhooks = {
        let engine = engine.clone();
        spawn_loop("webhooks", shutdown.clone(), move || {
            let engine = engine.clone();
            async move { engine.deliver_webhooks_once(NOTIFICATIONS_PER_PASS).await }
        })
    };
    let sms = {
        let engine = engine.clone();
        spawn_loop("sms", shutdown.clone(), move || {
            let engine = engine.clone();
            async move {
                engine
                    .relay_sms_once(
                        &yuanlu_engine::notify::OutboxSmsGateway,
                        NOTIFICATIONS_PER_PASS,
                    )
                    .await
            }
        })
    };
    let overdue = {
        let engine = engine.clone();
        spawn_periodic("overdue", OVERDUE_SCAN_EVERY, shutdown.clone(), move || {
            let engine = engine.clone();
            async move { engine.monitor_overdue_once().await }
        })
    };
    vec![webhooks, sms, overdue]
}

/// Starts the dispatch workers.
pub fn spawn_dispatch(
    count: usize,
    engine: &Engine,
    process_id: &str,
    base: &DispatchConfig,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..count.min(DISPATCH_WORKERS_MAX))
        .map(|n| {
            let engine = engine.clone();
            let config = DispatchConfig {
                worker_id: format!("{process_id}/dispatch-{n}"),
                ..base.clone()
            };
            spawn_loop("dispatch", shutdown.clone(), move || {
                let (engine, config) = (engine.clone(), config.clone());
                async move { engine.dispatch_once(&config).await }
            })
        })
        .collect()
}

/// How often the settlement scheduler reads the clock (a new business date becomes due at
/// most once a day; a simulated clock may jump at any time).
pub const SETTLE_POLL: Duration = Duration::from_secs(1);

/// Starts the settlement scheduler (`--settle-at`), unless it is off.
pub fn spawn_settlement(
    settle_at: crate::cli::SettleAt,
    engine: &Engine,
    shutdown: &watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    match settle_at {
        crate::cli::SettleAt::Off => None,
        crate::cli::SettleAt::Daily(schedule) => Some(tokio::spawn(
            yuanlu_engine::settlement_schedule::run_scheduler(
                engine.clone(),
                schedule,
                SETTLE_POLL,
                shutdown.clone(),
            ),
        )),
    }
}
