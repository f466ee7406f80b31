//! Matching settlement payouts (入户金额) against the credits of the merchant's bank
//! statement (核对入户金额). Pure: the caller gives the payouts the statement's days cover.
//!
//! The rules, in order (`docs/bank-statements.md` explains them with an example):
//! 1. A credit whose reference names a payout's statement id (`stl_…`) is that payout's
//!    credit: `paid` when the amounts are equal, else `different_amount`.
//! 2. Each payout left, by payout date, takes the first credit left with its exact amount
//!    booked on its payout date or up to [`LATE_DAYS`] days after: `paid`.
//! 3. A payout still without a credit is `missing` when the statement runs at least
//!    [`LATE_DAYS`] days past its payout date, else `pending` (the statement ends before the
//!    bank had time to book it).
//!    A payout dated before the statement's first day that found no credit is left out: its
//!    credit is on an earlier statement.
//! 4. Every credit left over is an `unexplained_credit`. Debits are counted, not matched.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::bank_statement::{BankLine, BankStatement};

/// How many days after the payout date a bank may book the credit.
pub const LATE_DAYS: u64 = 3;

/// A payout yuanlu's settlement made, as the matcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub statement_id: String,
    pub payout_date: NaiveDate,
    pub payout_fen: i64,
}

/// What became of a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutOutcome {
    /// A credit of exactly the payout.
    Paid,
    /// The credit naming the statement differs from the payout.
    DifferentAmount,
    /// No credit, though the statement runs past the days the bank may take.
    Missing,
    /// No credit yet, and the statement ends before the bank's days are over.
    Pending,
}

impl PayoutOutcome {
    pub fn id(self) -> &'static str {
        match self {
            PayoutOutcome::Paid => "paid",
            PayoutOutcome::DifferentAmount => "different_amount",
            PayoutOutcome::Missing => "missing",
            PayoutOutcome::Pending => "pending",
        }
    }
}

/// One payout and the credit found for it (an index into the statement's lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutMatch {
    pub payout: Payout,
    pub outcome: PayoutOutcome,
    pub credit: Option<usize>,
}

/// The outcome of matching one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutReport {
    pub payouts: Vec<PayoutMatch>,
    /// Indexes of credits no payout explains, in file order.
    pub unexplained_credits: Vec<usize>,
    pub debits: usize,
}

/// Matches `payouts` against `statement`. Give the payouts dated from [`LATE_DAYS`] days
/// before the statement's first day to its last ([`payout_dates_covered`]).
pub fn match_payouts(statement: &BankStatement, payouts: &[Payout]) -> PayoutReport {
    let lines = &statement.lines;
    let mut credit_taken = vec![false; lines.len()];
    let mut sorted: Vec<&Payout> = payouts.iter().collect();
    sorted.sort_by(|a, b| (a.payout_date, &a.statement_id).cmp(&(b.payout_date, &b.statement_id)));
    let mut found: Vec<Option<(usize, PayoutOutcome)>> = vec![None; sorted.len()];

    // 1. By the statement id in the reference.
    for (slot, payout) in found.iter_mut().zip(&sorted) {
        let named = lines.iter().enumerate().find(|(i, line)| {
            line.is_credit() && !credit_taken[*i] && names(line, &payout.statement_id)
        });
        if let Some((i, line)) = named {
            credit_taken[i] = true;
            let outcome = if line.amount_fen == payout.payout_fen {
                PayoutOutcome::Paid
            } else {
                PayoutOutcome::DifferentAmount
            };
            *slot = Some((i, outcome));
        }
    }
    // 2. By amount within the bank's days.
    for (slot, payout) in found.iter_mut().zip(&sorted) {
        if slot.is_some() {
            continue;
        }
        let latest = latest_booking(payout.payout_date);
        let same = lines.iter().enumerate().find(|(i, line)| {
            !credit_taken[*i]
                && line.amount_fen == payout.payout_fen
                && line.date >= payout.payout_date
                && line.date <= latest
        });
        if let Some((i, _)) = same {
            credit_taken[i] = true;
            *slot = Some((i, PayoutOutcome::Paid));
        }
    }
    // 3. The rest.
    let payouts = sorted
        .iter()
        .zip(found)
        .filter(|(payout, slot)| slot.is_some() || payout.payout_date >= statement.first_date)
        .map(|(payout, slot)| match slot {
            Some((i, outcome)) => PayoutMatch {
                payout: (*payout).clone(),
                outcome,
                credit: Some(i),
            },
            None => PayoutMatch {
                payout: (*payout).clone(),
                outcome: if statement.last_date >= latest_booking(payout.payout_date) {
                    PayoutOutcome::Missing
                } else {
                    PayoutOutcome::Pending
                },
                credit: None,
            },
        })
        .collect();
    // 4. Credits nobody explains.
    let unexplained_credits = lines
        .iter()
        .enumerate()
        .filter(|(i, line)| line.is_credit() && !credit_taken[*i])
        .map(|(i, _)| i)
        .collect();
    PayoutReport {
        payouts,
        unexplained_credits,
        debits: lines.iter().filter(|line| !line.is_credit()).count(),
    }
}

/// The payout dates whose payouts may have a credit on `statement`.
pub fn payout_dates_covered(statement: &BankStatement) -> (NaiveDate, NaiveDate) {
    let first = statement
        .first_date
        .checked_sub_days(Days::new(LATE_DAYS))
        .unwrap_or(statement.first_date);
    (first, statement.last_date)
}

/// The last day a payout of `payout_date` may be booked on.
pub fn latest_booking(payout_date: NaiveDate) -> NaiveDate {
    payout_date
        .checked_add_days(Days::new(LATE_DAYS))
        .unwrap_or(payout_date)
}

/// Whether the line's reference names the statement id as a whole word.
fn names(line: &BankLine, statement_id: &str) -> bool {
    line.reference
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == statement_id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn line(i: u64, d: u32, amount_fen: i64, reference: &str) -> BankLine {
        BankLine {
            line: i,
            date: day(d),
            amount_fen,
            counterparty: "acquirer".into(),
            reference: reference.into(),
        }
    }

    fn payout(id: &str, d: u32, fen: i64) -> Payout {
        Payout {
            statement_id: id.into(),
            payout_date: day(d),
            payout_fen: fen,
        }
    }

    fn statement(lines: Vec<BankLine>) -> BankStatement {
        let first_date = lines.iter().map(|l| l.date).min().unwrap();
        let last_date = lines.iter().map(|l| l.date).max().unwrap();
        BankStatement {
            lines,
            first_date,
            last_date,
        }
    }

    fn outcomes(report: &PayoutReport) -> Vec<(String, PayoutOutcome, Option<usize>)> {
        report
            .payouts
            .iter()
            .map(|m| (m.payout.statement_id.clone(), m.outcome, m.credit))
            .collect()
    }

    #[test]
    fn each_outcome() {
        let file = statement(vec![
            line(2, 3, 10_000, "settlement stl_a"), // names stl_a, equal
            line(3, 3, 4_999, "stl_b;"),            // names stl_b, one fen short
            line(4, 5, 7_000, "结算款"),            // stl_c by amount, two days late
            line(5, 5, -300, "电费"),               // a debit
            line(6, 6, 123, "interest"),            // nobody's
            line(7, 9, 1, "end"),
        ]);
        let payouts = [
            payout("stl_c", 3, 7_000),
            payout("stl_b", 3, 5_000),
            payout("stl_a", 3, 10_000),
            payout("stl_d", 4, 8_000), // nothing: the statement runs to the 9th
            payout("stl_e", 8, 9_000), // nothing yet: its days run to the 11th
        ];
        let report = match_payouts(&file, &payouts);
        assert_eq!(
            outcomes(&report),
            vec![
                ("stl_a".into(), PayoutOutcome::Paid, Some(0)),
                ("stl_b".into(), PayoutOutcome::DifferentAmount, Some(1)),
                ("stl_c".into(), PayoutOutcome::Paid, Some(2)),
                ("stl_d".into(), PayoutOutcome::Missing, None),
                ("stl_e".into(), PayoutOutcome::Pending, None),
            ]
        );
        assert_eq!(report.unexplained_credits, vec![4, 5]);
        assert_eq!(report.debits, 1);
    }

    #[test]
    fn a_credit_serves_one_payout_and_never_before_its_date() {
        // Two payouts of the same amount, one credit: the earlier payout takes it.
        let file = statement(vec![line(2, 4, 500, ""), line(3, 2, 500, "")]);
        let report = match_payouts(&file, &[payout("stl_y", 4, 500), payout("stl_x", 3, 500)]);
        assert_eq!(
            outcomes(&report),
            vec![
                ("stl_x".into(), PayoutOutcome::Paid, Some(0)),
                ("stl_y".into(), PayoutOutcome::Pending, None),
            ]
        );
        // The credit of the 2nd is before both payout dates: nobody's.
        assert_eq!(report.unexplained_credits, vec![1]);
    }

    #[test]
    fn an_earlier_payout_counts_only_when_its_credit_is_here() {
        let file = statement(vec![line(2, 5, 300, ""), line(3, 9, 1, "")]);
        assert_eq!(payout_dates_covered(&file), (day(2), day(9)));
        let report = match_payouts(&file, &[payout("stl_p", 3, 300), payout("stl_q", 4, 999)]);
        assert_eq!(
            outcomes(&report),
            vec![("stl_p".into(), PayoutOutcome::Paid, Some(0))]
        );
    }

    #[test]
    fn a_reference_names_an_id_only_as_a_whole_word() {
        let file = statement(vec![line(2, 3, 100, "stl_ab"), line(3, 9, 1, "")]);
        let report = match_payouts(&file, &[payout("stl_a", 3, 200)]);
        assert_eq!(report.payouts[0].outcome, PayoutOutcome::Missing);
        assert_eq!(report.unexplained_credits, vec![0, 1]);
    }

    proptest::proptest! {
        /// Every credit is used at most once, and paid means equal amounts.
        #[test]
        fn credits_are_used_once(
            credits in proptest::collection::vec((1u32..10, 1i64..5), 1..12),
            payouts in proptest::collection::vec((1u32..10, 1i64..5), 0..12),
        ) {
            let file = statement(credits.iter().enumerate()
                .map(|(i, (d, fen))| line(i as u64 + 2, *d, *fen, "")).collect());
            let payouts: Vec<Payout> = payouts.iter().enumerate()
                .map(|(i, (d, fen))| payout(&format!("stl_{i}"), *d, *fen)).collect();
            let report = match_payouts(&file, &payouts);
            let mut used: Vec<usize> = report.payouts.iter().filter_map(|m| m.credit).collect();
            used.extend(&report.unexplained_credits);
            let total = used.len();
            used.sort_unstable();
            used.dedup();
            proptest::prop_assert_eq!(used.len(), total);
            // Every credit is either some payout's or unexplained.
            proptest::prop_assert_eq!(total, file.lines.len());
            for m in &report.payouts {
                if let Some(i) = m.credit {
                    proptest::prop_assert_eq!(file.lines[i].amount_fen, m.payout.payout_fen);
                    proptest::prop_assert!(file.lines[i].date >= m.payout.payout_date);
                }
            }
        }
    }
}
