//! The payment channels a POS acquirer sees, with the spec's default fees, refund windows and
//! fee-refund policies. Per-merchant overrides live in [`crate::settings`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::fees::FeeRefundPolicy;

/// A payment channel: the route the money came by and goes back along.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    CreditCard,
    DebitCard,
    Wechat,
    Alipay,
    UnionpayQr,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::CreditCard,
        Channel::DebitCard,
        Channel::Wechat,
        Channel::Alipay,
        Channel::UnionpayQr,
    ];

    /// The stable id used in the API and in storage.
    pub fn id(self) -> &'static str {
        match self {
            Channel::CreditCard => "credit_card",
            Channel::DebitCard => "debit_card",
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
            Channel::UnionpayQr => "unionpay_qr",
        }
    }

    pub fn parse(id: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.id() == id)
    }

    /// A person's name for the channel, used in timelines.
    pub fn display_name(self) -> &'static str {
        match self {
            Channel::CreditCard => "credit card",
            Channel::DebitCard => "debit card",
            Channel::Wechat => "WeChat Pay",
            Channel::Alipay => "Alipay",
            Channel::UnionpayQr => "UnionPay QR",
        }
    }

    /// Card and UnionPay QR payments can be voided (撤销) on the day of capture; wallet
    /// payments cannot: the wallets have no same-day reversal for a POS acquirer.
    pub fn supports_void(self) -> bool {
        matches!(
            self,
            Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr
        )
    }

    /// Merchant discount rate in parts per million.
    pub fn default_fee_rate_ppm(self) -> i64 {
        match self {
            Channel::CreditCard | Channel::UnionpayQr => 6_000,
            Channel::DebitCard => 5_000,
            Channel::Wechat | Channel::Alipay => 3_800,
        }
    }

    /// Fee cap per payment in fen, where one applies (debit cards: 25.00 CNY).
    pub fn default_fee_cap_fen(self) -> Option<i64> {
        match self {
            Channel::DebitCard => Some(2_500),
            _ => None,
        }
    }

    pub fn default_refund_window_days(self) -> i64 {
        match self {
            Channel::Wechat | Channel::Alipay => 365,
            _ => 180,
        }
    }

    pub fn default_fee_refund(self) -> FeeRefundPolicy {
        match self {
            Channel::Wechat | Channel::Alipay => FeeRefundPolicy::Proportional,
            _ => FeeRefundPolicy::None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

try_from_text!(Channel, "channel");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.id()), Some(channel));
        }
        assert_eq!(Channel::parse("paypal"), None);
    }

    #[test]
    fn spec_fee_table_defaults() {
        assert_eq!(Channel::CreditCard.default_fee_rate_ppm(), 6_000);
        assert_eq!(Channel::DebitCard.default_fee_rate_ppm(), 5_000);
        assert_eq!(Channel::DebitCard.default_fee_cap_fen(), Some(2_500));
        assert_eq!(Channel::Wechat.default_fee_rate_ppm(), 3_800);
        assert_eq!(Channel::Alipay.default_fee_rate_ppm(), 3_800);
        assert_eq!(Channel::UnionpayQr.default_fee_rate_ppm(), 6_000);
        for c in [
            Channel::CreditCard,
            Channel::Wechat,
            Channel::Alipay,
            Channel::UnionpayQr,
        ] {
            assert_eq!(c.default_fee_cap_fen(), None, "{c} has no cap");
        }
    }

    #[test]
    fn spec_refund_windows() {
        assert_eq!(Channel::CreditCard.default_refund_window_days(), 180);
        assert_eq!(Channel::DebitCard.default_refund_window_days(), 180);
        assert_eq!(Channel::Wechat.default_refund_window_days(), 365);
        assert_eq!(Channel::Alipay.default_refund_window_days(), 365);
        assert_eq!(Channel::UnionpayQr.default_refund_window_days(), 180);
    }

    #[test]
    fn wallets_return_fees_proportionally_and_cards_do_not() {
        assert_eq!(
            Channel::Wechat.default_fee_refund(),
            FeeRefundPolicy::Proportional
        );
        assert_eq!(
            Channel::Alipay.default_fee_refund(),
            FeeRefundPolicy::Proportional
        );
        for c in [Channel::CreditCard, Channel::DebitCard, Channel::UnionpayQr] {
            assert_eq!(c.default_fee_refund(), FeeRefundPolicy::None);
        }
    }

    #[test]
    fn only_cards_and_unionpay_qr_can_be_voided() {
        assert!(Channel::CreditCard.supports_void());
        assert!(Channel::DebitCard.supports_void());
        assert!(Channel::UnionpayQr.supports_void());
        assert!(!Channel::Wechat.supports_void());
        assert!(!Channel::Alipay.supports_void());
    }
}
