//! The demo's world: an engine on the simulated clock wired to the in-process simulators
//! (served on a loopback port, as `yuanlu serve` serves them, so their callbacks arrive),
//! the merchants, and the seeded random numbers.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use tokio::net::TcpListener;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::{Clock, SimulatedClock};
use yuanlu_engine::dispatch::DispatchConfig;
use yuanlu_engine::{Db, Engine};
use yuanlu_web::AppState;
use yuanlu_web::api::bodies;

use crate::cli::{ChannelArgs, DatabaseArgs};

/// The kinds of shop the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Many small WeChat Pay / Alipay sales.
    Noodles,
    /// Card sales, member purchases.
    Supermarket,
    /// Large amounts, goods delivered and returned.
    Electronics,
    /// Few sales: too little balance for some refunds.
    Kiosk,
}

pub struct Shop {
    pub kind: Kind,
    pub who: Principal,
    /// Payments so far: (id, amount fen, day captured).
    pub payments: Vec<(String, i64, NaiveDate)>,
    /// Payments whose goods were delivered (a refund waits for them to come back).
    pub delivered: Vec<String>,
}

/// SplitMix64: small, seeded, the same numbers on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// In `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1).max(1) as u64) as i64
    }
    /// True with `percent` % chance.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub struct World {
    pub engine: Engine,
    pub clock: Arc<SimulatedClock>,
    pub rng: Rng,
    pub shops: Vec<Shop>,
    pub dispatch: DispatchConfig,
    /// Refunds the engine refused (e.g. too little balance), by reason code.
    pub refused: BTreeMap<String, u64>,
    pub settlements: u64,
    /// Consumers' ratings given.
    pub ratings: u64,
    /// When the current day's first sale was made (µs), to find the day's refunds.
    pub day_started_us: i64,
    /// When the previous day's first sale was made (µs).
    pub yesterday_started_us: i64,
    /// The reconciliations imported (ids), kept in `demo.json`.
    pub reconciliations: Vec<String>,
    /// POS terminals registered, with their master keys (kept in `demo.json`).
    pub terminals: Vec<serde_json::Value>,
    pub exceptions: u64,
    /// Statements the channel did not issue (no refund that day).
    pub statements_missing: u64,
    /// What the story scenes did (cases, cancellations, the kiosk's held refund).
    pub story: super::story::Story,
    server: tokio::task::JoinHandle<()>,
    /// `http://127.0.0.1:PORT` of the simulators, and the key reading their statements.
    pub(super) base: String,
    pub(super) books_token: String,
}

impl World {
    pub async fn start(
        db: Db,
        database: &DatabaseArgs,
        clock: Arc<SimulatedClock>,
        seed: u64,
    ) -> Result<World, String> {
        let (account_key, _) = crate::account_key::load_or_create(&db, &database.data_dir)?;
        let calendar = crate::calendar::load(&database.data_dir)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let books_token = yuanlu_engine::ids::new_secret_key("demo");
        let in_process = crate::channels::InProcess {
            clock: dyn_clock.clone(),
            books_reader: Arc::new(TokenReader(books_token.clone())),
        };
        // A few closed accounts to reroute (`abnormal`) and a few refunds the channel accepts
        // but does not confirm while the demo runs (`slow`, an hour of real time): they stay
        // `processing` past their expected arrival, overdue, and get cases. Decided by the seed.
        let channels = ChannelArgs {
            simulator_url: None,
            simulator_secret_file: None,
            sim_faults: Some(format!(
                "abnormal=0.15,slow=0.1,confirm_delay_ms=3600000,seed={seed}"
            )),
            channel_timeout_ms: 10_000,
            dispatch_retry_ms: 1_000,
            dispatch_workers: 0,
            dispatch_poll_ms: 30_000,
        };
        let wiring =
            crate::channels::wire(&channels, &format!("http://{address}"), &[], &in_process)?;
        let mut engine = Engine::new(db, dyn_clock)
            .with_calendar(calendar)
            .with_channels(wiring.channels);
        if let Some(key) = account_key {
            engine = engine.with_account_key(key);
        }
        let mut app = yuanlu_web::router_with_timeout(
            AppState {
                engine: engine.clone(),
                public: Arc::new(yuanlu_web::api::public::PublicAccess::new(
                    Default::default(),
                )),
            },
            std::time::Duration::from_secs(30),
        );
        if let Some(simulators) = wiring.simulators {
            app = app.nest("/sim", simulators);
        }
        let server = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "demo simulators stopped");
            }
        });
        Ok(World {
            engine,
            clock,
            rng: Rng(seed ^ 0x5975_616e_6c75),
            shops: Vec::new(),
            dispatch: DispatchConfig {
                worker_id: "demo/dispatch".to_string(),
                batch_refunds_max: 1,
                ..DispatchConfig::default()
            },
            refused: BTreeMap::new(),
            settlements: 0,
            ratings: 0,
            day_started_us: 0,
            yesterday_started_us: 0,
            reconciliations: Vec::new(),
            terminals: Vec::new(),
            exceptions: 0,
            statements_missing: 0,
            story: super::story::Story::default(),
            server,
            base: format!("http://{address}"),
            books_token,
        })
    }

    pub async fn stop(self) {
        self.server.abort();
    }

    pub fn advance_to(&self, at: DateTime<Utc>) {
        let now = self.clock.now();
        if at > now {
            self.clock.advance(at - now);
        }
    }

    pub fn tick(&self, minutes: i64) {
        self.clock.advance(chrono::Duration::minutes(minutes));
    }

    pub async fn create_merchants(&mut self) -> Result<(), String> {
        let shops = [
            ("Lanzhou Noodles on Fuxing Road", Kind::Noodles, json!({})),
            ("Huamei Supermarket", Kind::Supermarket, json!({})),
            (
                "Zhongguancun Electronics",
                Kind::Electronics,
                json!({ "review": { "large_amount_fen": 300_000 } }),
            ),
            (
                "Corner Kiosk",
                Kind::Kiosk,
                json!({ "funding": "require_balance", "review": { "large_amount_fen": 5_000 } }),
            ),
        ];
        for (name, kind, settings) in shops {
            let input = serde_json::from_value::<bodies::CreateMerchant>(
                json!({ "name": name, "settings": settings }),
            )
            .map_err(|e| e.to_string())?
            .into();
            let created = self
                .engine
                .create_merchant(&Principal::Admin, input)
                .await
                .map_err(|e| format!("create merchant {name}: {e}"))?;
            let who = self
                .engine
                .authenticate(&created.api_key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the new merchant's key does not authenticate")?;
            self.shops.push(Shop {
                kind,
                who,
                payments: Vec::new(),
                delivered: Vec::new(),
            });
        }
        Ok(())
    }

    /// Sends every due refund to its channel, one at a time, until none is due.
    pub async fn drain_dispatch(&self) -> Result<(), String> {
        for _ in 0..100_000 {
            let sent = self
                .engine
                .dispatch_once(&self.dispatch)
                .await
                .map_err(|e| format!("dispatch: {e}"))?;
            if sent == 0 {
                return Ok(());
            }
        }
        Err("dispatch did not drain".to_string())
    }

    /// Prints the counts and checks audit and ledger; false when either fails.
    pub async fn report(&self, took: std::time::Duration) -> Result<bool, String> {
        let db = &self.engine.db;
        let merchants = super::count(db, "SELECT COUNT(*) FROM merchants").await?;
        let payments = super::count(db, "SELECT COUNT(*) FROM payments").await?;
        let refunds = super::count(db, "SELECT COUNT(*) FROM refunds").await?;
        let statements = super::count(db, "SELECT COUNT(*) FROM settlement_statements").await?;
        println!("demo finished in {:.1} s", took.as_secs_f64());
        println!("merchants: {merchants}");
        println!("payments: {payments}");
        println!("refunds: {refunds}");
        for terminal in &self.terminals {
            println!(
                "POS terminal {} / {} (the supermarket's); its TMK is in {}",
                terminal["terminal_id"].as_str().unwrap_or_default(),
                terminal["merchant_no"].as_str().unwrap_or_default(),
                super::DEMO_FILE
            );
        }
        for (status, n) in status_counts(db).await? {
            println!("  {status}: {n}");
        }
        for (code, n) in &self.refused {
            println!("refunds refused ({code}): {n}");
        }
        println!("consumer ratings: {}", self.ratings);
        println!("settlement runs: {}", self.settlements);
        println!("settlement statements: {statements}");
        println!(
            "reconciliations: {} ({} exceptions; {} days without a statement from a channel)",
            self.reconciliations.len(),
            self.exceptions,
            self.statements_missing
        );
        self.story.print();
        let missing = super::story::missing_statuses(db).await?;
        if !missing.is_empty() {
            println!("statuses not reached: {}", missing.join(", "));
        }
        let audit = self
            .engine
            .verify_audit_against(&[])
            .await
            .map_err(|e| e.to_string())?;
        let ledger = self
            .engine
            .check_ledger()
            .await
            .map_err(|e| e.to_string())?;
        println!("audit verify: {}", if audit.ok { "ok" } else { "BROKEN" });
        println!(
            "ledger check: {}",
            if ledger.balanced {
                "balanced"
            } else {
                "UNBALANCED"
            }
        );
        Ok(audit.ok && ledger.balanced)
    }
}

async fn status_counts(db: &Db) -> Result<Vec<(String, i64)>, String> {
    const SQL: &str = "SELECT status, COUNT(*) FROM refunds GROUP BY status ORDER BY status";
    let rows = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as::<_, (String, i64)>(SQL)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as::<_, (String, i64)>(SQL)
                .fetch_all(pool)
                .await
        }
    };
    rows.map_err(|e| e.to_string())
}

/// Only the demo itself reads the simulators' statements (with a key it made).
struct TokenReader(String);

#[async_trait::async_trait]
impl yuanlu_channels::simulator::BooksReader for TokenReader {
    async fn may_read(&self, bearer: &str) -> bool {
        bearer == self.0
    }
}
