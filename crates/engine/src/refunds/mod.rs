//! Refund use cases: create (every rule of the spec, idempotent on `merchant_refund_no`),
//! approve, reject, cancel, record returned goods, read with the timeline, list.
//!
//! - `create`: parse, plan under the payment's lock with `domain::decide`, write;
//! - `review`: approve, reject, cancel, returned goods, through [`crate::transition`];
//! - `read`: one refund with its timeline, or a page.
//!
//! Locking order, the same everywhere: the payment row first, then the merchant's balance,
//! then its audit head.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use yuanlu_domain::decide::{
    DecideContext, RefundAsk, RefundPlan, RefundRefusal, decide_refund_deducted,
};
use yuanlu_domain::deduction::{self, Deduction};
use yuanlu_domain::money::PositiveFen;
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole, SendState};
use yuanlu_domain::review::{DayTotals, RequiredReviewer};
use yuanlu_domain::time::{shanghai_date, to_micros};
use yuanlu_domain::transition;
use yuanlu_store::{BalanceRow, Conn, DayKey, DaySums, Db, PaymentRow, RefundFilter, RefundRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::{self, new_id};
use crate::ledger;
use crate::notify;
use crate::payments::{IDENTIFIER_CHARS_MAX, optional_text, parse_positive_amount};
use crate::timeline::{self, action};
use crate::tx_memo::TxMemo;
use crate::views::{self, Page, Refund};

mod batch;
mod create;
mod read;
mod review;

pub(crate) use crate::transition::{
    Change, apply_transition, complete_void, invalid, refund_money, refund_posting, void_or_refund,
};
pub(crate) use batch::{BatchStop, create_batch};
pub(crate) use create::{CreateFailure, CreateJob, create_alone, create_in};
pub(crate) use read::{refund_view, refund_view_of};

/// Longest note accepted on a refund or a review.
pub const NOTE_CHARS_MAX: usize = 500;
/// How many times a create is retried when a concurrent one took the same
/// `merchant_refund_no` for another payment between our check and our insert.
const CREATE_ATTEMPTS_MAX: usize = 2;
/// How many times a create aborted by a deadlock or serialization conflict runs again.
const CONFLICT_RETRIES_MAX: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct RequestedByInput {
    /// `merchant` (default) or `consumer` (a consumer's request relayed by the merchant).
    pub role: Option<RequesterRole>,
    /// Who asked, e.g. "cashier Li".
    pub name: Option<String>,
}

/// `POST /v1/refunds`.
#[derive(Debug, Clone)]
pub struct CreateRefund {
    pub payment_id: String,
    /// Fen; omitted means the whole refundable amount.
    pub amount: Option<AskedAmount>,
    pub reason: RefundReason,
    /// Unique per merchant; repeating it with the same payment and amount returns the
    /// existing refund. 1–64 of `0-9 A-Z a-z _ - | * @`.
    pub merchant_refund_no: String,
    /// Required when the reason is `other`.
    pub note: Option<String>,
    pub requested_by: Option<RequestedByInput>,
    /// Deductions agreed with the consumer (a handling fee, a restocking charge, tax), each
    /// `{kind, amount, reason}`: the consumer gets `amount` less their sum, the merchant
    /// keeps them. At most 10; their sum must be smaller than the refund's amount. Only the
    /// API takes them (never a POS void or refund).
    pub deductions: Vec<Deduction>,
}

/// An amount as the edge read it: fen (`PositiveFen`, at most `PAYMENT_AMOUNT_FEN_MAX`),
/// or something that is no amount, refused with `invalid_amount` in the order of the
/// use case's checks (for a refund: after the key's role and `merchant_refund_no`). The
/// web layer makes one from the JSON it received (`yuanlu_web::api::bodies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedAmount {
    Fen(PositiveFen),
    Invalid,
}

impl AskedAmount {
    /// The fen, or `invalid_amount`.
    pub fn fen(self) -> EngineResult<PositiveFen> {
        match self {
            AskedAmount::Fen(fen) => Ok(fen),
            AskedAmount::Invalid => Err(EngineError::Refused(RefundRefusal::InvalidAmount)),
        }
    }
}

impl From<i64> for AskedAmount {
    fn from(fen: i64) -> Self {
        parse_positive_amount(fen).map_or(AskedAmount::Invalid, AskedAmount::Fen)
    }
}

/// `POST /v1/refunds/{id}/approve|reject|cancel`.
#[derive(Debug, Clone, Default)]
pub struct ReviewNote {
    pub note: Option<String>,
}

/// `POST /v1/refunds/{id}/return`.
#[derive(Debug, Clone)]
pub struct RecordReturn {
    pub tracking_no: String,
}

/// Whether a create made a new refund or found the one its number already names.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(Box<Refund>),
    Existing(Box<Refund>),
}

/// Filters of `GET /v1/refunds`.
#[derive(Debug, Clone, Default)]
pub struct RefundQuery {
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
    pub channel: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub limit: i64,
    pub starting_after: Option<String>,
}
