//! The double-entry ledger of the spec's "Settlement" section: every posting builder's
//! T-accounts, balances and their signs, the funding rule at its boundary, and a property
//! test over random sequences of payments, voids, refunds and settlements.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use yuanlu_domain::calendar::BusinessCalendar;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::{FeeRefundPolicy, payment_fee, proportional_fee_refund};
use yuanlu_domain::ledger::{
    Account, Entry, FundingPolicy, InsufficientBalance, InvalidPosting, MerchantBalance, Posting,
    Unbalanced, balances, can_fund, carry_applied, carry_forward, check_ledger, merchant_balance,
    payment_captured, refund_queued, refund_released, refund_succeeded, settlement_payout,
    void_completed,
};
use yuanlu_domain::settlement::{
    PaymentLine, RefundLine, RefundLineKind, SettlementInput, Statement, VoidLine, settle,
};
use yuanlu_domain::time::shanghai_day_bounds;

const M: &str = "mch_1";

fn unsettled(m: &str) -> Account {
    Account::MerchantUnsettled(m.to_owned())
}

fn carried(m: &str) -> Account {
    Account::MerchantCarried(m.to_owned())
}

/// The entries as `(account, amount)` pairs, debit positive.
fn t(posting: &Posting) -> Vec<(Account, i64)> {
    posting
        .entries()
        .iter()
        .map(|e| (e.account.clone(), e.amount_fen))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Each builder's T-accounts
// ---------------------------------------------------------------------------------------

#[test]
fn a_captured_payment_debits_the_channel_and_credits_the_merchant_net_of_fee_and_the_fee_income() {
    let p = payment_captured(M, Channel::CreditCard, 100_000, 600).unwrap();
    assert_eq!(
        t(&p),
        vec![
            (Account::ChannelClearing(Channel::CreditCard), 100_000),
            (unsettled(M), -99_400),
            (Account::FeeIncome, -600),
        ]
    );
    assert_eq!(p.check(), Ok(()));
}

#[test]
fn a_void_is_the_exact_reverse_of_its_payment() {
    let pay = payment_captured(M, Channel::DebitCard, 1_000_000, 2_500).unwrap();
    let void = void_completed(M, Channel::DebitCard, 1_000_000, 2_500).unwrap();
    let negated: Vec<_> = t(&pay).into_iter().map(|(a, x)| (a, -x)).collect();
    assert_eq!(t(&void), negated);
    assert_eq!(void.check(), Ok(()));
    let both = balances([&pay, &void]);
    assert!(both.values().all(|b| *b == 0), "{both:?}");
}

#[test]
fn a_queued_refund_debits_the_merchant_net_of_its_returned_fee_and_waits_in_flight() {
    let p = refund_queued(M, Channel::Wechat, 3_333, 13).unwrap();
    assert_eq!(
        t(&p),
        vec![
            (unsettled(M), 3_320),
            (Account::FeeIncome, 13),
            (Account::RefundsInFlight(Channel::Wechat), -3_333),
        ]
    );
    assert_eq!(p.check(), Ok(()));
}

#[test]
fn a_released_refund_is_the_exact_reverse_of_its_queuing() {
    let queued = refund_queued(M, Channel::Alipay, 5_000, 19).unwrap();
    let released = refund_released(M, Channel::Alipay, 5_000, 19).unwrap();
    let negated: Vec<_> = t(&queued).into_iter().map(|(a, x)| (a, -x)).collect();
    assert_eq!(t(&released), negated);
    assert_eq!(released.check(), Ok(()));
}

#[test]
fn a_succeeded_refund_leaves_in_flight_and_is_owed_to_the_channel() {
    let p = refund_succeeded(Channel::UnionpayQr, 7_700).unwrap();
    assert_eq!(
        t(&p),
        vec![
            (Account::RefundsInFlight(Channel::UnionpayQr), 7_700),
            (Account::ChannelClearing(Channel::UnionpayQr), -7_700),
        ]
    );
}

#[test]
fn a_payout_debits_the_merchant_and_credits_payouts() {
    let p = settlement_payout(M, 99_400).unwrap();
    assert_eq!(
        t(&p),
        vec![(unsettled(M), 99_400), (Account::MerchantPayouts, -99_400)]
    );
}

#[test]
fn carry_forward_moves_a_debt_from_unsettled_to_carried_and_carry_applied_moves_it_back() {
    let forward = carry_forward(M, 40_038).unwrap();
    assert_eq!(
        t(&forward),
        vec![(carried(M), 40_038), (unsettled(M), -40_038)]
    );
    let applied = carry_applied(M, 40_038).unwrap();
    assert_eq!(
        t(&applied),
        vec![(unsettled(M), 40_038), (carried(M), -40_038)]
    );
}

#[test]
fn zero_amount_entries_are_left_out() {
    let p = payment_captured(M, Channel::CreditCard, 50, 0).unwrap();
    assert_eq!(
        t(&p),
        vec![
            (Account::ChannelClearing(Channel::CreditCard), 50),
            (unsettled(M), -50),
        ]
    );
    let card_refund = refund_queued(M, Channel::CreditCard, 500, 0).unwrap();
    assert!(card_refund.entries().iter().all(|e| e.amount_fen != 0));
    assert_eq!(card_refund.entries().len(), 2);
    assert!(settlement_payout(M, 0).unwrap().is_empty());
    assert!(carry_forward(M, 0).unwrap().is_empty());
}

#[test]
fn builders_refuse_negative_amounts_and_fees_above_their_amount() {
    assert_eq!(
        payment_captured(M, Channel::Wechat, -1, 0),
        Err(InvalidPosting::Negative {
            what: "amount",
            fen: -1
        })
    );
    assert!(matches!(
        payment_captured(M, Channel::Wechat, 100, -1),
        Err(InvalidPosting::Negative { .. })
    ));
    assert!(matches!(
        refund_queued(M, Channel::Wechat, 100, 101),
        Err(InvalidPosting::PartExceedsAmount { .. })
    ));
    assert!(void_completed(M, Channel::CreditCard, 100, 101).is_err());
    assert!(refund_released(M, Channel::Wechat, -5, 0).is_err());
    assert!(refund_succeeded(Channel::Wechat, -5).is_err());
    assert!(settlement_payout(M, -1).is_err());
    assert!(carry_forward(M, -1).is_err());
    assert!(carry_applied(M, -1).is_err());
}

fn builder_postings(merchant: &str, channel: Channel, amount: i64, part: i64) -> Vec<Posting> {
    vec![
        payment_captured(merchant, channel, amount, part).unwrap(),
        void_completed(merchant, channel, amount, part).unwrap(),
        refund_queued(merchant, channel, amount, part).unwrap(),
        refund_released(merchant, channel, amount, part).unwrap(),
        refund_succeeded(channel, amount).unwrap(),
        settlement_payout(merchant, amount).unwrap(),
        carry_forward(merchant, amount).unwrap(),
        carry_applied(merchant, amount).unwrap(),
    ]
}

proptest! {
    #[test]
    fn every_posting_builder_balances_for_any_valid_amounts(
        channel in prop::sample::select(Channel::ALL.to_vec()),
        amount in 0i64..=i64::MAX,
        part_ppm in 0i64..=1_000_000,
    ) {
        let part = i64::try_from(i128::from(amount) * i128::from(part_ppm) / 1_000_000).unwrap();
        for posting in builder_postings("mch_p", channel, amount, part) {
            prop_assert_eq!(posting.check(), Ok(()));
            prop_assert!(posting.entries().iter().all(|e| e.amount_fen != 0));
        }
    }

    #[test]
    fn account_ids_round_trip_through_text(merchant in "[a-z0-9_:]{1,24}") {
        for account in [
            Account::MerchantUnsettled(merchant.clone()),
            Account::MerchantCarried(merchant.clone()),
            Account::FeeIncome,
            Account::MerchantPayouts,
            Account::ChannelClearing(Channel::Alipay),
            Account::RefundsInFlight(Channel::DebitCard),
        ] {
            prop_assert_eq!(Account::parse(&account.id()), Some(account.clone()));
            let json = serde_json::to_string(&account).unwrap();
            prop_assert_eq!(serde_json::from_str::<Account>(&json).unwrap(), account);
        }
    }
}

#[test]
fn postings_from_storage_are_refused_unless_they_balance() {
    let entries = vec![
        Entry {
            account: unsettled(M),
            amount_fen: 100,
        },
        Entry {
            account: Account::MerchantPayouts,
            amount_fen: -99,
        },
    ];
    assert_eq!(
        Posting::from_entries(entries.clone()),
        Err(Unbalanced { sum_fen: 1 })
    );
    let json = serde_json::json!({ "entries": entries });
    assert!(serde_json::from_value::<Posting>(json).is_err());

    let good = payment_captured(M, Channel::Wechat, 12_345, 47).unwrap();
    let json = serde_json::to_value(&good).unwrap();
    assert_eq!(json["entries"][1]["account"], "merchant_unsettled:mch_1");
    assert_eq!(serde_json::from_value::<Posting>(json).unwrap(), good);
    assert_eq!(Posting::from_entries(good.clone().into_entries()), Ok(good));
}

#[test]
fn an_unbalanced_sum_is_reported_exactly_even_beyond_i64() {
    let entries = vec![
        Entry {
            account: Account::FeeIncome,
            amount_fen: i64::MAX,
        },
        Entry {
            account: Account::FeeIncome,
            amount_fen: i64::MAX,
        },
    ];
    assert_eq!(
        Posting::from_entries(entries),
        Err(Unbalanced {
            sum_fen: 2 * i128::from(i64::MAX)
        })
    );
}

// ---------------------------------------------------------------------------------------
// Balances and their signs
// ---------------------------------------------------------------------------------------

#[test]
fn after_a_sale_the_merchant_is_owed_the_sale_net_of_its_fee_shown_positive() {
    let ledger = [payment_captured(M, Channel::CreditCard, 100_000, 600).unwrap()];
    let b = balances(&ledger);
    assert_eq!(
        merchant_balance(&b, M),
        MerchantBalance {
            unsettled_fen: 99_400,
            carried_fen: 0
        }
    );
    assert_eq!(b.values().map(|v| i128::from(*v)).sum::<i128>(), 0);
    assert_eq!(check_ledger(&ledger), Ok(()));
    assert_eq!(
        merchant_balance(&b, "mch_other"),
        MerchantBalance::default()
    );
}

#[test]
fn a_carried_debt_is_shown_negative() {
    let ledger = [
        refund_queued(M, Channel::CreditCard, 30_000, 0).unwrap(),
        carry_forward(M, 30_000).unwrap(),
    ];
    let balance = merchant_balance(&balances(&ledger), M);
    assert_eq!(
        balance,
        MerchantBalance {
            unsettled_fen: 0,
            carried_fen: -30_000
        }
    );
    assert_eq!(balance.available_fen(), -30_000);
}

// ---------------------------------------------------------------------------------------
// The funding rule
// ---------------------------------------------------------------------------------------

#[test]
fn a_balance_exactly_equal_to_the_net_debit_funds_the_refund() {
    let balance = MerchantBalance {
        unsettled_fen: 100_000,
        carried_fen: -30_000,
    };
    assert_eq!(
        can_fund(balance, 70_000, FundingPolicy::RequireBalance),
        Ok(())
    );
}

#[test]
fn one_fen_more_than_unsettled_plus_carried_is_refused_with_both_figures() {
    let balance = MerchantBalance {
        unsettled_fen: 100_000,
        carried_fen: -30_000,
    };
    let refused = can_fund(balance, 70_001, FundingPolicy::RequireBalance);
    assert_eq!(
        refused,
        Err(InsufficientBalance {
            available_fen: 70_000,
            needed_fen: 70_001
        })
    );
    assert_eq!(refused.unwrap_err().code(), "insufficient_merchant_balance");
}

#[test]
fn the_net_debit_is_the_amount_less_the_returned_fee() {
    // A WeChat refund of 100.00 returning 0.38 needs 99.62, which 99.62 funds.
    let balance = MerchantBalance {
        unsettled_fen: 9_962,
        carried_fen: 0,
    };
    assert!(can_fund(balance, 10_000 - 38, FundingPolicy::RequireBalance).is_ok());
    assert!(can_fund(balance, 10_000, FundingPolicy::RequireBalance).is_err());
}

#[test]
fn carry_forward_funds_any_refund() {
    let broke = MerchantBalance {
        unsettled_fen: 0,
        carried_fen: -500_000,
    };
    assert_eq!(
        can_fund(broke, 1_000_000, FundingPolicy::CarryForward),
        Ok(())
    );
    assert!(can_fund(broke, 1, FundingPolicy::RequireBalance).is_err());
}

#[test]
fn funding_policy_ids_are_stable() {
    for p in FundingPolicy::ALL {
        assert_eq!(FundingPolicy::parse(p.id()), Some(p));
    }
    assert_eq!(FundingPolicy::CarryForward.id(), "carry_forward");
    assert_eq!(
        serde_json::to_value(FundingPolicy::RequireBalance).unwrap(),
        "require_balance"
    );
    assert_eq!(FundingPolicy::default(), FundingPolicy::RequireBalance);
}

// ---------------------------------------------------------------------------------------
// Random sequences of money events and settlements
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Pay {
        merchant: usize,
        channel: usize,
        amount: i64,
    },
    Void {
        payment: usize,
    },
    Queue {
        payment: usize,
        per_mille: i64,
    },
    Release {
        refund: usize,
    },
    Succeed {
        refund: usize,
    },
    EndDay,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2, 0usize..5, 1i64..=2_000_000)
            .prop_map(|(merchant, channel, amount)| Op::Pay { merchant, channel, amount }),
        1 => any::<usize>().prop_map(|payment| Op::Void { payment }),
        4 => (any::<usize>(), 1i64..=1_000)
            .prop_map(|(payment, per_mille)| Op::Queue { payment, per_mille }),
        1 => any::<usize>().prop_map(|refund| Op::Release { refund }),
        2 => any::<usize>().prop_map(|refund| Op::Succeed { refund }),
        1 => Just(Op::EndDay),
    ]
}

const MERCHANTS: [(&str, FundingPolicy); 2] = [
    ("mch_strict", FundingPolicy::RequireBalance),
    ("mch_lenient", FundingPolicy::CarryForward),
];

struct Pay {
    merchant: usize,
    id: String,
    channel: Channel,
    amount: i64,
    fee: i64,
    day: NaiveDate,
    held: i64,
    fee_returned: i64,
    ever_refunded: bool,
    voided: bool,
}

#[derive(PartialEq)]
enum RefundState {
    InFlight,
    Succeeded,
    Released,
}

struct Refund {
    id: String,
    payment: usize,
    amount: i64,
    fee: i64,
    state: RefundState,
}

/// What each merchant's events imply, computed without the ledger.
#[derive(Default, Clone)]
struct MerchantModel {
    /// Sales − fees − voids + void fees − refunds debited + fees returned + credited back −
    /// their fees, since the last settlement.
    unsettled: i64,
    carried: i64,
    /// The same, over all time.
    all_time_net: i64,
    payouts: i64,
    today: Vec<PaymentLine>,
    voids: Vec<VoidLine>,
    refunds: Vec<RefundLine>,
}

struct World {
    calendar: BusinessCalendar,
    day: NaiveDate,
    ledger: Vec<Posting>,
    payments: Vec<Pay>,
    refunds: Vec<Refund>,
    merchants: [MerchantModel; 2],
    statements: Vec<Statement>,
}

impl World {
    fn new() -> Self {
        World {
            calendar: BusinessCalendar::embedded().unwrap(),
            // A Thursday, so the run crosses weekends.
            day: NaiveDate::from_ymd_opt(2026, 3, 12).unwrap(),
            ledger: Vec::new(),
            payments: Vec::new(),
            refunds: Vec::new(),
            merchants: [MerchantModel::default(), MerchantModel::default()],
            statements: Vec::new(),
        }
    }

    fn post(&mut self, posting: Posting) -> Result<(), TestCaseError> {
        prop_assert_eq!(posting.check(), Ok(()));
        self.ledger.push(posting);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Pay {
                merchant,
                channel,
                amount,
            } => {
                let channel = Channel::ALL[channel];
                let fee = payment_fee(
                    amount,
                    channel.default_fee_rate_ppm(),
                    channel.default_fee_cap_fen(),
                );
                let id = format!("pay_{:04}", self.payments.len());
                let (name, _) = MERCHANTS[merchant];
                self.post(payment_captured(name, channel, amount, fee).unwrap())?;
                let m = &mut self.merchants[merchant];
                m.unsettled += amount - fee;
                m.all_time_net += amount - fee;
                let (start, _) = shanghai_day_bounds(self.day);
                m.today.push(PaymentLine {
                    payment_id: id.clone(),
                    channel,
                    amount_fen: amount,
                    fee_fen: fee,
                    captured_at: start + Duration::hours(10),
                });
                self.payments.push(Pay {
                    merchant,
                    id,
                    channel,
                    amount,
                    fee,
                    day: self.day,
                    held: 0,
                    fee_returned: 0,
                    ever_refunded: false,
                    voided: false,
                });
            }
            Op::Void { payment } => {
                if self.payments.is_empty() {
                    return Ok(());
                }
                let i = payment % self.payments.len();
                let p = &self.payments[i];
                if p.day != self.day || !p.channel.supports_void() || p.ever_refunded || p.voided {
                    return Ok(());
                }
                let (merchant, channel, amount, fee) = (p.merchant, p.channel, p.amount, p.fee);
                let refund_id = format!("ref_{:04}", self.refunds.len());
                let payment_id = p.id.clone();
                self.post(void_completed(MERCHANTS[merchant].0, channel, amount, fee).unwrap())?;
                self.payments[i].voided = true;
                // A void is a refund that never reaches the channel: it takes a refund id.
                self.refunds.push(Refund {
                    id: refund_id.clone(),
                    payment: i,
                    amount,
                    fee,
                    state: RefundState::Succeeded,
                });
                let m = &mut self.merchants[merchant];
                m.unsettled -= amount - fee;
                m.all_time_net -= amount - fee;
                m.voids.push(VoidLine {
                    refund_id,
                    payment_id,
                    channel,
                    amount_fen: amount,
                    fee_fen: fee,
                });
            }
            Op::Queue { payment, per_mille } => {
                if self.payments.is_empty() {
                    return Ok(());
                }
                let i = payment % self.payments.len();
                let p = &self.payments[i];
                let refundable = p.amount - p.held;
                if p.voided || refundable < 1 {
                    return Ok(());
                }
                let amount = (refundable * per_mille / 1_000).max(1);
                let fee_refunded = match p.channel.default_fee_refund() {
                    FeeRefundPolicy::Proportional => {
                        proportional_fee_refund(p.amount, p.fee, p.held + amount, p.fee_returned)
                    }
                    FeeRefundPolicy::None => 0,
                };
                let (merchant, channel, payment_id) = (p.merchant, p.channel, p.id.clone());
                let (name, policy) = MERCHANTS[merchant];
                let before = merchant_balance(&balances(&self.ledger), name);
                let needed = amount - fee_refunded;
                let model = &self.merchants[merchant];
                prop_assert_eq!(before.available_fen(), model.unsettled + model.carried);
                match can_fund(before, needed, policy) {
                    Err(refusal) => {
                        prop_assert_eq!(policy, FundingPolicy::RequireBalance);
                        prop_assert!(refusal.available_fen < needed);
                        return Ok(());
                    }
                    Ok(()) => {
                        prop_assert!(
                            policy == FundingPolicy::CarryForward
                                || before.available_fen() >= needed
                        );
                    }
                }
                self.post(refund_queued(name, channel, amount, fee_refunded).unwrap())?;
                if policy == FundingPolicy::RequireBalance {
                    let after = merchant_balance(&balances(&self.ledger), name);
                    prop_assert!(after.available_fen() >= 0, "{after:?}");
                }
                let refund_id = format!("ref_{:04}", self.refunds.len());
                let p = &mut self.payments[i];
                p.held += amount;
                p.fee_returned += fee_refunded;
                p.ever_refunded = true;
                self.refunds.push(Refund {
                    id: refund_id.clone(),
                    payment: i,
                    amount,
                    fee: fee_refunded,
                    state: RefundState::InFlight,
                });
                let m = &mut self.merchants[merchant];
                m.unsettled -= needed;
                m.all_time_net -= needed;
                m.refunds.push(RefundLine {
                    refund_id,
                    payment_id,
                    channel,
                    amount_fen: amount,
                    fee_refunded_fen: fee_refunded,
                    kind: RefundLineKind::Debited,
                });
            }
            Op::Release { refund } | Op::Succeed { refund } => {
                if self.refunds.is_empty() {
                    return Ok(());
                }
                let r = refund % self.refunds.len();
                if self.refunds[r].state != RefundState::InFlight {
                    return Ok(());
                }
                let (amount, fee, i) = (
                    self.refunds[r].amount,
                    self.refunds[r].fee,
                    self.refunds[r].payment,
                );
                let (merchant, channel, payment_id) = (
                    self.payments[i].merchant,
                    self.payments[i].channel,
                    self.payments[i].id.clone(),
                );
                if let Op::Succeed { .. } = op {
                    self.post(refund_succeeded(channel, amount).unwrap())?;
                    self.refunds[r].state = RefundState::Succeeded;
                } else {
                    let name = MERCHANTS[merchant].0;
                    self.post(refund_released(name, channel, amount, fee).unwrap())?;
                    self.refunds[r].state = RefundState::Released;
                    self.payments[i].held -= amount;
                    self.payments[i].fee_returned -= fee;
                    let m = &mut self.merchants[merchant];
                    m.unsettled += amount - fee;
                    m.all_time_net += amount - fee;
                    m.refunds.push(RefundLine {
                        refund_id: self.refunds[r].id.clone(),
                        payment_id,
                        channel,
                        amount_fen: amount,
                        fee_refunded_fen: fee,
                        kind: RefundLineKind::CreditedBack,
                    });
                }
            }
            Op::EndDay => self.end_day()?,
        }
        self.check_balances()
    }

    /// Settles each merchant's business date once, posts what the statement posts, and
    /// moves to the next calendar day.
    fn end_day(&mut self) -> Result<(), TestCaseError> {
        for (index, (name, _)) in MERCHANTS.iter().enumerate() {
            let m = std::mem::take(&mut self.merchants[index]);
            let input = SettlementInput {
                merchant_id: (*name).to_owned(),
                business_date: self.day,
                opening_carried_fen: m.carried,
                payments: m.today,
                voids: m.voids,
                refunds: m.refunds,
                deductions: Vec::new(),
            };
            let statement = settle(&input, &self.calendar).unwrap();
            // Settling again, with the lines in another order, gives the same statement.
            let mut shuffled = input.clone();
            shuffled.payments.reverse();
            shuffled.refunds.reverse();
            shuffled.voids.reverse();
            prop_assert_eq!(&settle(&shuffled, &self.calendar).unwrap(), &statement);

            prop_assert_eq!(
                statement.net_fen,
                m.unsettled,
                "net = what the events imply"
            );
            prop_assert!(statement.payout_fen >= 0);
            prop_assert!(statement.closing_carried_fen <= 0);
            prop_assert_eq!(
                statement.payout_fen + statement.closing_carried_fen,
                statement.opening_carried_fen + statement.net_fen
            );
            prop_assert_eq!(
                statement.lines.iter().map(|l| l.net_fen).sum::<i64>(),
                statement.net_fen
            );
            prop_assert!(statement.payout_date > self.day);
            prop_assert!(self.calendar.is_business_day(statement.payout_date));
            for line in &statement.lines {
                let posting = line.posting(name).unwrap();
                prop_assert_eq!(posting.amount_on(&unsettled(name)), -line.net_fen);
            }
            for posting in &statement.postings {
                self.post(posting.clone())?;
            }
            let after = merchant_balance(&balances(&self.ledger), name);
            prop_assert_eq!(
                after,
                MerchantBalance {
                    unsettled_fen: 0,
                    carried_fen: statement.closing_carried_fen
                },
                "settlement empties the unsettled account and carries the debt"
            );
            self.merchants[index] = MerchantModel {
                carried: statement.closing_carried_fen,
                all_time_net: m.all_time_net,
                payouts: m.payouts + statement.payout_fen,
                ..MerchantModel::default()
            };
            self.statements.push(statement);
        }
        self.day = self.day.succ_opt().unwrap();
        Ok(())
    }

    /// The ledger balances, and every account holds what the events imply.
    fn check_balances(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(check_ledger(&self.ledger), Ok(()));
        let b = balances(&self.ledger);
        prop_assert_eq!(b.values().map(|v| i128::from(*v)).sum::<i128>(), 0);
        let get = |a: &Account| b.get(a).copied().unwrap_or(0);

        for (index, (name, _)) in MERCHANTS.iter().enumerate() {
            let m = &self.merchants[index];
            prop_assert_eq!(
                merchant_balance(&b, name),
                MerchantBalance {
                    unsettled_fen: m.unsettled,
                    carried_fen: m.carried
                }
            );
            // Nothing is paid out twice: what was paid plus what is still owed either way
            // is exactly the net of all the merchant's activity.
            prop_assert_eq!(m.payouts + m.carried + m.unsettled, m.all_time_net);
        }
        let paid: i64 = self.merchants.iter().map(|m| m.payouts).sum();
        prop_assert_eq!(get(&Account::MerchantPayouts), -paid);

        let mut clearing: BTreeMap<Channel, i64> = BTreeMap::new();
        let mut in_flight: BTreeMap<Channel, i64> = BTreeMap::new();
        let mut fee_income = 0;
        for p in &self.payments {
            *clearing.entry(p.channel).or_default() += p.amount;
            fee_income += p.fee;
        }
        for r in &self.refunds {
            let p = &self.payments[r.payment];
            match r.state {
                RefundState::InFlight => {
                    *in_flight.entry(p.channel).or_default() += r.amount;
                    fee_income -= r.fee;
                }
                RefundState::Succeeded => {
                    *clearing.entry(p.channel).or_default() -= r.amount;
                    fee_income -= r.fee;
                }
                RefundState::Released => {}
            }
        }
        for c in Channel::ALL {
            prop_assert_eq!(
                get(&Account::ChannelClearing(c)),
                clearing.get(&c).copied().unwrap_or(0)
            );
            prop_assert_eq!(
                get(&Account::RefundsInFlight(c)),
                -in_flight.get(&c).copied().unwrap_or(0)
            );
        }
        prop_assert_eq!(get(&Account::FeeIncome), -fee_income);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_money_events_and_settlements_keep_the_ledger_balanced_and_pay_nothing_twice(
        ops in prop::collection::vec(op(), 1..120)
    ) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op)?;
        }
        world.apply(&Op::EndDay)?;
        // After the last settlement nothing is left unsettled.
        for (index, (name, _)) in MERCHANTS.iter().enumerate() {
            let balance = merchant_balance(&balances(&world.ledger), name);
            prop_assert_eq!(balance.unsettled_fen, 0);
            prop_assert_eq!(balance.carried_fen, world.merchants[index].carried);
            let statements: Vec<_> =
                world.statements.iter().filter(|s| s.merchant_id == *name).collect();
            // One statement per merchant and business date, each date once.
            let mut dates: Vec<_> = statements.iter().map(|s| s.business_date).collect();
            dates.dedup();
            prop_assert_eq!(dates.len(), statements.len());
            // Each statement opens with the debt the previous one closed with.
            let mut carried = 0;
            for s in &statements {
                prop_assert_eq!(s.opening_carried_fen, carried);
                carried = s.closing_carried_fen;
            }
        }
    }
}
