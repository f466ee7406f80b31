//! Deductions (issue 15 item 2): money is conserved and the ledger balances, whatever the
//! deductions, the fee returned and the refund's fate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use proptest::prelude::*;
use yuanlu_domain::calendar::BusinessCalendar;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::deduction::{
    Deduction, DeductionKind, check_against_amount, consumer_amount, validate,
};
use yuanlu_domain::ledger::{
    self, Account, Posting, balances, check_ledger, deduction_released, merchant_balance,
    refund_deducted, refund_queued, refund_released, refund_succeeded,
};
use yuanlu_domain::settlement::{
    DeductionLine, LineKind, RefundLine, RefundLineKind, SettlementInput, settle,
};

const M: &str = "mch_1";

fn kind_of(n: u8) -> DeductionKind {
    DeductionKind::ALL[usize::from(n) % DeductionKind::ALL.len()]
}

/// A refund's postings when queued: the debit and one posting per deduction.
fn queued(amount: i64, fee: i64, lines: &[Deduction]) -> Vec<Posting> {
    let mut postings = vec![refund_queued(M, Channel::Wechat, amount, fee).unwrap()];
    for line in lines {
        postings.push(refund_deducted(M, Channel::Wechat, line.amount_fen).unwrap());
    }
    postings
}

fn released(amount: i64, fee: i64, lines: &[Deduction]) -> Vec<Posting> {
    let mut postings = vec![refund_released(M, Channel::Wechat, amount, fee).unwrap()];
    for line in lines {
        postings.push(deduction_released(M, Channel::Wechat, line.amount_fen).unwrap());
    }
    postings
}

fn deductions() -> impl Strategy<Value = (i64, i64, Vec<(i64, u8)>)> {
    (2_i64..10_000_000).prop_flat_map(|amount| {
        let lines = prop::collection::vec((1_i64..=(amount / 8).max(1), any::<u8>()), 0..=10);
        (Just(amount), 0..=amount / 100, lines)
    })
}

proptest! {
    /// The consumer's amount and the deductions add up to the amount asked for; the
    /// merchant is debited exactly the consumer's amount less the fee returned; the channel
    /// pays exactly the consumer's amount; every posting balances.
    #[test]
    fn money_is_conserved((amount, fee, raw) in deductions()) {
        let lines: Vec<Deduction> = raw
            .iter()
            .map(|(fen, k)| Deduction { kind: kind_of(*k), amount_fen: *fen, reason: "agreed".into() })
            .collect();
        let (lines, deducted) = validate(lines, amount).unwrap();
        prop_assert_eq!(deducted, lines.iter().map(|l| l.amount_fen).sum::<i64>());
        if check_against_amount(deducted, amount).is_err() {
            prop_assert!(deducted >= amount);
            return Ok(());
        }
        let consumer = consumer_amount(amount, deducted);
        prop_assert!(consumer >= 1);
        prop_assert_eq!(consumer + deducted, amount);

        let mut postings = queued(amount, fee, &lines);
        check_ledger(&postings).unwrap();
        let b = balances(&postings);
        let merchant = merchant_balance(&b, M);
        // The merchant is debited the consumer's money less the fee returned.
        prop_assert_eq!(merchant.unsettled_fen, -(consumer - fee));
        // What is in flight is what the channel will pay: the consumer's money.
        prop_assert_eq!(b.get(&Account::RefundsInFlight(Channel::Wechat)).copied().unwrap_or(0), -consumer);
        postings.push(refund_succeeded(Channel::Wechat, consumer).unwrap());
        let b = balances(&postings);
        prop_assert_eq!(b.get(&Account::RefundsInFlight(Channel::Wechat)).copied().unwrap_or(0), 0);
        prop_assert_eq!(b.get(&Account::ChannelClearing(Channel::Wechat)).copied().unwrap_or(0), -consumer);
        check_ledger(&postings).unwrap();
    }

    /// A released refund gives everything back: queued then released leaves every account
    /// at zero.
    #[test]
    fn released_refund_moves_nothing((amount, fee, raw) in deductions()) {
        let lines: Vec<Deduction> = raw
            .iter()
            .map(|(fen, k)| Deduction { kind: kind_of(*k), amount_fen: *fen, reason: "x".into() })
            .collect();
        let mut postings = queued(amount, fee, &lines);
        postings.extend(released(amount, fee, &lines));
        check_ledger(&postings).unwrap();
        prop_assert!(balances(&postings).values().all(|v| *v == 0));
    }

    /// The statement's deduction lines sum with the refund line to the merchant's debit,
    /// and each line's posting is the one the ledger made.
    #[test]
    fn statement_lines_match_the_ledger((amount, fee, raw) in deductions(), released_too in any::<bool>()) {
        let lines: Vec<DeductionLine> = raw
            .iter()
            .enumerate()
            .map(|(n, (fen, k))| DeductionLine {
                refund_id: "rf_1".into(),
                payment_id: "pay_1".into(),
                channel: Channel::Wechat,
                line_no: n as i64 + 1,
                kind: kind_of(*k),
                amount_fen: *fen,
                reason: format!("reason {n}"),
                released: false,
            })
            .collect();
        let mut all = lines.clone();
        let mut refunds = vec![RefundLine {
            refund_id: "rf_1".into(),
            payment_id: "pay_1".into(),
            channel: Channel::Wechat,
            amount_fen: amount,
            fee_refunded_fen: fee,
            kind: RefundLineKind::Debited,
        }];
        if released_too {
            all.extend(lines.iter().cloned().map(|l| DeductionLine { released: true, ..l }));
            refunds.push(RefundLine { kind: RefundLineKind::CreditedBack, ..refunds[0].clone() });
        }
        let input = SettlementInput {
            merchant_id: M.into(),
            business_date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
            opening_carried_fen: -100_000_000,
            payments: Vec::new(),
            voids: Vec::new(),
            refunds,
            deductions: all.clone(),
        };
        let s = settle(&input, &BusinessCalendar::default()).unwrap();
        let deducted: i64 = lines.iter().map(|l| l.amount_fen).sum();
        let expected_net = if released_too { 0 } else { -(amount - fee) + deducted };
        prop_assert_eq!(s.net_fen, expected_net);
        prop_assert_eq!(s.lines.iter().map(|l| l.net_fen).sum::<i64>(), s.net_fen);
        let deduction_lines = s.lines.iter().filter(|l| matches!(l.kind, LineKind::Deduction | LineKind::DeductionReleased)).count();
        prop_assert_eq!(deduction_lines, all.len());
        for line in &s.lines {
            let posting = line.posting(M).unwrap();
            let unsettled = posting.amount_on(&ledger::Account::MerchantUnsettled(M.into()));
            prop_assert_eq!(unsettled, -line.net_fen, "{:?}", line);
        }
        // Settling the lines in another order gives the same statement.
        let mut shuffled = input.clone();
        shuffled.deductions.reverse();
        prop_assert_eq!(settle(&shuffled, &BusinessCalendar::default()).unwrap(), s);
    }
}

#[test]
fn a_statement_explains_a_handling_fee() {
    let input = SettlementInput {
        merchant_id: M.into(),
        business_date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
        opening_carried_fen: 0,
        payments: Vec::new(),
        voids: Vec::new(),
        refunds: vec![RefundLine {
            refund_id: "rf_1".into(),
            payment_id: "pay_1".into(),
            channel: Channel::Wechat,
            amount_fen: 10_000,
            fee_refunded_fen: 38,
            kind: RefundLineKind::Debited,
        }],
        deductions: vec![DeductionLine {
            refund_id: "rf_1".into(),
            payment_id: "pay_1".into(),
            channel: Channel::Wechat,
            line_no: 1,
            kind: DeductionKind::HandlingFee,
            amount_fen: 500,
            reason: "opened box".into(),
            released: false,
        }],
    };
    let s = settle(&input, &BusinessCalendar::default()).unwrap();
    assert_eq!(s.deductions_count, 1);
    assert_eq!(s.deductions_fen, 500);
    assert_eq!(s.net_fen, -(10_000 - 38) + 500);
    let line = s
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Deduction)
        .unwrap();
    assert_eq!(
        line.english(),
        "deduction 1 of refund rf_1: handling fee 5.00 kept by the merchant, not paid to the consumer (opened box) = +5.00"
    );
    assert!(
        s.explain()
            .iter()
            .any(|l| l.contains("Deductions kept from refunds") && l.contains("5.00")),
        "{:?}",
        s.explain()
    );
}
