//! The double-entry ledger: every money movement is a [`Posting`] of balanced [`Entry`]s.
//!
//! Amounts are `i64` fen. An entry's amount is **positive for a debit and negative for a
//! credit**, so a posting balances when its entries sum to zero, and the balances of all
//! accounts over any set of postings sum to zero as well ([`check_ledger`] proves it).
//!
//! A [`Posting`] can only be made by the builders below, one per money event, each of which
//! balances by construction, or by [`Posting::from_entries`], which refuses entries that do
//! not balance (for postings read back from storage). Entries of zero fen are left out.
//!
//! The accounts, from the acquirer's point of view:
//!
//! | account | kind | its balance (debits − credits) |
//! | --- | --- | --- |
//! | [`Account::MerchantUnsettled`] | liability | negative while the acquirer owes the merchant money not yet paid out |
//! | [`Account::MerchantCarried`] | asset | positive while the merchant owes a debt carried from an earlier settlement |
//! | [`Account::ChannelClearing`] | asset | positive while the channel owes the acquirer money (payments not yet received) |
//! | [`Account::RefundsInFlight`] | liability | negative while refunds debited from merchants are not yet paid by the channel |
//! | [`Account::FeeIncome`] | income | negative: the fees the acquirer earned |
//! | [`Account::MerchantPayouts`] | money out | negative: what was sent to merchants' bank accounts |
//!
//! [`merchant_balance`] turns the two merchant accounts into the figures a merchant reads:
//! `unsettled_fen` (owed to the merchant, positive) and `carried_fen` (the merchant's debt,
//! zero or negative). The funding rule of the spec is [`can_fund`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::channel::Channel;

/// A ledger account. Its text id ([`Account::id`], [`Account::parse`]) is what storage keeps:
/// `merchant_unsettled:<merchant_id>`, `merchant_carried:<merchant_id>`,
/// `channel_clearing:<channel>`, `refunds_in_flight:<channel>`, `fee_income`,
/// `merchant_payouts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Account {
    /// What the acquirer owes the merchant and has not paid out yet.
    MerchantUnsettled(String),
    /// A negative settlement result carried from an earlier settlement: what the merchant
    /// owes, deducted from later payouts.
    MerchantCarried(String),
    /// Money due from the channel (payments) or to it (refunds it has paid).
    ChannelClearing(Channel),
    /// Refunds debited from merchants and not yet paid by the channel.
    RefundsInFlight(Channel),
    /// The acquirer's fees.
    FeeIncome,
    /// Money sent to merchants' bank accounts.
    MerchantPayouts,
}

const MERCHANT_UNSETTLED: &str = "merchant_unsettled";
const MERCHANT_CARRIED: &str = "merchant_carried";
const CHANNEL_CLEARING: &str = "channel_clearing";
const REFUNDS_IN_FLIGHT: &str = "refunds_in_flight";
const FEE_INCOME: &str = "fee_income";
const MERCHANT_PAYOUTS: &str = "merchant_payouts";

impl Account {
    /// The stable text id used in storage, e.g. `merchant_unsettled:mch_01`,
    /// `channel_clearing:wechat`, `fee_income`.
    pub fn id(&self) -> String {
        match self {
            Account::MerchantUnsettled(merchant) => format!("{MERCHANT_UNSETTLED}:{merchant}"),
            Account::MerchantCarried(merchant) => format!("{MERCHANT_CARRIED}:{merchant}"),
            Account::ChannelClearing(channel) => format!("{CHANNEL_CLEARING}:{}", channel.id()),
            Account::RefundsInFlight(channel) => format!("{REFUNDS_IN_FLIGHT}:{}", channel.id()),
            Account::FeeIncome => FEE_INCOME.to_owned(),
            Account::MerchantPayouts => MERCHANT_PAYOUTS.to_owned(),
        }
    }

    /// The inverse of [`Account::id`]. A merchant id must not be empty (it may contain `:`);
    /// a channel must be one of [`Channel::ALL`].
    pub fn parse(id: &str) -> Option<Account> {
        match id {
            FEE_INCOME => return Some(Account::FeeIncome),
            MERCHANT_PAYOUTS => return Some(Account::MerchantPayouts),
            _ => {}
        }
        let (kind, rest) = id.split_once(':')?;
        match kind {
            MERCHANT_UNSETTLED if !rest.is_empty() => {
                Some(Account::MerchantUnsettled(rest.to_owned()))
            }
            MERCHANT_CARRIED if !rest.is_empty() => Some(Account::MerchantCarried(rest.to_owned())),
            CHANNEL_CLEARING => Channel::parse(rest).map(Account::ChannelClearing),
            REFUNDS_IN_FLIGHT => Channel::parse(rest).map(Account::RefundsInFlight),
            _ => None,
        }
    }

    /// The merchant whose account this is, for the two merchant accounts.
    pub fn merchant_id(&self) -> Option<&str> {
        match self {
            Account::MerchantUnsettled(m) | Account::MerchantCarried(m) => Some(m),
            _ => None,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

impl From<Account> for String {
    fn from(account: Account) -> String {
        account.id()
    }
}

/// A text that is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a ledger account id")]
pub struct UnknownAccount(pub String);

impl TryFrom<String> for Account {
    type Error = UnknownAccount;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Account::parse(&id).ok_or(UnknownAccount(id))
    }
}

/// One line of a posting: `amount_fen` is positive for a debit, negative for a credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account: Account,
    pub amount_fen: i64,
}

impl Entry {
    pub fn is_debit(&self) -> bool {
        self.amount_fen > 0
    }

    pub fn is_credit(&self) -> bool {
        self.amount_fen < 0
    }
}

/// The entries of a posting do not sum to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the entries do not balance: debits minus credits is {sum_fen} fen, not 0")]
pub struct Unbalanced {
    /// Debits minus credits, exact (in `i128`, so no sum overflows).
    pub sum_fen: i128,
}

/// A builder was given amounts that no money event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPosting {
    #[error("{what} must not be negative, got {fen} fen")]
    Negative { what: &'static str, fen: i64 },
    #[error("{what} of {part_fen} fen exceeds the amount of {amount_fen} fen")]
    PartExceedsAmount {
        what: &'static str,
        part_fen: i64,
        amount_fen: i64,
    },
}

/// Checks `0 ≤ amount` and, for `part`, `0 ≤ part ≤ amount` (a fee within its amount).
pub(crate) fn check_parts(
    amount_fen: i64,
    part: Option<(&'static str, i64)>,
) -> Result<(), InvalidPosting> {
    if amount_fen < 0 {
        return Err(InvalidPosting::Negative {
            what: "amount",
            fen: amount_fen,
        });
    }
    if let Some((what, part_fen)) = part {
        if part_fen < 0 {
            return Err(InvalidPosting::Negative {
                what,
                fen: part_fen,
            });
        }
        if part_fen > amount_fen {
            return Err(InvalidPosting::PartExceedsAmount {
                what,
                part_fen,
                amount_fen,
            });
        }
    }
    Ok(())
}

/// A balanced set of entries: one money event. Made only by the builders of this module
/// (balanced by construction) or by [`Posting::from_entries`] (checked). Serialises as
/// `{"entries": [...]}`; deserialising checks the balance again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPosting")]
pub struct Posting {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct RawPosting {
    entries: Vec<Entry>,
}

impl TryFrom<RawPosting> for Posting {
    type Error = Unbalanced;
    fn try_from(raw: RawPosting) -> Result<Self, Self::Error> {
        Posting::from_entries(raw.entries)
    }
}

fn sum_i128<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> i128 {
    entries.into_iter().map(|e| i128::from(e.amount_fen)).sum()
}

impl Posting {
    /// Entries read back from storage: accepted only if they balance.
    pub fn from_entries(entries: Vec<Entry>) -> Result<Posting, Unbalanced> {
        let posting = Posting { entries };
        posting.check()?;
        Ok(posting)
    }

    /// Proves the posting balances: its entries sum to zero.
    pub fn check(&self) -> Result<(), Unbalanced> {
        match sum_i128(&self.entries) {
            0 => Ok(()),
            sum_fen => Err(Unbalanced { sum_fen }),
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// No entries: every amount of the event was zero.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of this posting's entries on `account` (debit positive).
    pub fn amount_on(&self, account: &Account) -> i64 {
        self.entries
            .iter()
            .filter(|e| &e.account == account)
            .map(|e| e.amount_fen)
            .sum()
    }

    /// A posting of the given entries, in order, leaving out zero amounts. Every caller passes
    /// amounts whose sum is zero, checked against each builder's T-accounts in the tests;
    /// all are in `0..=i64::MAX` or their negation, so nothing overflows.
    fn balanced<const N: usize>(entries: [(Account, i64); N]) -> Posting {
        Posting {
            entries: entries
                .into_iter()
                .filter(|(_, amount_fen)| *amount_fen != 0)
                .map(|(account, amount_fen)| Entry {
                    account,
                    amount_fen,
                })
                .collect(),
        }
    }

    /// The same entries with debits and credits swapped.
    fn reversed(self) -> Posting {
        Posting {
            entries: self
                .entries
                .into_iter()
                .map(|e| Entry {
                    account: e.account,
                    amount_fen: -e.amount_fen,
                })
                .collect(),
        }
    }
}

fn unsettled(merchant_id: &str) -> Account {
    Account::MerchantUnsettled(merchant_id.to_owned())
}

fn carried(merchant_id: &str) -> Account {
    Account::MerchantCarried(merchant_id.to_owned())
}

/// The money event a posting records (its `event` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEvent {
    PaymentCaptured,
    VoidCompleted,
    RefundQueued,
    RefundReleased,
    RefundSucceeded,
    SettlementPayout,
    CarryForward,
    CarryApplied,
    /// One deduction of a queued refund (issue 15 item 2): kept by the merchant, not paid
    /// to the consumer.
    RefundDeducted,
    /// A deduction of a released refund: the reverse of [`LedgerEvent::RefundDeducted`].
    DeductionReleased,
}

impl LedgerEvent {
    pub const ALL: [LedgerEvent; 10] = [
        LedgerEvent::PaymentCaptured,
        LedgerEvent::VoidCompleted,
        LedgerEvent::RefundQueued,
        LedgerEvent::RefundReleased,
        LedgerEvent::RefundSucceeded,
        LedgerEvent::SettlementPayout,
        LedgerEvent::CarryForward,
        LedgerEvent::CarryApplied,
        LedgerEvent::RefundDeducted,
        LedgerEvent::DeductionReleased,
    ];

    pub fn parse(id: &str) -> Option<LedgerEvent> {
        LedgerEvent::ALL.into_iter().find(|e| e.id() == id)
    }

    pub fn id(self) -> &'static str {
        match self {
            LedgerEvent::PaymentCaptured => "payment_captured",
            LedgerEvent::VoidCompleted => "void_completed",
            LedgerEvent::RefundQueued => "refund_queued",
            LedgerEvent::RefundReleased => "refund_released",
            LedgerEvent::RefundSucceeded => "refund_succeeded",
            LedgerEvent::SettlementPayout => "settlement_payout",
            LedgerEvent::CarryForward => "carry_forward",
            LedgerEvent::CarryApplied => "carry_applied",
            LedgerEvent::RefundDeducted => "refund_deducted",
            LedgerEvent::DeductionReleased => "deduction_released",
        }
    }
}

/// A payment was captured: the channel owes its amount; the merchant is owed it less the fee.
///
/// ```text
///   ChannelClearing(channel)        MerchantUnsettled(merchant)       FeeIncome
///   Dr amount |                                | Cr amount − fee            | Cr fee
/// ```
pub fn payment_captured(
    merchant_id: &str,
    channel: Channel,
    amount_fen: i64,
    fee_fen: i64,
) -> Result<Posting, InvalidPosting> {
    check_parts(amount_fen, Some(("fee", fee_fen)))?;
    Ok(Posting::balanced([
        (Account::ChannelClearing(channel), amount_fen),
        (unsettled(merchant_id), -(amount_fen - fee_fen)),
        (Account::FeeIncome, -fee_fen),
    ]))
}

/// A void (撤销) completed: the exact reverse of [`payment_captured`], returning the whole fee.
///
/// ```text
///   ChannelClearing(channel)        MerchantUnsettled(merchant)       FeeIncome
///            | Cr amount          Dr amount − fee |               Dr fee |
/// ```
pub fn void_completed(
    merchant_id: &str,
    channel: Channel,
    amount_fen: i64,
    fee_fen: i64,
) -> Result<Posting, InvalidPosting> {
    Ok(payment_captured(merchant_id, channel, amount_fen, fee_fen)?.reversed())
}

/// A refund was queued: it is debited from the merchant now (less the fee it returns) and
/// waits for the channel.
///
/// ```text
///   MerchantUnsettled(merchant)             FeeIncome          RefundsInFlight(channel)
///   Dr amount − fee_refunded |     Dr fee_refunded |                     | Cr amount
/// ```
pub fn refund_queued(
    merchant_id: &str,
    channel: Channel,
    amount_fen: i64,
    fee_refunded_fen: i64,
) -> Result<Posting, InvalidPosting> {
    check_parts(amount_fen, Some(("fee refunded", fee_refunded_fen)))?;
    Ok(Posting::balanced([
        (unsettled(merchant_id), amount_fen - fee_refunded_fen),
        (Account::FeeIncome, fee_refunded_fen),
        (Account::RefundsInFlight(channel), -amount_fen),
    ]))
}

/// A queued refund was released before the channel paid it (failed, or canceled after it
/// was queued): the reverse of [`refund_queued`], crediting the merchant back.
///
/// ```text
///   MerchantUnsettled(merchant)             FeeIncome          RefundsInFlight(channel)
///     | Cr amount − fee_refunded     | Cr fee_refunded      Dr amount |
/// ```
pub fn refund_released(
    merchant_id: &str,
    channel: Channel,
    amount_fen: i64,
    fee_refunded_fen: i64,
) -> Result<Posting, InvalidPosting> {
    Ok(refund_queued(merchant_id, channel, amount_fen, fee_refunded_fen)?.reversed())
}

/// The channel paid a refund: it is no longer in flight, and the channel is owed it (or owes
/// that much less).
///
/// ```text
///   RefundsInFlight(channel)        ChannelClearing(channel)
///   Dr amount |                              | Cr amount
/// ```
pub fn refund_succeeded(channel: Channel, amount_fen: i64) -> Result<Posting, InvalidPosting> {
    check_parts(amount_fen, None)?;
    Ok(Posting::balanced([
        (Account::RefundsInFlight(channel), amount_fen),
        (Account::ChannelClearing(channel), -amount_fen),
    ]))
}

/// One deduction of a queued refund (issue 15 item 2): the merchant keeps it, so it is
/// credited back to the merchant and leaves what the channel will pay. Posted beside
/// [`refund_queued`] once per deduction line; together they debit the merchant
/// `amount − fee_refunded − Σ deductions` and leave `amount − Σ deductions` (the consumer's
/// money) in flight.
///
/// ```text
///   RefundsInFlight(channel)        MerchantUnsettled(merchant)
///   Dr deduction |                           | Cr deduction
/// ```
pub fn refund_deducted(
    merchant_id: &str,
    channel: Channel,
    deduction_fen: i64,
) -> Result<Posting, InvalidPosting> {
    check_parts(deduction_fen, None)?;
    Ok(Posting::balanced([
        (Account::RefundsInFlight(channel), deduction_fen),
        (unsettled(merchant_id), -deduction_fen),
    ]))
}

/// A deduction of a released refund: the reverse of [`refund_deducted`], posted beside
/// [`refund_released`].
///
/// ```text
///   RefundsInFlight(channel)        MerchantUnsettled(merchant)
///            | Cr deduction        Dr deduction |
/// ```
pub fn deduction_released(
    merchant_id: &str,
    channel: Channel,
    deduction_fen: i64,
) -> Result<Posting, InvalidPosting> {
    Ok(refund_deducted(merchant_id, channel, deduction_fen)?.reversed())
}

/// Settlement paid the merchant out to its bank account.
///
/// ```text
///   MerchantUnsettled(merchant)     MerchantPayouts
///   Dr payout |                             | Cr payout
/// ```
pub fn settlement_payout(merchant_id: &str, payout_fen: i64) -> Result<Posting, InvalidPosting> {
    check_parts(payout_fen, None)?;
    Ok(Posting::balanced([
        (unsettled(merchant_id), payout_fen),
        (Account::MerchantPayouts, -payout_fen),
    ]))
}

/// Settlement ended with the merchant owing `amount_fen`: the debt leaves the unsettled
/// account and is carried to later settlements.
///
/// ```text
///   MerchantCarried(merchant)       MerchantUnsettled(merchant)
///   Dr amount |                             | Cr amount
/// ```
pub fn carry_forward(merchant_id: &str, amount_fen: i64) -> Result<Posting, InvalidPosting> {
    check_parts(amount_fen, None)?;
    Ok(Posting::balanced([
        (carried(merchant_id), amount_fen),
        (unsettled(merchant_id), -amount_fen),
    ]))
}

/// A later settlement deducted `amount_fen` of the carried debt from what the merchant is
/// owed: the counterpart of [`carry_forward`].
///
/// ```text
///   MerchantUnsettled(merchant)     MerchantCarried(merchant)
///   Dr amount |                             | Cr amount
/// ```
pub fn carry_applied(merchant_id: &str, amount_fen: i64) -> Result<Posting, InvalidPosting> {
    check_parts(amount_fen, None)?;
    Ok(Posting::balanced([
        (unsettled(merchant_id), amount_fen),
        (carried(merchant_id), -amount_fen),
    ]))
}

fn saturate(sum: i128) -> i64 {
    i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
}

/// The balance (debits − credits) of every account the postings touch, including accounts
/// whose entries cancel out to zero. Sums are exact; a balance beyond `i64` (more than
/// 92 trillion CNY) saturates.
pub fn balances<'a>(postings: impl IntoIterator<Item = &'a Posting>) -> BTreeMap<Account, i64> {
    let mut sums: BTreeMap<Account, i128> = BTreeMap::new();
    for entry in postings.into_iter().flat_map(|p| p.entries.iter()) {
        *sums.entry(entry.account.clone()).or_insert(0) += i128::from(entry.amount_fen);
    }
    sums.into_iter()
        .map(|(account, sum)| (account, saturate(sum)))
        .collect()
}

/// Proves a whole ledger balances: every posting, and the sum over all accounts, is zero.
pub fn check_ledger<'a>(postings: impl IntoIterator<Item = &'a Posting>) -> Result<(), Unbalanced> {
    let mut total: i128 = 0;
    for posting in postings {
        posting.check()?;
        total += sum_i128(&posting.entries);
    }
    match total {
        0 => Ok(()),
        sum_fen => Err(Unbalanced { sum_fen }),
    }
}

/// A merchant's position as the merchant reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MerchantBalance {
    /// What the acquirer owes the merchant and has not paid out: positive when owed to the
    /// merchant; negative when refunds debited since the last settlement exceed the sales
    /// net of fees. The negation of the [`Account::MerchantUnsettled`] balance.
    pub unsettled_fen: i64,
    /// The debt carried from earlier settlements, zero or negative (−50.00 means the merchant
    /// owes 50.00). The negation of the [`Account::MerchantCarried`] balance.
    pub carried_fen: i64,
}

impl MerchantBalance {
    /// What can fund a refund: `unsettled + carried` (saturating).
    pub fn available_fen(self) -> i64 {
        self.unsettled_fen.saturating_add(self.carried_fen)
    }
}

/// The merchant's two accounts read from `balances` (see [`MerchantBalance`] for the signs).
pub fn merchant_balance(balances: &BTreeMap<Account, i64>, merchant_id: &str) -> MerchantBalance {
    let of = |account: Account| {
        balances
            .get(&account)
            .copied()
            .unwrap_or(0)
            .saturating_neg()
    };
    MerchantBalance {
        unsettled_fen: of(unsettled(merchant_id)),
        carried_fen: of(carried(merchant_id)),
    }
}

/// How a merchant's refunds are funded (a per-merchant policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FundingPolicy {
    /// A refund is refused unless the merchant's unsettled plus carried balance covers its
    /// net debit.
    #[default]
    RequireBalance,
    /// A refund is always accepted; a debt is carried and deducted from later payouts.
    CarryForward,
}

impl FundingPolicy {
    pub const ALL: [FundingPolicy; 2] =
        [FundingPolicy::RequireBalance, FundingPolicy::CarryForward];

    /// The stable id used in the API and in storage.
    pub fn id(self) -> &'static str {
        match self {
            FundingPolicy::RequireBalance => "require_balance",
            FundingPolicy::CarryForward => "carry_forward",
        }
    }

    pub fn parse(id: &str) -> Option<FundingPolicy> {
        FundingPolicy::ALL.into_iter().find(|p| p.id() == id)
    }
}

impl fmt::Display for FundingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The merchant's balance cannot fund the refund (`insufficient_merchant_balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the merchant's balance of {available_fen} fen cannot fund the refund's net debit of {needed_fen} fen"
)]
pub struct InsufficientBalance {
    /// Unsettled plus carried balance.
    pub available_fen: i64,
    /// The refund's net debit: amount − fee refunded.
    pub needed_fen: i64,
}

impl InsufficientBalance {
    pub fn code(&self) -> &'static str {
        "insufficient_merchant_balance"
    }
}

/// The spec's funding rule: a refund whose net debit (`amount − fee_refunded`) exceeds the
/// merchant's unsettled plus carried balance is refused, unless the policy is
/// [`FundingPolicy::CarryForward`]. A balance exactly equal to the net debit funds it.
pub fn can_fund(
    balance: MerchantBalance,
    refund_net_debit_fen: i64,
    policy: FundingPolicy,
) -> Result<(), InsufficientBalance> {
    let available_fen = balance.available_fen();
    if policy == FundingPolicy::CarryForward || available_fen >= refund_net_debit_fen {
        Ok(())
    } else {
        Err(InsufficientBalance {
            available_fen,
            needed_fen: refund_net_debit_fen,
        })
    }
}

#[cfg(test)]
mod tests;
