//! What a channel statement says, whatever its file format: one [`StatementLine`] per
//! payment or refund the channel lists, and the totals the file declares about itself.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use yuanlu_domain::channel::Channel;

/// Whose statement this is, which is also its file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementChannel {
    /// WeChat Pay's trade bill (交易账单).
    Wechat,
    /// Alipay's business detail bill (业务明细).
    Alipay,
    /// The card network's settlement file (credit and debit cards).
    Card,
    /// yuanlu's own CSV, for channels without a format of their own (UnionPay QR).
    Yuanlu,
}

impl StatementChannel {
    pub const ALL: [StatementChannel; 4] = [
        StatementChannel::Wechat,
        StatementChannel::Alipay,
        StatementChannel::Card,
        StatementChannel::Yuanlu,
    ];

    /// The id used on the command line and in the API (`--channel wechat`).
    pub fn id(self) -> &'static str {
        match self {
            StatementChannel::Wechat => "wechat",
            StatementChannel::Alipay => "alipay",
            StatementChannel::Card => "card",
            StatementChannel::Yuanlu => "yuanlu",
        }
    }

    pub fn parse_id(id: &str) -> Option<StatementChannel> {
        StatementChannel::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The statement that lists a payment channel's transactions.
    pub fn for_channel(channel: Channel) -> StatementChannel {
        match channel {
            Channel::Wechat => StatementChannel::Wechat,
            Channel::Alipay => StatementChannel::Alipay,
            Channel::CreditCard | Channel::DebitCard => StatementChannel::Card,
            Channel::UnionpayQr => StatementChannel::Yuanlu,
        }
    }

    /// Whether this statement lists `channel`'s transactions. yuanlu's own CSV may be used
    /// for any channel.
    pub fn covers(self, channel: Channel) -> bool {
        self == StatementChannel::Yuanlu || StatementChannel::for_channel(channel) == self
    }
}

/// A sale or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Payment,
    Refund,
}

impl LineKind {
    pub fn id(self) -> &'static str {
        match self {
            LineKind::Payment => "payment",
            LineKind::Refund => "refund",
        }
    }
}

/// What the channel says became of the line's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// The money moved.
    Succeeded,
    /// Accepted, not yet final.
    Processing,
    /// Refused or failed: no money moved.
    Failed,
    /// Closed or revoked before any money moved for good.
    Closed,
}

impl LineStatus {
    pub fn id(self) -> &'static str {
        match self {
            LineStatus::Succeeded => "succeeded",
            LineStatus::Processing => "processing",
            LineStatus::Failed => "failed",
            LineStatus::Closed => "closed",
        }
    }
}

/// One payment or refund as the channel lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The 1-based line of the file it was read from.
    pub line_no: u64,
    pub kind: LineKind,
    /// The channel's own number: WeChat's 微信订单号 / 微信退款单号, Alipay's 支付宝交易号,
    /// the card network's reference.
    pub channel_txn_id: Option<String>,
    /// The number yuanlu sent: our payment id (`pay_…`) for a payment, our refund id
    /// (`rf_…`) for a refund. Empty when the channel does not list it.
    pub our_ref: String,
    /// For a refund, our payment id when the statement lists it (WeChat's and Alipay's
    /// 商户订单号 on a refund row); `None` for payments.
    pub payment_ref: Option<String>,
    /// Always non-negative: a refund's amount is what went back to the payer.
    pub amount_fen: i64,
    pub status: LineStatus,
    pub occurred_at: DateTime<Utc>,
    /// The payer as the channel shows it (masked card, WeChat openid, Alipay account).
    pub account: Option<String>,
}

/// The totals a statement file declares about its own detail lines: every line counted,
/// amounts summed per kind whatever the line's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Number of detail lines (payments and refunds).
    pub lines: u64,
    /// Sum of the payment lines' amounts.
    pub payment_fen: i64,
    /// Sum of the refund lines' amounts (positive).
    pub refund_fen: i64,
}

impl Totals {
    /// The totals of `lines`, or `None` if a sum does not fit in an `i64`.
    pub fn of(lines: &[StatementLine]) -> Option<Totals> {
        let mut totals = Totals::default();
        for line in lines {
            totals.add(line)?;
        }
        Some(totals)
    }

    /// Adds one line; `None` on overflow.
    pub fn add(&mut self, line: &StatementLine) -> Option<()> {
        self.lines += 1;
        match line.kind {
            LineKind::Payment => {
                self.payment_fen = self.payment_fen.checked_add(line.amount_fen)?
            }
            LineKind::Refund => self.refund_fen = self.refund_fen.checked_add(line.amount_fen)?,
        }
        Some(())
    }
}

/// A channel's statement for one business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub channel: StatementChannel,
    /// The Asia/Shanghai calendar day the statement covers.
    pub business_date: NaiveDate,
    pub lines: Vec<StatementLine>,
    /// What the file's summary rows, footer or trailer declare (already checked against
    /// `lines` by the parser); `None` for formats without totals.
    pub declared_totals: Option<Totals>,
}
