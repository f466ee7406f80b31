//! Two `yuanlu serve` processes race refunds of the SAME payment. Inside one process the
//! creates of a merchant queue on one writer task, so only two processes reach the
//! database's own serialisation: PostgreSQL's row lock on the payment (`SELECT … FOR
//! UPDATE`), or SQLite's single write lock on the file (`BEGIN IMMEDIATE`; two processes on
//! one data directory share the file in WAL mode, as `yuanlu reconcile` beside a live server
//! does). 100 requests, split over both servers, wait behind one barrier and go together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const REQUESTS: usize = 100;

/// Two API-only servers on one database (`database_url`), or on one SQLite data directory.
fn two_servers(dir: &std::path::Path, database_url: Option<String>) -> (Server, Server) {
    let options = Options {
        database_url,
        // No dispatch: the refunds stay as they were created, so the counters are exact.
        args: vec!["--dispatch-workers".into(), "0".into()],
        ..Options::default()
    };
    // One after the other: the first applies the migrations (and on SQLite writes the
    // account key the second one reads).
    let first = Server::start_with(dir, &options);
    let second = Server::start_with(dir, &options);
    (first, second)
}

/// `REQUESTS` refunds of `amount` on `payment_id`, alternately through each server, all
/// released at once; the answers with the index of the server that gave each.
async fn race(
    servers: [&Server; 2],
    key: &str,
    payment_id: &str,
    amount: i64,
    tag: &str,
) -> Vec<(usize, Resp)> {
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let mut tasks = Vec::new();
    for n in 0..REQUESTS {
        let server = n % 2;
        let request = servers[server]
            .http
            .post(servers[server].url("/v1/refunds"))
            .bearer_auth(key)
            .json(&json!({
                "payment_id": payment_id, "amount": amount, "reason": "duplicate_charge",
                "merchant_refund_no": format!("{tag}-{n}"),
            }));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (server, Resp::from(request.send().await.unwrap()).await)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Exactly `accepted` creations, every other answer `refused_code`; returns how many each
/// server accepted (for the message only: which server wins is the race's business).
fn tally(answers: &[(usize, Resp)], accepted: usize, refused_code: &str) -> [usize; 2] {
    let mut by_server = [0, 0];
    for (server, r) in answers {
        match r.status {
            201 => by_server[*server] += 1,
            _ => r.assert_problem(422, refused_code, "a refund that lost the race"),
        }
    }
    assert_eq!(
        by_server[0] + by_server[1],
        accepted,
        "accepted per server: {by_server:?}"
    );
    by_server
}

/// Both servers read the same payment, with exactly these counters.
async fn assert_payment(
    servers: [&Server; 2],
    key: &str,
    payment_id: &str,
    in_flight: i64,
    refunds: usize,
) -> Value {
    let mut seen = Vec::new();
    for server in servers {
        let r = server.get(&format!("/v1/payments/{payment_id}"), key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.i64("amount_in_flight"), in_flight, "{}", r.text);
        assert_eq!(r.i64("amount_refunded"), 0, "{}", r.text);
        assert_eq!(
            r.body["refunds"].as_array().unwrap().len(),
            refunds,
            "{}",
            r.text
        );
        let total: i64 = r.body["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|refund| refund["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(total, in_flight, "the refunds stored add up: {}", r.text);
        seen.push(r.body);
    }
    assert_eq!(seen[0], seen[1], "both servers tell the same story");
    seen.swap_remove(0)
}

/// (a) 500.00 refunded in 10.00 steps by 100 racing requests: exactly 50 land. (b) 100.00 in
/// 1.00 steps: the 50-refunds-per-payment limit stops it at exactly 50.
async fn race_one_payment_to_its_caps(first: &Server, second: &Server) {
    let servers = [first, second];
    let (_, key) = first
        .merchant_with(json!({
            "name": "Two Till Noodles",
            // Neither review nor the funding rule may take part: only the caps decide.
            "settings": { "review": { "refund_ratio_percent": 100 }, "funding": "carry_forward" },
        }))
        .await;
    let pay = |amount| {
        let key = key.clone();
        async move {
            first.payment(&key, "alipay", amount).await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };

    // Both payments first, so that the day's sales cover the day's refunds.
    let (by_amount, by_count) = (pay(50_000).await, pay(10_000).await);
    let answers = race(servers, &key, &by_amount, 1_000, "AMOUNT").await;
    let split = tally(&answers, 50, "amount_exceeds_refundable");
    let payment = assert_payment(servers, &key, &by_amount, 50_000, 50).await;
    assert_eq!(payment["refundable"], json!(0), "{payment}");
    eprintln!("refundable amount: accepted per server {split:?}");

    let answers = race(servers, &key, &by_count, 100, "COUNT").await;
    let split = tally(&answers, 50, "too_many_refunds");
    let payment = assert_payment(servers, &key, &by_count, 5_000, 50).await;
    assert_eq!(payment["refundable"], json!(5_000), "{payment}");
    eprintln!("refund count: accepted per server {split:?}");

    let audit = second.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
    let ledger = second.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(ledger.body["balanced"], json!(true), "{}", ledger.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_sqlite_file_race_one_payment_to_its_caps() {
    let dir = common::data_dir();
    let (first, second) = two_servers(dir.path(), None);
    race_one_payment_to_its_caps(&first, &second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgresql_database_race_one_payment_to_its_caps() {
    let Some(schema) =
        PgSchema::create("two_processes_on_one_postgresql_database_race_one_payment_to_its_caps")
            .await
    else {
        return;
    };
    let dir = common::data_dir();
    {
        let (first, second) = two_servers(dir.path(), Some(schema.url()));
        race_one_payment_to_its_caps(&first, &second).await;
    }
    schema.drop_schema().await;
}
