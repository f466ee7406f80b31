//! `/v1/public`: the consumer's endpoints. No key: the caller proves it knows the refund by
//! facts from the receipt. Two limits keep the facts from being guessed:
//!
//! - per client address, a token bucket ([`PUBLIC_REQUESTS_PER_MINUTE`] per minute), in
//!   this process's memory, for at most [`TRACKED_CLIENTS_MAX`] addresses;
//! - per refund, a few wrong facts an hour, then the refund's lookup is locked, counted in
//!   the database so it holds across restarts and servers (see
//!   [`yuanlu_engine::public::PUBLIC_LOOKUP_FAILURES_MAX`]).
//!
//! The client is the TCP peer (IPv6 by its /64 prefix), or the client a trusted reverse
//! proxy names (`--trusted-proxy`, see [`crate::client_addr`]). Without connection info
//! (in-process tests) every caller shares one bucket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use yuanlu_engine::public::{ConsumerCase, Feedback, GiveFeedback, OpenPublicCase, RefundFacts};

use crate::AppState;
use crate::client_addr::TrustedProxies;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::present::ApiLang;
use crate::present::lang::LangParam;
use crate::present::views::ConsumerRefund;
use crate::problem::{ApiResult, Problem};

/// Public requests a client may make per minute (a token bucket of this size, refilled
/// evenly over the minute).
pub const PUBLIC_REQUESTS_PER_MINUTE: u32 = 30;
/// Client addresses tracked at most: when full, clients whose buckets have refilled are
/// forgotten (they lose nothing), then the longest idle.
pub const TRACKED_CLIENTS_MAX: usize = 10_000;

/// The public endpoints' per-address limit and whose forwarding headers count.
#[derive(Debug)]
pub struct PublicAccess {
    limiter: RateLimiter,
    trusted: TrustedProxies,
}

impl PublicAccess {
    pub fn new(trusted: TrustedProxies) -> Self {
        PublicAccess {
            limiter: RateLimiter::per_minute(PUBLIC_REQUESTS_PER_MINUTE),
            trusted,
        }
    }
}

impl Default for PublicAccess {
    fn default() -> Self {
        PublicAccess::new(TrustedProxies::default())
    }
}

/// Who is asking, for the rate limit: the client's address, or `None` when the server does
/// not record peers (then everyone shares one bucket).
pub struct ClientKey(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientKey {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| state.public.trusted.client(info.0.ip(), &parts.headers))
            .map(bucket_address);
        Ok(ClientKey(peer))
    }
}

/// IPv6 clients usually hold a whole /64: they are limited as one.
fn bucket_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                for segment in &mut segments[4..] {
                    *segment = 0;
                }
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets per client, in memory (each process limits on its own).
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> Self {
        Self::bounded(requests, TRACKED_CLIENTS_MAX)
    }

    /// A limiter that tracks at most `max_clients` clients.
    pub fn bounded(requests: u32, max_clients: usize) -> Self {
        let capacity = f64::from(requests.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / 60.0,
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(guard) => guard.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Takes a token for `client`, or says how long until one is free.
    pub fn take(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= self.max_clients && !buckets.contains_key(&client) {
            // Forget clients whose buckets have refilled: they lose nothing.
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < capacity
            });
            // Still full (a flood of busy clients): the longest idle goes.
            while buckets.len() >= self.max_clients {
                let idlest = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.updated)
                    .map(|(key, _)| *key);
                match idlest {
                    Some(key) => buckets.remove(&key),
                    None => break,
                };
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

pub(crate) fn rate_limit(state: &AppState, client: &ClientKey) -> ApiResult<()> {
    state
        .public
        .limiter
        .take(client.0, Instant::now())
        .map_err(|wait| {
            Problem::rate_limited(
                &format!("more than {PUBLIC_REQUESTS_PER_MINUTE} requests a minute"),
                wait.as_secs().max(1),
            )
        })
}

fn required(field: &str, value: Option<String>) -> ApiResult<String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("give {field}"),
        )
        .with_field(field)
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PhoneParams {
    /// The last 4 digits of the phone number given with the payment.
    pub phone_last4: Option<String>,
    /// Or the last 4 digits of the card paid with (its masked payer account's last
    /// four); give one of the two.
    pub card_last4: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReferenceParams {
    /// The payment's reference number (`rrn`, on the POS slip), or its payment id when
    /// the payment has none.
    pub reference: Option<String>,
}

/// The consumer's view of a refund named by the merchant's refund number and the last four
/// digits of the phone given at payment (`phone_last4`) or of the card paid with
/// (`card_last4`): status, timeline, expected arrival — nothing more.
/// 404 when nothing matches; 409 `conflict` when several refunds match (then look it up by
/// id). Rate limited per client address and per refund: 5 wrong phone or card digits for a
/// refund in an hour lock its lookup until the hour ends (429 `rate_limited` with
/// `Retry-After`).
#[utoipa::path(get, path = "/v1/public/refunds/{merchant_refund_no}", tag = "public",
    params(("merchant_refund_no" = String, Path, description = "the refund number on the merchant's receipt"), PhoneParams, LangParam),
    responses((status = 200, body = ConsumerRefund), (status = "4XX", body = Problem)))]
pub async fn refund_by_number(
    State(state): State<AppState>,
    client: ClientKey,
    ApiLang(lang): ApiLang,
    ApiPath(merchant_refund_no): ApiPath<String>,
    ApiQuery(params): ApiQuery<PhoneParams>,
) -> ApiResult<Json<ConsumerRefund>> {
    rate_limit(&state, &client)?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let facts = match (given(params.phone_last4), given(params.card_last4)) {
        (Some(phone_last4), None) => RefundFacts::ByNumber {
            merchant_refund_no,
            phone_last4,
        },
        (None, Some(card_last4)) => RefundFacts::ByCard {
            merchant_refund_no,
            card_last4,
        },
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "give phone_last4 or card_last4, not both",
            )
            .with_field("card_last4"));
        }
        (None, None) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "give phone_last4 (or card_last4)",
            )
            .with_field("phone_last4"));
        }
    };
    Ok(Json(ConsumerRefund::of(
        lang,
        state.engine.public_refund(&facts).await?,
    )))
}

/// The consumer's view of a refund named by its id and its payment's reference. 404 when
/// they do not match. Rate limited per client address and per refund: 5 wrong references
/// in an hour lock its lookup until the hour ends (429 `rate_limited` with `Retry-After`).
#[utoipa::path(get, path = "/v1/public/refunds/by-id/{refund_id}", tag = "public",
    params(("refund_id" = String, Path, description = "refund id, `rf_…`"), ReferenceParams, LangParam),
    responses((status = 200, body = ConsumerRefund), (status = "4XX", body = Problem)))]
pub async fn refund_by_id(
    State(state): State<AppState>,
    client: ClientKey,
    ApiLang(lang): ApiLang,
    ApiPath(refund_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ReferenceParams>,
) -> ApiResult<Json<ConsumerRefund>> {
    rate_limit(&state, &client)?;
    let reference = required("reference", params.reference)?;
    let facts = RefundFacts::ById {
        refund_id,
        reference,
    };
    Ok(Json(ConsumerRefund::of(
        lang,
        state.engine.public_refund(&facts).await?,
    )))
}

/// Rates a refund that has ended (succeeded, failed, rejected or canceled), once: 1–5 and
/// an optional comment, with the payment reference as proof. 409 `invalid_transition`
/// while the refund is under way, 409 `conflict` for a second rating.
#[utoipa::path(post, path = "/v1/public/refunds/{id}/feedback", tag = "public",
    params(("id" = String, Path, description = "refund id, `rf_…`")),
    request_body = GiveFeedback,
    responses((status = 201, body = Feedback), (status = "4XX", body = Problem)))]
pub async fn give_feedback(
    State(state): State<AppState>,
    client: ClientKey,
    ApiPath(refund_id): ApiPath<String>,
    ApiJson(input): ApiJson<GiveFeedback>,
) -> ApiResult<(StatusCode, Json<Feedback>)> {
    rate_limit(&state, &client)?;
    let feedback = state.engine.public_feedback(&refund_id, input).await?;
    Ok((StatusCode::CREATED, Json(feedback)))
}

/// A consumer opens a case on a refund named by `refund_id` + `reference` or by
/// `merchant_refund_no` + `phone_last4`. 201 with the case, or 200 with the open case of
/// the same kind. Rate limited per client (429 `rate_limited`).
#[utoipa::path(post, path = "/v1/public/cases", tag = "public",
    request_body = OpenPublicCase,
    responses((status = 201, body = ConsumerCase, description = "opened"),
               (status = 200, body = ConsumerCase, description = "a case of this kind is already open: that case"),
               (status = "4XX", body = Problem)))]
pub async fn open_public_case(
    State(state): State<AppState>,
    client: ClientKey,
    ApiJson(input): ApiJson<OpenPublicCase>,
) -> ApiResult<(StatusCode, Json<ConsumerCase>)> {
    rate_limit(&state, &client)?;
    let outcome = state.engine.public_open_case(input).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome.case)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
                serde_json::from_value(json!({ "name": "Noodle House" })).unwrap(),
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
                serde_json::from_value(json!({ "channel": "wechat", "amount": 10_000,
                    "currency": "CNY", "phone": "13812340403" }))
                .unwrap(),
            )
            .await
            .unwrap();
        let refund = match engine
            .create_refund(
                &shop,
                serde_json::from_value(json!({ "payment_id": payment.id, "amount": 1_000,
                    "reason": "customer_cancel", "merchant_refund_no": "by-id" }))
                .unwrap(),
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
}
