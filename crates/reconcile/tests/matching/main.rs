//! Matching a statement against our records: one test per class, at-most-once, the
//! generator's injected discrepancies, and properties.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod classes;
mod generator;
mod props;

use chrono::NaiveDate;
use yuanlu_reconcile::{
    LineKind, LineStatus, OurRecord, OurStatus, ReconClass, ReconReport, Statement,
    StatementChannel, StatementLine,
};

pub fn line(kind: LineKind, our_ref: &str, amount_fen: i64, status: LineStatus) -> StatementLine {
    StatementLine {
        line_no: 0,
        kind,
        channel_txn_id: Some(format!("CH-{our_ref}")),
        our_ref: our_ref.to_owned(),
        payment_ref: None,
        amount_fen,
        status,
        occurred_at: chrono::DateTime::parse_from_rfc3339("2026-03-01T02:00:00Z")
            .unwrap()
            .to_utc(),
        account: None,
    }
}

pub fn pay(our_ref: &str, amount_fen: i64) -> StatementLine {
    line(
        LineKind::Payment,
        our_ref,
        amount_fen,
        LineStatus::Succeeded,
    )
}

pub fn refund(our_ref: &str, amount_fen: i64) -> StatementLine {
    line(LineKind::Refund, our_ref, amount_fen, LineStatus::Succeeded)
}

pub fn record(kind: LineKind, our_ref: &str, amount_fen: i64, status: OurStatus) -> OurRecord {
    OurRecord {
        kind,
        our_ref: our_ref.to_owned(),
        channel_txn_id: Some(format!("CH-{our_ref}")),
        amount_fen,
        status,
        payment_ref: None,
        settled_to_merchant_fen: None,
        refunded_fen: 0,
    }
}

pub fn our_pay(our_ref: &str, amount_fen: i64) -> OurRecord {
    record(LineKind::Payment, our_ref, amount_fen, OurStatus::Succeeded)
}

pub fn our_refund(our_ref: &str, amount_fen: i64) -> OurRecord {
    record(LineKind::Refund, our_ref, amount_fen, OurStatus::Succeeded)
}

/// A statement of `lines`, numbered from line 2.
pub fn statement(lines: Vec<StatementLine>) -> Statement {
    let lines = lines
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            l.line_no = i as u64 + 2;
            l
        })
        .collect();
    Statement {
        channel: StatementChannel::Yuanlu,
        business_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        lines,
        declared_totals: None,
    }
}

pub fn run(lines: Vec<StatementLine>, records: &[OurRecord]) -> ReconReport {
    let report = yuanlu_reconcile::reconcile(&statement(lines), records);
    assert_accounted(&report);
    report
}

/// Every line and every succeeded or listed record ends in exactly one class.
pub fn assert_accounted(report: &ReconReport) {
    let count = |c: ReconClass| report.total(c).count;
    let line_classes = count(ReconClass::Matched)
        + count(ReconClass::AmountMismatch)
        + count(ReconClass::UnexpectedInChannel)
        + count(ReconClass::DuplicateInChannel)
        + count(ReconClass::StatusMismatch)
        + count(ReconClass::CreditedAfterRefund);
    assert_eq!(line_classes, report.lines, "{report:#?}");
    let record_classes = line_classes
        - count(ReconClass::UnexpectedInChannel)
        - count(ReconClass::DuplicateInChannel)
        + count(ReconClass::MissingInChannel)
        + report.unlisted_not_succeeded;
    assert_eq!(record_classes, report.records, "{report:#?}");
    let not_matched: u64 = ReconClass::ALL[1..].iter().map(|&c| count(c)).sum();
    assert_eq!(not_matched, report.items.len() as u64);
}

/// The classes of the report's items, as (class, our_ref).
pub fn classes(report: &ReconReport) -> Vec<(ReconClass, String)> {
    report
        .items
        .iter()
        .map(|i| (i.class, i.our_ref.clone().unwrap_or_default()))
        .collect()
}
