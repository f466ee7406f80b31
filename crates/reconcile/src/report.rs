//! The outcome of matching a statement: a class per line and record, totals per class, and
//! an item per discrepancy (each becomes an exception an operator resolves with a note).

use serde::{Deserialize, Serialize};

use crate::statement::LineKind;

/// The spec's reconciliation classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconClass {
    /// Both sides agree.
    Matched,
    /// Same payment or refund, same status, different amounts.
    AmountMismatch,
    /// yuanlu says succeeded; the statement does not list it.
    MissingInChannel,
    /// The statement lists a payment or refund yuanlu has no record of.
    UnexpectedInChannel,
    /// The statement lists a payment or refund again after an earlier line for it.
    DuplicateInChannel,
    /// One side says succeeded and the other does not, or yuanlu says failed while the
    /// channel says processing.
    StatusMismatch,
    /// A fully refunded payment for which settlement still credited the merchant.
    CreditedAfterRefund,
}

impl ReconClass {
    pub const ALL: [ReconClass; 7] = [
        ReconClass::Matched,
        ReconClass::AmountMismatch,
        ReconClass::MissingInChannel,
        ReconClass::UnexpectedInChannel,
        ReconClass::DuplicateInChannel,
        ReconClass::StatusMismatch,
        ReconClass::CreditedAfterRefund,
    ];

    /// The stable id used in the API and in storage.
    pub fn id(self) -> &'static str {
        match self {
            ReconClass::Matched => "matched",
            ReconClass::AmountMismatch => "amount_mismatch",
            ReconClass::MissingInChannel => "missing_in_channel",
            ReconClass::UnexpectedInChannel => "unexpected_in_channel",
            ReconClass::DuplicateInChannel => "duplicate_in_channel",
            ReconClass::StatusMismatch => "status_mismatch",
            ReconClass::CreditedAfterRefund => "credited_after_refund",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many lines or records ended in a class, and their amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClassTotal {
    pub count: u64,
    /// Sum of the statement lines' amounts (0 for `missing_in_channel`).
    pub channel_fen: i64,
    /// Sum of our records' amounts (0 for `unexpected_in_channel`).
    pub our_fen: i64,
}

/// A discrepancy: one statement line or record that did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconItem {
    pub class: ReconClass,
    pub kind: LineKind,
    /// The statement line, if the statement lists it.
    pub line_no: Option<u64>,
    pub our_ref: Option<String>,
    pub channel_txn_id: Option<String>,
    pub our_amount_fen: Option<i64>,
    pub channel_amount_fen: Option<i64>,
    /// A sentence for the operator.
    pub detail: String,
}

/// The outcome of [`crate::reconcile`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconReport {
    /// Statement lines read.
    pub lines: u64,
    /// Our records given.
    pub records: u64,
    /// Totals per class, in [`ReconClass::ALL`] order.
    pub totals: [ClassTotal; 7],
    /// Our records neither on the statement nor succeeded (processing, failed, other): the
    /// channel need not list them, so they are in no class.
    pub unlisted_not_succeeded: u64,
    /// Every line or record in a class other than `matched`, lines in file order first, then
    /// records missing from the statement in the order given.
    pub items: Vec<ReconItem>,
}

impl ReconReport {
    /// The totals of one class.
    pub fn total(&self, class: ReconClass) -> ClassTotal {
        self.totals.get(class.index()).copied().unwrap_or_default()
    }

    /// Whether every line and record matched.
    pub fn is_clean(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn count(&mut self, class: ReconClass, channel_fen: i64, our_fen: i64) {
        if let Some(total) = self.totals.get_mut(class.index()) {
            total.count += 1;
            total.channel_fen = total.channel_fen.saturating_add(channel_fen);
            total.our_fen = total.our_fen.saturating_add(our_fen);
        }
    }
}
