//! Issue 16 items 3–6 through the real binary, each on SQLite and on PostgreSQL:
//! settings that change over time (fees, windows, funding, arrival rules, the daily refund
//! limit under concurrent requests), orders that move, the consumer's own refund request,
//! and review / case handling times in the report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use reqwest::Method;
use serde_json::{Value, json};

const SIMULATED_AT: &str = "2026-09-29T02:00:00Z";
const WAIT_AT_MOST: Duration = Duration::from_secs(120);

/// Runs `$scenario` on a fresh server on SQLite, and on PostgreSQL when
/// `YUANLU_TEST_DATABASE_URL` names one. Multi-threaded runtimes: concurrent requests are
/// sent from several threads.
macro_rules! on_both_backends {
    ($scenario:ident, $options:expr, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            let dir = common::data_dir();
            let server = Server::start_with(dir.path(), &$options);
            $scenario(&server).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            let Some(schema) = PgSchema::create(stringify!($postgres)).await else {
                return;
            };
            let dir = common::data_dir();
            {
                let mut options: Options = $options;
                options.database_url = Some(schema.url());
                let server = Server::start_with(dir.path(), &options);
                $scenario(&server).await;
            }
            schema.drop_schema().await;
        }
    };
}

fn real_clock() -> Options {
    Options::default()
}

fn simulated() -> Options {
    Options {
        clock: Some(format!("simulated={SIMULATED_AT}")),
        args: ["--dispatch-retry-ms", "100", "--dispatch-poll-ms", "200"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Options::default()
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

async fn patch(server: &Server, path: &str, key: &str, body: &Value) -> Resp {
    server
        .call(Method::PATCH, path, Some(key), Some(body))
        .await
}

async fn refund_with(server: &Server, key: &str, body: Value) -> Resp {
    server.post("/v1/refunds", key, &body).await
}

async fn advance(server: &Server, seconds: i64) {
    let r = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": seconds }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn audit_ok(server: &Server) {
    let audit = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
}

// --- item 3: settings change over time ------------------------------------------------------

/// Fees apply to payments after a change (an earlier payment keeps its fee and its fee
/// terms); windows and the funding policy to refunds after it; the change is versioned and
/// audited; only the admin may make it, and out-of-range values are refused.
async fn settings_change_over_time(server: &Server) {
    let (merchant_id, key) = server
        .merchant_with(json!({ "name": "Tea House", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let before = server.payment(&key, "wechat", 10_000).await;
    assert_eq!(before["fee"], json!(38), "{before}");
    // Captured ten days ago (an admin back-fill): within the 365-day window for now.
    let ten_days_ago = (Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let old = server
        .payment_with(
            ADMIN_KEY,
            json!({ "merchant_id": merchant_id, "channel": "alipay", "amount": 5_000,
                    "currency": "CNY", "captured_at": ten_days_ago }),
        )
        .await;

    let path = format!("/v1/merchants/{merchant_id}");
    let refused = patch(
        server,
        &path,
        &key,
        &json!({ "settings": { "funding": "carry_forward" } }),
    )
    .await;
    refused.assert_problem(403, "forbidden", "a merchant changing its own settings");
    let refused = patch(
        server,
        &path,
        ADMIN_KEY,
        &json!({ "settings": { "channels": { "wechat": { "fee_rate_ppm": 200_000 } } } }),
    )
    .await;
    refused.assert_problem(400, "validation_error", "a 20 % fee rate");
    assert_eq!(
        refused.str("field"),
        "settings.channels.wechat.fee_rate_ppm"
    );
    let unknown = patch(
        server,
        "/v1/merchants/mch_nosuch",
        ADMIN_KEY,
        &json!({ "settings": {} }),
    )
    .await;
    unknown.assert_problem(404, "not_found", "an unknown merchant");

    let changed = patch(
        server,
        &path,
        ADMIN_KEY,
        &json!({ "settings": {
            "channels": {
                "wechat": { "fee_rate_ppm": 6_000, "fee_refund": "none" },
                "alipay": { "refund_window_days": 5 }
            },
            "funding": "carry_forward"
        } }),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        changed.body["settings"]["channels"]["wechat"]["fee_rate_ppm"],
        json!(6_000)
    );
    assert_eq!(changed.body["settings"]["funding"], json!("carry_forward"));

    // Fees: the new rate for a new payment, the old fee kept by the earlier one.
    let after = server.payment(&key, "wechat", 10_000).await;
    assert_eq!(after["fee"], json!(60), "{after}");
    let kept = server
        .get(&format!("/v1/payments/{}", id(&before)), &key)
        .await;
    assert_eq!(kept.body["fee"], json!(38), "{}", kept.text);

    // Fee terms: the earlier payment returns its fee proportionally (the policy it was
    // taken under), the later one returns none.
    let first = server.refund(&key, &id(&before), 10_000, "TEA-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.i64("fee_refunded"), 38, "{}", first.text);
    let second = server.refund(&key, &id(&after), 10_000, "TEA-2").await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.i64("fee_refunded"), 0, "{}", second.text);

    // Windows: the earlier payment is now past the alipay window of 5 days.
    let late = server.refund(&key, &id(&old), 1_000, "TEA-3").await;
    late.assert_problem(
        422,
        "refund_window_expired",
        "a window shortened after the payment",
    );

    let versions = server
        .get(
            &format!("/v1/merchants/{merchant_id}/settings/versions"),
            &key,
        )
        .await;
    assert_eq!(versions.status, 200, "{}", versions.text);
    let versions = versions.body.as_array().unwrap().clone();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["version"], json!(1));
    assert_eq!(
        versions[0]["settings"]["channels"]["wechat"]["fee_rate_ppm"],
        json!(3_800)
    );
    assert_eq!(
        versions[1]["settings"]["channels"]["wechat"]["fee_rate_ppm"],
        json!(6_000)
    );
    assert_eq!(versions[1]["changed_by"], json!("acquirer:admin"));
    audit_ok(server).await;
}

on_both_backends!(
    settings_change_over_time,
    real_clock(),
    settings_change_over_time_on_sqlite,
    settings_change_over_time_on_postgresql
);

/// `requests` concurrent refunds of `amount` fen, each of its own payment, from several
/// threads: `(created, refused with daily_refund_limit_exceeded)`.
async fn refund_rush(
    server: &Server,
    key: &str,
    requests: usize,
    amount: i64,
    tag: &str,
) -> (usize, usize) {
    let mut payments = Vec::new();
    for _ in 0..requests {
        payments.push(id(&server.payment(key, "wechat", 10_000).await));
    }
    let mut tasks = Vec::new();
    for (n, payment_id) in payments.into_iter().enumerate() {
        let (http, url, key) = (
            server.http.clone(),
            server.url("/v1/refunds"),
            key.to_string(),
        );
        let body = json!({ "payment_id": payment_id, "amount": amount, "reason": "duplicate_charge",
                           "merchant_refund_no": format!("{tag}-{n}") });
        tasks.push(tokio::spawn(async move {
            Resp::from(
                http.post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            201 => created += 1,
            _ => {
                r.assert_problem(
                    422,
                    "daily_refund_limit_exceeded",
                    "a refund over the limit",
                );
                refused += 1;
            }
        }
    }
    (created, refused)
}

/// 限额: concurrent refunds never exceed the merchant's daily count or amount.
async fn daily_limit_holds_under_concurrency(server: &Server) {
    let settings = |limit: Value| {
        json!({ "name": "Busy Shop", "settings": {
            "review": { "refund_ratio_percent": 100 }, "funding": "carry_forward",
            "daily_refund_limit": limit } })
    };
    // By count: 5 a day.
    let (merchant_id, key) = server
        .merchant_with(settings(json!({ "count": 5, "amount_fen": 1_000_000 })))
        .await;
    let merchant = server
        .get(&format!("/v1/merchants/{merchant_id}"), &key)
        .await;
    assert_eq!(
        merchant.body["settings"]["daily_refund_limit"],
        json!({ "count": 5, "amount_fen": 1_000_000 }),
        "{}",
        merchant.text
    );
    let (created, refused) = refund_rush(server, &key, 16, 3_000, "COUNT").await;
    assert_eq!((created, refused), (5, 11), "the count limit held");
    let refunds = server.get("/v1/refunds?limit=100", &key).await;
    assert_eq!(
        refunds.body["data"].as_array().unwrap().len(),
        5,
        "{}",
        refunds.text
    );

    // By amount: 10 000 fen a day holds three refunds of 3 000.
    let (_, key) = server
        .merchant_with(settings(json!({ "amount_fen": 10_000 })))
        .await;
    let (created, refused) = refund_rush(server, &key, 12, 3_000, "AMOUNT").await;
    assert_eq!((created, refused), (3, 9), "the amount limit held");
    let page = server.get("/v1/refunds?limit=100", &key).await;
    let total: i64 = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 9_000, "{}", page.text);
    // The answer says which limit.
    let payment = id(&server.payment(&key, "wechat", 10_000).await);
    let over = server.refund(&key, &payment, 1_001, "AMOUNT-X").await;
    over.assert_problem(422, "daily_refund_limit_exceeded", "one fen too many");
    assert_eq!(
        over.body["extra"]["limit"],
        json!("amount"),
        "{}",
        over.text
    );
    assert_eq!(
        over.body["extra"]["used_today"],
        json!(9_000),
        "{}",
        over.text
    );
    // Exactly up to the limit is allowed.
    let last = server.refund(&key, &payment, 1_000, "AMOUNT-Y").await;
    assert_eq!(last.status, 201, "{}", last.text);
    audit_ok(server).await;
}

on_both_backends!(
    daily_limit_holds_under_concurrency,
    real_clock(),
    daily_limit_holds_under_concurrency_on_sqlite,
    daily_limit_holds_under_concurrency_on_postgresql
);

/// The arrival rules per channel are settings: stored, shown, and used when the channel
/// accepts a refund (the simulated clock stands still, so the deadline is exact).
async fn arrival_rules_are_configurable(server: &Server) {
    let (merchant_id, key) = server
        .merchant_with(
            json!({ "name": "Noodles", "settings": { "review": { "refund_ratio_percent": 100 } } }),
        )
        .await;
    let rules = json!({ "balance": { "hours": 6 }, "bank_card": { "hours": 6 } });
    let changed = patch(
        server,
        &format!("/v1/merchants/{merchant_id}"),
        ADMIN_KEY,
        &json!({ "settings": { "channels": { "wechat": { "arrival": rules } } } }),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        changed.body["settings"]["channels"]["wechat"]["arrival"],
        rules
    );
    let bad = patch(
        server,
        &format!("/v1/merchants/{merchant_id}"),
        ADMIN_KEY,
        &json!({ "settings": { "channels": { "wechat": { "arrival": { "balance": { "hours": 0 }, "bank_card": { "hours": 6 } } } } } }),
    )
    .await;
    bad.assert_problem(400, "validation_error", "an arrival of 0 hours");

    let payment = id(&server.payment(&key, "wechat", 10_000).await);
    let refund = server.refund(&key, &payment, 2_000, "ARR-1").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let refund_id = refund.str("id");
    let started = Instant::now();
    let expected = loop {
        let r = server.get(&format!("/v1/refunds/{refund_id}"), &key).await;
        if let Some(by) = r.body["expected_arrival_by"].as_str() {
            break by.parse::<DateTime<Utc>>().unwrap();
        }
        assert!(
            started.elapsed() < WAIT_AT_MOST,
            "never accepted: {}\n{}",
            r.text,
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let at: DateTime<Utc> = SIMULATED_AT.parse().unwrap();
    // The spec's default would be 2 hours (balance) or 3 business days (bank card).
    assert_eq!(expected, at + chrono::Duration::hours(6));
}

on_both_backends!(
    arrival_rules_are_configurable,
    simulated(),
    arrival_rules_are_configurable_on_sqlite,
    arrival_rules_are_configurable_on_postgresql
);

// --- item 4: orders move ----------------------------------------------------------------------

async fn order(server: &Server, key: &str, payment: &str, body: Value) -> Resp {
    server
        .post(&format!("/v1/payments/{payment}/order"), key, &body)
        .await
}

async fn goods_refund(server: &Server, key: &str, payment: &str, no: &str) -> Resp {
    let r = refund_with(
        server,
        key,
        json!({ "payment_id": payment, "amount": 1_000, "reason": "quality_issue", "merchant_refund_no": no }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r
}

/// The goods-return rule follows the order as it moves, both ways: an order shipped after
/// the payment makes a goods refund wait for the goods; a returned one lets the waiting
/// refunds go on and new ones not wait.
async fn orders_move(server: &Server) {
    let (_, key) = server
        .merchant_with(
            json!({ "name": "Gadgets", "settings": { "review": { "refund_ratio_percent": 100 } } }),
        )
        .await;
    // Recorded unshipped: a goods refund does not wait.
    let payment = id(&server
        .payment_with(
            &key,
            json!({ "channel": "alipay", "amount": 29_900, "currency": "CNY",
            "order": { "merchant_order_no": "ORD-9", "shipping_status": "unshipped" } }),
        )
        .await);
    let before = goods_refund(server, &key, &payment, "G-1").await;
    assert_ne!(before.str("status"), "awaiting_return", "{}", before.text);

    // Shipped afterwards: the next goods refund waits for the goods.
    let shipped = order(
        server,
        &key,
        &payment,
        json!({ "shipping_status": "shipped" }),
    )
    .await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    assert_eq!(shipped.body["order"]["shipping_status"], json!("shipped"));
    assert_eq!(shipped.body["order"]["merchant_order_no"], json!("ORD-9"));
    let waiting = goods_refund(server, &key, &payment, "G-2").await;
    assert_eq!(waiting.str("status"), "awaiting_return", "{}", waiting.text);

    // Orders move forward only; a return needs its tracking number; the admin does not
    // move a merchant's order.
    order(
        server,
        &key,
        &payment,
        json!({ "shipping_status": "unshipped" }),
    )
    .await
    .assert_problem(409, "conflict", "an order moved back");
    order(
        server,
        &key,
        &payment,
        json!({ "shipping_status": "returned" }),
    )
    .await
    .assert_problem(400, "validation_error", "a return without tracking number");
    order(
        server,
        ADMIN_KEY,
        &payment,
        json!({ "shipping_status": "delivered" }),
    )
    .await
    .assert_problem(403, "forbidden", "the admin moving an order");
    let delivered = order(
        server,
        &key,
        &payment,
        json!({ "shipping_status": "delivered" }),
    )
    .await;
    assert_eq!(delivered.status, 200, "{}", delivered.text);

    // Returned: the waiting refund goes on, and a new goods refund does not wait.
    let returned = order(
        server,
        &key,
        &payment,
        json!({ "shipping_status": "returned", "tracking_no": "SF1234567890" }),
    )
    .await;
    assert_eq!(returned.status, 200, "{}", returned.text);
    assert_eq!(returned.body["order"]["shipping_status"], json!("returned"));
    let moved = server
        .get(&format!("/v1/refunds/{}", waiting.str("id")), &key)
        .await;
    assert_ne!(moved.str("status"), "awaiting_return", "{}", moved.text);
    assert!(moved.text.contains("SF1234567890"), "{}", moved.text);
    let after = goods_refund(server, &key, &payment, "G-3").await;
    assert_ne!(after.str("status"), "awaiting_return", "{}", after.text);

    // A payment without an order gets one, with its number.
    let plain = id(&server.payment(&key, "wechat", 5_000).await);
    order(
        server,
        &key,
        &plain,
        json!({ "shipping_status": "shipped" }),
    )
    .await
    .assert_problem(400, "validation_error", "an order without its number");
    let given = order(
        server,
        &key,
        &plain,
        json!({ "shipping_status": "shipped", "merchant_order_no": "ORD-10" }),
    )
    .await;
    assert_eq!(given.status, 200, "{}", given.text);
    let waits = goods_refund(server, &key, &plain, "G-4").await;
    assert_eq!(waits.str("status"), "awaiting_return", "{}", waits.text);
    // Another merchant's payment is not found.
    let (_, other) = server.merchant("Elsewhere").await;
    order(
        server,
        &other,
        &plain,
        json!({ "shipping_status": "delivered" }),
    )
    .await
    .assert_problem(404, "payment_not_found", "another merchant's payment");
    audit_ok(server).await;
}

on_both_backends!(
    orders_move,
    real_clock(),
    orders_move_on_sqlite,
    orders_move_on_postgresql
);

// --- item 5: the consumer asks ---------------------------------------------------------------

async fn ask(server: &Server, body: Value) -> Resp {
    server
        .call(
            Method::POST,
            "/v1/public/refund-requests",
            None,
            Some(&body),
        )
        .await
}

/// A consumer with the slip's reference and the card's last four digits asks for a refund:
/// it waits in the merchant's review queue as `consumer_request`, the consumer follows it
/// through the public lookup, wrong digits lock the payment's requests.
async fn the_consumer_can_ask(server: &Server) {
    let (_, key) = server
        .merchant_with(
            json!({ "name": "Bakery", "settings": { "review": { "refund_ratio_percent": 100 } } }),
        )
        .await;
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "credit_card", "amount": 20_000, "currency": "CNY",
                    "payer": { "card_last4": "0403" }, "voucher": { "rrn": "RRN778899" } }),
        )
        .await;
    let request = json!({ "reference": "RRN778899", "last4": "0403", "amount": 5_000,
                          "reason": "customer_cancel", "description": "charged twice",
                          "contact": "13800000000" });
    let asked = ask(server, request.clone()).await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let refund_id = asked.str("refund_id");
    assert_eq!(asked.str("reference"), "RRN778899");
    assert_eq!(
        asked.body["refund"]["status"],
        json!("pending_review"),
        "{}",
        asked.text
    );

    // The merchant's review queue holds it, as a consumer's request.
    let queue = server.get("/v1/refunds?status=pending_review", &key).await;
    let held = queue.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(refund_id))
        .unwrap_or_else(|| panic!("not in the queue: {}", queue.text))
        .clone();
    assert_eq!(held["payment_id"], payment["id"]);
    assert_eq!(held["amount"], json!(5_000));
    assert_eq!(held["requested_by"]["role"], json!("consumer"), "{held}");
    assert!(
        held["review"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("consumer_request")),
        "{held}"
    );

    // Asking again while it waits returns the same request.
    let again = ask(server, request.clone()).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("refund_id"), refund_id);

    // The consumer follows it; the merchant approves; the consumer sees that.
    let lookup = format!("/v1/public/refunds/by-id/{refund_id}?reference=RRN778899");
    let seen = server.call(Method::GET, &lookup, None, None).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(seen.str("status"), "pending_review");
    let approved = server
        .post(
            &format!("/v1/refunds/{refund_id}/approve"),
            &key,
            &json!({ "note": "ok" }),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let seen = server.call(Method::GET, &lookup, None, None).await;
    assert_ne!(seen.str("status"), "pending_review", "{}", seen.text);

    // Bad input and unknown facts.
    ask(
        server,
        json!({ "reference": "RRN778899", "last4": "04a3", "reason": "other" }),
    )
    .await
    .assert_problem(400, "validation_error", "last4 not digits");
    ask(
        server,
        json!({ "reference": "RRN000000", "last4": "0403", "reason": "customer_cancel" }),
    )
    .await
    .assert_problem(404, "not_found", "an unknown reference");
    // Wrong digits: five lock the payment's requests for everyone, right digits included.
    for _ in 0..5 {
        ask(
            server,
            json!({ "reference": "RRN778899", "last4": "9999", "reason": "customer_cancel" }),
        )
        .await
        .assert_problem(404, "not_found", "wrong last four digits");
    }
    let locked = ask(server, request).await;
    locked.assert_problem(429, "rate_limited", "after five wrong guesses");
    audit_ok(server).await;
}

on_both_backends!(
    the_consumer_can_ask,
    real_clock(),
    the_consumer_can_ask_on_sqlite,
    the_consumer_can_ask_on_postgresql
);

// --- item 6: review and case handling times ----------------------------------------------------

/// Review time (requested → decided) and case handling time (opened → resolved), with
/// p50/p90, in total, per channel and per merchant; exact under the simulated clock.
async fn reports_measure_review_and_case_time(server: &Server) {
    let (merchant_id, key) = server
        .merchant_with(
            json!({ "name": "Florist", "settings": { "review": { "refund_ratio_percent": 100 } } }),
        )
        .await;
    let mut refunds = Vec::new();
    for n in 0..2 {
        let payment = id(&server.payment(&key, "wechat", 10_000).await);
        let r = refund_with(
            server,
            &key,
            json!({ "payment_id": payment, "amount": 1_000, "reason": "customer_cancel",
                    "merchant_refund_no": format!("RV-{n}"), "requested_by": { "role": "consumer" } }),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.str("status"), "pending_review", "{}", r.text);
        refunds.push(r.str("id"));
    }
    advance(server, 600).await;
    let approved = server
        .post(
            &format!("/v1/refunds/{}/approve", refunds[0]),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    advance(server, 1_200).await;
    let rejected = server
        .post(
            &format!("/v1/refunds/{}/reject", refunds[1]),
            &key,
            &json!({ "note": "not ours" }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    let case = server
        .post(
            "/v1/cases",
            &key,
            &json!({ "refund_id": refunds[1], "kind": "other", "description": "why rejected?" }),
        )
        .await;
    assert_eq!(case.status, 201, "{}", case.text);
    advance(server, 3_600).await;
    let resolved = server
        .post(
            &format!("/v1/cases/{}/resolve", case.str("id")),
            ADMIN_KEY,
            &json!({ "resolution": "explained" }),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);

    let report = server
        .get(
            &format!("/v1/reports/refunds?merchant_id={merchant_id}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let review = json!({ "count": 2, "p50_seconds": 600, "p90_seconds": 1_800 });
    let handling = json!({ "count": 1, "p50_seconds": 3_600, "p90_seconds": 3_600 });
    for figures in [
        &report.body["total"],
        &report.body["by_channel"][0],
        &report.body["by_merchant"][0],
    ] {
        assert_eq!(figures["review_time"], review, "{}", report.text);
        assert_eq!(figures["case_handling_time"], handling, "{}", report.text);
    }
    assert_eq!(report.body["by_channel"][0]["channel"], json!("wechat"));
    // The merchant sees its own.
    let own = server.get("/v1/reports/refunds", &key).await;
    assert_eq!(own.body["total"]["review_time"], review, "{}", own.text);
}

on_both_backends!(
    reports_measure_review_and_case_time,
    simulated(),
    reports_measure_review_and_case_time_on_sqlite,
    reports_measure_review_and_case_time_on_postgresql
);

/// The consumer page: `/status` links to the request form, which asks through the same use
/// case and answers with the new request's status page.
async fn the_consumer_asks_on_the_page(server: &Server) {
    use reqwest::header::{CONTENT_TYPE, COOKIE};
    let (_, key) = server.merchant("Corner Shop").await;
    server
        .payment_with(
            &key,
            json!({ "channel": "wechat", "amount": 8_800, "currency": "CNY",
                    "payer": { "wallet_account": "13912345678" }, "voucher": { "rrn": "RRN-PAGE-1" } }),
        )
        .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let status = http
        .get(server.url("/status?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert!(
        status
            .text()
            .await
            .unwrap()
            .contains("href=\"/status/request\"")
    );
    let form = http
        .get(server.url("/status/request?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let csrf = common::cookie(&form, "yl_csrf").expect("a CSRF cookie");
    let html = form.text().await.unwrap();
    assert!(html.contains("id=\"request-submit\""), "{html}");
    let answer = http
        .post(server.url("/status/request?lang=en"))
        .header(COOKIE, format!("yl_csrf={csrf}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&reference=RRN-PAGE-1&last4=5678&amount=12.34&reason=quality_issue&description=broken"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.unwrap();
    assert!(html.contains("id=\"refund-status\""), "{html}");
    let queue = server.get("/v1/refunds?status=pending_review", &key).await;
    let asked = queue.body["data"].as_array().unwrap();
    assert_eq!(asked.len(), 1, "{}", queue.text);
    assert_eq!(asked[0]["amount"], json!(1_234));
    assert_eq!(asked[0]["requested_by"]["role"], json!("consumer"));
    assert!(html.contains(asked[0]["id"].as_str().unwrap()), "{html}");
}

on_both_backends!(
    the_consumer_asks_on_the_page,
    real_clock(),
    the_consumer_asks_on_the_page_on_sqlite,
    the_consumer_asks_on_the_page_on_postgresql
);
