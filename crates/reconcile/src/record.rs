//! What yuanlu's books say about a payment or refund, as the matcher needs it. The caller
//! loads the records of one channel and business date; the matcher does not filter.

use serde::{Deserialize, Serialize};

use crate::statement::LineKind;

/// Where yuanlu thinks a payment or refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OurStatus {
    /// Captured (a payment) or confirmed paid by the channel (a refund).
    Succeeded,
    /// Sent to the channel, outcome not yet known (`sent`, `processing`, `abnormal`).
    Processing,
    /// Failed, rejected or canceled: no money should have moved.
    Failed,
    /// Anything else: not yet sent (pending review, queued), voided.
    Other,
}

impl OurStatus {
    pub fn id(self) -> &'static str {
        match self {
            OurStatus::Succeeded => "succeeded",
            OurStatus::Processing => "processing",
            OurStatus::Failed => "failed",
            OurStatus::Other => "other",
        }
    }
}

/// One payment or refund from yuanlu's books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurRecord {
    pub kind: LineKind,
    /// Our payment id (`pay_…`) or refund id (`rf_…`): what we sent the channel.
    pub our_ref: String,
    /// The channel's number, once the channel told us.
    pub channel_txn_id: Option<String>,
    pub amount_fen: i64,
    pub status: OurStatus,
    /// For a refund: our payment id.
    pub payment_ref: Option<String>,
    /// For a payment: the net settlement has credited the merchant for it over all
    /// settlement runs so far — the sale net of its fee, minus refunds debited, plus fees
    /// returned. `None` while unsettled. For a fully refunded payment it is 0 (fee returned)
    /// or negative (fee kept); more than 0 is `credited_after_refund`.
    pub settled_to_merchant_fen: Option<i64>,
    /// For a payment: the sum of its succeeded refunds. 0 for refunds.
    pub refunded_fen: i64,
}
