//! A captured payment as the acquirer saw it, and what of it is still refundable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::channel::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Sale,
    PreauthCompletion,
}

impl PaymentKind {
    pub fn id(self) -> &'static str {
        match self {
            PaymentKind::Sale => "sale",
            PaymentKind::PreauthCompletion => "preauth_completion",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        [PaymentKind::Sale, PaymentKind::PreauthCompletion]
            .into_iter()
            .find(|k| k.id() == id)
    }
}

try_from_text!(PaymentKind, "payment kind");

/// Shipping status of a goods order attached to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShippingStatus {
    Unshipped,
    Shipped,
    Delivered,
    /// The goods came back to the merchant (`POST /v1/payments/{id}/order`).
    Returned,
}

impl ShippingStatus {
    pub fn id(self) -> &'static str {
        match self {
            ShippingStatus::Unshipped => "unshipped",
            ShippingStatus::Shipped => "shipped",
            ShippingStatus::Delivered => "delivered",
            ShippingStatus::Returned => "returned",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        [
            ShippingStatus::Unshipped,
            ShippingStatus::Shipped,
            ShippingStatus::Delivered,
            ShippingStatus::Returned,
        ]
        .into_iter()
        .find(|k| k.id() == id)
    }

    /// The goods left the merchant, so a goods refund waits for them to come back.
    /// Returned goods are back with the merchant: nothing to wait for.
    pub fn goods_left_merchant(self) -> bool {
        matches!(self, ShippingStatus::Shipped | ShippingStatus::Delivered)
    }

    /// Whether an order may move from `self` to `to` (`POST /v1/payments/{id}/order`):
    /// forward only (unshipped → shipped → delivered, and shipped or delivered → returned);
    /// repeating the current status is allowed (idempotent).
    pub fn may_move_to(self, to: ShippingStatus) -> bool {
        use ShippingStatus::*;
        self == to
            || matches!(
                (self, to),
                (Unshipped, Shipped)
                    | (Unshipped, Delivered)
                    | (Shipped, Delivered)
                    | (Shipped, Returned)
                    | (Delivered, Returned)
            )
    }
}

/// What the refund rules need to know of a payment, read under the payment's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub channel: Channel,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub kind: PaymentKind,
    pub member: bool,
    pub shipping_status: Option<ShippingStatus>,
    pub captured_at: DateTime<Utc>,
    /// Sum of succeeded refunds.
    pub amount_refunded_fen: i64,
    /// Sum of refunds still under way (awaiting return, pending review, queued, processing,
    /// abnormal): held from the refundable amount.
    pub amount_in_flight_fen: i64,
    /// Fee returned by succeeded and in-flight refunds.
    pub fee_returned_fen: i64,
    /// Refunds ever created for this payment, in any status.
    pub refund_count: i64,
    /// A void of this payment succeeded.
    pub voided: bool,
}

impl PaymentState {
    /// Payment amount minus succeeded and in-flight refunds.
    pub fn refundable_fen(&self) -> i64 {
        self.amount_fen - self.amount_refunded_fen - self.amount_in_flight_fen
    }
}
