//! SMS to the consumer: the outbox row, the relay to a gateway. The text is rendered from
//! the refund's facts by [`super::sms_text`].

use super::*;

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
        text: SmsFacts::of(&merchant.name, refund, payment, kind, now_us).render(SMS_LANG),
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

pub(super) fn sms_message(row: SmsOutboxRow) -> EngineResult<SmsMessage> {
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
        let rows = pooled.conn().list_sms(&query.filter(who)).await?;
        Page::of_rows(rows, query.limit, sms_message)
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
