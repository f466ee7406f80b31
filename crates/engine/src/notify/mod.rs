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

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::queries_notify::OutboxFilter;
use yuanlu_store::rows_notify::{OutboxAttempt, SmsOutboxRow, WebhookOutboxRow, WebhookRow};
use yuanlu_store::{Conn, PaymentRow, RefundRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
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
#[derive(Debug, Clone)]
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

impl OutboxQuery {
    /// The store's filter for `who` (a merchant sees its own messages), one row past the
    /// page to tell whether there is more.
    fn filter(&self, who: &Principal) -> OutboxFilter {
        OutboxFilter {
            merchant_id: who.merchant_scope().map(str::to_string),
            refund_id: self.refund_id.clone(),
            status: self.status.clone(),
            starting_after: self.starting_after.clone(),
            limit: self.limit + 1,
        }
    }
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

impl Engine {
    /// Sets the merchant's webhook URL and issues a new signing secret, shown once.
    pub async fn set_webhook(
        &self,
        who: &Principal,
        merchant_id: &str,
        input: SetWebhook,
    ) -> EngineResult<CreatedWebhook> {
        who.authorize_merchant(
            merchant_id,
            Some("only a merchant supervisor (or the admin) may set the webhook"),
        )?;
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
        who.authorize_merchant(merchant_id, None)?;
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
            .list_webhook_events(&query.filter(who))
            .await?;
        Page::of_rows(rows, query.limit, |row| Ok(webhook_delivery(row)))
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
                // What the consumer gets: the amount less the deductions (issue 15 item 2).
                "consumer_amount": refund.amount_fen - refund.deducted_fen,
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
    conn.insert_webhook_event(&refund_event_row(refund, event_type, now_us))
        .await?;
    Ok(())
}

/// The outbox row [`enqueue_refund_event_if`] writes (the batched create path writes many
/// at once).
pub fn refund_event_row(refund: &RefundRow, event_type: &str, now_us: i64) -> WebhookOutboxRow {
    let id = new_id(EVENT_ID_PREFIX);
    let payload = event_payload(&id, event_type, refund, now_us).to_string();
    WebhookOutboxRow {
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
    }
}

const OUTBOX_PENDING: &str = "pending";
const WEBHOOK_DELIVERED: &str = "delivered";
const SMS_SENT: &str = "sent";
const OUTBOX_GIVEN_UP: &str = "given_up";

mod sms;
mod sms_text;
mod webhooks;

fn truncated(text: &str) -> String {
    text.chars().take(LAST_ERROR_CHARS_MAX).collect()
}

pub use sms::*;
pub use sms_text::{SMS_LANG, SmsDestination, SmsFacts};
pub use webhooks::{next_attempt_after_failure, signature_header, signature_hex};

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
