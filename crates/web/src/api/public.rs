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
use yuanlu_engine::public::{ConsumerCase, Feedback, RefundFacts};

use super::bodies::{GiveFeedback, OpenPublicCase};
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
    let feedback = state
        .engine
        .public_feedback(&refund_id, input.into())
        .await?;
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
    let outcome = state.engine.public_open_case(input.into()).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome.case)))
}

#[cfg(test)]
mod tests;
