//! The contract suite for notifications, cases, the consumer's side, the overdue monitor
//! and reports: every test runs on SQLite and on PostgreSQL.
//!
//! Refunds are put into `processing` or `succeeded` without channels by writing their
//! status and dispatch columns directly with `h.execute("UPDATE refunds SET …")`: these
//! tests are about what happens around those states, not about reaching them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use yuanlu_engine::EngineError;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::cases::{
    AssignCase, CaseError, CaseEventFacts, CaseKind, CaseOpener, CaseOutcome, CaseQuery,
    CaseStatus, OpenCase, ResolveCase,
};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::notify::{
    self, OutboxQuery, OutboxSmsGateway, SetWebhook, SmsKind, enqueue_refund_event,
    enqueue_refund_sms,
};
use yuanlu_engine::public::{GiveFeedback, OpenPublicCase, RefundFacts};
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_engine::reports::ReportQuery;
use yuanlu_store::{PaymentRow, RefundRow};
use yuanlu_web::api::bodies;

use common::Harness;

fn merchant_id(who: &Principal) -> String {
    who.merchant_scope().unwrap().to_string()
}

fn engine_code<T: std::fmt::Debug>(result: Result<T, EngineError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

fn case_code<T: std::fmt::Debug>(result: Result<T, CaseError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

async fn refund_row(h: &Harness, id: &str) -> RefundRow {
    let mut pooled = h.engine.db.acquire().await.unwrap();
    pooled.conn().get_refund(None, id).await.unwrap().unwrap()
}

async fn payment_row(h: &Harness, id: &str) -> PaymentRow {
    let mut pooled = h.engine.db.acquire().await.unwrap();
    pooled.conn().get_payment(None, id).await.unwrap().unwrap()
}

async fn count(h: &Harness, table: &str, condition: &str) -> i64 {
    h.fetch_text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {condition}"
    ))
    .await
    .parse()
    .unwrap()
}

fn micros(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_micros()
}

/// A merchant supervisor of a merchant named `name`.
async fn shop(h: &Harness, name: &str) -> Principal {
    let input = serde_json::from_value::<bodies::CreateMerchant>(json!({ "name": name }))
        .unwrap()
        .into();
    let created = h
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

/// A payment and one refund of it.
async fn paid_and_refunded(
    h: &Harness,
    who: &Principal,
    payment: serde_json::Value,
    amount: i64,
    merchant_refund_no: &str,
) -> (String, String) {
    let payment = h.payment(who, payment).await;
    let refund = h
        .refund(
            who,
            json!({ "payment_id": payment.id, "amount": amount, "reason": "customer_cancel",
                    "merchant_refund_no": merchant_refund_no }),
        )
        .await;
    (payment.id, refund.id)
}

/// Webhook events of a refund with one event type.
async fn events_of(h: &Harness, refund_id: &str, event_type: &str) -> i64 {
    count(
        h,
        "webhook_outbox",
        &format!("refund_id = '{refund_id}' AND event_type = '{event_type}'"),
    )
    .await
}

// --- the outbox and its transaction ------------------------------------------------------

contract!(outbox_rows_are_written_in_the_callers_transaction, |h| {
    let shop = h.merchant().await;
    let mid = merchant_id(&shop);
    h.engine
        .set_webhook(
            &shop,
            &mid,
            SetWebhook {
                url: "http://127.0.0.1:9/hooks".into(),
            },
        )
        .await
        .unwrap();
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "phone": "13812340403" }),
        )
        .await;

    // A create refused after validation (inside its transaction) leaves no message.
    let refused = h
        .try_refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 20_000, "reason": "customer_cancel",
                    "merchant_refund_no": "too-much" }),
        )
        .await;
    assert_eq!(engine_code(refused), "amount_exceeds_refundable");
    assert_eq!(
        count(&h, "webhook_outbox", &format!("merchant_id = '{mid}'")).await,
        0
    );
    assert_eq!(
        count(&h, "sms_outbox", &format!("merchant_id = '{mid}'")).await,
        0
    );

    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel",
                    "merchant_refund_no": "ok-1" }),
        )
        .await;
    let row = refund_row(&h, &refund.id).await;
    let payment_row = payment_row(&h, &payment.id).await;
    let now_us = micros(h.clock_now());

    // Rolled back: nothing stays.
    {
        let mut tx = h.engine.db.begin().await.unwrap();
        let mut conn = tx.conn();
        enqueue_refund_event(&mut conn, &row, "refund.succeeded", now_us)
            .await
            .unwrap();
        enqueue_refund_sms(&mut conn, &row, &payment_row, SmsKind::Arrived, now_us)
            .await
            .unwrap();
        drop(tx);
    }
    assert_eq!(events_of(&h, &refund.id, "refund.succeeded").await, 0);
    assert_eq!(
        count(&h, "sms_outbox", &format!("refund_id = '{}'", refund.id)).await,
        0
    );

    // Committed: both stay.
    let mut tx = h.engine.db.begin().await.unwrap();
    let mut conn = tx.conn();
    enqueue_refund_event(&mut conn, &row, "refund.succeeded", now_us)
        .await
        .unwrap();
    enqueue_refund_sms(&mut conn, &row, &payment_row, SmsKind::Arrived, now_us)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(events_of(&h, &refund.id, "refund.succeeded").await, 1);
    assert_eq!(
        count(&h, "sms_outbox", &format!("refund_id = '{}'", refund.id)).await,
        1
    );

    // A merchant without a webhook gets no event.
    let quiet = shop_with_refund_row(&h).await;
    let mut tx = h.engine.db.begin().await.unwrap();
    enqueue_refund_event(&mut tx.conn(), &quiet, "refund.succeeded", now_us)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        count(
            &h,
            "webhook_outbox",
            &format!("merchant_id = '{}'", quiet.merchant_id)
        )
        .await,
        0
    );
});

async fn shop_with_refund_row(h: &Harness) -> RefundRow {
    let quiet = shop(h, "Quiet shop").await;
    let (_, refund_id) = paid_and_refunded(
        h,
        &quiet,
        json!({ "channel": "alipay", "amount": 5_000 }),
        500,
        "q-1",
    )
    .await;
    refund_row(h, &refund_id).await
}

contract!(
    setting_a_webhook_needs_the_supervisor_and_shows_the_secret_once,
    |h| {
        let shop = h.merchant().await;
        let other = h.merchant().await;
        let mid = merchant_id(&shop);
        let url = SetWebhook {
            url: "https://shop.example/hooks".into(),
        };
        let created = h
            .engine
            .set_webhook(&shop, &mid, url.clone())
            .await
            .unwrap();
        assert!(created.secret.starts_with("whsec_"));
        assert_eq!(created.secret.len(), "whsec_".len() + 64);
        assert!(created.events.contains(&"refund.succeeded"));
        let again = h
            .engine
            .set_webhook(&Principal::Admin, &mid, url.clone())
            .await
            .unwrap();
        assert_ne!(
            again.secret, created.secret,
            "setting again rotates the secret"
        );
        let shown = h.engine.get_webhook(&shop, &mid).await.unwrap();
        assert_eq!(shown.url, "https://shop.example/hooks");
        assert!(!serde_json::to_string(&shown).unwrap().contains("whsec_"));

        let staff = Principal::Merchant {
            merchant_id: mid.clone(),
            key_id: "key_staff".into(),
            role: MerchantRole::Staff,
        };
        assert_eq!(
            engine_code(h.engine.set_webhook(&staff, &mid, url.clone()).await),
            "forbidden"
        );
        assert_eq!(
            engine_code(h.engine.set_webhook(&other, &mid, url.clone()).await),
            "not_found"
        );
        let bad = SetWebhook {
            url: "ftp://shop.example".into(),
        };
        assert_eq!(
            engine_code(h.engine.set_webhook(&shop, &mid, bad).await),
            "validation_error"
        );
    }
);

// --- delivery ------------------------------------------------------------------------------

#[derive(Default)]
struct Received {
    secret: String,
    /// Deliveries per event id.
    attempts: HashMap<String, u32>,
    bodies: Vec<serde_json::Value>,
    bad_signatures: u32,
}

type Receiver = Arc<Mutex<Received>>;

fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    // A receiver checks freshness against its own real clock, whatever clock yuanlu runs on
    // (the harness's is simulated, days from real time).
    let wall_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let Ok(signed_at) = t.parse::<u64>() else {
        return false;
    };
    if signed_at.abs_diff(wall_now) > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

/// Answers 500 to the first delivery of each event and 200 to the next ones.
async fn receive(State(state): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut state = state.lock().unwrap();
    let signature = headers
        .get("yuanlu-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify(&state.secret, signature, &body) {
        state.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = json["id"].as_str().unwrap().to_string();
    assert_eq!(
        headers.get("yuanlu-event-id").and_then(|v| v.to_str().ok()),
        Some(id.as_str())
    );
    state.bodies.push(json);
    let seen = state.attempts.entry(id).or_default();
    *seen += 1;
    if *seen == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_receiver(state: Receiver) -> String {
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/hooks")
}

async fn event_status(h: &Harness, event_id: &str) -> (String, i64) {
    let status = h
        .fetch_text(&format!(
            "SELECT status FROM webhook_outbox WHERE id = '{event_id}'"
        ))
        .await;
    let attempts = h
        .fetch_text(&format!(
            "SELECT CAST(attempts AS TEXT) FROM webhook_outbox WHERE id = '{event_id}'"
        ))
        .await
        .parse()
        .unwrap();
    (status, attempts)
}

/// Writes one `refund.succeeded` event for the refund and returns its id.
async fn enqueue_succeeded(h: &Harness, refund_id: &str) -> String {
    let row = refund_row(h, refund_id).await;
    let mut tx = h.engine.db.begin().await.unwrap();
    enqueue_refund_event(
        &mut tx.conn(),
        &row,
        "refund.succeeded",
        micros(h.clock_now()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    h.fetch_text(&format!(
        "SELECT id FROM webhook_outbox WHERE refund_id = '{refund_id}' AND event_type = 'refund.succeeded'"
    ))
    .await
}

contract!(
    webhooks_are_signed_and_retried_until_the_endpoint_answers_2xx,
    |h| {
        let received: Receiver = Arc::default();
        let url = start_receiver(received.clone()).await;
        let shop = h.merchant().await;
        let mid = merchant_id(&shop);
        let created = h
            .engine
            .set_webhook(&shop, &mid, SetWebhook { url })
            .await
            .unwrap();
        received.lock().unwrap().secret = created.secret;
        let (payment_id, refund_id) = paid_and_refunded(
            &h,
            &shop,
            json!({ "channel": "wechat", "amount": 10_000 }),
            2_500,
            "wh-1",
        )
        .await;
        let event_id = enqueue_succeeded(&h, &refund_id).await;

        // First pass: the endpoint answers 500; the event waits for a retry.
        assert!(h.engine.deliver_webhooks_once(50).await.unwrap() >= 1);
        assert_eq!(event_status(&h, &event_id).await, ("pending".into(), 1));
        let page = h
            .engine
            .list_webhook_deliveries(
                &shop,
                OutboxQuery {
                    refund_id: Some(refund_id.clone()),
                    status: Some("pending".into()),
                    limit: 20,
                    starting_after: None,
                },
            )
            .await
            .unwrap();
        let pending = page.data.iter().find(|d| d.id == event_id).unwrap();
        assert!(pending.last_error.as_deref().unwrap().contains("500"));
        let next = pending.next_attempt_at.unwrap();
        assert!(next > h.clock_now() && next <= h.clock_now() + Duration::seconds(45));

        // Not due yet: nothing is sent.
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("pending".into(), 1));

        // Due: the second delivery succeeds.
        h.clock.advance(Duration::minutes(2));
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("delivered".into(), 2));
        h.clock.advance(Duration::hours(1));
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("delivered".into(), 2));

        let received = received.lock().unwrap();
        assert_eq!(received.bad_signatures, 0);
        assert_eq!(received.attempts.get(&event_id), Some(&2));
        let body = received
            .bodies
            .iter()
            .find(|b| b["id"] == event_id.as_str())
            .unwrap();
        assert_eq!(body["type"], "refund.succeeded");
        assert_eq!(body["created"], h.clock_now().timestamp() - 3_600 - 120);
        assert_eq!(body["data"]["refund"]["id"], refund_id.as_str());
        assert_eq!(body["data"]["refund"]["payment_id"], payment_id.as_str());
        assert_eq!(body["data"]["refund"]["amount"], 2_500);
        assert_eq!(body["data"]["refund"]["merchant_refund_no"], "wh-1");
        assert!(body["data"]["refund"].get("fee_refunded").is_some());
        assert!(body["data"]["refund"].get("expected_arrival_by").is_some());
    }
);

contract!(
    a_webhook_that_never_answers_2xx_is_given_up_after_24_hours,
    |h| {
        // A port with nothing listening: every attempt is refused at once.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let shop = h.merchant().await;
        let mid = merchant_id(&shop);
        h.engine
            .set_webhook(
                &shop,
                &mid,
                SetWebhook {
                    url: format!("http://{closed}/hooks"),
                },
            )
            .await
            .unwrap();
        let (_, refund_id) = paid_and_refunded(
            &h,
            &shop,
            json!({ "channel": "alipay", "amount": 10_000 }),
            1_000,
            "gu-1",
        )
        .await;
        let event_id = enqueue_succeeded(&h, &refund_id).await;

        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("pending".into(), 1));
        h.clock.advance(Duration::hours(23));
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("pending".into(), 2));
        h.clock.advance(Duration::hours(2));
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("given_up".into(), 3));
        // Given up for good.
        h.clock.advance(Duration::hours(2));
        h.engine.deliver_webhooks_once(50).await.unwrap();
        assert_eq!(event_status(&h, &event_id).await, ("given_up".into(), 3));
        let last_error = h
            .fetch_text(&format!(
                "SELECT last_error FROM webhook_outbox WHERE id = '{event_id}'"
            ))
            .await;
        // A generic word: no address or OS message reaches the merchant.
        assert_eq!(last_error, "unreachable");
    }
);

// --- SMS -----------------------------------------------------------------------------------

contract!(
    sms_are_recorded_once_per_kind_and_shown_with_masked_phones,
    |h| {
        let shop = shop(&h, "Lakala Noodles").await;
        let other = h.merchant().await;
        let (payment_id, refund_id) = paid_and_refunded(
            &h,
            &shop,
            json!({ "channel": "debit_card", "amount": 10_000, "phone": "13812340403",
                "payer": { "card_last4": "0403", "bank": "招商银行" } }),
            2_345,
            "sms-1",
        )
        .await;
        // Into processing with an expected arrival (no channel in this test).
        let expected = h.clock_now() + Duration::days(3);
        h.execute(&format!(
        "UPDATE refunds SET status = 'processing', send_state = 'accepted', \
         expected_arrival_by_us = {}, dispatched_at_us = {}, next_attempt_at_us = NULL WHERE id = '{refund_id}'",
        micros(expected),
        micros(h.clock_now())
    ))
    .await;
        let payment = payment_row(&h, &payment_id).await;
        let now_us = micros(h.clock_now());
        for kind in [SmsKind::Accepted, SmsKind::Accepted, SmsKind::Arrived] {
            let row = refund_row(&h, &refund_id).await;
            let mut tx = h.engine.db.begin().await.unwrap();
            enqueue_refund_sms(&mut tx.conn(), &row, &payment, kind, now_us)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let query = || OutboxQuery {
            refund_id: Some(refund_id.clone()),
            status: None,
            limit: 20,
            starting_after: None,
        };
        let page = h.engine.list_sms(&shop, query()).await.unwrap();
        assert_eq!(page.data.len(), 2, "one message per kind");
        assert!(!page.has_more);
        let accepted = page
            .data
            .iter()
            .find(|m| m.kind == SmsKind::Accepted)
            .unwrap();
        assert_eq!(accepted.phone, "138****0403");
        assert_eq!(accepted.status, "pending");
        assert_eq!(
            accepted.text,
            "【原路】您在Lakala Noodles的退款23.45元已受理，预计2026年11月23日前到账。"
        );
        let arrived = page
            .data
            .iter()
            .find(|m| m.kind == SmsKind::Arrived)
            .unwrap();
        assert_eq!(
            arrived.text,
            "【原路】您在Lakala Noodles的退款23.45元已退回至原支付招商银行借记卡（尾号0403），预计2026年11月23日前入账。"
        );
        let json = serde_json::to_string(&page).unwrap();
        assert!(!json.contains("13812340403"), "the full phone never leaves");

        // Another merchant sees none of them; the admin sees them.
        assert!(
            h.engine
                .list_sms(&other, query())
                .await
                .unwrap()
                .data
                .is_empty()
        );
        assert_eq!(
            h.engine
                .list_sms(&Principal::Admin, query())
                .await
                .unwrap()
                .data
                .len(),
            2
        );

        // A payment without a phone sends nothing.
        let (quiet_payment, quiet_refund) = paid_and_refunded(
            &h,
            &shop,
            json!({ "channel": "wechat", "amount": 10_000 }),
            100,
            "sms-2",
        )
        .await;
        let row = refund_row(&h, &quiet_refund).await;
        let payment = payment_row(&h, &quiet_payment).await;
        let mut tx = h.engine.db.begin().await.unwrap();
        enqueue_refund_sms(&mut tx.conn(), &row, &payment, SmsKind::Arrived, now_us)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            count(&h, "sms_outbox", &format!("refund_id = '{quiet_refund}'")).await,
            0
        );

        // The relay hands them to the gateway (the shipped one keeps them in the outbox).
        assert_eq!(
            h.engine
                .relay_sms_once(&OutboxSmsGateway, 50)
                .await
                .unwrap(),
            2
        );
        let page = h.engine.list_sms(&shop, query()).await.unwrap();
        assert!(
            page.data
                .iter()
                .all(|m| m.status == "sent" && m.sent_at.is_some())
        );
        assert_eq!(
            h.engine
                .relay_sms_once(&OutboxSmsGateway, 50)
                .await
                .unwrap(),
            0
        );
    }
);

// --- cases ---------------------------------------------------------------------------------

fn open(refund_id: &str, kind: CaseKind) -> OpenCase {
    OpenCase {
        refund_id: refund_id.to_string(),
        kind,
        description: "the money is not on my card".into(),
        contact: Some("13812340403".into()),
    }
}

contract!(cases_open_once_per_kind_resolve_and_keep_a_timeline, |h| {
    let shop = h.merchant().await;
    let other = h.merchant().await;
    let (_, refund_id) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "wechat", "amount": 10_000 }),
        1_000,
        "case-1",
    )
    .await;

    let first = match h
        .engine
        .open_case(&shop, open(&refund_id, CaseKind::NotArrived))
        .await
        .unwrap()
    {
        CaseOutcome::Created(case) => *case,
        other => panic!("expected a new case, got {other:?}"),
    };
    assert!(first.id.starts_with("case_"));
    assert_eq!(first.status, CaseStatus::Open);
    assert_eq!(first.opened_by, CaseOpener::Merchant);
    assert_eq!(first.timeline.len(), 1);
    assert_eq!(first.timeline[0].event, "case.opened");

    // A second open of the same refund and kind answers with the open case.
    match h
        .engine
        .open_case(&shop, open(&refund_id, CaseKind::NotArrived))
        .await
        .unwrap()
    {
        CaseOutcome::Existing(case) => assert_eq!(case.id, first.id),
        other => panic!("expected the existing case, got {other:?}"),
    }
    // Another kind is another case; the admin may open on any refund.
    let wrong_amount = h
        .engine
        .open_case(&Principal::Admin, open(&refund_id, CaseKind::WrongAmount))
        .await
        .unwrap();
    assert!(
        matches!(&wrong_amount, CaseOutcome::Created(c) if c.opened_by == CaseOpener::Acquirer)
    );

    // Another merchant can neither open on, nor see, nor resolve this merchant's cases.
    assert_eq!(
        engine_code(
            h.engine
                .open_case(&other, open(&refund_id, CaseKind::Other))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        engine_code(h.engine.get_case(&other, &first.id).await),
        "not_found"
    );
    let resolve = |text: &str| ResolveCase {
        resolution: text.into(),
    };
    assert_eq!(
        case_code(
            h.engine
                .resolve_case(&other, &first.id, resolve("nope"))
                .await
        ),
        "not_found"
    );
    let others = h
        .engine
        .list_cases(
            &other,
            CaseQuery {
                limit: 20,
                ..CaseQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(others.data.is_empty());

    // Assigning is for the admin.
    let assign = AssignCase {
        owner: "ops: Wang".into(),
    };
    assert_eq!(
        case_code(h.engine.assign_case(&shop, &first.id, assign.clone()).await),
        "forbidden"
    );
    let assigned = h
        .engine
        .assign_case(&Principal::Admin, &first.id, assign.clone())
        .await
        .unwrap();
    assert_eq!(assigned.owner.as_deref(), Some("ops: Wang"));

    // Resolve; a second resolve is refused; a resolution is required.
    assert_eq!(
        case_code(h.engine.resolve_case(&shop, &first.id, resolve(" ")).await),
        "validation_error"
    );
    h.clock.advance(Duration::hours(2));
    let resolved = h
        .engine
        .resolve_case(&shop, &first.id, resolve("the bank confirmed the credit"))
        .await
        .unwrap();
    assert_eq!(resolved.status, CaseStatus::Resolved);
    assert_eq!(
        resolved.resolution.as_deref(),
        Some("the bank confirmed the credit")
    );
    assert_eq!(resolved.resolved_at, Some(h.clock_now()));
    assert_eq!(
        case_code(
            h.engine
                .resolve_case(&Principal::Admin, &first.id, resolve("again"))
                .await
        ),
        "invalid_transition"
    );
    assert_eq!(
        case_code(
            h.engine
                .assign_case(&Principal::Admin, &first.id, assign)
                .await
        ),
        "invalid_transition"
    );
    let events: Vec<String> = resolved.timeline.iter().map(|e| e.event.clone()).collect();
    assert_eq!(events, ["case.opened", "case.assigned", "case.resolved"]);
    assert_eq!(
        resolved.timeline[2].facts,
        CaseEventFacts::Resolved {
            resolution: "the bank confirmed the credit".to_string()
        }
    );
    assert!(resolved.timeline[1].actor.starts_with("acquirer"));

    // Every case action is on the merchant's audit chain, which still verifies.
    assert_eq!(
        count(
            &h,
            "audit_log",
            &format!(
                "subject_id = '{}' AND chain = '{}'",
                first.id,
                merchant_id(&shop)
            )
        )
        .await,
        3
    );
    assert!(h.engine.verify_audit().await.unwrap().ok);

    // Once resolved, the same kind may be opened again.
    let reopened = h
        .engine
        .open_case(&shop, open(&refund_id, CaseKind::NotArrived))
        .await
        .unwrap();
    assert!(matches!(&reopened, CaseOutcome::Created(c) if c.id != first.id));

    // Lists: status filter and pagination.
    let list = |status, starting_after, limit| CaseQuery {
        status,
        refund_id: None,
        limit,
        starting_after,
    };
    let open_cases = h
        .engine
        .list_cases(&shop, list(Some(CaseStatus::Open), None, 20))
        .await
        .unwrap();
    assert_eq!(open_cases.data.len(), 2);
    let page1 = h
        .engine
        .list_cases(&shop, list(None, None, 2))
        .await
        .unwrap();
    assert_eq!(page1.data.len(), 2);
    assert!(page1.has_more);
    assert!(page1.data[0].id > page1.data[1].id, "newest first");
    let page2 = h
        .engine
        .list_cases(&shop, list(None, Some(page1.data[1].id.clone()), 2))
        .await
        .unwrap();
    assert_eq!(page2.data.len(), 1);
    assert!(!page2.has_more);
    assert_eq!(page2.data[0].id, first.id);

    // Bad input is a validation error.
    let mut empty = open(&refund_id, CaseKind::Other);
    empty.description = String::new();
    assert_eq!(
        engine_code(h.engine.open_case(&shop, empty).await),
        "validation_error"
    );
});

contract!(concurrent_opens_of_one_refund_and_kind_make_one_case, |h| {
    let shop = h.merchant().await;
    let (_, refund_id) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "wechat", "amount": 10_000 }),
        1_000,
        "race-1",
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (engine, shop, input) = (
            h.engine.clone(),
            shop.clone(),
            open(&refund_id, CaseKind::NotArrived),
        );
        tasks.push(tokio::spawn(
            async move { engine.open_case(&shop, input).await },
        ));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().case().id.clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(
        count(&h, "cases", &format!("refund_id = '{refund_id}'")).await,
        1
    );
});

// --- the consumer's side -------------------------------------------------------------------

contract!(public_lookup_by_refund_number_and_phone, |h| {
    let noodles = shop(&h, "Noodle House").await;
    let tea = shop(&h, "Tea Corner").await;
    let phone = json!("13812340403");
    let (_, single) = paid_and_refunded(
        &h,
        &noodles,
        json!({ "channel": "credit_card", "amount": 10_000, "phone": phone,
                "payer": { "card_last4": "0403" } }),
        1_000,
        "R-200",
    )
    .await;
    // The same refund number and phone at two merchants.
    for who in [&noodles, &tea] {
        paid_and_refunded(
            &h,
            who,
            json!({ "channel": "wechat", "amount": 10_000, "phone": phone }),
            1_000,
            "R-100",
        )
        .await;
    }
    let by_number = |no: &str, last4: &str| RefundFacts::ByNumber {
        merchant_refund_no: no.into(),
        phone_last4: last4.into(),
    };

    let view = h
        .engine
        .public_refund(&by_number("R-200", "0403"))
        .await
        .unwrap();
    assert_eq!(view.id, single);
    assert_eq!(view.merchant_name, "Noodle House");
    assert_eq!(view.amount, 1_000);
    assert_eq!(view.currency, "CNY");
    assert_eq!(view.destination.account.as_deref(), Some("**** 0403"));
    assert!(!view.timeline.is_empty());
    assert!(view.next_step.is_some());
    let json = serde_json::to_value(&view).unwrap();
    let text = json.to_string();
    for hidden in ["actor", "merchant_id", "payment_id", "pay_", "mch_", "key_"] {
        assert!(!text.contains(hidden), "{hidden} leaked: {text}");
    }

    assert_eq!(
        case_code(h.engine.public_refund(&by_number("R-200", "9999")).await),
        "not_found"
    );
    assert_eq!(
        case_code(h.engine.public_refund(&by_number("R-404", "0403")).await),
        "not_found"
    );
    assert_eq!(
        case_code(h.engine.public_refund(&by_number("R-100", "0403")).await),
        "conflict"
    );
    assert_eq!(
        case_code(h.engine.public_refund(&by_number("R-200", "04")).await),
        "validation_error"
    );
    assert_eq!(
        case_code(h.engine.public_refund(&by_number("R 200", "0403")).await),
        "validation_error"
    );
});

contract!(public_lookup_by_refund_id_and_payment_reference, |h| {
    let shop = h.merchant().await;
    let (_, with_rrn) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "debit_card", "amount": 10_000, "voucher": { "rrn": "612345678901" } }),
        1_000,
        "ref-1",
    )
    .await;
    let (payment_id, without_rrn) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "alipay", "amount": 10_000 }),
        1_000,
        "ref-2",
    )
    .await;
    let by_id = |id: &str, reference: &str| RefundFacts::ById {
        refund_id: id.into(),
        reference: reference.into(),
    };
    let view = h
        .engine
        .public_refund(&by_id(&with_rrn, "612345678901"))
        .await
        .unwrap();
    assert_eq!(view.id, with_rrn);
    assert_eq!(
        h.engine
            .public_refund(&by_id(&without_rrn, &payment_id))
            .await
            .unwrap()
            .id,
        without_rrn
    );
    for (id, reference) in [
        (with_rrn.as_str(), "612345678900"),
        (with_rrn.as_str(), ""),
        (without_rrn.as_str(), "612345678901"),
        ("rf_nope", "612345678901"),
    ] {
        assert_eq!(
            case_code(h.engine.public_refund(&by_id(id, reference)).await),
            "not_found",
            "{id} / {reference}"
        );
    }
});

contract!(consumers_rate_an_ended_refund_once, |h| {
    let shop = h.merchant().await;
    let (payment_id, refund_id) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "wechat", "amount": 10_000 }),
        1_000,
        "fb-1",
    )
    .await;
    let feedback = |rating: i64, reference: &str| GiveFeedback {
        rating,
        comment: Some("quick and clear".into()),
        reference: reference.into(),
    };
    // Still under way.
    assert_eq!(
        case_code(
            h.engine
                .public_feedback(&refund_id, feedback(5, &payment_id))
                .await
        ),
        "invalid_transition"
    );
    // Ends (canceled before dispatch).
    h.engine
        .cancel_refund(&shop, &refund_id, ReviewNote::default())
        .await
        .unwrap();
    assert_eq!(
        case_code(
            h.engine
                .public_feedback(&refund_id, feedback(5, "wrong"))
                .await
        ),
        "not_found"
    );
    for rating in [0, 6] {
        assert_eq!(
            case_code(
                h.engine
                    .public_feedback(&refund_id, feedback(rating, &payment_id))
                    .await
            ),
            "validation_error"
        );
    }
    let long = GiveFeedback {
        comment: Some("好".repeat(501)),
        ..feedback(4, &payment_id)
    };
    assert_eq!(
        case_code(h.engine.public_feedback(&refund_id, long).await),
        "validation_error"
    );
    let given = h
        .engine
        .public_feedback(&refund_id, feedback(4, &payment_id))
        .await
        .unwrap();
    assert_eq!(given.rating, 4);
    assert_eq!(given.comment.as_deref(), Some("quick and clear"));
    assert_eq!(
        case_code(
            h.engine
                .public_feedback(&refund_id, feedback(5, &payment_id))
                .await
        ),
        "conflict"
    );
    // A succeeded refund can be rated too.
    let (payment_id, succeeded) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "wechat", "amount": 10_000 }),
        1_000,
        "fb-2",
    )
    .await;
    h.execute(&format!(
        "UPDATE refunds SET status = 'succeeded', next_attempt_at_us = NULL WHERE id = '{succeeded}'"
    ))
    .await;
    h.engine
        .public_feedback(&succeeded, feedback(5, &payment_id))
        .await
        .unwrap();
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

contract!(consumers_open_cases_with_the_lookup_facts, |h| {
    let shop = h.merchant().await;
    let (payment_id, refund_id) = paid_and_refunded(
        &h,
        &shop,
        json!({ "channel": "wechat", "amount": 10_000, "phone": "13812340403" }),
        1_000,
        "pc-1",
    )
    .await;
    let input =
        |refund: Option<&str>, reference: Option<&str>, no: Option<&str>, last4: Option<&str>| {
            OpenPublicCase {
                refund_id: refund.map(str::to_string),
                reference: reference.map(str::to_string),
                merchant_refund_no: no.map(str::to_string),
                phone_last4: last4.map(str::to_string),
                kind: CaseKind::NotArrived,
                description: "three days and nothing".into(),
                contact: Some("13812340403".into()),
            }
        };
    let opened = h
        .engine
        .public_open_case(input(Some(&refund_id), Some(&payment_id), None, None))
        .await
        .unwrap();
    assert!(opened.created);
    assert_eq!(opened.case.refund_id, refund_id);
    let again = h
        .engine
        .public_open_case(input(None, None, Some("pc-1"), Some("0403")))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.case.id, opened.case.id);
    assert_eq!(
        case_code(
            h.engine
                .public_open_case(input(Some(&refund_id), Some("wrong"), None, None))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        case_code(
            h.engine
                .public_open_case(input(Some(&refund_id), None, None, Some("0403")))
                .await
        ),
        "validation_error"
    );
    let case = h.engine.get_case(&shop, &opened.case.id).await.unwrap();
    assert_eq!(case.opened_by, CaseOpener::Consumer);
    assert_eq!(case.contact.as_deref(), Some("13812340403"));
    assert_eq!(case.timeline[0].actor, "consumer");
});

// --- the overdue monitor -------------------------------------------------------------------

contract!(the_overdue_monitor_opens_one_case_per_refund, |h| {
    let shop = h.merchant().await;
    let now = h.clock_now();
    let mut refunds = Vec::new();
    for no in ["od-1", "od-2", "od-3", "od-4", "od-5"] {
        let (_, refund_id) = paid_and_refunded(
            &h,
            &shop,
            json!({ "channel": "wechat", "amount": 10_000 }),
            1_000,
            no,
        )
        .await;
        refunds.push(refund_id);
    }
    let set = |id: &str, columns: String| format!("UPDATE refunds SET {columns} WHERE id = '{id}'");
    // 1: accepted, past its expected arrival, nothing scheduled.
    h.execute(&set(
        &refunds[0],
        format!(
            "status = 'processing', send_state = 'accepted', expected_arrival_by_us = {}, \
             dispatched_at_us = {}, next_attempt_at_us = NULL",
            micros(now - Duration::hours(1)),
            micros(now - Duration::days(3))
        ),
    ))
    .await;
    // 2: sent 25 hours ago, never accepted, a query already scheduled later.
    let scheduled = micros(now + Duration::minutes(10));
    h.execute(&set(
        &refunds[1],
        format!(
            "status = 'processing', send_state = 'sent', dispatched_at_us = {}, next_attempt_at_us = {scheduled}",
            micros(now - Duration::hours(25))
        ),
    ))
    .await;
    // 3: under way and on time.
    h.execute(&set(
        &refunds[2],
        format!(
            "status = 'processing', send_state = 'accepted', expected_arrival_by_us = {}, \
             dispatched_at_us = {}, next_attempt_at_us = NULL",
            micros(now + Duration::days(1)),
            micros(now - Duration::hours(1))
        ),
    ))
    .await;
    // 4: abnormal past its expected arrival.
    h.execute(&set(
        &refunds[3],
        format!(
            "status = 'abnormal', send_state = 'accepted', expected_arrival_by_us = {}, \
             dispatched_at_us = {}, next_attempt_at_us = NULL",
            micros(now - Duration::hours(5)),
            micros(now - Duration::days(2))
        ),
    ))
    .await;
    // 5: overdue, but the merchant already opened a not_arrived case.
    h.execute(&set(
        &refunds[4],
        format!(
            "status = 'processing', send_state = 'accepted', expected_arrival_by_us = {}, \
             dispatched_at_us = {}, next_attempt_at_us = NULL",
            micros(now - Duration::hours(1)),
            micros(now - Duration::days(3))
        ),
    ))
    .await;
    h.engine
        .open_case(&shop, open(&refunds[4], CaseKind::NotArrived))
        .await
        .unwrap();

    assert_eq!(h.engine.monitor_overdue_once().await.unwrap(), 3);
    assert_eq!(h.engine.monitor_overdue_once().await.unwrap(), 0);
    let cases_of =
        |id: &str| format!("refund_id = '{id}' AND kind = 'not_arrived' AND opened_by = 'system'");
    for (i, expected) in [1, 1, 0, 1, 0].iter().enumerate() {
        assert_eq!(
            count(&h, "cases", &cases_of(&refunds[i])).await,
            *expected,
            "refund {i}"
        );
    }
    // A query is scheduled now where nothing was; an existing schedule is kept; an
    // abnormal refund waits for an operator, not for the channel.
    let next = |id: &str| {
        format!("SELECT CAST(next_attempt_at_us AS TEXT) FROM refunds WHERE id = '{id}'")
    };
    assert_eq!(
        h.fetch_text(&next(&refunds[0])).await,
        micros(now).to_string()
    );
    assert_eq!(
        h.fetch_text(&next(&refunds[1])).await,
        scheduled.to_string()
    );
    assert_eq!(
        count(
            &h,
            "refunds",
            &format!("id = '{}' AND next_attempt_at_us IS NULL", refunds[3])
        )
        .await,
        1
    );

    let case = h
        .engine
        .list_cases(
            &shop,
            CaseQuery {
                refund_id: Some(refunds[0].clone()),
                limit: 20,
                ..CaseQuery::default()
            },
        )
        .await
        .unwrap()
        .data
        .remove(0);
    assert_eq!(case.opened_by, CaseOpener::System);
    assert!(
        case.description.contains("expected by"),
        "{}",
        case.description
    );
    assert_eq!(case.timeline[0].actor, "system:overdue");

    // Resolved by an operator: the monitor does not raise it again.
    h.engine
        .resolve_case(
            &Principal::Admin,
            &case.id,
            ResolveCase {
                resolution: "the channel confirmed; the bank is slow".into(),
            },
        )
        .await
        .unwrap();
    h.clock.advance(Duration::hours(1));
    assert_eq!(h.engine.monitor_overdue_once().await.unwrap(), 0);
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

// --- reports -------------------------------------------------------------------------------

contract!(reports_give_exact_figures_on_a_known_dataset, |h| {
    let noodles = shop(&h, "Noodle House").await;
    let tea = shop(&h, "Tea Corner").await;
    let start = h.clock_now();
    let payment = h
        .payment(&noodles, json!({ "channel": "wechat", "amount": 30_000 }))
        .await;
    let mut wechat = Vec::new();
    for (amount, no) in [
        (1_000, "rp-1"),
        (2_000, "rp-2"),
        (3_000, "rp-3"),
        (4_000, "rp-4"),
    ] {
        let refund = h
            .refund(
                &noodles,
                json!({ "payment_id": payment.id, "amount": amount, "reason": "customer_cancel",
                        "merchant_refund_no": no }),
            )
            .await;
        wechat.push(refund.id);
    }
    // Succeeded after 60 s and after an hour; one canceled; one still queued.
    for (id, seconds) in [(&wechat[0], 60_i64), (&wechat[1], 3_600)] {
        h.execute(&format!(
            "UPDATE refunds SET status = 'succeeded', send_state = 'accepted', next_attempt_at_us = NULL, \
             succeeded_at_us = created_at_us + {} WHERE id = '{id}'",
            seconds * 1_000_000
        ))
        .await;
    }
    h.engine
        .cancel_refund(&noodles, &wechat[2], ReviewNote::default())
        .await
        .unwrap();
    // Tea Corner: a partial credit-card refund, sent 25 hours before and never accepted.
    let (card_payment, card_refund) = paid_and_refunded(
        &h,
        &tea,
        json!({ "channel": "credit_card", "amount": 10_000 }),
        4_000,
        "rp-5",
    )
    .await;
    h.execute(&format!(
        "UPDATE refunds SET status = 'processing', send_state = 'sent', next_attempt_at_us = NULL, \
         dispatched_at_us = {} WHERE id = '{card_refund}'",
        micros(start - Duration::hours(25))
    ))
    .await;
    // Cases: one open on the card refund, one resolved on a WeChat refund.
    h.engine
        .open_case(&tea, open(&card_refund, CaseKind::NotArrived))
        .await
        .unwrap();
    let resolved = h
        .engine
        .open_case(&noodles, open(&wechat[0], CaseKind::WrongAmount))
        .await
        .unwrap();
    h.engine
        .resolve_case(
            &noodles,
            &resolved.case().id,
            ResolveCase {
                resolution: "explained the partial refund".into(),
            },
        )
        .await
        .unwrap();
    // Ratings: 5 and 4 on WeChat refunds.
    for (id, rating) in [(&wechat[0], 5), (&wechat[2], 4)] {
        h.engine
            .public_feedback(
                id,
                GiveFeedback {
                    rating,
                    comment: None,
                    reference: payment.id.clone(),
                },
            )
            .await
            .unwrap();
    }
    let _ = card_payment;

    let range = || ReportQuery {
        from: Some(start - Duration::hours(1)),
        to: Some(start + Duration::hours(1)),
        merchant_id: None,
    };
    let report = h
        .engine
        .refund_report(&Principal::Admin, range())
        .await
        .unwrap();
    let total = &report.total;
    assert_eq!(total.refunds.count, 5);
    assert_eq!(total.refunds.amount, 14_000);
    let status = |figures: &yuanlu_engine::reports::ReportFigures, s: &str| {
        let f = figures
            .refunds
            .by_status
            .iter()
            .find(|f| f.status.id() == s)
            .unwrap();
        (f.count, f.amount)
    };
    assert_eq!(status(total, "succeeded"), (2, 3_000));
    assert_eq!(status(total, "canceled"), (1, 3_000));
    assert_eq!(status(total, "queued"), (1, 4_000));
    assert_eq!(status(total, "processing"), (1, 4_000));
    assert_eq!(status(total, "failed"), (0, 0));
    assert_eq!(total.refunds.by_status.len(), 9);
    assert_eq!(total.time_to_arrival.count, 2);
    assert_eq!(total.time_to_arrival.p50_seconds, Some(60));
    assert_eq!(total.time_to_arrival.p90_seconds, Some(3_600));
    assert_eq!(total.time_to_arrival.p99_seconds, Some(3_600));
    assert_eq!(total.overdue, 1);
    assert_eq!((total.cases.open, total.cases.resolved), (1, 1));
    assert_eq!(total.satisfaction.count, 2);
    assert_eq!(total.satisfaction.average_rating_x100, Some(450));
    assert_eq!(total.satisfaction.distribution, vec![0, 0, 0, 1, 1]);
    assert!(!report.time_to_arrival_truncated);

    assert_eq!(report.by_channel.len(), 2);
    let card = report
        .by_channel
        .iter()
        .find(|c| c.channel.id() == "credit_card")
        .unwrap();
    assert_eq!(
        (card.figures.refunds.count, card.figures.refunds.amount),
        (1, 4_000)
    );
    assert_eq!(card.figures.overdue, 1);
    assert_eq!(card.figures.time_to_arrival.p50_seconds, None);
    assert_eq!(card.figures.satisfaction.average_rating_x100, None);
    let wechat_figures = &report
        .by_channel
        .iter()
        .find(|c| c.channel.id() == "wechat")
        .unwrap()
        .figures;
    assert_eq!(wechat_figures.refunds.count, 4);
    assert_eq!(wechat_figures.cases.resolved, 1);
    assert_eq!(wechat_figures.satisfaction.count, 2);

    assert_eq!(report.by_merchant.len(), 2);
    let tea_figures = report
        .by_merchant
        .iter()
        .find(|m| m.merchant_name == "Tea Corner")
        .unwrap();
    assert_eq!(tea_figures.merchant_id, merchant_id(&tea));
    assert_eq!(tea_figures.figures.cases.open, 1);

    // A merchant sees its own figures only, and cannot ask for another's.
    let own = h.engine.refund_report(&noodles, range()).await.unwrap();
    assert_eq!(own.total.refunds.count, 4);
    assert_eq!(own.total.overdue, 0);
    assert_eq!(own.by_merchant.len(), 1);
    let foreign = ReportQuery {
        merchant_id: Some(merchant_id(&tea)),
        ..range()
    };
    assert_eq!(
        engine_code(h.engine.refund_report(&noodles, foreign.clone()).await),
        "not_found"
    );
    let for_tea = h
        .engine
        .refund_report(&Principal::Admin, foreign)
        .await
        .unwrap();
    assert_eq!(for_tea.total.refunds.count, 1);

    // Outside the range: nothing. A reversed range is refused.
    let later = ReportQuery {
        from: Some(start + Duration::hours(1)),
        to: Some(start + Duration::hours(2)),
        merchant_id: None,
    };
    let empty = h
        .engine
        .refund_report(&Principal::Admin, later)
        .await
        .unwrap();
    assert_eq!(empty.total.refunds.count, 0);
    assert!(empty.by_channel.is_empty());
    let reversed = ReportQuery {
        from: Some(start),
        to: Some(start - Duration::hours(1)),
        merchant_id: None,
    };
    assert_eq!(
        engine_code(h.engine.refund_report(&Principal::Admin, reversed).await),
        "validation_error"
    );
});

#[test]
fn event_types_cover_every_status() {
    assert_eq!(notify::event_types().len(), 10);
}
