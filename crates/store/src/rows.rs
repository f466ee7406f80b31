//! Rows as stored. Enums are stored as their stable text ids and parsed here, once, as the
//! row is read (`#[sqlx(try_from = "String")]`): a text that names no known value is
//! reported as corrupt data ([`crate::StoreError::Corrupt`], naming the column and the
//! text), never guessed, and the engine works with the domain's enums only.

use yuanlu_domain::channel::Channel;
use yuanlu_domain::payment::PaymentKind;
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole, SendState};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub settings: String,
    pub created_at_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_hash: String,
    pub id: String,
    /// `None` for an admin key.
    pub merchant_id: Option<String>,
    /// `admin`, `supervisor` or `staff`.
    pub role: String,
    pub created_at_us: i64,
    pub prefix: Option<String>,
    pub origin: Option<String>,
    pub expires_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub amount_fen: i64,
    pub currency: String,
    pub fee_fen: i64,
    #[sqlx(try_from = "String")]
    pub kind: PaymentKind,
    pub member: bool,
    pub payer_account: Option<String>,
    pub payer_bank: Option<String>,
    pub batch_no: Option<String>,
    pub trace_no: Option<String>,
    pub rrn: Option<String>,
    pub order_no: Option<String>,
    pub shipping_status: Option<String>,
    pub phone: Option<String>,
    pub captured_at_us: i64,
    pub created_at_us: i64,
    pub amount_refunded_fen: i64,
    pub amount_in_flight_fen: i64,
    pub fee_returned_fen: i64,
    pub refund_count: i64,
    pub voided: bool,
}

/// The refund counters of a payment, written back after a refund changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCounters {
    pub amount_refunded_fen: i64,
    pub amount_in_flight_fen: i64,
    pub fee_returned_fen: i64,
    pub refund_count: i64,
    pub voided: bool,
}

impl PaymentCounters {
    /// Moves the counters as the domain decided (`yuanlu_domain::transition`).
    pub fn apply(&mut self, delta: &yuanlu_domain::transition::CounterDelta) {
        self.amount_in_flight_fen += delta.in_flight_fen;
        self.amount_refunded_fen += delta.refunded_fen;
        self.fee_returned_fen += delta.fee_returned_fen;
        self.refund_count += delta.refund_count;
        self.voided |= delta.voided;
    }
}

impl PaymentRow {
    pub fn counters(&self) -> PaymentCounters {
        PaymentCounters {
            amount_refunded_fen: self.amount_refunded_fen,
            amount_in_flight_fen: self.amount_in_flight_fen,
            fee_returned_fen: self.fee_returned_fen,
            refund_count: self.refund_count,
            voided: self.voided,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub merchant_refund_no: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    #[sqlx(rename = "type", try_from = "String")]
    pub refund_type: RefundType,
    #[sqlx(try_from = "String")]
    pub status: RefundStatus,
    pub amount_fen: i64,
    pub fee_refunded_fen: i64,
    #[sqlx(try_from = "String")]
    pub reason: RefundReason,
    pub note: Option<String>,
    #[sqlx(try_from = "String")]
    pub requested_by_role: RequesterRole,
    pub requested_by_name: Option<String>,
    pub review_reasons: String,
    pub required_reviewer: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_by: Option<String>,
    pub tracking_no: Option<String>,
    pub failure_reason: Option<String>,
    pub expected_arrival_by_us: Option<i64>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    // Dispatch (migration 0002).
    pub dispatch_attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_us: Option<i64>,
    #[sqlx(try_from = "String")]
    pub send_state: SendState,
    pub dispatched_at_us: Option<i64>,
    pub channel_refund_id: Option<String>,
    pub received_account: Option<String>,
    pub succeeded_at_us: Option<i64>,
    pub reroute_account: Option<String>,
    pub last_error: Option<String>,
    /// Confirmation queries failed in a row since the channel last answered (migration 0010).
    pub query_errors: i64,
    /// The full number of `reroute_account`, sealed (migration 0012); NULL once it left dispatch.
    pub reroute_account_sealed: Option<String>,
}

/// A status change of a refund, with what it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundStatusUpdate<'a> {
    pub refund_id: &'a str,
    pub from_status: RefundStatus,
    pub to_status: RefundStatus,
    pub review_note: Option<&'a str>,
    pub reviewed_by: Option<&'a str>,
    pub tracking_no: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
    pub at_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub chain: String,
    pub seq: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub subject_id: String,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditHeadRow {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

/// Sales and live refunds of a merchant in a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeTotals {
    pub sales_fen: i64,
    pub refunds_fen: i64,
}
