//! Issue 13: a group-committed batch of creates costs a fixed number of SQL statements,
//! whatever its size. The statements are counted as sqlx reports them (one `sqlx::query`
//! event per statement run), through a process-wide counting subscriber; so this file holds
//! one test per backend, each in its own process-wide count window run one after the other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use tokio::sync::Mutex;
use tracing::span;
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund};

static STATEMENTS: AtomicU64 = AtomicU64::new(0);
/// One backend's test at a time: the count is process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Counts sqlx's statement events and nothing else.
struct CountStatements;

impl tracing::Subscriber for CountStatements {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut summary = Summary(String::new());
        event.record(&mut summary);
        // Pragmas (the background checkpointer, a new connection's set-up) are not the batch's.
        if !summary.0.to_lowercase().starts_with("pragma") {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// The statement's summary (its first words).
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.0 = value.to_string();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}");
        }
    }
}

fn count_statements() {
    // Set once per process; the second test finds it set.
    let _ = tracing::subscriber::set_global_default(CountStatements);
}

fn create(payment_id: &str, no: String) -> CreateRefund {
    serde_json::from_value::<yuanlu_web::api::bodies::CreateRefund>(json!({
        "payment_id": payment_id, "amount": 100, "reason": "customer_cancel",
        "merchant_refund_no": no,
    }))
    .unwrap()
    .into()
}

/// Statements of one batch of `size` creates spread over `merchants` merchants (each with
/// its payments), every create accepted.
async fn statements_of_batch(h: &common::Harness, size: usize, merchants: usize) -> u64 {
    let mut shops = Vec::new();
    for _ in 0..merchants {
        let shop = h.merchant().await;
        let mut payments = Vec::new();
        for _ in 0..4 {
            let p = h
                .payment(&shop, json!({ "channel": "wechat", "amount": 1_000_000 }))
                .await;
            payments.push(p.id);
        }
        shops.push((shop, payments));
    }
    let creates: Vec<_> = (0..size)
        .map(|i| {
            let (shop, payments) = &shops[i % merchants];
            (
                shop.clone(),
                create(&payments[i % payments.len()], format!("s{size}-{i}")),
            )
        })
        .collect();
    let before = STATEMENTS.load(Ordering::SeqCst);
    let answers = h.engine.create_refunds_batch(creates).await;
    let after = STATEMENTS.load(Ordering::SeqCst);
    for answer in &answers {
        assert!(
            matches!(answer, Ok(CreateOutcome::Created(_))),
            "{answer:?}"
        );
    }
    after - before
}

async fn a_batch_costs_the_same_statements_whatever_its_size(h: common::Harness, backend: &str) {
    let alone = statements_of_batch(&h, 1, 1).await;
    let mut seen = Vec::new();
    for (size, merchants) in [(2, 1), (16, 1), (128, 1), (2, 2), (16, 8), (128, 8)] {
        seen.push((
            size,
            merchants,
            statements_of_batch(&h, size, merchants).await,
        ));
    }
    eprintln!(
        "{backend}: one create alone: {alone} statements; batches (creates, merchants, statements): {seen:?}"
    );
    assert!(alone > 5, "{backend}: the counter counts ({alone})");
    let fixed = seen[0].2;
    for &(size, merchants, statements) in &seen {
        assert_eq!(
            statements, fixed,
            "{backend}: a batch of {size} creates over {merchants} merchants"
        );
    }
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    let _one = ONE_AT_A_TIME.lock().await;
    count_statements();
    let h = common::Harness::sqlite().await;
    a_batch_costs_the_same_statements_whatever_its_size(h, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let _one = ONE_AT_A_TIME.lock().await;
    count_statements();
    let Some(h) = common::Harness::postgres("batch_statements::postgres").await else {
        return;
    };
    a_batch_costs_the_same_statements_whatever_its_size(h, "PostgreSQL").await;
}
