use yuanlu_reconcile::{LineKind, LineStatus, OurStatus, ReconClass};

use crate::{classes, line, our_pay, our_refund, pay, record, refund, run, statement};

#[test]
fn matched() {
    let report = run(
        vec![pay("pay_1", 10_000), refund("rf_1", 3_000)],
        &[our_refund("rf_1", 3_000), our_pay("pay_1", 10_000)],
    );
    assert!(report.is_clean());
    let matched = report.total(ReconClass::Matched);
    assert_eq!(matched.count, 2);
    assert_eq!(matched.channel_fen, 13_000);
    assert_eq!(matched.our_fen, 13_000);
}

#[test]
fn amount_mismatch() {
    let report = run(vec![refund("rf_1", 3_001)], &[our_refund("rf_1", 3_000)]);
    assert_eq!(
        classes(&report),
        [(ReconClass::AmountMismatch, "rf_1".into())]
    );
    let item = &report.items[0];
    assert_eq!(item.line_no, Some(2));
    assert_eq!(item.our_amount_fen, Some(3_000));
    assert_eq!(item.channel_amount_fen, Some(3_001));
    assert_eq!(item.channel_txn_id.as_deref(), Some("CH-rf_1"));
    assert!(item.detail.contains("difference 0.01"), "{}", item.detail);
    assert_eq!(report.total(ReconClass::AmountMismatch).channel_fen, 3_001);
}

#[test]
fn missing_in_channel() {
    let report = run(
        vec![pay("pay_1", 10_000)],
        &[our_pay("pay_1", 10_000), our_refund("rf_1", 3_000)],
    );
    assert_eq!(
        classes(&report),
        [(ReconClass::MissingInChannel, "rf_1".into())]
    );
    let item = &report.items[0];
    assert_eq!(item.line_no, None);
    assert_eq!(item.kind, LineKind::Refund);
    assert_eq!(item.our_amount_fen, Some(3_000));
    assert_eq!(item.channel_amount_fen, None);
    assert_eq!(report.total(ReconClass::MissingInChannel).our_fen, 3_000);
}

#[test]
fn records_not_succeeded_need_not_be_listed() {
    let report = run(
        vec![],
        &[
            record(LineKind::Refund, "rf_1", 1, OurStatus::Processing),
            record(LineKind::Refund, "rf_2", 1, OurStatus::Failed),
            record(LineKind::Refund, "rf_3", 1, OurStatus::Other),
        ],
    );
    assert!(report.is_clean());
    assert_eq!(report.unlisted_not_succeeded, 3);
}

#[test]
fn unexpected_in_channel() {
    let report = run(vec![refund("rf_9", 5_000)], &[]);
    assert_eq!(
        classes(&report),
        [(ReconClass::UnexpectedInChannel, "rf_9".into())]
    );
    assert_eq!(report.items[0].our_amount_fen, None);
    assert_eq!(
        report.total(ReconClass::UnexpectedInChannel).channel_fen,
        5_000
    );
    // A refund listed under a payment's number is not that payment.
    let report = run(vec![refund("pay_1", 5_000)], &[our_pay("pay_1", 5_000)]);
    assert_eq!(
        classes(&report),
        [
            (ReconClass::UnexpectedInChannel, "pay_1".into()),
            (ReconClass::MissingInChannel, "pay_1".into())
        ]
    );
}

#[test]
fn duplicate_in_channel() {
    let report = run(
        vec![
            refund("rf_1", 3_000),
            pay("pay_1", 10_000),
            refund("rf_1", 3_000),
            refund("rf_1", 3_000),
        ],
        &[our_pay("pay_1", 10_000), our_refund("rf_1", 3_000)],
    );
    assert_eq!(
        classes(&report),
        [
            (ReconClass::DuplicateInChannel, "rf_1".into()),
            (ReconClass::DuplicateInChannel, "rf_1".into())
        ]
    );
    assert_eq!(report.items[0].line_no, Some(4));
    assert_eq!(report.items[1].line_no, Some(5));
    assert!(report.items[0].detail.contains("after line 2: paid twice"));
    assert_eq!(report.total(ReconClass::Matched).count, 2);
    assert_eq!(
        report.total(ReconClass::DuplicateInChannel).channel_fen,
        6_000
    );
}

#[test]
fn a_failed_line_then_a_succeeded_one_matches_the_succeeded_one() {
    let report = run(
        vec![
            line(LineKind::Refund, "rf_1", 3_000, LineStatus::Processing),
            refund("rf_1", 3_000),
        ],
        &[our_refund("rf_1", 3_000)],
    );
    assert_eq!(
        classes(&report),
        [(ReconClass::DuplicateInChannel, "rf_1".into())]
    );
    assert_eq!(report.items[0].line_no, Some(2));
    assert!(report.items[0].detail.contains("no money moved"));
    assert_eq!(report.total(ReconClass::Matched).count, 1);
}

#[test]
fn status_mismatch() {
    use LineStatus as L;
    use OurStatus as O;
    let mismatched = [
        (O::Processing, L::Succeeded),
        (O::Failed, L::Succeeded),
        (O::Other, L::Succeeded),
        (O::Succeeded, L::Processing),
        (O::Succeeded, L::Failed),
        (O::Succeeded, L::Closed),
        (O::Failed, L::Processing),
    ];
    for (ours, theirs) in mismatched {
        let report = run(
            vec![line(LineKind::Refund, "rf_1", 3_000, theirs)],
            &[record(LineKind::Refund, "rf_1", 3_000, ours)],
        );
        assert_eq!(
            classes(&report),
            [(ReconClass::StatusMismatch, "rf_1".into())],
            "{ours:?} vs {theirs:?}"
        );
        assert!(report.items[0].detail.contains(ours.id()));
    }
    let agreeing = [
        (O::Processing, L::Processing),
        (O::Processing, L::Failed),
        (O::Failed, L::Failed),
        (O::Failed, L::Closed),
        (O::Other, L::Closed),
    ];
    for (ours, theirs) in agreeing {
        let report = run(
            vec![line(LineKind::Refund, "rf_1", 3_000, theirs)],
            &[record(LineKind::Refund, "rf_1", 3_000, ours)],
        );
        assert!(report.is_clean(), "{ours:?} vs {theirs:?}: {report:?}");
    }
    // The status is checked before the amount.
    let report = run(
        vec![line(LineKind::Refund, "rf_1", 1, LineStatus::Succeeded)],
        &[record(
            LineKind::Refund,
            "rf_1",
            3_000,
            OurStatus::Processing,
        )],
    );
    assert_eq!(
        classes(&report),
        [(ReconClass::StatusMismatch, "rf_1".into())]
    );
}

#[test]
fn credited_after_refund() {
    let mut payment = our_pay("pay_1", 10_000);
    payment.refunded_fen = 10_000;
    payment.settled_to_merchant_fen = Some(9_962);
    let report = run(vec![pay("pay_1", 10_000)], &[payment.clone()]);
    assert_eq!(
        classes(&report),
        [(ReconClass::CreditedAfterRefund, "pay_1".into())]
    );
    assert!(
        report.items[0].detail.contains("99.62"),
        "{}",
        report.items[0].detail
    );

    // Fully refunded and settled to zero or less (fee kept): fine.
    for settled in [Some(0), Some(-38), None] {
        let mut ok = payment.clone();
        ok.settled_to_merchant_fen = settled;
        assert!(run(vec![pay("pay_1", 10_000)], &[ok]).is_clean());
    }
    // Partly refunded and credited: fine.
    let mut partly = payment.clone();
    partly.refunded_fen = 9_999;
    assert!(run(vec![pay("pay_1", 10_000)], &[partly]).is_clean());
    // An amount mismatch is reported as such, not also as credited after refund.
    let report = run(vec![pay("pay_1", 9_999)], &[payment]);
    assert_eq!(
        classes(&report),
        [(ReconClass::AmountMismatch, "pay_1".into())]
    );
}

#[test]
fn each_line_and_each_record_is_matched_at_most_once() {
    // Two records with one our_ref (a caller's mistake): the first is joined, the second is
    // missing; two lines for the one ref: one matches, the other is a duplicate.
    let report = run(
        vec![refund("rf_1", 3_000), refund("rf_1", 3_000)],
        &[our_refund("rf_1", 3_000), our_refund("rf_1", 3_000)],
    );
    assert_eq!(report.total(ReconClass::Matched).count, 1);
    assert_eq!(
        classes(&report),
        [
            (ReconClass::DuplicateInChannel, "rf_1".into()),
            (ReconClass::MissingInChannel, "rf_1".into())
        ]
    );
}

#[test]
fn lines_without_our_ref_join_by_channel_number_once_each() {
    // Alipay lists refunds under their payment's number; ours carry the same number.
    let mut lines = vec![refund("", 200), refund("", 100), refund("", 100)];
    for l in &mut lines {
        l.channel_txn_id = Some("2026030122001".into());
    }
    let mut records = vec![our_refund("rf_a", 100), our_refund("rf_b", 200)];
    for r in &mut records {
        r.channel_txn_id = Some("2026030122001".into());
    }
    let report = run(lines, &records);
    assert_eq!(report.total(ReconClass::Matched).count, 2);
    assert_eq!(
        classes(&report),
        [(ReconClass::DuplicateInChannel, "rf_a".into())],
        "the third line finds both records taken"
    );
    assert_eq!(report.items[0].line_no, Some(4));

    // A line with neither our_ref nor a known number is unexpected.
    let mut stray = refund("", 100);
    stray.channel_txn_id = Some("nope".into());
    let report = run(vec![stray], &[]);
    assert_eq!(
        classes(&report),
        [(ReconClass::UnexpectedInChannel, String::new())]
    );
    assert!(report.items[0].detail.contains("channel number nope"));
}

#[test]
fn report_serializes_with_class_ids() {
    let report = yuanlu_reconcile::reconcile(&statement(vec![refund("rf_9", 1)]), &[]);
    let item = &report.items[0];
    assert_eq!(item.class.id(), "unexpected_in_channel");
    let text = format!("{:?}", ReconClass::ALL.map(ReconClass::id));
    assert!(text.contains("credited_after_refund"));
}
