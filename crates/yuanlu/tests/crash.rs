//! Durability across `kill -9`: every refund acknowledged to a caller is there after a
//! restart on the same data, exactly once, and the payments' counters agree with the
//! refunds stored; the audit chain stays intact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use serde_json::{Value, json};

/// Every refund of the caller's merchant, through the list's pages.
async fn stored_refunds(server: &Server, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = "/v1/refunds?limit=100".to_string();
        if let Some(after) = &after {
            path.push_str(&format!("&starting_after={after}"));
        }
        let page = server.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.body["data"].as_array().unwrap().clone();
        after = data.last().map(|r| r["id"].as_str().unwrap().to_string());
        all.extend(data);
        if !page.body["has_more"].as_bool().unwrap() {
            return all;
        }
    }
}

/// The payment's counters equal the sums over its stored refunds.
async fn assert_counters_match(server: &Server, key: &str, payment_id: &str, refunds: &[Value]) {
    let payment = server.get(&format!("/v1/payments/{payment_id}"), key).await;
    assert_eq!(payment.status, 200, "{}", payment.text);
    let mine: Vec<&Value> = refunds
        .iter()
        .filter(|r| r["payment_id"] == json!(payment_id))
        .collect();
    let live = [
        "awaiting_return",
        "pending_review",
        "queued",
        "processing",
        "abnormal",
    ];
    let in_flight: i64 = mine
        .iter()
        .filter(|r| live.contains(&r["status"].as_str().unwrap()))
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    let succeeded: i64 = mine
        .iter()
        .filter(|r| r["status"] == json!("succeeded"))
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    // The dispatch workers move refunds from in flight to refunded while we read the two
    // endpoints one after the other; their sum does not move.
    assert_eq!(
        payment.i64("amount_in_flight") + payment.i64("amount_refunded"),
        in_flight + succeeded,
        "held or refunded of {payment_id}: {}",
        payment.text
    );
    assert_eq!(
        payment.i64("refundable"),
        payment.i64("amount") - in_flight - succeeded,
        "{}",
        payment.text
    );
    let listed: HashSet<&str> = payment.body["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let stored: HashSet<&str> = mine.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        listed, stored,
        "the payment lists exactly its stored refunds"
    );
}

async fn assert_audit_ok(server: &Server) {
    let audit = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
    assert_ledger_balanced(server).await;
}

/// The books balance after the crash: every posting, in total, and every merchant's row.
async fn assert_ledger_balanced(server: &Server) {
    let check = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(check.status, 200, "{}", check.text);
    assert_eq!(check.body["balanced"], json!(true), "{}", check.text);
}

/// A merchant whose review rules stay out of the way (ratio 100 %).
async fn merchant(server: &Server) -> String {
    server
        .merchant_with(json!({ "name": "Crash Test Dummies", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await
        .1
}

#[tokio::test]
async fn every_acknowledged_refund_survives_kill_9() {
    const PAYMENTS: usize = 5;
    const REFUNDS_PER_PAYMENT: usize = 40;
    let dir = common::data_dir();
    let mut server = Server::start(dir.path());
    let key = merchant(&server).await;
    let mut payments = Vec::new();
    for _ in 0..PAYMENTS {
        let p = server.payment(&key, "wechat", 100_000).await;
        payments.push(p["id"].as_str().unwrap().to_string());
    }
    // id -> (payment, amount, merchant_refund_no), for every refund answered 201.
    let mut acknowledged: BTreeMap<String, (String, i64, String)> = BTreeMap::new();
    for n in 0..PAYMENTS * REFUNDS_PER_PAYMENT {
        let payment = &payments[n % PAYMENTS];
        let amount = 1 + (n as i64 * 37) % 1_000;
        let no = format!("K9-{n}");
        let r = server.refund(&key, payment, amount, &no).await;
        assert_eq!(r.status, 201, "refund {n}: {}", r.text);
        acknowledged.insert(r.str("id"), (payment.clone(), amount, no));
    }
    server.kill();

    let server = Server::start(dir.path());
    for (id, (payment, amount, no)) in &acknowledged {
        let r = server.get(&format!("/v1/refunds/{id}"), &key).await;
        assert_eq!(r.status, 200, "acknowledged refund {id} lost: {}", r.text);
        assert_eq!(r.i64("amount"), *amount, "{}", r.text);
        assert_eq!(&r.str("payment_id"), payment);
        assert_eq!(&r.str("merchant_refund_no"), no);
    }
    let stored = stored_refunds(&server, &key).await;
    assert_eq!(stored.len(), acknowledged.len());
    for payment in &payments {
        assert_counters_match(&server, &key, payment, &stored).await;
    }
    assert_audit_ok(&server).await;
    // Repeats after the restart are idempotent.
    let (id, (payment, amount, no)) = acknowledged.iter().next().unwrap();
    let again = server.refund(&key, payment, *amount, no).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(&again.str("id"), id);
}

/// One create's outcome as the client saw it.
enum Outcome {
    Answered(Resp),
    Lost(String),
}

/// 50 concurrent creates; SIGKILL after the first 10 answers; restart and check.
async fn kill_with_requests_in_flight(dir: &Path, options: &Options) {
    const REQUESTS: usize = 50;
    const ANSWERS_BEFORE_KILL: usize = 10;
    let mut server = Server::start_with(dir, options);
    let key = merchant(&server).await;
    // Two payments: at most 50 refunds per payment.
    let mut payments = Vec::new();
    for _ in 0..2 {
        let p = server.payment(&key, "alipay", 1_000_000).await;
        payments.push(p["id"].as_str().unwrap().to_string());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut asks: HashMap<String, (String, i64)> = HashMap::new();
    for n in 0..REQUESTS {
        let payment = payments[n % 2].clone();
        let amount = 100 + n as i64;
        let no = format!("INFLIGHT-{n}");
        asks.insert(no.clone(), (payment.clone(), amount));
        let http = server.http.clone();
        let url = server.url("/v1/refunds");
        let key = key.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let body = json!({ "payment_id": payment, "amount": amount, "reason": "duplicate_charge", "merchant_refund_no": no });
            let outcome = match http.post(url).bearer_auth(key).json(&body).send().await {
                Ok(response) => match response.status().as_u16() {
                    status @ (200 | 201) => match response.text().await {
                        Ok(text) => Outcome::Answered(Resp {
                            status,
                            content_type: String::new(),
                            body: serde_json::from_str(&text).unwrap_or(Value::Null),
                            text,
                        }),
                        Err(e) => Outcome::Lost(e.to_string()),
                    },
                    status => Outcome::Answered(Resp {
                        status,
                        content_type: String::new(),
                        text: response.text().await.unwrap_or_default(),
                        body: Value::Null,
                    }),
                },
                Err(e) => Outcome::Lost(e.to_string()),
            };
            let _ = tx.send((no, outcome));
        });
    }
    drop(tx);
    let mut outcomes = Vec::new();
    let mut answered = 0;
    while let Some((no, outcome)) = rx.recv().await {
        if matches!(outcome, Outcome::Answered(_)) {
            answered += 1;
        }
        outcomes.push((no, outcome));
        if answered == ANSWERS_BEFORE_KILL {
            server.kill();
        }
    }
    assert_eq!(outcomes.len(), REQUESTS);
    // Whatever the client saw as created must exist; nothing else may be half-made.
    let mut acknowledged: HashMap<String, (String, i64)> = HashMap::new();
    for (no, outcome) in &outcomes {
        if let Outcome::Answered(r) = outcome {
            assert!(
                r.status == 201 || r.status == 200,
                "{no}: an answer that is not a creation: {} {}",
                r.status,
                r.text
            );
            acknowledged.insert(r.str("id"), (no.clone(), r.i64("amount")));
        }
    }
    assert!(acknowledged.len() >= ANSWERS_BEFORE_KILL);
    let lost: Vec<&str> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Lost(error) => Some(error.as_str()),
            Outcome::Answered(_) => None,
        })
        .collect();
    eprintln!(
        "{} of {REQUESTS} creates acknowledged before kill -9, {} lost in flight (e.g. {:?})",
        acknowledged.len(),
        lost.len(),
        lost.first()
    );

    let server = Server::start_with(dir, options);
    let stored = stored_refunds(&server, &key).await;
    let mut numbers = HashSet::new();
    let mut ids = HashSet::new();
    for r in &stored {
        assert!(
            ids.insert(r["id"].as_str().unwrap().to_string()),
            "refund listed twice: {r}"
        );
        let no = r["merchant_refund_no"].as_str().unwrap();
        assert!(
            numbers.insert(no.to_string()),
            "merchant_refund_no {no} stored twice"
        );
        let (payment, amount) = &asks[no];
        assert_eq!(r["payment_id"], json!(payment), "{r}");
        assert_eq!(r["amount"], json!(amount), "{r}");
    }
    for (id, (no, amount)) in &acknowledged {
        let r = server.get(&format!("/v1/refunds/{id}"), &key).await;
        assert_eq!(
            r.status, 200,
            "acknowledged refund {id} ({no}) lost after kill -9: {}",
            r.text
        );
        assert_eq!(r.i64("amount"), *amount);
        assert!(ids.contains(id), "{id} missing from the list");
    }
    for payment in &payments {
        assert_counters_match(&server, &key, payment, &stored).await;
    }
    assert_audit_ok(&server).await;

    // Retrying every request with its number ends with each refund exactly once: the ones
    // that were committed answer 200 with their id, the others are created now.
    for (no, (payment, amount)) in &asks {
        let r = server.refund(&key, payment, *amount, no).await;
        assert!(
            r.status == 200 || r.status == 201,
            "retry of {no}: {}",
            r.text
        );
        if numbers.contains(no) {
            assert_eq!(
                r.status, 200,
                "{no} was stored, so the retry is a repeat: {}",
                r.text
            );
        }
    }
    let stored = stored_refunds(&server, &key).await;
    assert_eq!(stored.len(), REQUESTS);
    for payment in &payments {
        assert_counters_match(&server, &key, payment, &stored).await;
    }
    assert_audit_ok(&server).await;
}

#[tokio::test]
async fn kill_9_with_requests_in_flight_loses_nothing_acknowledged_and_doubles_nothing() {
    let dir = common::data_dir();
    kill_with_requests_in_flight(dir.path(), &Options::default()).await;
}

#[tokio::test]
async fn kill_9_with_requests_in_flight_on_postgresql() {
    let Some(schema) = PgSchema::create("kill_9_with_requests_in_flight_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    kill_with_requests_in_flight(
        dir.path(),
        &Options {
            database_url: Some(schema.url()),
            ..Options::default()
        },
    )
    .await;
    schema.drop_schema().await;
}

// ---------------------------------------------------------------------------------------
// kill -9 with creates and dispatches in flight, the channel in a process of its own.

const SIMULATOR_SECRET: &str = "crash-simulator-secret-0123456789abcdef";
/// Latency on every channel call and half the refunds confirmed later (by callback or
/// query): sends and unconfirmed refunds are under way whenever the server dies.
const SIMULATOR_FAULTS: &str = "slow=0.5,confirm_delay_ms=300,latency=20..60,seed=1717";
/// Refunds that can be asked for: 8 payments × 45 (a payment takes at most 50 refunds),
/// more than are created before the kill.
const DISPATCH_PAYMENTS: usize = 8;
const DISPATCH_REFUNDS_PER_PAYMENT: usize = 45;
const DISPATCH_CONCURRENCY: usize = 12;
/// The first wave: created before the second starts, so dispatch is running by then.
const FIRST_WAVE: usize = 24;
/// The second wave starts once the channel booked this many (dispatch under way) ...
const START_SECOND_WAVE_AFTER_BOOKED: usize = 8;
/// ... and the server is killed once this many of it were acknowledged (creates keep
/// coming, `DISPATCH_CONCURRENCY` at a time, so some are always in flight then).
const KILL_AFTER_SECOND_WAVE_ACKNOWLEDGED: usize = 24;
/// A failure guard for the loops that wait on the server and the channel, never a measure.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
const LIVE: [&str; 5] = [
    "awaiting_return",
    "pending_review",
    "queued",
    "processing",
    "abnormal",
];

fn dispatching_options(simulator: &common::Simulator, database_url: Option<String>) -> Options {
    let mut args = simulator.serve_args();
    args.extend(
        [
            "--channel-timeout-ms",
            "1000",
            "--dispatch-retry-ms",
            "50",
            "--dispatch-poll-ms",
            "100",
        ]
        .map(String::from),
    );
    Options {
        database_url,
        args,
        ..Options::default()
    }
}

/// Every entry of the WeChat and Alipay books (the channels the payments use).
async fn booked(simulator: &common::Simulator) -> Vec<Value> {
    let mut entries = Vec::new();
    for book in ["wechat", "alipay"] {
        let snapshot = simulator.books(book).await;
        entries.extend(snapshot["refunds"].as_array().unwrap().iter().cloned());
    }
    entries
}

/// What the database says was under way at the kill, read before the restart.
#[derive(Debug, Default)]
struct UnderWay {
    /// Refunds the channel was asked to pay and yuanlu had no final answer for (`processing`,
    /// or `queued` with a send that may have reached the channel).
    sent_unconfirmed: i64,
    /// Refunds whose dispatch lease a worker still held.
    leased: i64,
    /// Refunds not sent yet.
    not_sent: i64,
}

const UNDER_WAY_SQL: &str = "SELECT \
    COALESCE(SUM(CASE WHEN status = 'processing' OR (status = 'queued' AND send_state <> 'not_sent') THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN lease_owner IS NOT NULL AND status IN ('queued', 'processing') THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN status = 'queued' AND send_state = 'not_sent' THEN 1 ELSE 0 END), 0) \
    FROM refunds";

async fn under_way(dir: &Path, database_url: Option<&str>) -> UnderWay {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(UNDER_WAY_SQL);
    let (sent_unconfirmed, leased, not_sent): (i64, i64, i64) = match database_url {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let row = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            row
        }
        None => {
            let url = format!("sqlite://{}", dir.join("yuanlu.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let row = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            row
        }
    };
    UnderWay {
        sent_unconfirmed,
        leased,
        not_sent,
    }
}

/// One create as the client saw it: answered, or no answer because the server died with the
/// request in flight (`in_flight`), or refused because it was sent after the kill.
enum Create {
    Answered(Resp),
    NoAnswer { in_flight: bool, error: String },
}

async fn kill_with_creates_and_dispatches_in_flight(dir: &Path, database_url: Option<String>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let simulator = common::Simulator::start(dir, SIMULATOR_SECRET, SIMULATOR_FAULTS);
    let options = dispatching_options(&simulator, database_url.clone());
    let mut server = Server::start_with(dir, &options);
    let key = merchant(&server).await;
    // A big sale keeps the merchant's balance far above the refunds.
    server.payment(&key, "alipay", 100_000_000).await;
    let mut payments = Vec::new();
    for n in 0..DISPATCH_PAYMENTS {
        let channel = if n % 2 == 0 { "wechat" } else { "alipay" };
        let p = server.payment(&key, channel, 100_000).await;
        payments.push(p["id"].as_str().unwrap().to_string());
    }
    let mut asks: Vec<(String, String, i64)> = Vec::new();
    for k in 0..DISPATCH_REFUNDS_PER_PAYMENT {
        for (p, payment) in payments.iter().enumerate() {
            asks.push((format!("DK9-{p}-{k:02}"), payment.clone(), 100 + k as i64));
        }
    }
    let asked: HashMap<String, (String, i64)> = asks
        .iter()
        .map(|(no, payment, amount)| (no.clone(), (payment.clone(), *amount)))
        .collect();

    // Creates, `DISPATCH_CONCURRENCY` at a time, until the kill; none starts after it. The
    // second wave waits for its permits until the first has reached the channel.
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let first_wave = Arc::new(tokio::sync::Semaphore::new(DISPATCH_CONCURRENCY));
    let second_wave = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for (n, (no, payment, amount)) in asks.iter().cloned().enumerate() {
        let (http, url, key) = (server.http.clone(), server.url("/v1/refunds"), key.clone());
        let semaphore = if n < FIRST_WAVE {
            first_wave.clone()
        } else {
            second_wave.clone()
        };
        let (acks, killed) = (acknowledged_count.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await.unwrap();
            if killed.load(Ordering::SeqCst) {
                return (no, None);
            }
            let body = json!({ "payment_id": payment, "amount": amount, "reason": "duplicate_charge", "merchant_refund_no": no });
            let outcome = match http.post(url).bearer_auth(key).json(&body).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.text().await {
                        Ok(text) => {
                            if status == 200 || status == 201 {
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            Create::Answered(Resp {
                                status,
                                content_type: String::new(),
                                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                                text,
                            })
                        }
                        Err(e) => Create::NoAnswer {
                            in_flight: true,
                            error: e.to_string(),
                        },
                    }
                }
                Err(e) => Create::NoAnswer {
                    in_flight: !e.is_connect(),
                    error: e.to_string(),
                },
            };
            (no, Some(outcome))
        }));
    }

    // The second wave once the channel has booked some of the first (dispatch running);
    // the kill once enough of the second were acknowledged.
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tick.tick().await;
        let booked_now = booked(&simulator).await.len();
        if booked_now >= START_SECOND_WAVE_AFTER_BOOKED {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{} acknowledged, {booked_now} booked by the channel",
            acknowledged_count.load(Ordering::SeqCst)
        );
    }
    let before_second_wave = acknowledged_count.load(Ordering::SeqCst);
    second_wave.add_permits(DISPATCH_CONCURRENCY);
    loop {
        tick.tick().await;
        let acks = acknowledged_count.load(Ordering::SeqCst);
        if acks >= before_second_wave + KILL_AFTER_SECOND_WAVE_ACKNOWLEDGED {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{acks} acknowledged");
    }
    killed.store(true, Ordering::SeqCst);
    server.kill();
    let acked_at_kill = acknowledged_count.load(Ordering::SeqCst);

    let mut acknowledged: HashMap<String, (String, i64)> = HashMap::new();
    let (mut in_flight, mut not_started, mut refused) = (Vec::new(), 0, 0);
    for task in tasks {
        let (no, outcome) = task.await.unwrap();
        match outcome {
            None => not_started += 1,
            Some(Create::Answered(r)) => {
                assert!(
                    r.status == 201 || r.status == 200,
                    "{no}: an answer that is not a creation: {} {}",
                    r.status,
                    r.text
                );
                acknowledged.insert(r.str("id"), (no, r.i64("amount")));
            }
            Some(Create::NoAnswer {
                in_flight: true,
                error,
            }) => in_flight.push(error),
            Some(Create::NoAnswer {
                in_flight: false, ..
            }) => refused += 1,
        }
    }
    // The database as the kill left it, before anything restarts.
    let at_kill = under_way(dir, database_url.as_deref()).await;
    eprintln!(
        "kill -9: {} creates acknowledged ({acked_at_kill} when the kill was decided), {} in flight without an answer (e.g. {:?}), {refused} refused after the kill, {not_started} not started; in the database: {} refunds sent and unconfirmed, {} leased by a worker, {} not sent yet",
        acknowledged.len(),
        in_flight.len(),
        in_flight.first(),
        at_kill.sent_unconfirmed,
        at_kill.leased,
        at_kill.not_sent
    );
    assert!(!in_flight.is_empty(), "no create was in flight at the kill");
    assert!(
        at_kill.sent_unconfirmed > 0,
        "no dispatch was under way at the kill: {at_kill:?}"
    );
    assert!(
        acknowledged.len() < asks.len(),
        "every create had answered before the kill"
    );

    let server = Server::start_with(dir, &options);
    // The restarted workers finish what was under way (queries find what the channel did).
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let stored = loop {
        tick.tick().await;
        let stored = stored_refunds(&server, &key).await;
        let live = stored
            .iter()
            .filter(|r| LIVE.contains(&r["status"].as_str().unwrap()))
            .count();
        if live == 0 {
            break stored;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{live} refunds still under way after the restart"
        );
    };

    // Every acknowledged refund exists, as asked; nothing is stored twice or unasked.
    let mut by_id: HashMap<String, &Value> = HashMap::new();
    let mut numbers = HashSet::new();
    for r in &stored {
        let no = r["merchant_refund_no"].as_str().unwrap();
        assert!(numbers.insert(no.to_string()), "{no} stored twice");
        let (payment, amount) = &asked[no];
        assert_eq!(r["payment_id"], json!(payment), "{r}");
        assert_eq!(r["amount"], json!(amount), "{r}");
        assert_eq!(r["status"], json!("succeeded"), "{r}");
        by_id.insert(r["id"].as_str().unwrap().to_string(), r);
    }
    for (id, (no, amount)) in &acknowledged {
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged refund {id} ({no}) lost after kill -9"));
        assert_eq!(r["amount"], json!(amount), "{r}");
    }

    // The channel's books, which outlived the server: each refund paid at most once, only
    // refunds yuanlu holds, and the money paid is the money yuanlu says succeeded.
    let books = booked(&simulator).await;
    let mut paid_ids = HashSet::new();
    let mut paid_fen = 0;
    for entry in &books {
        let id = entry["refund_no"].as_str().unwrap();
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("the channel booked {id}, which yuanlu does not hold"));
        assert!(
            entry["paid_count"].as_i64().unwrap() <= 1,
            "{id} paid twice: {entry}"
        );
        if entry["paid_count"] == json!(1) {
            assert!(paid_ids.insert(id.to_string()), "{id} paid twice: {entry}");
            assert_eq!(entry["paid_fen"], r["amount"], "{entry}");
            paid_fen += entry["paid_fen"].as_i64().unwrap();
        }
    }
    let succeeded_fen: i64 = stored.iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!(
        paid_ids.len(),
        stored.len(),
        "every succeeded refund paid once"
    );
    assert_eq!(
        paid_fen, succeeded_fen,
        "paid by the channel vs succeeded in yuanlu"
    );

    for payment in &payments {
        assert_counters_match(&server, &key, payment, &stored).await;
    }
    // The audit chain is intact and the ledger balances.
    assert_audit_ok(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_creates_and_dispatches_in_flight_pays_nothing_twice() {
    let dir = common::data_dir();
    kill_with_creates_and_dispatches_in_flight(dir.path(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_creates_and_dispatches_in_flight_on_postgresql() {
    let Some(schema) =
        PgSchema::create("kill_9_with_creates_and_dispatches_in_flight_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    kill_with_creates_and_dispatches_in_flight(dir.path(), Some(schema.url())).await;
    schema.drop_schema().await;
}
