//! Settlement: the statement of one merchant for one business date, answering "after this
//! return, how much will be credited to my account, and why?" (入户金额).
//!
//! A business date is a calendar day in Asia/Shanghai; its activity, weekends and holidays
//! included, is paid out on the next business day after it (T+1, [`BusinessCalendar`]).
//! The activity of a date is:
//!
//! - the payments captured that day (sales, and the fee charged on each);
//! - the voids completed that day (撤销: the sale reversed and its whole fee returned);
//! - the refunds debited that day, when they were queued, less the fee each returns;
//! - the refunds credited back that day: failed, or canceled after being queued, which
//!   gives the merchant back what was debited (the amount less the fee it had returned);
//! - the deductions of the refunds debited that day (issue 15 item 2: a handling fee, a
//!   restocking charge, tax agreed with the consumer), which the merchant keeps, one line
//!   each, and the deductions of the refunds credited back, charged again.
//!
//! [`settle`] turns that activity and the carried balance into a [`Statement`]:
//!
//! ```text
//! net    = sales − fees − (voids − void fees) − refunds + refund fees returned
//!          + (credited back − their fees) + deductions − deductions released
//! total  = opening carried (≤ 0) + net
//! payout = max(0, total)              closing carried = min(0, total)
//! ```
//!
//! with one [`StatementLine`] per payment, void and refund, whose `net_fen` sum to `net`, a
//! plain-language [`Statement::explain`], and the ledger postings the settlement makes
//! (payout; carry forward or carry applied). Settling the same input again gives the
//! identical statement, whatever the order of the input lines, so a re-run moves no money
//! twice.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::calendar::BusinessCalendar;
use crate::channel::Channel;
use crate::deduction::DeductionKind;
use crate::ledger::{self, InvalidPosting, Posting, check_parts};
use crate::money::format_cny;
use crate::time::{shanghai, shanghai_date};

mod explain;

/// A payment captured on the business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLine {
    pub payment_id: String,
    pub channel: Channel,
    pub amount_fen: i64,
    pub fee_fen: i64,
    /// Must fall on the business date in Asia/Shanghai.
    pub captured_at: DateTime<Utc>,
}

/// A void completed on the business date: the payment reversed, its whole fee returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidLine {
    pub refund_id: String,
    pub payment_id: String,
    pub channel: Channel,
    pub amount_fen: i64,
    /// The payment's fee, returned in full.
    pub fee_fen: i64,
}

/// Whether a refund line debits the merchant or credits it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundLineKind {
    /// Queued that day: debited from the merchant, less the fee it returns.
    Debited,
    /// Failed, canceled after being queued, or paid by the merchant directly (an operator's
    /// reroute to the merchant), that day: credited back, less the fee it had returned.
    CreditedBack,
}

/// A refund debited or credited back on the business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub refund_id: String,
    pub payment_id: String,
    pub channel: Channel,
    pub amount_fen: i64,
    /// The part of the payment's fee this refund returns.
    pub fee_refunded_fen: i64,
    pub kind: RefundLineKind,
}

/// One deduction of a refund debited (or, `released`, credited back) on the business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductionLine {
    pub refund_id: String,
    pub payment_id: String,
    pub channel: Channel,
    /// 1-based position of the deduction among its refund's.
    pub line_no: i64,
    pub kind: DeductionKind,
    pub amount_fen: i64,
    pub reason: String,
    /// The refund was credited back: the merchant no longer keeps this deduction.
    pub released: bool,
}

/// What a deduction line of a statement is: which of its refund's deductions, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineDeduction {
    pub line_no: i64,
    pub kind: DeductionKind,
    pub reason: String,
}

/// Everything one merchant's settlement of one business date reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementInput {
    pub merchant_id: String,
    pub business_date: NaiveDate,
    /// The carried balance before this date, zero or negative (the merchant's debt).
    pub opening_carried_fen: i64,
    pub payments: Vec<PaymentLine>,
    pub voids: Vec<VoidLine>,
    pub refunds: Vec<RefundLine>,
    /// The deductions of the refunds debited or credited back on the date.
    #[serde(default)]
    pub deductions: Vec<DeductionLine>,
}

/// What a statement line is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Payment,
    Void,
    Refund,
    RefundCreditedBack,
    /// A deduction the merchant keeps of a refund debited that day.
    Deduction,
    /// A deduction of a refund credited back that day, charged again.
    DeductionReleased,
}

impl LineKind {
    pub const ALL: [LineKind; 6] = [
        LineKind::Payment,
        LineKind::Void,
        LineKind::Refund,
        LineKind::RefundCreditedBack,
        LineKind::Deduction,
        LineKind::DeductionReleased,
    ];

    /// The stable id used in the API and in storage.
    pub fn id(self) -> &'static str {
        match self {
            LineKind::Payment => "payment",
            LineKind::Void => "void",
            LineKind::Refund => "refund",
            LineKind::RefundCreditedBack => "refund_credited_back",
            LineKind::Deduction => "deduction",
            LineKind::DeductionReleased => "deduction_released",
        }
    }

    pub fn parse(id: &str) -> Option<LineKind> {
        LineKind::ALL.into_iter().find(|k| k.id() == id)
    }
}

impl std::fmt::Display for LineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One payment, void or refund of the statement.
///
/// `amount_fen` and `fee_fen` are as the event has them (never negative): the sale and its
/// fee, the voided amount and the fee returned, the refund and the fee it returns. `net_fen`
/// is the event's effect on what the merchant is credited: `+(amount − fee)` for a payment
/// and a refund credited back, `−(amount − fee)` for a void and a refund debited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementLine {
    pub kind: LineKind,
    /// The payment id of a payment; the refund id of a void or refund.
    pub reference: String,
    pub channel: Channel,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub net_fen: i64,
    /// The line's English as settled, stored only by statements settled before the line's
    /// fields said all of it; empty (and not stored) since. [`StatementLine::english`] says
    /// a line in English, and the edge in the reader's language, from the fields
    /// (`yuanlu_web::present::statement`): a million sentences are not written at
    /// settlement to be read by nobody.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub explanation: String,
    /// The payment of a void or refund (a payment's is its `reference`). Absent in
    /// statements settled before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// When a payment was captured. Absent for voids and refunds, and in statements settled
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
    /// For a deduction line: which deduction of the refund, its kind and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduction: Option<LineDeduction>,
}

impl StatementLine {
    /// The ledger posting the line's event made when it happened (a refund credited back is
    /// [`ledger::refund_released`]). Its effect on the merchant's unsettled account is
    /// `−net_fen` (a credit of what the merchant is owed).
    pub fn posting(&self, merchant_id: &str) -> Result<Posting, InvalidPosting> {
        let (m, c, a, f) = (merchant_id, self.channel, self.amount_fen, self.fee_fen);
        match self.kind {
            LineKind::Payment => ledger::payment_captured(m, c, a, f),
            LineKind::Void => ledger::void_completed(m, c, a, f),
            LineKind::Refund => ledger::refund_queued(m, c, a, f),
            LineKind::RefundCreditedBack => ledger::refund_released(m, c, a, f),
            LineKind::Deduction => ledger::refund_deducted(m, c, a),
            LineKind::DeductionReleased => ledger::deduction_released(m, c, a),
        }
    }
}

/// One merchant's settlement of one business date. See the module documentation for the
/// arithmetic; all amounts are fen, counts are lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Statement {
    pub merchant_id: String,
    pub business_date: NaiveDate,
    /// The next business day after `business_date`.
    pub payout_date: NaiveDate,
    /// The carried balance before this date (≤ 0).
    pub opening_carried_fen: i64,
    pub sales_count: i64,
    pub sales_fen: i64,
    /// Fees charged on the sales.
    pub fees_fen: i64,
    pub voids_count: i64,
    pub voids_fen: i64,
    /// Fees returned by the voids (each its payment's whole fee).
    pub void_fees_returned_fen: i64,
    /// Refunds debited (queued) on the date.
    pub refunds_count: i64,
    pub refunds_fen: i64,
    /// Fees returned by the refunds debited.
    pub refund_fees_returned_fen: i64,
    /// Refunds credited back (failed, or canceled after being queued) on the date.
    pub credited_back_count: i64,
    pub credited_back_fen: i64,
    /// The fees those refunds had returned, charged again.
    pub credited_back_fees_fen: i64,
    /// Deductions the merchant keeps of the refunds debited on the date (one line each).
    #[serde(default)]
    pub deductions_count: i64,
    #[serde(default)]
    pub deductions_fen: i64,
    /// Deductions of the refunds credited back on the date, charged again.
    #[serde(default)]
    pub deductions_released_fen: i64,
    /// The date's activity: the sum of the lines' `net_fen`.
    pub net_fen: i64,
    /// `opening_carried_fen + net_fen`.
    pub total_fen: i64,
    /// `max(0, total)`: credited to the merchant's bank account on `payout_date`.
    pub payout_fen: i64,
    /// `min(0, total)`: the debt carried to later settlements.
    pub closing_carried_fen: i64,
    /// One per payment, void and refund, sorted by reference (then kind).
    pub lines: Vec<StatementLine>,
    /// What the settlement posts: carry applied (the debt shrank) or carry forward (it
    /// grew), then the payout; empty postings are left out.
    #[schema(value_type = Vec<Object>)]
    pub postings: Vec<Posting>,
}

/// The input cannot be settled as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    #[error("the opening carried balance must be zero or negative, got {opening_carried_fen} fen")]
    OpeningCarriedPositive { opening_carried_fen: i64 },
    #[error("{kind} {reference}: {problem}")]
    InvalidLine {
        kind: LineKind,
        reference: String,
        problem: InvalidPosting,
    },
    #[error("payment {payment_id} was captured on {captured_on}, not on {business_date}")]
    PaymentNotOnBusinessDate {
        payment_id: String,
        captured_on: NaiveDate,
        business_date: NaiveDate,
    },
    #[error("{kind} {reference} appears more than once")]
    DuplicateLine { kind: LineKind, reference: String },
    #[error("the statement's totals exceed the range of i64 fen")]
    TooLarge,
    /// A settlement posting was refused; cannot happen, as its amounts are positive.
    #[error("settlement posting: {0}")]
    Posting(InvalidPosting),
}

/// Sums of one statement, exact in `i128` until the end.
#[derive(Default)]
struct Totals {
    sales_count: i128,
    sales: i128,
    fees: i128,
    voids_count: i128,
    voids: i128,
    void_fees: i128,
    refunds_count: i128,
    refunds: i128,
    refund_fees: i128,
    credited_back_count: i128,
    credited_back: i128,
    credited_back_fees: i128,
    deductions_count: i128,
    deductions: i128,
    deductions_released: i128,
}

fn fen(value: i128) -> Result<i64, SettlementError> {
    i64::try_from(value).map_err(|_| SettlementError::TooLarge)
}

/// `+994.00` or `−994.00` (with a minus sign, U+2212).
fn signed_cny(amount_fen: i64) -> String {
    let sign = if amount_fen < 0 { '−' } else { '+' };
    format!("{sign}{}", format_cny_abs(amount_fen))
}

pub(crate) fn format_cny_abs(amount_fen: i64) -> String {
    let text = format_cny(amount_fen);
    match text.strip_prefix('-') {
        Some(abs) => abs.to_owned(),
        None => text,
    }
}

fn line_error(kind: LineKind, reference: &str) -> impl FnOnce(InvalidPosting) -> SettlementError {
    let reference = reference.to_owned();
    move |problem| SettlementError::InvalidLine {
        kind,
        reference,
        problem,
    }
}

/// Settles one merchant's business date. Fails, moving nothing, if the opening carried
/// balance is positive, an amount is negative or a fee exceeds its amount, a payment was not
/// captured on the business date (Asia/Shanghai), a payment, a refund's debit or a refund's
/// credit-back appears twice (a void and a debited refund share the refund ids), or a total
/// leaves `i64`.
// Long on purpose: one pass over the day's postings building lines, totals and checks together; each arm is short, and splitting would pass the running totals around.
pub fn settle(
    input: &SettlementInput,
    calendar: &BusinessCalendar,
) -> Result<Statement, SettlementError> {
    if input.opening_carried_fen > 0 {
        return Err(SettlementError::OpeningCarriedPositive {
            opening_carried_fen: input.opening_carried_fen,
        });
    }
    // A payment id, a refund's debit (void or refund) and a refund's credit-back may each
    // appear once: slots 0, 1 and 2.
    let mut keys: Vec<(u8, LineKind, &str)> = Vec::new();
    let mut totals = Totals::default();
    let mut lines = Vec::new();

    for p in &input.payments {
        let kind = LineKind::Payment;
        check_parts(p.amount_fen, Some(("fee", p.fee_fen)))
            .map_err(line_error(kind, &p.payment_id))?;
        let captured_on = shanghai_date(p.captured_at);
        if captured_on != input.business_date {
            return Err(SettlementError::PaymentNotOnBusinessDate {
                payment_id: p.payment_id.clone(),
                captured_on,
                business_date: input.business_date,
            });
        }
        keys.push((0, kind, &p.payment_id));
        totals.sales_count += 1;
        totals.sales += i128::from(p.amount_fen);
        totals.fees += i128::from(p.fee_fen);
        let net = p.amount_fen - p.fee_fen;
        lines.push(StatementLine {
            kind,
            reference: p.payment_id.clone(),
            channel: p.channel,
            amount_fen: p.amount_fen,
            fee_fen: p.fee_fen,
            net_fen: net,
            explanation: String::new(),
            payment_id: None,
            captured_at: Some(p.captured_at),
            deduction: None,
        });
    }

    for v in &input.voids {
        let kind = LineKind::Void;
        check_parts(v.amount_fen, Some(("fee", v.fee_fen)))
            .map_err(line_error(kind, &v.refund_id))?;
        keys.push((1, kind, &v.refund_id));
        totals.voids_count += 1;
        totals.voids += i128::from(v.amount_fen);
        totals.void_fees += i128::from(v.fee_fen);
        let net = -(v.amount_fen - v.fee_fen);
        lines.push(StatementLine {
            kind,
            reference: v.refund_id.clone(),
            channel: v.channel,
            amount_fen: v.amount_fen,
            fee_fen: v.fee_fen,
            net_fen: net,
            explanation: String::new(),
            payment_id: Some(v.payment_id.clone()),
            captured_at: None,
            deduction: None,
        });
    }

    for r in &input.refunds {
        let kind = match r.kind {
            RefundLineKind::Debited => LineKind::Refund,
            RefundLineKind::CreditedBack => LineKind::RefundCreditedBack,
        };
        check_parts(r.amount_fen, Some(("fee refunded", r.fee_refunded_fen)))
            .map_err(line_error(kind, &r.refund_id))?;
        let (amount, fee) = (i128::from(r.amount_fen), i128::from(r.fee_refunded_fen));
        let magnitude = r.amount_fen - r.fee_refunded_fen;
        let net = match r.kind {
            RefundLineKind::Debited => {
                keys.push((1, kind, &r.refund_id));
                totals.refunds_count += 1;
                totals.refunds += amount;
                totals.refund_fees += fee;
                -magnitude
            }
            RefundLineKind::CreditedBack => {
                keys.push((2, kind, &r.refund_id));
                totals.credited_back_count += 1;
                totals.credited_back += amount;
                totals.credited_back_fees += fee;
                magnitude
            }
        };
        lines.push(StatementLine {
            kind,
            reference: r.refund_id.clone(),
            channel: r.channel,
            amount_fen: r.amount_fen,
            fee_fen: r.fee_refunded_fen,
            net_fen: net,
            explanation: String::new(),
            payment_id: Some(r.payment_id.clone()),
            captured_at: None,
            deduction: None,
        });
    }

    for d in &input.deductions {
        let kind = if d.released {
            LineKind::DeductionReleased
        } else {
            LineKind::Deduction
        };
        check_parts(d.amount_fen, None).map_err(line_error(kind, &d.refund_id))?;
        let net = if d.released {
            totals.deductions_released += i128::from(d.amount_fen);
            -d.amount_fen
        } else {
            totals.deductions_count += 1;
            totals.deductions += i128::from(d.amount_fen);
            d.amount_fen
        };
        lines.push(StatementLine {
            kind,
            reference: d.refund_id.clone(),
            channel: d.channel,
            amount_fen: d.amount_fen,
            fee_fen: 0,
            net_fen: net,
            explanation: String::new(),
            payment_id: Some(d.payment_id.clone()),
            captured_at: None,
            deduction: Some(LineDeduction {
                line_no: d.line_no,
                kind: d.kind,
                reason: d.reason.clone(),
            }),
        });
    }

    let mut seen: BTreeSet<(u8, &str)> = BTreeSet::new();
    for (slot, kind, reference) in keys {
        if !seen.insert((slot, reference)) {
            return Err(SettlementError::DuplicateLine {
                kind,
                reference: reference.to_owned(),
            });
        }
    }

    let line_no = |l: &StatementLine| l.deduction.as_ref().map_or(0, |d| d.line_no);
    lines.sort_by(|a, b| {
        (a.reference.as_str(), a.kind, line_no(a)).cmp(&(b.reference.as_str(), b.kind, line_no(b)))
    });

    let t = &totals;
    let net = t.sales - t.fees - (t.voids - t.void_fees) - t.refunds
        + t.refund_fees
        + (t.credited_back - t.credited_back_fees)
        + t.deductions
        - t.deductions_released;
    let opening = i128::from(input.opening_carried_fen);
    let total = opening + net;
    let payout = total.max(0);
    let closing = total.min(0);

    // The debt moves from `opening` to `closing`: when it shrinks (closing > opening) the
    // difference is deducted from what the merchant is owed (carry applied); when it grows,
    // the shortfall leaves the unsettled account (carry forward).
    let change = closing - opening;
    let merchant = input.merchant_id.as_str();
    let carry_error = SettlementError::Posting;
    let mut postings = Vec::new();
    if change > 0 {
        postings.push(ledger::carry_applied(merchant, fen(change)?).map_err(carry_error)?);
    }
    if payout > 0 {
        postings.push(ledger::settlement_payout(merchant, fen(payout)?).map_err(carry_error)?);
    }
    if change < 0 {
        postings.push(ledger::carry_forward(merchant, fen(-change)?).map_err(carry_error)?);
    }

    Ok(Statement {
        merchant_id: input.merchant_id.clone(),
        business_date: input.business_date,
        payout_date: calendar.next_business_day(input.business_date),
        opening_carried_fen: input.opening_carried_fen,
        sales_count: fen(t.sales_count)?,
        sales_fen: fen(t.sales)?,
        fees_fen: fen(t.fees)?,
        voids_count: fen(t.voids_count)?,
        voids_fen: fen(t.voids)?,
        void_fees_returned_fen: fen(t.void_fees)?,
        refunds_count: fen(t.refunds_count)?,
        refunds_fen: fen(t.refunds)?,
        refund_fees_returned_fen: fen(t.refund_fees)?,
        credited_back_count: fen(t.credited_back_count)?,
        credited_back_fen: fen(t.credited_back)?,
        credited_back_fees_fen: fen(t.credited_back_fees)?,
        deductions_count: fen(t.deductions_count)?,
        deductions_fen: fen(t.deductions)?,
        deductions_released_fen: fen(t.deductions_released)?,
        net_fen: fen(net)?,
        total_fen: fen(total)?,
        payout_fen: fen(payout)?,
        closing_carried_fen: fen(closing)?,
        lines,
        postings,
    })
}
