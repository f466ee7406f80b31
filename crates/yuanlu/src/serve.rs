//! Start-up wiring and the database commands.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use yuanlu_engine::clock::{Clock, SimulatedClock, SystemClock};
use yuanlu_engine::ids::hash_key;
use yuanlu_engine::{Db, Engine};
use yuanlu_web::AppState;

use crate::admin_key::{self, AdminKeySource};
use crate::cli::{ClockChoice, DatabaseArgs, ServeArgs};

type CommandResult = Result<ExitCode, String>;

async fn open(args: &DatabaseArgs) -> Result<Db, String> {
    let db = Db::open(args.database_url.as_deref(), &args.data_dir)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    db.migrate()
        .await
        .map_err(|e| format!("cannot apply migrations: {e}"))?;
    Ok(db)
}

fn describe(args: &DatabaseArgs) -> String {
    match &args.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL".to_string(),
        _ => format!("SQLite in {}", args.data_dir.join("yuanlu.db").display()),
    }
}

pub async fn migrate(args: DatabaseArgs) -> CommandResult {
    let db = open(&args).await?;
    db.close().await;
    println!("migrations applied ({})", describe(&args));
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_verify(args: DatabaseArgs) -> CommandResult {
    let db = open(&args).await?;
    let engine = Engine::new(db.clone(), Arc::new(SystemClock));
    let report = engine.verify_audit().await.map_err(|e| e.to_string())?;
    db.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn run(args: ServeArgs) -> CommandResult {
    let db = open(&args.database).await?;
    let (admin_key, source) = admin_key::load_or_create(&args.database.data_dir)?;
    let clock: Arc<dyn Clock> = match args.clock.unwrap_or(ClockChoice::Real) {
        ClockChoice::Real => Arc::new(SystemClock),
        ClockChoice::Simulated(start) => Arc::new(SimulatedClock::starting_at(
            start.unwrap_or_else(chrono::Utc::now),
        )),
    };
    let simulated = clock.is_simulated();
    let calendar = crate::calendar::load(&args.database.data_dir)?;
    let engine = Engine::new(db.clone(), clock).with_calendar(calendar);
    let app = yuanlu_web::router(AppState {
        engine,
        admin_key_hash: hash_key(&admin_key),
    });
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
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
    if simulated {
        println!("clock: simulated; move it with POST /v1/admin/clock/advance");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    db.close().await;
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
