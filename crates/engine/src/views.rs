//! What the API returns. Built from stored rows; enums parsed back from their ids, and a
//! value that does not parse is reported as corrupt data, never guessed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::deduction::Deduction;
use yuanlu_domain::ledger::MerchantBalance;
use yuanlu_domain::money::CURRENCY;
use yuanlu_domain::payment::{PaymentKind, PaymentState, ShippingStatus};
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole};
use yuanlu_domain::review::{RequiredReviewer, ReviewReason};
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_domain::time::from_micros;
use yuanlu_store::{MerchantRow, PaymentRow, RefundRow};

use crate::error::{EngineError, EngineResult};
use crate::timeline::{NextStep, TimelineEvent};

/// A list page: `{"data": [...], "has_more": bool}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The page of `limit` items from `rows` read with `limit + 1`: the extra row only
    /// says that there is more.
    pub fn of_rows<R>(
        rows: Vec<R>,
        limit: i64,
        view: impl FnMut(R) -> EngineResult<T>,
    ) -> EngineResult<Page<T>> {
        let has_more = rows.len() as i64 > limit;
        let data = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(view)
            .collect::<EngineResult<Vec<T>>>()?;
        Ok(Page { data, has_more })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub settings: MerchantSettings,
    /// What the acquirer owes the merchant (unsettled) and what the merchant owes
    /// (carried, ≤ 0), in fen.
    pub balances: MerchantBalance,
    pub created_at: DateTime<Utc>,
}

/// A merchant as created: the supervisor key is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedMerchant {
    #[serde(flatten)]
    pub merchant: Merchant,
    /// The merchant supervisor's API key. Shown once; store it now.
    pub api_key: String,
}

/// A new API key, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    /// `null` for an admin key.
    pub merchant_id: Option<String>,
    pub role: crate::keys::KeyRole,
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payer {
    /// Masked card number (`**** 0403`) or masked wallet account.
    pub account: Option<String>,
    pub bank: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Voucher {
    pub batch_no: Option<String>,
    pub trace_no: Option<String>,
    pub rrn: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub merchant_order_no: String,
    pub shipping_status: ShippingStatus,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub channel: Channel,
    /// Fen.
    pub amount: i64,
    pub currency: &'static str,
    /// Merchant fee in fen.
    pub fee: i64,
    pub kind: PaymentKind,
    pub member: bool,
    pub payer: Payer,
    pub voucher: Voucher,
    pub order: Option<Order>,
    /// Succeeded refunds, in fen.
    pub amount_refunded: i64,
    /// Refunds under way, in fen (held from `refundable`).
    pub amount_in_flight: i64,
    /// Amount minus succeeded and in-flight refunds, in fen.
    pub refundable: i64,
    pub voided: bool,
    pub captured_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The payment's refunds, on single reads (empty in lists).
    pub refunds: Vec<RefundSummary>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundSummary {
    pub id: String,
    pub merchant_refund_no: String,
    #[serde(rename = "type")]
    pub refund_type: RefundType,
    pub status: RefundStatus,
    pub amount: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestedBy {
    pub role: RequesterRole,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Review {
    pub required_by: RequiredReviewer,
    pub reasons: Vec<ReviewReason>,
    pub note: Option<String>,
    pub reviewed_by: Option<String>,
}

/// Where the money goes back to (defined beside the timeline, which reads it).
pub use crate::timeline::{Destination, Route};

/// A refund as staff see it, as data: the edge renders its timeline, next step and
/// destination in the reader's language (`yuanlu_web::present`); what a consumer may see
/// of it is [`crate::audience::consumer_view`].
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub merchant_refund_no: String,
    pub channel: Channel,
    #[serde(rename = "type")]
    pub refund_type: RefundType,
    pub status: RefundStatus,
    /// Fen.
    pub amount: i64,
    pub currency: &'static str,
    /// Fee returned to the merchant by this refund, in fen.
    pub fee_refunded: i64,
    /// What the consumer gets, in fen: `amount` less the deductions (issue 15 item 2). The
    /// channel is sent this much.
    pub consumer_amount: i64,
    /// Deductions agreed with the consumer and kept by the merchant, in their order; empty
    /// for most refunds.
    pub deductions: Vec<Deduction>,
    pub reason: RefundReason,
    pub note: Option<String>,
    pub requested_by: RequestedBy,
    pub review: Option<Review>,
    pub destination: Destination,
    pub tracking_no: Option<String>,
    pub failure_reason: Option<String>,
    /// When the money is expected at its destination; set once a channel accepts it.
    pub expected_arrival_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<TimelineEvent>,
    /// For a refund still under way: what happens next.
    pub next_step: Option<NextStep>,
    /// 证明材料: the evidence required, present and missing (staff only; never on the
    /// consumer's view).
    pub evidence: crate::evidence::RefundEvidence,
}

fn parse<T>(what: &str, value: &str, parser: impl Fn(&str) -> Option<T>) -> EngineResult<T> {
    parser(value)
        .ok_or_else(|| EngineError::corrupt(format!("stored {what} {value:?} is not known")))
}

pub fn merchant(row: &MerchantRow) -> EngineResult<Merchant> {
    let settings: MerchantSettings = serde_json::from_str(&row.settings)
        .map_err(|e| EngineError::corrupt(format!("settings of {}: {e}", row.id)))?;
    Ok(Merchant {
        id: row.id.clone(),
        name: row.name.clone(),
        settings,
        balances: MerchantBalance::default(),
        created_at: from_micros(row.created_at_us),
    })
}

pub fn payment_state(row: &PaymentRow) -> EngineResult<PaymentState> {
    Ok(PaymentState {
        channel: row.channel,
        amount_fen: row.amount_fen,
        fee_fen: row.fee_fen,
        kind: row.kind,
        member: row.member,
        shipping_status: row
            .shipping_status
            .as_deref()
            .map(|s| parse("shipping status", s, ShippingStatus::parse))
            .transpose()?,
        captured_at: from_micros(row.captured_at_us),
        amount_refunded_fen: row.amount_refunded_fen,
        amount_in_flight_fen: row.amount_in_flight_fen,
        fee_returned_fen: row.fee_returned_fen,
        refund_count: row.refund_count,
        voided: row.voided,
    })
}

pub fn payment(row: &PaymentRow, refunds: &[RefundRow]) -> EngineResult<Payment> {
    let state = payment_state(row)?;
    let order = match (&row.order_no, state.shipping_status) {
        (Some(no), Some(status)) => Some(Order {
            merchant_order_no: no.clone(),
            shipping_status: status,
        }),
        _ => None,
    };
    Ok(Payment {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        terminal_id: row.terminal_id.clone(),
        channel: state.channel,
        amount: row.amount_fen,
        currency: CURRENCY,
        fee: row.fee_fen,
        kind: state.kind,
        member: row.member,
        payer: Payer {
            account: row.payer_account.clone(),
            bank: row.payer_bank.clone(),
        },
        voucher: Voucher {
            batch_no: row.batch_no.clone(),
            trace_no: row.trace_no.clone(),
            rrn: row.rrn.clone(),
        },
        order,
        amount_refunded: row.amount_refunded_fen,
        amount_in_flight: row.amount_in_flight_fen,
        refundable: state.refundable_fen(),
        voided: row.voided,
        captured_at: state.captured_at,
        created_at: from_micros(row.created_at_us),
        refunds: refunds
            .iter()
            .map(refund_summary)
            .collect::<EngineResult<_>>()?,
    })
}

fn refund_summary(row: &RefundRow) -> EngineResult<RefundSummary> {
    Ok(RefundSummary {
        id: row.id.clone(),
        merchant_refund_no: row.merchant_refund_no.clone(),
        refund_type: row.refund_type,
        status: row.status,
        amount: row.amount_fen,
        created_at: from_micros(row.created_at_us),
    })
}

/// Review reasons are stored comma-separated.
pub fn review_reasons(stored: &str) -> EngineResult<Vec<ReviewReason>> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse("review reason", s, ReviewReason::parse))
        .collect()
}

pub fn join_review_reasons(reasons: &[ReviewReason]) -> String {
    reasons.iter().map(|r| r.id()).collect::<Vec<_>>().join(",")
}

/// The destination of a refund: back along the route of its payment.
pub fn destination(channel: Channel, account: Option<&str>, bank: Option<&str>) -> Destination {
    Destination {
        channel,
        account: account.map(str::to_string),
        bank: bank.map(str::to_string),
        route: Route::Original,
    }
}

/// A refund with its timeline. `payment` supplies the destination.
pub fn refund(
    row: &RefundRow,
    payment: &PaymentRow,
    timeline: Vec<TimelineEvent>,
    next_step: Option<NextStep>,
) -> EngineResult<Refund> {
    let channel = row.channel;
    let reasons = review_reasons(&row.review_reasons)?;
    let review = match row.required_reviewer.as_deref() {
        Some(required) => Some(Review {
            required_by: parse("required reviewer", required, RequiredReviewer::parse)?,
            reasons,
            note: row.review_note.clone(),
            reviewed_by: row.reviewed_by.clone(),
        }),
        None => None,
    };
    Ok(Refund {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        payment_id: row.payment_id.clone(),
        merchant_refund_no: row.merchant_refund_no.clone(),
        channel,
        refund_type: row.refund_type,
        status: row.status,
        amount: row.amount_fen,
        currency: CURRENCY,
        fee_refunded: row.fee_refunded_fen,
        consumer_amount: row.amount_fen - row.deducted_fen,
        deductions: Vec::new(),
        reason: row.reason,
        note: row.note.clone(),
        requested_by: RequestedBy {
            role: row.requested_by_role,
            name: row.requested_by_name.clone(),
        },
        review,
        destination: match row.received_account.as_deref() {
            Some(received) if received == crate::transition::PAID_BY_MERCHANT => Destination {
                channel,
                account: None,
                bank: None,
                route: Route::Merchant,
            },
            // Once the channel says where the money went, that is the destination.
            Some(received) => Destination {
                channel,
                account: Some(received.to_string()),
                bank: None,
                route: Route::Reported,
            },
            None => destination(
                channel,
                payment.payer_account.as_deref(),
                payment.payer_bank.as_deref(),
            ),
        },
        tracking_no: row.tracking_no.clone(),
        failure_reason: row.failure_reason.clone(),
        expected_arrival_by: row.expected_arrival_by_us.map(from_micros),
        created_at: from_micros(row.created_at_us),
        updated_at: from_micros(row.updated_at_us),
        timeline,
        next_step,
        evidence: crate::evidence::RefundEvidence::default(),
    })
}
