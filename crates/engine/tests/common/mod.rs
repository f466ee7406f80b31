//! The contract harness: every test runs once on SQLite (always) and once on PostgreSQL
//! when `YUANLU_TEST_DATABASE_URL` names a database (each test in a fresh schema; without
//! one the PostgreSQL case is skipped, or fails under CI: `yuanlu_testkit::postgres_url`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use yuanlu_engine::account_key::AccountKey;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::clock::{Clock, SimulatedClock};
use yuanlu_engine::ids::new_id;
use yuanlu_engine::merchants::CreateMerchant;
use yuanlu_engine::payments::RecordPayment;
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund};
use yuanlu_engine::views::{Payment, Refund};
use yuanlu_engine::{Db, Engine, EngineError};
use yuanlu_web::api::bodies;

/// A fresh database with an engine on a simulated clock.
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<SimulatedClock>,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Schema { url: String, schema: String },
}

/// The account key the harness's engine seals rerouted account numbers with.
pub fn test_account_key() -> AccountKey {
    AccountKey::from_bytes(&[7; 32]).unwrap()
}

/// 2026-11-20 10:00 in Shanghai: a Friday, mid-morning.
pub fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00")
        .map(|d| d.with_timezone(&Utc))
        .unwrap()
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = std::env::temp_dir().join(new_id("yuanlu-test"));
        let db = Db::open_sqlite(&dir).await.unwrap();
        db.migrate().await.unwrap();
        Harness::with(db, Cleanup::Dir(dir))
    }

    /// `None` when no PostgreSQL is configured (outside CI; under CI it panics).
    pub async fn postgres(case: &str) -> Option<Harness> {
        let url = yuanlu_testkit::postgres_url(case)?;
        let schema = new_id("t").replace('-', "_");
        let admin = Db::open_postgres(&url, None).await.unwrap();
        if let Db::Postgres(pool) = &admin {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(pool)
                .await
                .unwrap();
        }
        admin.close().await;
        let db = Db::open_postgres(&url, Some(&schema)).await.unwrap();
        db.migrate().await.unwrap();
        Some(Harness::with(db, Cleanup::Schema { url, schema }))
    }

    fn with(db: Db, cleanup: Cleanup) -> Harness {
        let clock = Arc::new(SimulatedClock::starting_at(start_instant()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        Harness {
            // The tests' webhook receivers listen on 127.0.0.1 (`--allow-private-webhooks`).
            engine: Engine::new(db, dyn_clock)
                .with_webhook_network(yuanlu_engine::webhook_net::WebhookNetwork::new(
                    true,
                    Vec::new(),
                ))
                .with_account_key(test_account_key()),
            clock,
            cleanup,
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn finish(self) {
        self.engine.db.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { url, schema } => {
                let admin = Db::open_postgres(&url, None).await.unwrap();
                if let Db::Postgres(pool) = &admin {
                    let drop = format!("DROP SCHEMA {schema} CASCADE");
                    sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(pool)
                        .await
                        .unwrap();
                }
                admin.close().await;
            }
        }
    }

    /// A merchant (default settings unless given) and its supervisor principal.
    pub async fn merchant_with(&self, settings: serde_json::Value) -> Principal {
        let input: CreateMerchant = serde_json::from_value::<bodies::CreateMerchant>(
            json!({ "name": "Test shop", "settings": settings }),
        )
        .unwrap()
        .into();
        let created = self
            .engine
            .create_merchant(&Principal::Admin, input)
            .await
            .unwrap();
        Principal::Merchant {
            merchant_id: created.merchant.id,
            key_id: "key_test".into(),
            role: MerchantRole::Supervisor,
        }
    }

    pub async fn merchant(&self) -> Principal {
        self.merchant_with(json!({})).await
    }

    pub async fn payment(&self, who: &Principal, body: serde_json::Value) -> Payment {
        let mut body = body;
        if body.get("currency").is_none() {
            body["currency"] = json!("CNY");
        }
        let input: RecordPayment = serde_json::from_value::<bodies::RecordPayment>(body)
            .unwrap()
            .into();
        self.engine.record_payment(who, input).await.unwrap()
    }

    pub async fn try_refund(
        &self,
        who: &Principal,
        body: serde_json::Value,
    ) -> Result<CreateOutcome, EngineError> {
        let input: CreateRefund = serde_json::from_value::<bodies::CreateRefund>(body)
            .unwrap()
            .into();
        self.engine.create_refund(who, input).await
    }

    /// A refund that must be created (not an idempotent repeat).
    pub async fn refund(&self, who: &Principal, body: serde_json::Value) -> Refund {
        match self.try_refund(who, body).await {
            Ok(CreateOutcome::Created(refund)) => *refund,
            other => panic!("expected a new refund, got {other:?}"),
        }
    }

    /// One text value from raw SQL (for tampering tests).
    pub async fn fetch_text(&self, sql: &str) -> String {
        match &self.engine.db {
            Db::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// Runs raw SQL against the test database (for tampering tests).
    pub async fn execute(&self, sql: &str) -> u64 {
        match &self.engine.db {
            Db::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Db::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        }
    }
}

/// A test that runs on both backends: `contract!(name, |h| { ... });`.
#[macro_export]
macro_rules! contract {
    ($name:ident, |$h:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let $h = $crate::common::Harness::sqlite().await;
                $body;
                $h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some($h) = $crate::common::Harness::postgres(module_path!()).await else {
                    return;
                };
                $body;
                $h.finish().await;
            }
        }
    };
}
