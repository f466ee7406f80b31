//! The public endpoints over HTTP.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::api::bodies;

#[test]
fn a_client_gets_its_burst_then_waits_for_refill() {
    let limiter = RateLimiter::per_minute(3);
    let client = Some(IpAddr::from([10, 0, 0, 1]));
    let start = Instant::now();
    for _ in 0..3 {
        assert!(limiter.take(client, start).is_ok());
    }
    let wait = limiter.take(client, start).unwrap_err();
    assert!(wait <= Duration::from_secs(20), "{wait:?}");
    // Another client is not affected.
    assert!(
        limiter
            .take(Some(IpAddr::from([10, 0, 0, 2])), start)
            .is_ok()
    );
    // One token comes back every 20 s.
    assert!(
        limiter
            .take(client, start + Duration::from_secs(21))
            .is_ok()
    );
    assert!(
        limiter
            .take(client, start + Duration::from_secs(21))
            .is_err()
    );
}

#[test]
fn public_routes_coexist_and_are_documented() {
    // Registering the routes panics on a conflict between the lookup by number, the
    // lookup by id and the feedback path.
    let document = crate::app::openapi(false);
    for path in [
        "/v1/public/refunds/{merchant_refund_no}",
        "/v1/public/refunds/by-id/{refund_id}",
        "/v1/public/refunds/{id}/feedback",
        "/v1/public/cases",
        "/v1/cases",
        "/v1/cases/{id}/resolve",
        "/v1/merchants/{id}/webhook",
        "/v1/notifications/sms",
        "/v1/reports/refunds",
    ] {
        assert!(document.paths.paths.contains_key(path), "{path} missing");
    }
}

/// Through the router: the lookup by number and by id share a prefix (a refund number
/// may even be `by-id`), problems carry their codes, and a client is limited.
#[tokio::test]
async fn the_public_endpoints_answer_over_http() {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{Value, json};
    use tower::ServiceExt;
    use yuanlu_engine::Engine;
    use yuanlu_engine::auth::Principal;
    use yuanlu_engine::clock::SystemClock;

    let dir = std::env::temp_dir().join(yuanlu_engine::ids::new_id("yuanlu-web-test"));
    let db = yuanlu_engine::Db::open_sqlite(&dir).await.unwrap();
    db.migrate().await.unwrap();
    let engine = Engine::new(db.clone(), std::sync::Arc::new(SystemClock));
    let merchant = engine
        .create_merchant(
            &Principal::Admin,
            serde_json::from_value::<bodies::CreateMerchant>(json!({ "name": "Noodle House" }))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let shop = Principal::Merchant {
        merchant_id: merchant.merchant.id.clone(),
        key_id: "key_test".into(),
        role: yuanlu_engine::auth::MerchantRole::Supervisor,
    };
    let payment = engine
        .record_payment(
            &shop,
            serde_json::from_value::<bodies::RecordPayment>(json!({ "channel": "wechat",
                "amount": 10_000, "currency": "CNY", "phone": "13812340403" }))
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let refund = match engine
        .create_refund(
            &shop,
            serde_json::from_value::<bodies::CreateRefund>(json!({ "payment_id": payment.id,
                "amount": 1_000, "reason": "customer_cancel", "merchant_refund_no": "by-id" }))
            .unwrap()
            .into(),
        )
        .await
        .unwrap()
    {
        yuanlu_engine::refunds::CreateOutcome::Created(refund) => refund.id,
        yuanlu_engine::refunds::CreateOutcome::Existing(refund) => refund.id,
    };
    let app = crate::router(crate::AppState {
        engine,
        public: std::sync::Arc::default(),
    });
    let call = |method: &str, uri: String, body: Option<Value>, peer: Option<[u8; 4]>| {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let mut request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        if let Some(ip) = peer {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        }
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let peer = Some([192, 0, 2, 1]);

    let (status, body) = call(
        "GET",
        "/v1/public/refunds/by-id?phone_last4=0403".into(),
        None,
        peer,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], refund.as_str());
    assert_eq!(body["merchant_name"], "Noodle House");
    assert!(body.get("merchant_id").is_none());
    let uri = format!("/v1/public/refunds/by-id/{refund}?reference={}", payment.id);
    let (status, body) = call("GET", uri, None, peer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call("GET", "/v1/public/refunds/R-1".into(), None, peer).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_error"))
    );
    let (status, body) = call(
        "GET",
        "/v1/public/refunds/R-1?phone_last4=0403".into(),
        None,
        peer,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let feedback = json!({ "rating": 5, "reference": payment.id });
    let uri = format!("/v1/public/refunds/{refund}/feedback");
    let (status, body) = call("POST", uri.clone(), Some(feedback), peer).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    let (status, body) = call("POST", uri, Some(json!({ "rating": "five" })), peer).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_error"))
    );
    let (status, _) = call("GET", "/v1/cases".into(), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // This client has used 5 tokens (a body refused by the extractor costs none); the
    // rest go (maybe one more refilled meanwhile), then it is refused. Another client
    // is not.
    let mut answered = 5;
    let body = loop {
        let (status, body) = call(
            "GET",
            "/v1/public/refunds/R-1?phone_last4=0403".into(),
            None,
            peer,
        )
        .await;
        if status != StatusCode::NOT_FOUND {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            break body;
        }
        answered += 1;
        assert!(answered <= PUBLIC_REQUESTS_PER_MINUTE + 2, "never limited");
    };
    assert!(answered >= PUBLIC_REQUESTS_PER_MINUTE, "{answered}");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["extra"]["retry_after_seconds"].as_u64().unwrap() >= 1);
    let (status, _) = call(
        "GET",
        "/v1/public/refunds/R-1?phone_last4=0403".into(),
        None,
        Some([192, 0, 2, 2]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_limiter_tracks_a_bounded_number_of_clients() {
    let limiter = RateLimiter::bounded(3, 100);
    let start = Instant::now();
    let busy = Some(IpAddr::from([10, 0, 0, 1]));
    for _ in 0..3 {
        assert!(limiter.take(busy, start).is_ok());
    }
    // A flood of one-request clients (each bucket not yet refilled) never grows the
    // table past its bound; the idlest go first.
    for n in 0..10_000u32 {
        let at = start + Duration::from_millis(u64::from(n));
        let _ = limiter.take(Some(IpAddr::from(n.to_be_bytes())), at);
        assert!(limiter.tracked() <= 100);
    }
    // Clients that have refilled are forgotten first: no one loses tokens by that.
    let limiter = RateLimiter::bounded(3, 2);
    let a = Some(IpAddr::from([10, 0, 0, 2]));
    let b = Some(IpAddr::from([10, 0, 0, 3]));
    assert!(limiter.take(a, start).is_ok());
    assert!(limiter.take(b, start + Duration::from_secs(30)).is_ok());
    let later = start + Duration::from_secs(40);
    assert!(
        limiter
            .take(Some(IpAddr::from([10, 0, 0, 4])), later)
            .is_ok()
    );
    assert_eq!(limiter.tracked(), 2);
    // b's bucket was not full: still tracked, still short of a token.
    for _ in 0..2 {
        assert!(limiter.take(b, later).is_ok());
    }
    assert!(limiter.take(b, later).is_err());
}

#[test]
fn ipv6_clients_are_limited_by_their_64_prefix() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    assert_eq!(bucket_address(a), bucket_address(b));
    let v4: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(bucket_address(v4), IpAddr::from([10, 0, 0, 1]));
}
