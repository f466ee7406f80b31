//! Rows of notifications: webhooks and the SMS outbox (migration 0003). The rows of cases,
//! feedback and reports stand beside their queries (`queries_cases`, `queries_public`,
//! `queries_reports`).

/// A merchant's webhook endpoint. The secret is kept as is: it signs every delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRow {
    pub merchant_id: String,
    pub url: String,
    pub secret: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// One webhook event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookOutboxRow {
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub refund_id: String,
    pub payload: String,
    /// `pending`, `delivered` or `given_up`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub created_at_us: i64,
    pub delivered_at_us: Option<i64>,
}

/// A leased outbox row with where and how to deliver it (its merchant's current endpoint).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookDeliveryRow {
    #[sqlx(flatten)]
    pub event: WebhookOutboxRow,
    pub url: Option<String>,
    pub secret: Option<String>,
}

/// What a delivery attempt leaves on its outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxAttempt<'a> {
    pub id: &'a str,
    /// The worker that leased the row: a row taken over by another worker is not touched.
    pub lease_owner: &'a str,
    pub status: &'a str,
    pub attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub last_error: Option<&'a str>,
    /// When it was delivered (webhooks) or handed to the gateway (SMS).
    pub done_at_us: Option<i64>,
}

/// One SMS in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SmsOutboxRow {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    pub phone_masked: String,
    pub phone: String,
    pub text: String,
    /// `accepted` or `arrived`.
    pub kind: String,
    /// `pending`, `sent` or `given_up`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub created_at_us: i64,
    pub sent_at_us: Option<i64>,
}
