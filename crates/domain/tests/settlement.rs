//! Settlement statements of the spec's "Settlement: the credited amount (入户金额)" section:
//! the worked examples, the carried balance across days, the plain-language explanation,
//! refused inputs, and the statement's invariants over random days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use yuanlu_domain::calendar::BusinessCalendar;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::{payment_fee, proportional_fee_refund};
use yuanlu_domain::ledger::{
    Account, InvalidPosting, MerchantBalance, Posting, balances, carry_applied, carry_forward,
    check_ledger, merchant_balance, settlement_payout,
};
use yuanlu_domain::settlement::{
    LineKind, PaymentLine, RefundLine, RefundLineKind, SettlementError, SettlementInput, Statement,
    StatementLine, VoidLine, settle,
};
use yuanlu_domain::time::shanghai_day_bounds;

const M: &str = "mch_1";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Tuesday 2026-03-10.
fn tuesday() -> NaiveDate {
    date(2026, 3, 10)
}

fn calendar() -> BusinessCalendar {
    BusinessCalendar::embedded().unwrap()
}

/// `hh:00` in Shanghai on `day`.
fn at(day: NaiveDate, hour: i64) -> DateTime<Utc> {
    shanghai_day_bounds(day).0 + Duration::hours(hour)
}

fn default_fee(channel: Channel, amount_fen: i64) -> i64 {
    payment_fee(
        amount_fen,
        channel.default_fee_rate_ppm(),
        channel.default_fee_cap_fen(),
    )
}

fn sale(id: &str, channel: Channel, amount_fen: i64, day: NaiveDate) -> PaymentLine {
    PaymentLine {
        payment_id: id.to_owned(),
        channel,
        amount_fen,
        fee_fen: default_fee(channel, amount_fen),
        captured_at: at(day, 10),
    }
}

fn refund(id: &str, payment: &str, channel: Channel, amount_fen: i64, fee: i64) -> RefundLine {
    RefundLine {
        refund_id: id.to_owned(),
        payment_id: payment.to_owned(),
        channel,
        amount_fen,
        fee_refunded_fen: fee,
        kind: RefundLineKind::Debited,
    }
}

fn day(business_date: NaiveDate, opening: i64) -> SettlementInput {
    SettlementInput {
        merchant_id: M.to_owned(),
        business_date,
        opening_carried_fen: opening,
        payments: Vec::new(),
        voids: Vec::new(),
        refunds: Vec::new(),
        deductions: Vec::new(),
    }
}

/// Every invariant a statement must keep, for any input.
fn assert_invariants(input: &SettlementInput, s: &Statement) {
    assert!(s.payout_fen >= 0, "payout never negative");
    assert!(s.closing_carried_fen <= 0, "carried is a debt");
    assert_eq!(
        s.payout_fen + s.closing_carried_fen,
        s.opening_carried_fen + s.net_fen
    );
    assert_eq!(s.total_fen, s.opening_carried_fen + s.net_fen);
    assert_eq!(s.lines.iter().map(|l| l.net_fen).sum::<i64>(), s.net_fen);
    assert_eq!(
        s.net_fen,
        s.sales_fen - s.fees_fen - (s.voids_fen - s.void_fees_returned_fen) - s.refunds_fen
            + s.refund_fees_returned_fen
            + (s.credited_back_fen - s.credited_back_fees_fen)
    );
    assert_eq!(
        s.lines.len(),
        input.payments.len() + input.voids.len() + input.refunds.len()
    );
    assert_eq!(check_ledger(&s.postings), Ok(()));
    let b = balances(&s.postings);
    let moved = merchant_balance(&b, &s.merchant_id);
    // The postings take the day's net out of the unsettled account and move the carried
    // debt from `opening` to `closing`.
    assert_eq!(moved.unsettled_fen, -s.net_fen);
    assert_eq!(
        moved.carried_fen,
        s.closing_carried_fen - s.opening_carried_fen
    );
    assert_eq!(
        b.get(&Account::MerchantPayouts).copied().unwrap_or(0),
        -s.payout_fen
    );
    let mut sorted = s.lines.clone();
    sorted.sort_by(|a, b| (&a.reference, a.kind).cmp(&(&b.reference, b.kind)));
    assert_eq!(sorted, s.lines, "lines sorted by reference");
    assert_eq!(settle(input, &calendar()).as_ref(), Ok(s), "deterministic");
}

fn settled(input: &SettlementInput) -> Statement {
    let s = settle(input, &calendar()).unwrap();
    assert_invariants(input, &s);
    s
}

// ---------------------------------------------------------------------------------------
// The spec's worked examples
// ---------------------------------------------------------------------------------------

#[test]
fn a_1000_yuan_credit_card_sale_is_credited_994_yuan_on_the_next_business_day() {
    let mut input = day(tuesday(), 0);
    input
        .payments
        .push(sale("pay_1", Channel::CreditCard, 100_000, tuesday()));
    let s = settled(&input);
    assert_eq!((s.sales_count, s.sales_fen, s.fees_fen), (1, 100_000, 600));
    assert_eq!(
        (s.net_fen, s.payout_fen, s.closing_carried_fen),
        (99_400, 99_400, 0)
    );
    assert_eq!(s.payout_date, date(2026, 3, 11));
    assert_eq!(
        s.postings,
        vec![settlement_payout(M, 99_400).unwrap()],
        "only the payout is posted"
    );
    assert_eq!(
        s.lines,
        vec![StatementLine {
            kind: LineKind::Payment,
            reference: "pay_1".into(),
            channel: Channel::CreditCard,
            amount_fen: 100_000,
            fee_fen: 600,
            net_fen: 99_400,
            explanation: String::new(),
            payment_id: None,
            captured_at: Some(at(tuesday(), 10)),
            deduction: None,
        }]
    );
    assert_eq!(
        s.lines[0].english(),
        "credit card payment pay_1 at 10:00: sale 1000.00 less fee 6.00 = +994.00"
    );
    // The sentence is said from the line's fields, not stored with every line.
    let stored = serde_json::to_string(&s).unwrap();
    assert!(!stored.contains("explanation"), "{stored}");
    let read: Statement = serde_json::from_str(&stored).unwrap();
    assert_eq!(read.lines[0].english(), s.lines[0].english());
    let explained = s.explain();
    assert!(
        explained
            .contains(&"sales 1000.00 − fees 6.00 = 994.00 credited on 2026-03-11.".to_owned()),
        "{explained:#?}"
    );
    assert!(
        explained.contains(
            &"994.00 is credited and not the 1000.00 sold because of: fees −6.00.".to_owned()
        ),
        "{explained:#?}"
    );
}

#[test]
fn a_100_yuan_wechat_payment_refunded_in_three_parts_returning_its_whole_fee_nets_to_zero() {
    let (amount, fee) = (10_000, default_fee(Channel::Wechat, 10_000));
    assert_eq!(fee, 38);
    let f1 = proportional_fee_refund(amount, fee, 3_333, 0);
    let f2 = proportional_fee_refund(amount, fee, 6_666, f1);
    let f3 = proportional_fee_refund(amount, fee, 10_000, f1 + f2);
    assert_eq!((f1, f2, f3), (13, 12, 13));

    let mut input = day(tuesday(), 0);
    input
        .payments
        .push(sale("pay_w", Channel::Wechat, amount, tuesday()));
    input.refunds = vec![
        refund("ref_1", "pay_w", Channel::Wechat, 3_333, f1),
        refund("ref_2", "pay_w", Channel::Wechat, 3_333, f2),
        refund("ref_3", "pay_w", Channel::Wechat, 3_334, f3),
    ];
    let s = settled(&input);
    assert_eq!((s.refunds_count, s.refunds_fen), (3, 10_000));
    assert_eq!(s.refund_fees_returned_fen, 38);
    assert_eq!(s.net_fen, 0);
    assert_eq!((s.payout_fen, s.closing_carried_fen), (0, 0));
    assert!(s.postings.is_empty(), "nothing to pay, nothing to carry");
    let nets: Vec<i64> = s.lines.iter().map(|l| l.net_fen).collect();
    assert_eq!(nets, vec![9_962, -3_320, -3_321, -3_321]);
    assert_eq!(
        s.lines[1].english(),
        "refund ref_1 of WeChat Pay payment pay_w: 33.33 debited, fee 0.13 returned = −33.20"
    );
    let explained = s.explain();
    assert!(
        explained.contains(
            &"sales 100.00 − fees 0.38 − refunds 100.00 + refund fees returned 0.38 = 0.00: nothing to credit."
                .to_owned()
        ),
        "{explained:#?}"
    );
}

#[test]
fn a_10000_yuan_debit_card_sale_pays_only_the_25_yuan_cap() {
    let mut input = day(tuesday(), 0);
    input
        .payments
        .push(sale("pay_d", Channel::DebitCard, 1_000_000, tuesday()));
    let s = settled(&input);
    assert_eq!(s.fees_fen, 2_500, "0.50 % would be 50.00; the cap is 25.00");
    assert_eq!(s.payout_fen, 997_500);
    assert!(
        s.explain()
            .contains(&"sales 10000.00 − fees 25.00 = 9975.00 credited on 2026-03-11.".to_owned())
    );
}

#[test]
fn refunds_exceeding_a_days_sales_carry_a_debt_that_the_next_days_payout_deducts() {
    let cal = calendar();
    // Day 1: a WeChat sale of 100.00 and a refund of 500.00 of an earlier card payment.
    let mut day1 = day(tuesday(), 0);
    day1.payments
        .push(sale("pay_a", Channel::Wechat, 10_000, tuesday()));
    day1.refunds
        .push(refund("ref_a", "pay_old", Channel::CreditCard, 50_000, 0));
    let s1 = settled(&day1);
    assert_eq!(s1.net_fen, 10_000 - 38 - 50_000);
    assert_eq!(s1.payout_fen, 0, "a negative result pays nothing");
    assert_eq!(s1.closing_carried_fen, -40_038);
    assert_eq!(s1.postings, vec![carry_forward(M, 40_038).unwrap()]);
    let explained = s1.explain();
    assert!(
        explained.contains(
            &"sales 100.00 − fees 0.38 − refunds 500.00 = −400.38: nothing credited.".to_owned()
        ),
        "{explained:#?}"
    );
    assert!(explained.contains(
        &"The merchant owes 400.38: it is carried and deducted from later payouts.".to_owned()
    ));

    // Day 2: a 1 000.00 credit-card sale; the debt is deducted from its payout.
    let wednesday = tuesday().succ_opt().unwrap();
    let mut day2 = day(wednesday, s1.closing_carried_fen);
    day2.payments
        .push(sale("pay_b", Channel::CreditCard, 100_000, wednesday));
    let s2 = settle(&day2, &cal).unwrap();
    assert_invariants(&day2, &s2);
    assert_eq!(s2.net_fen, 99_400);
    assert_eq!(s2.payout_fen, 99_400 - 40_038);
    assert_eq!(s2.closing_carried_fen, 0);
    assert_eq!(
        s2.postings,
        vec![
            carry_applied(M, 40_038).unwrap(),
            settlement_payout(M, 59_362).unwrap()
        ]
    );
    let explained = s2.explain();
    assert!(
        explained.contains(
            &"sales 1000.00 − fees 6.00 − carried debt 400.38 = 593.62 credited on 2026-03-12."
                .to_owned()
        ),
        "{explained:#?}"
    );
    assert!(explained.contains(&"Debt carried from earlier settlements: 400.38.".to_owned()));

    // The two days' activity and settlements, on one ledger: nothing left owed either way,
    // and the payout is the two days' net.
    let mut ledger: Vec<Posting> = Vec::new();
    for (input, statement) in [(&day1, &s1), (&day2, &s2)] {
        for line in &statement.lines {
            ledger.push(line.posting(&input.merchant_id).unwrap());
        }
        ledger.extend(statement.postings.iter().cloned());
    }
    assert_eq!(check_ledger(&ledger), Ok(()));
    let b = balances(&ledger);
    assert_eq!(merchant_balance(&b, M), MerchantBalance::default());
    assert_eq!(b[&Account::MerchantPayouts], -(s1.net_fen + s2.net_fen));
}

#[test]
fn a_debt_larger_than_the_next_days_net_is_reduced_and_still_carried() {
    let mut input = day(tuesday(), -50_000);
    input.payments.push(PaymentLine {
        fee_fen: 0,
        ..sale("pay_1", Channel::CreditCard, 20_000, tuesday())
    });
    let s = settled(&input);
    assert_eq!(s.payout_fen, 0);
    assert_eq!(s.closing_carried_fen, -30_000);
    assert_eq!(s.postings, vec![carry_applied(M, 20_000).unwrap()]);
}

#[test]
fn a_day_without_activity_carries_the_debt_unchanged_and_posts_nothing() {
    let s = settled(&day(tuesday(), -12_345));
    assert_eq!(
        (s.net_fen, s.payout_fen, s.closing_carried_fen),
        (0, 0, -12_345)
    );
    assert!(s.postings.is_empty());
    assert!(s.lines.is_empty());
}

// ---------------------------------------------------------------------------------------
// Voids, credited-back refunds, lines
// ---------------------------------------------------------------------------------------

#[test]
fn a_voided_sale_nets_to_zero_with_its_whole_fee_returned() {
    let mut input = day(tuesday(), 0);
    input
        .payments
        .push(sale("pay_v", Channel::UnionpayQr, 20_000, tuesday()));
    input.voids.push(VoidLine {
        refund_id: "ref_v".into(),
        payment_id: "pay_v".into(),
        channel: Channel::UnionpayQr,
        amount_fen: 20_000,
        fee_fen: 120,
    });
    let s = settled(&input);
    assert_eq!(
        (s.voids_count, s.voids_fen, s.void_fees_returned_fen),
        (1, 20_000, 120)
    );
    assert_eq!(s.net_fen, 0);
    assert_eq!(
        s.lines[1].english(),
        "void ref_v of UnionPay QR payment pay_v: sale 200.00 reversed, its fee 1.20 returned = −198.80"
    );
}

#[test]
fn a_refund_credited_back_gives_the_merchant_what_its_debit_took() {
    let mut input = day(tuesday(), 0);
    input.refunds.push(RefundLine {
        kind: RefundLineKind::CreditedBack,
        ..refund("ref_f", "pay_old", Channel::Alipay, 5_000, 19)
    });
    let s = settled(&input);
    assert_eq!(
        (
            s.credited_back_count,
            s.credited_back_fen,
            s.credited_back_fees_fen
        ),
        (1, 5_000, 19)
    );
    assert_eq!(s.net_fen, 4_981);
    assert_eq!(s.payout_fen, 4_981);
    assert_eq!(
        s.lines[0].english(),
        "refund ref_f of Alipay payment pay_old failed, was canceled or was paid by the merchant directly: 50.00 credited back less the fee 0.19 it had returned = +49.81"
    );
}

#[test]
fn a_refund_debited_and_credited_back_the_same_day_leaves_nothing() {
    let mut input = day(tuesday(), 0);
    let debit = refund("ref_x", "pay_old", Channel::Wechat, 5_000, 19);
    input.refunds = vec![
        RefundLine {
            kind: RefundLineKind::CreditedBack,
            ..debit.clone()
        },
        debit,
    ];
    let s = settled(&input);
    assert_eq!(s.net_fen, 0);
    let kinds: Vec<LineKind> = s.lines.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, vec![LineKind::Refund, LineKind::RefundCreditedBack]);
}

#[test]
fn each_lines_posting_moves_the_merchant_by_exactly_its_net() {
    let mut input = day(tuesday(), 0);
    input
        .payments
        .push(sale("pay_1", Channel::Alipay, 12_345, tuesday()));
    input
        .refunds
        .push(refund("ref_1", "pay_1", Channel::Alipay, 2_000, 8));
    let s = settled(&input);
    for line in &s.lines {
        let posting = line.posting(M).unwrap();
        assert_eq!(posting.check(), Ok(()));
        assert_eq!(
            posting.amount_on(&Account::MerchantUnsettled(M.into())),
            -line.net_fen
        );
    }
}

#[test]
fn the_statement_is_the_same_whatever_the_order_of_its_input() {
    let mut input = day(tuesday(), -700);
    for (i, channel) in Channel::ALL.into_iter().enumerate() {
        input.payments.push(sale(
            &format!("pay_{i}"),
            channel,
            10_000 + i64::try_from(i).unwrap(),
            tuesday(),
        ));
        input.refunds.push(refund(
            &format!("ref_{i}"),
            &format!("pay_{i}"),
            channel,
            1_000,
            0,
        ));
    }
    let s = settled(&input);
    let mut reversed = input.clone();
    reversed.payments.reverse();
    reversed.refunds.reverse();
    assert_eq!(settle(&reversed, &calendar()).unwrap(), s);
    let references: Vec<&str> = s.lines.iter().map(|l| l.reference.as_str()).collect();
    assert_eq!(references[..2], ["pay_0", "pay_1"]);
}

#[test]
fn a_statement_survives_a_round_trip_through_json() {
    let mut input = day(tuesday(), -100);
    input
        .payments
        .push(sale("pay_1", Channel::CreditCard, 100_000, tuesday()));
    let s = settled(&input);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["lines"][0]["kind"], "payment");
    assert_eq!(serde_json::from_value::<Statement>(json).unwrap(), s);
}

// ---------------------------------------------------------------------------------------
// Payout dates: T+1 on the business-day calendar
// ---------------------------------------------------------------------------------------

#[test]
fn friday_and_weekend_activity_is_paid_out_on_monday() {
    let cal = calendar();
    for business_date in [date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15)] {
        let s = settle(&day(business_date, 0), &cal).unwrap();
        assert_eq!(s.payout_date, date(2026, 3, 16), "{business_date}");
    }
}

#[test]
fn spring_festival_activity_waits_for_the_first_working_day_after_the_holiday() {
    let cal = calendar();
    // Friday 2026-02-13 pays on Saturday 2026-02-14, an adjusted working day (调休) ...
    let s = settle(&day(date(2026, 2, 13), 0), &cal).unwrap();
    assert_eq!(s.payout_date, date(2026, 2, 14));
    // ... whose own activity waits out the holiday (Feb 15–23) until Tuesday Feb 24.
    let s = settle(&day(date(2026, 2, 14), 0), &cal).unwrap();
    assert_eq!(s.payout_date, date(2026, 2, 24));
    assert!(s.explain()[0].contains("paid out on Tuesday 2026-02-24"));
}

// ---------------------------------------------------------------------------------------
// Refused inputs
// ---------------------------------------------------------------------------------------

#[test]
fn a_positive_opening_carried_balance_is_refused() {
    assert_eq!(
        settle(&day(tuesday(), 1), &calendar()),
        Err(SettlementError::OpeningCarriedPositive {
            opening_carried_fen: 1
        })
    );
}

#[test]
fn a_payment_captured_on_another_shanghai_day_is_refused() {
    let mut input = day(tuesday(), 0);
    // 00:30 Shanghai on Wednesday is still Tuesday in UTC.
    input.payments.push(PaymentLine {
        captured_at: at(tuesday(), 24) + Duration::minutes(30),
        ..sale("pay_late", Channel::Wechat, 100, tuesday())
    });
    assert_eq!(
        settle(&input, &calendar()),
        Err(SettlementError::PaymentNotOnBusinessDate {
            payment_id: "pay_late".into(),
            captured_on: date(2026, 3, 11),
            business_date: tuesday(),
        })
    );
    // 23:59 Shanghai on Tuesday is accepted.
    input.payments[0].captured_at = at(tuesday(), 24) - Duration::minutes(1);
    assert!(settle(&input, &calendar()).is_ok());
}

#[test]
fn negative_amounts_and_fees_above_their_amount_are_refused() {
    let mut input = day(tuesday(), 0);
    input
        .refunds
        .push(refund("ref_1", "pay_1", Channel::Wechat, 100, 101));
    assert_eq!(
        settle(&input, &calendar()),
        Err(SettlementError::InvalidLine {
            kind: LineKind::Refund,
            reference: "ref_1".into(),
            problem: InvalidPosting::PartExceedsAmount {
                what: "fee refunded",
                part_fen: 101,
                amount_fen: 100
            },
        })
    );
    let mut input = day(tuesday(), 0);
    input.payments.push(PaymentLine {
        amount_fen: -100,
        fee_fen: 0,
        ..sale("pay_1", Channel::Wechat, 100, tuesday())
    });
    assert!(matches!(
        settle(&input, &calendar()),
        Err(SettlementError::InvalidLine {
            kind: LineKind::Payment,
            ..
        })
    ));
}

#[test]
fn the_same_activity_fed_twice_is_refused_rather_than_paid_twice() {
    let mut input = day(tuesday(), 0);
    let p = sale("pay_1", Channel::CreditCard, 100_000, tuesday());
    input.payments = vec![p.clone(), p];
    assert_eq!(
        settle(&input, &calendar()),
        Err(SettlementError::DuplicateLine {
            kind: LineKind::Payment,
            reference: "pay_1".into()
        })
    );

    // A refund id is debited once, whether as a void or as a refund.
    let mut input = day(tuesday(), 0);
    input.voids.push(VoidLine {
        refund_id: "ref_1".into(),
        payment_id: "pay_1".into(),
        channel: Channel::CreditCard,
        amount_fen: 100,
        fee_fen: 1,
    });
    input
        .refunds
        .push(refund("ref_1", "pay_1", Channel::CreditCard, 100, 0));
    assert_eq!(
        settle(&input, &calendar()),
        Err(SettlementError::DuplicateLine {
            kind: LineKind::Refund,
            reference: "ref_1".into()
        })
    );
}

// ---------------------------------------------------------------------------------------
// Properties over random days
// ---------------------------------------------------------------------------------------

fn payment_line(business_date: NaiveDate) -> impl Strategy<Value = PaymentLine> {
    (
        prop::sample::select(Channel::ALL.to_vec()),
        0i64..=5_000_000,
        0i64..86_400,
    )
        .prop_map(move |(channel, amount, second)| PaymentLine {
            payment_id: String::new(),
            channel,
            amount_fen: amount,
            fee_fen: default_fee(channel, amount),
            captured_at: shanghai_day_bounds(business_date).0 + Duration::seconds(second),
        })
}

fn refund_line() -> impl Strategy<Value = RefundLine> {
    (
        prop::sample::select(Channel::ALL.to_vec()),
        0i64..=5_000_000,
        0i64..=1_000,
        any::<bool>(),
    )
        .prop_map(
            |(channel, amount, fee_per_mille, credited_back)| RefundLine {
                refund_id: String::new(),
                payment_id: "pay_earlier".into(),
                channel,
                amount_fen: amount,
                fee_refunded_fen: amount * fee_per_mille / 1_000 / 100,
                kind: if credited_back {
                    RefundLineKind::CreditedBack
                } else {
                    RefundLineKind::Debited
                },
            },
        )
}

fn random_day() -> impl Strategy<Value = SettlementInput> {
    let business_date = tuesday();
    (
        -10_000_000i64..=0,
        prop::collection::vec(payment_line(business_date), 0..12),
        prop::collection::vec(0usize..12, 0..4),
        prop::collection::vec(refund_line(), 0..12),
    )
        .prop_map(move |(opening, mut payments, voided, mut refunds)| {
            for (i, p) in payments.iter_mut().enumerate() {
                p.payment_id = format!("pay_{i:02}");
            }
            let mut voids: Vec<VoidLine> = voided
                .into_iter()
                .filter_map(|i| payments.get(i))
                .map(|p| VoidLine {
                    refund_id: format!("void_{}", p.payment_id),
                    payment_id: p.payment_id.clone(),
                    channel: p.channel,
                    amount_fen: p.amount_fen,
                    fee_fen: p.fee_fen,
                })
                .collect();
            voids.sort_by(|a, b| a.refund_id.cmp(&b.refund_id));
            voids.dedup_by(|a, b| a.refund_id == b.refund_id);
            for (i, r) in refunds.iter_mut().enumerate() {
                r.refund_id = format!("ref_{i:02}");
            }
            SettlementInput {
                merchant_id: M.to_owned(),
                business_date,
                opening_carried_fen: opening,
                payments,
                voids,
                refunds,
                deductions: Vec::new(),
            }
        })
}

proptest! {
    #[test]
    fn every_statement_keeps_its_invariants(input in random_day()) {
        let s = settle(&input, &calendar()).unwrap();
        assert_invariants(&input, &s);
        let explained = s.explain();
        prop_assert!(explained.len() >= 3);
        let credited = format!("{} credited on", yuanlu_domain::money::format_cny(s.payout_fen));
        prop_assert_eq!(
            explained.iter().any(|l| l.contains(&credited)),
            s.payout_fen > 0,
            "{:#?}", explained
        );
    }

    #[test]
    fn shuffling_the_input_changes_nothing(
        input in random_day(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = input.clone();
        let n = shuffled.payments.len().max(1);
        shuffled.payments.rotate_left(usize::try_from(seed).unwrap_or(0) % n);
        shuffled.refunds.reverse();
        shuffled.voids.reverse();
        prop_assert_eq!(
            settle(&shuffled, &calendar()).unwrap(),
            settle(&input, &calendar()).unwrap()
        );
    }

    #[test]
    fn consecutive_days_pay_out_exactly_the_sum_of_their_nets_less_the_debt_left(
        nets in prop::collection::vec(-1_000_000i64..=1_000_000, 1..20)
    ) {
        // Each day holds one line whose net is given: a fee-free sale or refund.
        let cal = calendar();
        let mut carried = 0;
        let mut paid = 0;
        let mut ledger = Vec::new();
        let mut business_date = tuesday();
        for (i, net) in nets.iter().copied().enumerate() {
            let mut input = day(business_date, carried);
            if net >= 0 {
                input.payments.push(PaymentLine {
                    fee_fen: 0,
                    ..sale(&format!("pay_{i}"), Channel::Wechat, net, business_date)
                });
            } else {
                input.refunds.push(refund(&format!("ref_{i}"), "pay_0", Channel::Wechat, -net, 0));
            }
            let s = settle(&input, &cal).unwrap();
            assert_invariants(&input, &s);
            for line in &s.lines {
                ledger.push(line.posting(M).unwrap());
            }
            ledger.extend(s.postings.iter().cloned());
            paid += s.payout_fen;
            carried = s.closing_carried_fen;
            business_date = business_date.succ_opt().unwrap();
        }
        prop_assert_eq!(paid + carried, nets.iter().sum::<i64>());
        let b = balances(&ledger);
        prop_assert_eq!(
            merchant_balance(&b, M),
            MerchantBalance { unsettled_fen: 0, carried_fen: carried }
        );
        prop_assert_eq!(b.get(&Account::MerchantPayouts).copied().unwrap_or(0), -paid);
    }
}
