//! `yuanlu serve` and `yuanlu simulate`: start-up wiring (database, keys, clock, channels,
//! workers, HTTP server).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use yuanlu_engine::clock::{Clock, SimulatedClock, SystemClock};
use yuanlu_engine::dispatch::DispatchConfig;
use yuanlu_engine::webhook_net::WebhookNetwork;
use yuanlu_engine::{Db, Engine};
use yuanlu_web::AppState;

use crate::account_key::{self, AccountKeySource};
use crate::admin_key::{self, AdminKeySource};
use crate::cli::{ClockChoice, ServeArgs};
use crate::database::{describe, open};

type CommandResult = Result<ExitCode, String>;

// Long on purpose: start-up wiring in its order (database, keys, clock, channels, workers, listeners, shutdown); each step uses what the ones before made.
pub async fn run(args: ServeArgs) -> CommandResult {
    let db = open(&args.database).await?;
    let (admin_key, source) = admin_key::load_or_create(&args.database.data_dir)?;
    let (account_key, account_key_source) =
        account_key::load_or_create(&db, &args.database.data_dir)?;
    let mut clock_choice = args.clock.unwrap_or(ClockChoice::Real);
    if args.demo {
        clock_choice = ClockChoice::Simulated(Some(demo_now(&db, &args).await?));
    }
    let clock: Arc<dyn Clock> = match clock_choice {
        ClockChoice::Real => Arc::new(SystemClock),
        ClockChoice::Simulated(start) => Arc::new(SimulatedClock::starting_at(
            start.unwrap_or_else(|| SystemClock.now()),
        )),
    };
    let simulated = clock.is_simulated();
    let calendar = crate::calendar::load(&args.database.data_dir)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let extra_roots = match &args.database.ca_file {
        Some(path) => {
            yuanlu_channels::http::load_ca_file(path).map_err(|e| format!("--ca-file: {e}"))?
        }
        None => Vec::new(),
    };
    // The in-process simulators share the server's clock (their success times feed the
    // expected arrival, statements and reconciliation) and its admin keys (to read the
    // books); the engine exists only after the connectors, so the reader gets it then.
    let books_reader = Arc::new(AdminKeyReader::default());
    let in_process = crate::channels::InProcess {
        clock: clock.clone(),
        books_reader: books_reader.clone(),
    };
    let wiring = crate::channels::wire(
        &args.channels,
        &format!("http://{address}"),
        &extra_roots,
        &in_process,
    )?;
    let mut engine = Engine::new(db.clone(), clock)
        .with_calendar(calendar)
        .with_channels(wiring.channels)
        .with_webhook_network(WebhookNetwork::new(
            args.allow_private_webhooks,
            extra_roots,
        ));
    if let Some(key) = account_key {
        engine = engine.with_account_key(key);
    }
    let evidence_dir = args
        .evidence_dir
        .clone()
        .unwrap_or_else(|| args.database.data_dir.join("evidence"));
    let evidence_store =
        yuanlu_engine::evidence::EvidenceStore::open(&evidence_dir).map_err(|e| {
            format!(
                "cannot open the evidence directory {}: {e}",
                evidence_dir.display()
            )
        })?;
    engine = engine.with_evidence_store(evidence_store);
    books_reader.engine.set(engine.clone()).ok();
    admin_key::register(&engine, &admin_key, &source).await?;
    let mut app = yuanlu_web::router_with_timeout(
        AppState {
            engine: engine.clone(),
            public: Arc::new(yuanlu_web::api::public::PublicAccess::new(
                args.trusted_proxy.clone().unwrap_or_default(),
            )),
        },
        std::time::Duration::from_millis(args.request_timeout_ms),
    );
    if let Some(simulators) = wiring.simulators {
        app = app.nest("/sim", simulators);
    }
    let (stop_workers, shutdown) = tokio::sync::watch::channel(false);
    let process_id = yuanlu_engine::ids::new_id("proc");
    let mut workers = crate::workers::spawn_dispatch(
        args.channels.dispatch_workers,
        &engine,
        &process_id,
        &dispatch_config(&args.channels),
        &shutdown,
    );
    workers.extend(crate::workers::spawn_notifications(&engine, &shutdown));
    workers.extend(crate::workers::spawn_settlement(
        args.settle_at,
        &engine,
        &shutdown,
    ));
    if let Some(metrics_address) = args.metrics_listen {
        workers.push(serve_metrics(metrics_address, &engine, &shutdown).await?);
    }
    if let Some(pos_address) = args.pos_listen {
        workers.push(crate::pos::serve_host(pos_address, &engine, &shutdown).await?);
    }
    if args.demo {
        let users: Vec<String> = crate::demo::sign_ins()
            .into_iter()
            .map(|(username, role)| format!("{username} ({})", role.id()))
            .collect();
        println!(
            "pages: http://{address}/login; demo sign-ins, password {:?}: {}",
            crate::demo::DEMO_PASSWORD,
            users.join(", ")
        );
    }
    println!(
        "yuanlu listening on http://{address} ({})",
        describe(&args.database)
    );
    match source {
        AdminKeySource::Environment => println!("admin key: from YUANLU_ADMIN_KEY"),
        AdminKeySource::File(path) => println!("admin key: in {}", path.display()),
        AdminKeySource::Generated(path) => {
            println!(
                "admin key (shown once, saved in {}): {admin_key}",
                path.display()
            );
        }
    }
    match account_key_source {
        AccountKeySource::File(path) => println!("account key: in {}", path.display()),
        AccountKeySource::Environment => println!("account key: from YUANLU_ACCOUNT_KEY"),
        AccountKeySource::Generated(path) => {
            println!("account key: generated into {}", path.display())
        }
        AccountKeySource::None => println!(
            "account key: none (set YUANLU_ACCOUNT_KEY_FILE, the same on every server); reroutes to a bank account are refused"
        ),
    }
    println!("channels: {}", wiring.description);
    match args.settle_at {
        crate::cli::SettleAt::Off => println!("settlement: by hand (--settle-at off)"),
        crate::cli::SettleAt::Daily(schedule) => println!(
            "settlement: every day at {} Asia/Shanghai for the day before (--settle-at)",
            schedule.at.format("%H:%M")
        ),
    }
    if simulated {
        println!("clock: simulated; move it with POST /v1/admin/clock/advance");
    }
    // Client addresses feed the public endpoints' rate limit.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    let _ = stop_workers.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `--demo`: fills an empty database with the demo first; the demo's "now" (kept in the
/// data directory) is where the simulated clock resumes.
async fn demo_now(db: &Db, args: &ServeArgs) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if crate::demo::is_empty(db).await? {
        println!("empty database: running the demo first (30 days)");
        let demo = crate::cli::DemoArgs {
            database: args.database.clone(),
            days: 30,
            seed: 1,
        };
        if crate::demo::generate(db.clone(), &demo).await? != ExitCode::SUCCESS {
            return Err("the demo's audit or ledger check failed".to_string());
        }
    }
    crate::demo::saved_now(&args.database.data_dir)?.ok_or_else(|| {
        format!(
            "--demo: the database in {} holds data but no demo ({} is missing); serve it without --demo",
            args.database.data_dir.display(),
            crate::demo::DEMO_FILE
        )
    })
}

/// `--metrics-listen`: `GET /metrics` without a key on its own address, until shutdown.
async fn serve_metrics(
    address: std::net::SocketAddr,
    engine: &Engine,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address} (--metrics-listen): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    println!("metrics on http://{bound}/metrics (no key)");
    let router = yuanlu_web::metrics::metrics_router(engine.clone());
    let mut shutdown = shutdown.clone();
    Ok(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "metrics listener failed");
        }
    }))
}

/// The dispatch workers' settings: defaults, with the CLI's timings. The lease outlasts a
/// channel call with its timeout twice over, so a live worker never loses its refund.
fn dispatch_config(args: &crate::cli::ChannelArgs) -> DispatchConfig {
    let timeout = Duration::from_millis(args.channel_timeout_ms);
    DispatchConfig {
        lease: (timeout * 2 + Duration::from_secs(5)).max(Duration::from_secs(10)),
        retry_base: Duration::from_millis(args.dispatch_retry_ms.max(1)),
        confirm_poll_base: Duration::from_millis(args.dispatch_poll_ms.max(1)),
        ..DispatchConfig::default()
    }
}

/// `yuanlu simulate`: the three simulators on one listener, until interrupted.
pub async fn simulate(args: crate::cli::SimulateArgs) -> CommandResult {
    let faults = yuanlu_channels::simulator::FaultConfig::from_spec(
        args.faults.as_deref().unwrap_or("none"),
    )
    .map_err(|e| format!("--faults: {e}"))?;
    let secret = crate::secrets::read(
        crate::channels::SIMULATOR_SECRET_VAR,
        args.simulator_secret_file.as_deref(),
        "--simulator-secret-file",
    )?
    .ok_or("yuanlu simulate needs YUANLU_SIMULATOR_SECRET or --simulator-secret-file")?;
    // Its own process, so its own (real) clock: a server under a simulated clock should use
    // the in-process simulators to have channel times follow it.
    let router = crate::channels::simulator_router(&secret, &faults, None, None);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "yuanlu simulators listening on http://{address} (/wechat, /alipay, /card; books at /<channel>/sim/books with the secret as bearer key; faults: {})",
        args.faults.as_deref().unwrap_or("none")
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("simulator error: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Lets a working admin key read the in-process simulators' books, checked against the
/// stored keys on each request (a revoked or expired admin key is refused there too).
#[derive(Default)]
struct AdminKeyReader {
    engine: std::sync::OnceLock<Engine>,
}

#[async_trait::async_trait]
impl yuanlu_channels::simulator::BooksReader for AdminKeyReader {
    async fn may_read(&self, bearer: &str) -> bool {
        let Some(engine) = self.engine.get() else {
            return false;
        };
        matches!(
            engine.authenticate(bearer).await,
            Ok(Some(yuanlu_engine::auth::Principal::Admin))
        )
    }
}
