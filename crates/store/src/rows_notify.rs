//! Rows of notifications (webhooks, SMS), cases and feedback (migration 0003), and the
//! aggregate rows reports read. Enums are stored as their text ids and parsed as the row is
//! read, as in [`crate::rows`].

use yuanlu_domain::case::{CaseKind, CaseOpener, CaseStatus};

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

/// A case (工单) about a refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    #[sqlx(try_from = "String")]
    pub kind: CaseKind,
    pub description: String,
    pub contact: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: CaseStatus,
    pub owner: Option<String>,
    pub resolution: Option<String>,
    #[sqlx(try_from = "String")]
    pub opened_by: CaseOpener,
    pub created_at_us: i64,
    pub resolved_at_us: Option<i64>,
}

/// A consumer's rating of an ended refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedbackRow {
    pub refund_id: String,
    pub merchant_id: String,
    pub rating: i64,
    pub comment: Option<String>,
    pub created_at_us: i64,
}

/// Refunds of one merchant, channel and status: how many, how much.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportStatusRow {
    pub merchant_id: String,
    pub channel: String,
    pub status: String,
    pub count: i64,
    pub amount_fen: i64,
}

/// Time from creation to success of one succeeded refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportDurationRow {
    pub merchant_id: String,
    pub channel: String,
    pub duration_us: i64,
}

/// A count per merchant, channel and a text key (a case status, `overdue`, …).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportCountRow {
    pub merchant_id: String,
    pub channel: String,
    pub key: String,
    pub count: i64,
}

/// Ratings given per merchant, channel and rating (1–5).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRatingRow {
    pub merchant_id: String,
    pub channel: String,
    pub rating: i64,
    pub count: i64,
}
