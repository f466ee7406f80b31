//! Notifications: signed webhooks to the merchant on every status change of a refund, and
//! SMS to the consumer on acceptance and on arrival.
//!
//! Both go through an **outbox** written in the same transaction as the change they
//! announce ([`enqueue_refund_event`], [`enqueue_refund_sms`]): a change that rolls back
//! leaves no message, and a committed one always has its message. Workers then deliver:
//!
//! - [`Engine::deliver_webhooks_once`] leases due events (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL, so any number of processes share the work), POSTs each to the merchant's
//!   URL signed with `Yuanlu-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   (`t` on the wall clock, for the receiver's freshness check, even under a simulated
//!   clock), and counts any 2xx as delivered. Anything else is retried with exponential backoff and
//!   jitter until 24 hours after the event was created, then the event is `given_up`.
//!   Delivery is **at least once**: a receiver that answers after our timeout, or a worker
//!   that dies between the POST and recording the answer, causes a second delivery of the
//!   same event (same `id`), so receivers de-duplicate by the event id. Events are not
//!   ordered across retries; `data.refund.status` is the refund's status when the event was
//!   written.
//! - [`Engine::relay_sms_once`] hands recorded SMS to an [`SmsGateway`]. The shipped
//!   [`OutboxSmsGateway`] sends nothing anywhere: the outbox is the record that
//!   `GET /v1/notifications/sms` and the UI show. A real carrier plugs in as another
//!   [`SmsGateway`].

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::money::format_cny;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::time::{from_micros, shanghai_date, to_micros};
use yuanlu_store::queries_notify::OutboxFilter;
use yuanlu_store::rows_notify::{OutboxAttempt, SmsOutboxRow, WebhookOutboxRow, WebhookRow};
use yuanlu_store::{Conn, PaymentRow, RefundRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::{MerchantRole, Principal};
use crate::error::{EngineError, EngineResult};
use crate::ids::{new_id, new_secret_key};
use crate::views::Page;
use crate::webhook_net::delivery_error_words;

/// The event of a new refund (whatever its first status).
pub const EVENT_CREATED: &str = "refund.created";
/// The header carrying a delivery's signature.
pub const SIGNATURE_HEADER: &str = "Yuanlu-Signature";
/// The header carrying the event id, for receivers that de-duplicate before parsing.
pub const EVENT_ID_HEADER: &str = "Yuanlu-Event-Id";
/// Prefix of webhook secrets: `whsec_` and 32 random bytes in hex.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec";
/// Prefix of webhook event ids.
pub const EVENT_ID_PREFIX: &str = "evt";
/// Prefix of SMS ids.
pub const SMS_ID_PREFIX: &str = "sms";
/// Longest webhook URL accepted.
pub const WEBHOOK_URL_CHARS_MAX: usize = 2_048;
/// Events and SMS are retried for this long after they were written, then given up.
pub const RETRY_WINDOW_HOURS: i64 = 24;
/// How long a worker holds a leased event or SMS: longer than one request with its
/// timeouts, so a live worker keeps it; short enough that a dead worker's rows move on.
pub const OUTBOX_LEASE: Duration = Duration::from_secs(60);
/// First retry delay; doubles per attempt up to [`RETRY_CAP`], with jitter of ±50 %.
pub const RETRY_BASE: Duration = Duration::from_secs(30);
pub const RETRY_CAP: Duration = Duration::from_secs(3_600);
/// Bounds of one webhook request.
pub const WEBHOOK_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const WEBHOOK_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the SMS gateway may take for one message.
pub const SMS_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows leased per pass at most, whatever the caller asks for.
pub const OUTBOX_BATCH_MAX: i64 = 256;
/// Longest error text kept on an outbox row.
const LAST_ERROR_CHARS_MAX: usize = 500;

/// Names this process in outbox leases.
static WORKER_ID: LazyLock<String> = LazyLock::new(|| new_id("notify"));

/// The webhook event announcing that a refund reached `status`.
pub fn event_type_for(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::AwaitingReturn => "refund.awaiting_return",
        RefundStatus::PendingReview => "refund.pending_review",
        RefundStatus::Queued => "refund.queued",
        RefundStatus::Processing => "refund.processing",
        RefundStatus::Succeeded => "refund.succeeded",
        RefundStatus::Failed => "refund.failed",
        RefundStatus::Abnormal => "refund.abnormal",
        RefundStatus::Rejected => "refund.rejected",
        RefundStatus::Canceled => "refund.canceled",
    }
}

/// Every event type a merchant may receive.
pub fn event_types() -> Vec<&'static str> {
    let mut types = vec![EVENT_CREATED];
    types.extend(RefundStatus::ALL.iter().map(|s| event_type_for(*s)));
    types
}

// --- webhooks: registration ---------------------------------------------------------------

/// `PUT /v1/merchants/{id}/webhook`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// `http://` or `https://` URL that receives the events by POST.
    pub url: String,
}

/// A webhook endpoint as set: the signing secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub merchant_id: String,
    pub url: String,
    /// `whsec_…`: verify `Yuanlu-Signature` with it. Shown once; setting the URL again
    /// issues a new secret.
    pub secret: String,
    /// The event types sent to the URL.
    pub events: Vec<&'static str>,
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub merchant_id: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One webhook event and how its delivery went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// The event id (`evt_…`), also the `id` in the payload.
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub refund_id: String,
    /// `pending`, `delivered` or `given_up`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body sent, as JSON.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// Filters of the outbox lists.
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    pub refund_id: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// A URL a worker may POST to: http(s), with a host, printable, bounded. Where it points
/// is checked by [`crate::webhook_net::WebhookNetwork::check_target`].
fn valid_webhook_url(url: &str) -> EngineResult<reqwest::Url> {
    let url = url.trim();
    let bad = |message: &str| EngineError::validation("url", message);
    if url.is_empty() || url.chars().count() > WEBHOOK_URL_CHARS_MAX {
        return Err(bad(&format!(
            "give an http(s) URL of at most {WEBHOOK_URL_CHARS_MAX} characters"
        )));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("control characters and spaces are not allowed"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the URL must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL are not accepted; verify the signature instead",
        ));
    }
    Ok(parsed)
}

/// Admin, or the merchant's supervisor (for `write`) or any of its keys (to read). Another
/// merchant's id is "not found", so ids cannot be probed.
fn authorize_merchant(who: &Principal, merchant_id: &str, write: bool) -> EngineResult<()> {
    match who {
        Principal::Admin => Ok(()),
        Principal::Merchant {
            merchant_id: own,
            role,
            ..
        } => {
            if own != merchant_id {
                return Err(EngineError::NotFound {
                    what: "merchant",
                    id: merchant_id.to_string(),
                });
            }
            if write && *role != MerchantRole::Supervisor {
                return Err(EngineError::Forbidden(
                    "only a merchant supervisor (or the admin) may set the webhook".into(),
                ));
            }
            Ok(())
        }
    }
}

impl Engine {
    /// Sets the merchant's webhook URL and issues a new signing secret, shown once.
    pub async fn set_webhook(
        &self,
        who: &Principal,
        merchant_id: &str,
        input: SetWebhook,
    ) -> EngineResult<CreatedWebhook> {
        authorize_merchant(who, merchant_id, true)?;
        let parsed = valid_webhook_url(&input.url)?;
        self.webhook_network.check_target(&parsed).await?;
        let url = parsed.to_string();
        let secret = new_secret_key(WEBHOOK_SECRET_PREFIX);
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        if conn.get_merchant(merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        conn.upsert_webhook(&WebhookRow {
            merchant_id: merchant_id.to_string(),
            url: url.clone(),
            secret: secret.clone(),
            created_at_us: now_us,
            updated_at_us: now_us,
        })
        .await?;
        let actor = who.actor();
        audit::append(
            &mut conn,
            AuditEvent {
                chain: merchant_id,
                at_us: now_us,
                actor: &actor,
                action: "webhook.set",
                subject_id: merchant_id,
                // The secret never enters the log.
                data: json!({ "url": url }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedWebhook {
            merchant_id: merchant_id.to_string(),
            url,
            secret,
            events: event_types(),
        })
    }

    /// The merchant's webhook endpoint (without its secret).
    pub async fn get_webhook(
        &self,
        who: &Principal,
        merchant_id: &str,
    ) -> EngineResult<WebhookEndpoint> {
        authorize_merchant(who, merchant_id, false)?;
        let mut pooled = self.db.acquire().await?;
        let row = pooled
            .conn()
            .get_webhook(merchant_id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "webhook of merchant",
                id: merchant_id.to_string(),
            })?;
        Ok(WebhookEndpoint {
            merchant_id: row.merchant_id,
            url: row.url,
            created_at: from_micros(row.created_at_us),
            updated_at: from_micros(row.updated_at_us),
        })
    }

    /// Webhook events, newest first (admin: all; a merchant: its own).
    pub async fn list_webhook_deliveries(
        &self,
        who: &Principal,
        query: OutboxQuery,
    ) -> EngineResult<Page<WebhookDelivery>> {
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_webhook_events(&OutboxFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                refund_id: query.refund_id,
                status: query.status,
                starting_after: query.starting_after,
                limit: query.limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > query.limit;
        let data = rows
            .into_iter()
            .take(usize::try_from(query.limit).unwrap_or(0))
            .map(webhook_delivery)
            .collect();
        Ok(Page { data, has_more })
    }
}

fn webhook_delivery(row: WebhookOutboxRow) -> WebhookDelivery {
    WebhookDelivery {
        payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
        id: row.id,
        merchant_id: row.merchant_id,
        event_type: row.event_type,
        refund_id: row.refund_id,
        status: row.status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at_us.map(from_micros),
        last_error: row.last_error,
        created_at: from_micros(row.created_at_us),
        delivered_at: row.delivered_at_us.map(from_micros),
    }
}

// --- webhooks: the outbox -----------------------------------------------------------------

/// The event's JSON body. `created` is Unix seconds; amounts are fen.
pub fn event_payload(
    event_id: &str,
    event_type: &str,
    refund: &RefundRow,
    now_us: i64,
) -> serde_json::Value {
    json!({
        "id": event_id,
        "type": event_type,
        "created": now_us.div_euclid(1_000_000),
        "data": {
            "refund": {
                "id": refund.id,
                "status": refund.status,
                "amount": refund.amount_fen,
                "fee_refunded": refund.fee_refunded_fen,
                "merchant_refund_no": refund.merchant_refund_no,
                "payment_id": refund.payment_id,
                "expected_arrival_by": refund.expected_arrival_by_us.map(from_micros),
                "failure_reason": refund.failure_reason,
            }
        }
    })
}

/// Writes a webhook event about `refund` (as it is after the change) in the caller's
/// transaction. Does nothing when the merchant has no webhook.
pub async fn enqueue_refund_event(
    conn: &mut Conn<'_>,
    refund: &RefundRow,
    event_type: &str,
    now_us: i64,
) -> EngineResult<()> {
    let has_webhook = conn.get_webhook(&refund.merchant_id).await?.is_some();
    enqueue_refund_event_if(conn, has_webhook, refund, event_type, now_us).await
}

/// [`enqueue_refund_event`] when the caller already knows whether the merchant has a webhook
/// (read in this transaction).
pub async fn enqueue_refund_event_if(
    conn: &mut Conn<'_>,
    has_webhook: bool,
    refund: &RefundRow,
    event_type: &str,
    now_us: i64,
) -> EngineResult<()> {
    if !has_webhook {
        return Ok(());
    }
    let id = new_id(EVENT_ID_PREFIX);
    let payload = event_payload(&id, event_type, refund, now_us).to_string();
    conn.insert_webhook_event(&WebhookOutboxRow {
        id,
        merchant_id: refund.merchant_id.clone(),
        event_type: event_type.to_string(),
        refund_id: refund.id.clone(),
        payload,
        status: OUTBOX_PENDING.to_string(),
        attempts: 0,
        next_attempt_at_us: Some(now_us),
        lease_owner: None,
        last_error: None,
        created_at_us: now_us,
        delivered_at_us: None,
    })
    .await?;
    Ok(())
}

const OUTBOX_PENDING: &str = "pending";
const WEBHOOK_DELIVERED: &str = "delivered";
const SMS_SENT: &str = "sent";
const OUTBOX_GIVEN_UP: &str = "given_up";

type HmacSha256 = Hmac<Sha256>;

/// `hex(HMAC-SHA256(secret, "<t>.<body>"))`.
pub fn signature_hex(secret: &str, timestamp_unix: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error exists only because the API is generic.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp_unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Yuanlu-Signature` header value: `t=<unix>,v1=<hex>`.
pub fn signature_header(secret: &str, timestamp_unix: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp_unix},v1={}",
        signature_hex(secret, timestamp_unix, body)
    )
}

/// An error with its causes, for the server log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncated(text: &str) -> String {
    text.chars().take(LAST_ERROR_CHARS_MAX).collect()
}

/// After a failed attempt at `now_us`: the next attempt (jittered exponential backoff,
/// never later than the end of the retry window), or `None` once the window is over.
pub fn next_attempt_after_failure(
    created_at_us: i64,
    attempts: i64,
    now_us: i64,
    jitter_unit: f64,
) -> Option<i64> {
    let deadline_us = created_at_us.saturating_add(RETRY_WINDOW_HOURS * 3_600 * 1_000_000);
    if now_us >= deadline_us {
        return None;
    }
    let delay = crate::dispatch::backoff(RETRY_BASE, RETRY_CAP, attempts, jitter_unit);
    let delay_us = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
    Some(now_us.saturating_add(delay_us).min(deadline_us))
}

/// What one delivery attempt gave.
enum Attempt {
    Done,
    Failed(String),
}

impl Engine {
    /// One pass of the webhook worker: leases up to `limit` due events, POSTs each (in
    /// parallel, each bounded by [`WEBHOOK_REQUEST_TIMEOUT`]) and records the answers.
    /// Returns how many events it attempted. Tests call it directly.
    pub async fn deliver_webhooks_once(&self, limit: i64) -> EngineResult<usize> {
        let limit = limit.clamp(1, OUTBOX_BATCH_MAX);
        let now_us = to_micros(self.clock.now());
        let lease_us = i64::try_from(OUTBOX_LEASE.as_micros()).unwrap_or(60_000_000);
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let claimed = conn
            .claim_due_webhooks(&WORKER_ID, now_us + lease_us, now_us, limit)
            .await?;
        let mut work = Vec::with_capacity(claimed.len());
        for event in claimed {
            let endpoint = conn.get_webhook(&event.merchant_id).await?;
            work.push((event, endpoint));
        }
        tx.commit().await?;
        let count = work.len();
        let client = self.webhook_network.client()?.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for (event, endpoint) in work {
            let (engine, client) = (self.clone(), client.clone());
            tasks.spawn(async move {
                let attempt = match &endpoint {
                    Some(endpoint) => engine.post_event(&client, endpoint, &event).await,
                    None => Attempt::Failed("the merchant has no webhook URL".to_string()),
                };
                engine.record_webhook_attempt(&event, attempt).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "recording a webhook attempt failed; the event is retried when its lease expires")
                }
                Err(error) => {
                    tracing::error!(%error, "webhook task panicked; the event is retried when its lease expires")
                }
            }
        }
        Ok(count)
    }

    /// The earliest time a webhook event is due, for a worker deciding how long to wait.
    pub async fn next_webhook_due(&self) -> EngineResult<Option<DateTime<Utc>>> {
        let mut pooled = self.db.acquire().await?;
        Ok(pooled.conn().next_webhook_due_at().await?.map(from_micros))
    }

    async fn post_event(
        &self,
        client: &reqwest::Client,
        endpoint: &WebhookRow,
        event: &WebhookOutboxRow,
    ) -> Attempt {
        if reqwest::Url::parse(&endpoint.url)
            .is_ok_and(|url| !self.webhook_network.literal_allowed(&url))
        {
            tracing::warn!(event = %event.id, merchant = %event.merchant_id, "webhook URL names a non-public address; not sent");
            return Attempt::Failed("address_not_allowed".to_string());
        }
        // Transport freshness, checked by the receiver against its own real clock: the wall
        // clock even under a simulated one (docs/decisions.md 43). The event's times in the
        // body are the product clock's.
        let timestamp = yuanlu_channels::signing::transport_now_unix();
        let body = event.payload.clone().into_bytes();
        let signature = signature_header(&endpoint.secret, timestamp, &body);
        let sent = client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &event.id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Attempt::Done,
            Ok(response) => Attempt::Failed(format!("http_status {}", response.status().as_u16())),
            Err(error) => {
                // The merchant reads a word; addresses and OS errors go to the log only.
                let words = delivery_error_words(&error);
                tracing::info!(event = %event.id, merchant = %event.merchant_id, error = %error_chain(&error), "webhook delivery failed: {words}");
                Attempt::Failed(words.to_string())
            }
        }
    }

    async fn record_webhook_attempt(
        &self,
        event: &WebhookOutboxRow,
        attempt: Attempt,
    ) -> EngineResult<()> {
        let now_us = to_micros(self.clock.now());
        let attempts = event.attempts + 1;
        let (status, next, error, done) = match &attempt {
            Attempt::Done => (WEBHOOK_DELIVERED, None, None, Some(now_us)),
            Attempt::Failed(error) => {
                let unit: f64 = rand::rng().random();
                match next_attempt_after_failure(event.created_at_us, attempts, now_us, unit) {
                    Some(next) => (OUTBOX_PENDING, Some(next), Some(truncated(error)), None),
                    None => (OUTBOX_GIVEN_UP, None, Some(truncated(error)), None),
                }
            }
        };
        let mut tx = self.db.begin().await?;
        let recorded = tx
            .conn()
            .finish_webhook_attempt(&OutboxAttempt {
                id: &event.id,
                lease_owner: &WORKER_ID,
                status,
                attempts,
                next_attempt_at_us: next,
                last_error: error.as_deref(),
                done_at_us: done,
            })
            .await?;
        tx.commit().await?;
        if !recorded {
            tracing::warn!(event = %event.id, "webhook lease lost before its attempt was recorded");
        } else if status == OUTBOX_GIVEN_UP {
            tracing::warn!(event = %event.id, merchant = %event.merchant_id, "webhook given up after {RETRY_WINDOW_HOURS} hours");
        }
        Ok(())
    }
}

// --- SMS ----------------------------------------------------------------------------------

/// Which SMS a refund sends: when the channel accepted it, and when the money is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsKind {
    Accepted,
    Arrived,
}

impl SmsKind {
    pub fn id(self) -> &'static str {
        match self {
            SmsKind::Accepted => "accepted",
            SmsKind::Arrived => "arrived",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        match id {
            "accepted" => Some(SmsKind::Accepted),
            "arrived" => Some(SmsKind::Arrived),
            _ => None,
        }
    }
}

/// Why a gateway did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// Worth trying again later (carrier busy, network).
    #[error("transient SMS gateway error: {0}")]
    Transient(String),
    /// Will never work (number refused, content refused): the message is given up.
    #[error("SMS refused: {0}")]
    Final(String),
}

/// An SMS carrier. [`Engine::relay_sms_once`] hands it the recorded messages.
#[async_trait::async_trait]
pub trait SmsGateway: Send + Sync {
    /// Sends one message to a mainland mobile number (11 digits).
    async fn send(&self, phone: &str, text: &str) -> Result<(), SmsError>;
}

/// The shipped gateway: messages stay in the outbox (`sms_outbox`), where the API and the
/// UI show them; nothing leaves the process. `send` accepts every message.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxSmsGateway;

#[async_trait::async_trait]
impl SmsGateway for OutboxSmsGateway {
    async fn send(&self, _phone: &str, _text: &str) -> Result<(), SmsError> {
        Ok(())
    }
}

/// An SMS as the API shows it: the phone masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SmsMessage {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    /// Masked, e.g. `138****0403`.
    pub phone: String,
    pub kind: SmsKind,
    pub text: String,
    /// `pending` (recorded, not yet handed to the gateway), `sent` or `given_up`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// `13812340403` → `138****0403`; anything else keeps only its last four characters.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() == 11 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[7..].iter().collect();
        return format!("{head}****{tail}");
    }
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}

/// A date as Chinese SMS write it: `2026年11月23日` (Asia/Shanghai).
fn date_zh(instant: DateTime<Utc>) -> String {
    let date = shanghai_date(instant);
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

/// Where the money goes, in Chinese, without more of the account than its last digits.
fn destination_zh(refund: &RefundRow, payment: &PaymentRow) -> String {
    if refund.reroute_account.is_some() {
        return "您提供的银行账户".to_string();
    }
    if let Some(account) = refund.received_account.as_deref().filter(|a| !a.is_empty()) {
        return account.to_string();
    }
    let last4 = payment
        .payer_account
        .as_deref()
        .and_then(|a| a.strip_prefix("**** "))
        .map(|d| format!("（尾号{d}）"))
        .unwrap_or_default();
    let bank = payment.payer_bank.clone().unwrap_or_default();
    match Channel::parse(&refund.channel) {
        Some(Channel::CreditCard) => format!("原支付{bank}信用卡{last4}"),
        Some(Channel::DebitCard) => format!("原支付{bank}借记卡{last4}"),
        Some(Channel::UnionpayQr) => "云闪付绑定的银行卡".to_string(),
        Some(Channel::Wechat) => "微信零钱或原支付银行卡".to_string(),
        Some(Channel::Alipay) => "支付宝余额、花呗或原支付银行卡".to_string(),
        None => "原支付账户".to_string(),
    }
}

/// The text of an SMS about `refund`.
pub fn sms_text(
    merchant_name: &str,
    refund: &RefundRow,
    payment: &PaymentRow,
    kind: SmsKind,
    now_us: i64,
) -> String {
    let amount = format_cny(refund.amount_fen);
    let expected = refund.expected_arrival_by_us.map(from_micros);
    match kind {
        SmsKind::Accepted => match expected {
            Some(by) => format!(
                "【原路】您在{merchant_name}的退款{amount}元已受理，预计{}前到账。",
                date_zh(by)
            ),
            None => {
                format!("【原路】您在{merchant_name}的退款{amount}元已受理，到账后将短信通知您。")
            }
        },
        SmsKind::Arrived => {
            let destination = destination_zh(refund, payment);
            let head = if refund.refund_type == RefundType::Void.id() {
                format!(
                    "【原路】您在{merchant_name}的消费{amount}元已撤销，款项已退回至{destination}"
                )
            } else {
                format!("【原路】您在{merchant_name}的退款{amount}元已退回至{destination}")
            };
            match expected.filter(|by| to_micros(*by) > now_us) {
                Some(by) => format!("{head}，预计{}前入账。", date_zh(by)),
                None => format!("{head}。"),
            }
        }
    }
}

/// Records an SMS about `refund` in the caller's transaction, when its payment has a phone.
/// One per refund and kind: a repeat (an outcome applied twice) records nothing.
pub async fn enqueue_refund_sms(
    conn: &mut Conn<'_>,
    refund: &RefundRow,
    payment: &PaymentRow,
    kind: SmsKind,
    now_us: i64,
) -> EngineResult<()> {
    let Some(phone) = payment.phone.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let merchant = conn
        .get_merchant(&refund.merchant_id)
        .await?
        .ok_or_else(|| {
            EngineError::corrupt(format!(
                "refund {} names missing merchant {}",
                refund.id, refund.merchant_id
            ))
        })?;
    conn.insert_sms(&SmsOutboxRow {
        id: new_id(SMS_ID_PREFIX),
        merchant_id: refund.merchant_id.clone(),
        refund_id: refund.id.clone(),
        phone_masked: mask_phone(phone),
        phone: phone.to_string(),
        text: sms_text(&merchant.name, refund, payment, kind, now_us),
        kind: kind.id().to_string(),
        status: OUTBOX_PENDING.to_string(),
        attempts: 0,
        next_attempt_at_us: Some(now_us),
        lease_owner: None,
        last_error: None,
        created_at_us: now_us,
        sent_at_us: None,
    })
    .await?;
    Ok(())
}

fn sms_message(row: SmsOutboxRow) -> EngineResult<SmsMessage> {
    let kind = SmsKind::parse(&row.kind)
        .ok_or_else(|| EngineError::corrupt(format!("sms {} has kind {}", row.id, row.kind)))?;
    Ok(SmsMessage {
        id: row.id,
        merchant_id: row.merchant_id,
        refund_id: row.refund_id,
        phone: row.phone_masked,
        kind,
        text: row.text,
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        created_at: from_micros(row.created_at_us),
        sent_at: row.sent_at_us.map(from_micros),
    })
}

impl Engine {
    /// Recorded SMS, newest first (admin: all; a merchant: its own), phones masked.
    pub async fn list_sms(
        &self,
        who: &Principal,
        query: OutboxQuery,
    ) -> EngineResult<Page<SmsMessage>> {
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_sms(&OutboxFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                refund_id: query.refund_id,
                status: query.status,
                starting_after: query.starting_after,
                limit: query.limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > query.limit;
        let data = rows
            .into_iter()
            .take(usize::try_from(query.limit).unwrap_or(0))
            .map(sms_message)
            .collect::<EngineResult<_>>()?;
        Ok(Page { data, has_more })
    }

    /// One pass of the SMS relay: leases up to `limit` recorded messages and hands each to
    /// `gateway`; transient errors are retried with backoff for 24 hours. Returns how many
    /// it handed over or tried to.
    pub async fn relay_sms_once(
        &self,
        gateway: &dyn SmsGateway,
        limit: i64,
    ) -> EngineResult<usize> {
        let limit = limit.clamp(1, OUTBOX_BATCH_MAX);
        let now_us = to_micros(self.clock.now());
        let lease_us = i64::try_from(OUTBOX_LEASE.as_micros()).unwrap_or(60_000_000);
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .conn()
            .claim_due_sms(&WORKER_ID, now_us + lease_us, now_us, limit)
            .await?;
        tx.commit().await?;
        let count = claimed.len();
        for message in claimed {
            let sent = tokio::time::timeout(
                SMS_SEND_TIMEOUT,
                gateway.send(&message.phone, &message.text),
            )
            .await
            .unwrap_or_else(|_| {
                Err(SmsError::Transient(format!(
                    "no answer within {} s",
                    SMS_SEND_TIMEOUT.as_secs()
                )))
            });
            let now_us = to_micros(self.clock.now());
            let attempts = message.attempts + 1;
            let (status, next, error, done) = match &sent {
                Ok(()) => (SMS_SENT, None, None, Some(now_us)),
                Err(error @ SmsError::Final(_)) => (
                    OUTBOX_GIVEN_UP,
                    None,
                    Some(truncated(&error.to_string())),
                    None,
                ),
                Err(error @ SmsError::Transient(_)) => {
                    let unit: f64 = rand::rng().random();
                    let error = Some(truncated(&error.to_string()));
                    match next_attempt_after_failure(message.created_at_us, attempts, now_us, unit)
                    {
                        Some(next) => (OUTBOX_PENDING, Some(next), error, None),
                        None => (OUTBOX_GIVEN_UP, None, error, None),
                    }
                }
            };
            let mut tx = self.db.begin().await?;
            tx.conn()
                .finish_sms_attempt(&OutboxAttempt {
                    id: &message.id,
                    lease_owner: &WORKER_ID,
                    status,
                    attempts,
                    next_attempt_at_us: next,
                    last_error: error.as_deref(),
                    done_at_us: done,
                })
                .await?;
            tx.commit().await?;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_event() {
        let types = event_types();
        assert_eq!(types.len(), 10);
        assert!(types.contains(&"refund.created"));
        assert!(types.contains(&"refund.awaiting_return"));
        assert_eq!(event_type_for(RefundStatus::Succeeded), "refund.succeeded");
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // Expected value from `printf '1800000000.{}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            signature_header("whsec_test", 1_800_000_000, b"{}"),
            "t=1800000000,v1=482e6337ac5272392d375c6fdc4d52a7e615dc2facedab0ffe155ddfd6a56e66"
        );
        assert_ne!(
            signature_hex("whsec_test", 1_800_000_000, b"{}"),
            signature_hex("whsec_test", 1_800_000_001, b"{}")
        );
    }

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13812340403"), "138****0403");
        assert_eq!(mask_phone("0403"), "****0403");
    }

    #[test]
    fn retries_stop_at_the_end_of_the_window() {
        let hour = 3_600 * 1_000_000;
        let created = 1_000 * hour;
        let next = next_attempt_after_failure(created, 1, created, 0.5);
        assert_eq!(next, Some(created + 30_000_000));
        let late = created + 23 * hour + hour / 2;
        assert_eq!(
            next_attempt_after_failure(created, 20, late, 0.5),
            Some(created + 24 * hour)
        );
        assert_eq!(
            next_attempt_after_failure(created, 21, created + 24 * hour, 0.5),
            None
        );
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert!(valid_webhook_url("https://shop.example/hooks").is_ok());
        assert!(valid_webhook_url("http://127.0.0.1:9/x").is_ok());
        assert!(valid_webhook_url("ftp://shop.example").is_err());
        assert!(valid_webhook_url("not a url").is_err());
        assert!(valid_webhook_url("https://u:p@shop.example").is_err());
    }
}
