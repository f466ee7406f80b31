//! Delivering the webhook outbox: signed POSTs, retried with backoff for a day.

use super::*;

/// `hex(HMAC-SHA256(secret, "<t>.<body>"))`: the channels' one HMAC
/// (`yuanlu_channels::signing`), which accepts keys of any length.
pub fn signature_hex(secret: &str, timestamp_unix: i64, body: &[u8]) -> String {
    yuanlu_channels::signing::signature_hex(secret.as_bytes(), timestamp_unix, body)
        .unwrap_or_default()
}

/// The `Yuanlu-Signature` header value: `t=<unix>,v1=<hex>`.
pub fn signature_header(secret: &str, timestamp_unix: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp_unix},v1={}",
        signature_hex(secret, timestamp_unix, body)
    )
}

/// An error with its causes, for the server log.
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
pub(super) enum Attempt {
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

    pub(super) async fn post_event(
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

    pub(super) async fn record_webhook_attempt(
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
