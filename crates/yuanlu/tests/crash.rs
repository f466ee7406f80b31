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
