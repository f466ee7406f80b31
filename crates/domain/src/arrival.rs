//! When a refund should reach the consumer once the channel has accepted it.
//!
//! The spec's rules ([`ArrivalRules::default`]): credit and debit cards and UnionPay QR within
//! 3 business days; WeChat Pay and Alipay within 2 hours to a balance (零钱, 余额, Huabei) and
//! within 3 business days to a bank card. Card channels always pay back to a bank card; they
//! carry a balance rule only so that every channel has both, and it equals their bank-card
//! rule.
//!
//! Definitions, for a refund the channel accepted at instant `t`:
//!
//! - **within N hours** means by `t + N hours`, whatever the day: wallets credit balances
//!   around the clock, holidays included.
//! - **within N business days** means by the end (23:59:59.999999 Asia/Shanghai, returned as
//!   a UTC instant) of the N-th business day strictly after `t`'s Shanghai date, business days
//!   being those of the [`BusinessCalendar`]. The day of acceptance never counts, even when it
//!   is a business day and the refund was accepted in the morning; with N = 0 the deadline is
//!   the end of the day of acceptance. Example: accepted Friday 2026-02-13 at 15:00 Shanghai
//!   by card, 3 business days are Sat 2026-02-14 (a 调休 working day), Tue 2026-02-24 and
//!   Wed 2026-02-25 (the Spring Festival runs Feb 15–23), so the refund is expected by
//!   2026-02-25 23:59:59.999999 Shanghai, 2026-02-25T15:59:59.999999Z.
//!
//! Outside the calendar's years the business days are Monday–Friday;
//! [`ArrivalRules::expected_arrival`] says when that fallback was used.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::BusinessCalendar;
use crate::channel::Channel;
use crate::time::{shanghai_date, shanghai_day_bounds};

/// Where a refund is paid back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    /// A wallet balance: WeChat 零钱, Alipay 余额 or Huabei.
    Balance,
    /// A bank card: the card paid with, or the card used inside the wallet or app.
    BankCard,
}

/// How long a refund may take to arrive after the channel accepted it. See the module
/// documentation for the exact meaning of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalRule {
    /// Within this many hours of acceptance.
    Hours(u32),
    /// By the end of the N-th business day after the Shanghai date of acceptance.
    BusinessDays(u32),
}

/// The arrival rules of one channel, per destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelArrival {
    pub balance: ArrivalRule,
    pub bank_card: ArrivalRule,
}

impl ChannelArrival {
    /// The spec's rules for `channel`.
    pub fn default_for(channel: Channel) -> Self {
        match channel {
            Channel::Wechat | Channel::Alipay => Self {
                balance: ArrivalRule::Hours(2),
                bank_card: ArrivalRule::BusinessDays(3),
            },
            Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr => Self {
                balance: ArrivalRule::BusinessDays(3),
                bank_card: ArrivalRule::BusinessDays(3),
            },
        }
    }

    pub fn rule(&self, destination: DestinationKind) -> ArrivalRule {
        match destination {
            DestinationKind::Balance => self.balance,
            DestinationKind::BankCard => self.bank_card,
        }
    }
}

/// The arrival rules of every channel. [`ArrivalRules::default`] is the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArrivalRules {
    pub credit_card: ChannelArrival,
    pub debit_card: ChannelArrival,
    pub wechat: ChannelArrival,
    pub alipay: ChannelArrival,
    pub unionpay_qr: ChannelArrival,
}

impl Default for ArrivalRules {
    fn default() -> Self {
        Self {
            credit_card: ChannelArrival::default_for(Channel::CreditCard),
            debit_card: ChannelArrival::default_for(Channel::DebitCard),
            wechat: ChannelArrival::default_for(Channel::Wechat),
            alipay: ChannelArrival::default_for(Channel::Alipay),
            unionpay_qr: ChannelArrival::default_for(Channel::UnionpayQr),
        }
    }
}

/// An expected arrival and whether the calendar had data for every year it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExpectedArrival {
    pub by: DateTime<Utc>,
    /// False when a business-day count ran through a year the calendar has no data for, so
    /// that part was counted Monday–Friday. Always true for an hours rule.
    pub calendar_covered: bool,
}

impl ArrivalRules {
    pub fn channel(&self, channel: Channel) -> &ChannelArrival {
        match channel {
            Channel::CreditCard => &self.credit_card,
            Channel::DebitCard => &self.debit_card,
            Channel::Wechat => &self.wechat,
            Channel::Alipay => &self.alipay,
            Channel::UnionpayQr => &self.unionpay_qr,
        }
    }

    pub fn channel_mut(&mut self, channel: Channel) -> &mut ChannelArrival {
        match channel {
            Channel::CreditCard => &mut self.credit_card,
            Channel::DebitCard => &mut self.debit_card,
            Channel::Wechat => &mut self.wechat,
            Channel::Alipay => &mut self.alipay,
            Channel::UnionpayQr => &mut self.unionpay_qr,
        }
    }

    pub fn rule(&self, channel: Channel, destination: DestinationKind) -> ArrivalRule {
        self.channel(channel).rule(destination)
    }

    /// When a refund by `channel` to `destination`, accepted by the channel at
    /// `accepted_at`, is expected to have arrived.
    pub fn expected_arrival_by(
        &self,
        calendar: &BusinessCalendar,
        channel: Channel,
        destination: DestinationKind,
        accepted_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        self.expected_arrival(calendar, channel, destination, accepted_at)
            .by
    }

    /// [`ArrivalRules::expected_arrival_by`], saying also whether the calendar covered it.
    pub fn expected_arrival(
        &self,
        calendar: &BusinessCalendar,
        channel: Channel,
        destination: DestinationKind,
        accepted_at: DateTime<Utc>,
    ) -> ExpectedArrival {
        self.rule(channel, destination)
            .expected_arrival(calendar, accepted_at)
    }
}

impl ArrivalRule {
    /// The deadline this rule sets for a refund accepted at `accepted_at`.
    pub fn expected_arrival(
        self,
        calendar: &BusinessCalendar,
        accepted_at: DateTime<Utc>,
    ) -> ExpectedArrival {
        match self {
            ArrivalRule::Hours(hours) => ExpectedArrival {
                by: accepted_at
                    .checked_add_signed(Duration::hours(i64::from(hours)))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                calendar_covered: true,
            },
            ArrivalRule::BusinessDays(n) => {
                let accepted_on = shanghai_date(accepted_at);
                let due_on = calendar.add_business_days(accepted_on, n);
                let (_, next_midnight) = shanghai_day_bounds(due_on);
                ExpectedArrival {
                    by: next_midnight
                        .checked_sub_signed(Duration::microseconds(1))
                        .unwrap_or(next_midnight),
                    calendar_covered: (accepted_on.year()..=due_on.year())
                        .all(|year| calendar.covered(year)),
                }
            }
        }
    }
}
