//! A host on 127.0.0.1:0 over a fresh database (SQLite always; PostgreSQL when
//! `YUANLU_TEST_DATABASE_URL` names one), a merchant and a registered terminal.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use yuanlu_domain::settings::MerchantSettingsPatch;
use yuanlu_engine::account_key::AccountKey;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::clock::{Clock, SimulatedClock};
use yuanlu_engine::ids::new_id;
use yuanlu_engine::merchants::CreateMerchant;
use yuanlu_engine::terminals::RegisterTerminal;
use yuanlu_engine::{Db, Engine};
use yuanlu_poshost::client::TerminalClient;
use yuanlu_poshost::{Host, HostConfig};

pub const TERMINAL_ID: &str = "10000001";
pub const MERCHANT_NO: &str = "898100012340001";
pub const PAN: &str = "6222021234567890";

pub struct Setup {
    pub engine: Engine,
    pub clock: Arc<SimulatedClock>,
    pub merchant: Principal,
    pub tmk: String,
    pub address: String,
    /// The handler the server runs (clones share its fail point).
    pub host_handler: Host,
    stop: watch::Sender<bool>,
    host: tokio::task::JoinHandle<()>,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Schema { url: String, schema: String },
}

/// 2026-11-20 10:00 in Shanghai.
pub fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00")
        .map(|d| d.with_timezone(&Utc))
        .unwrap()
}

pub async fn sqlite() -> Setup {
    sqlite_with(HostConfig::default()).await
}

pub async fn sqlite_with(config: HostConfig) -> Setup {
    let dir = std::env::temp_dir().join(new_id("yuanlu-pos-test"));
    let db = Db::open_sqlite(&dir).await.unwrap();
    db.migrate().await.unwrap();
    setup(db, Cleanup::Dir(dir), config).await
}

pub async fn postgres(case: &str) -> Option<Setup> {
    postgres_with(case, HostConfig::default()).await
}

pub async fn postgres_with(case: &str, config: HostConfig) -> Option<Setup> {
    let url = yuanlu_testkit::postgres_url(case)?;
    let schema = new_id("t").replace('-', "_");
    let admin = Db::open_postgres(&url, None).await.unwrap();
    if let Db::Postgres(pool) = &admin {
        sqlx_exec(pool, &format!("CREATE SCHEMA {schema}")).await;
    }
    admin.close().await;
    let db = Db::open_postgres(&url, Some(&schema)).await.unwrap();
    db.migrate().await.unwrap();
    Some(setup(db, Cleanup::Schema { url, schema }, config).await)
}

async fn sqlx_exec(pool: &sqlx::PgPool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap();
}

async fn setup(db: Db, cleanup: Cleanup, config: HostConfig) -> Setup {
    let clock = Arc::new(SimulatedClock::starting_at(start_instant()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let engine =
        Engine::new(db, dyn_clock).with_account_key(AccountKey::from_bytes(&[7; 32]).unwrap());
    let input = CreateMerchant {
        name: "Test shop".to_string(),
        settings: MerchantSettingsPatch::default(),
    };
    let created = engine
        .create_merchant(&Principal::Admin, input)
        .await
        .unwrap();
    let merchant = Principal::Merchant {
        merchant_id: created.merchant.id.clone(),
        key_id: "key_test".into(),
        role: MerchantRole::Supervisor,
    };
    let terminal = engine
        .register_terminal(
            &Principal::Admin,
            RegisterTerminal {
                merchant_id: created.merchant.id,
                terminal_id: TERMINAL_ID.into(),
                merchant_no: MERCHANT_NO.into(),
            },
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = watch::channel(false);
    let host_handler = Host::new(engine.clone());
    let host = tokio::spawn(yuanlu_poshost::serve(
        listener,
        host_handler.clone(),
        config,
        stopped,
    ));
    Setup {
        engine,
        clock,
        merchant,
        tmk: terminal.tmk,
        address,
        host_handler,
        stop,
        host,
        cleanup,
    }
}

impl Setup {
    pub async fn terminal(&self, batch: u32) -> TerminalClient {
        TerminalClient::connect(&self.address, TERMINAL_ID, MERCHANT_NO, &self.tmk, batch)
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        self.host.await.unwrap();
        self.engine.db.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { url, schema } => {
                let admin = Db::open_postgres(&url, None).await.unwrap();
                if let Db::Postgres(pool) = &admin {
                    sqlx_exec(pool, &format!("DROP SCHEMA {schema} CASCADE")).await;
                }
                admin.close().await;
            }
        }
    }
}
