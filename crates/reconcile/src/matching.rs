//! Matching a statement against our records: one hash join, every line and every record
//! used at most once, each ending in one [`ReconClass`].
//!
//! 1. Our records are indexed by `our_ref`, one table per kind, sized once. A record whose
//!    `our_ref` repeats an earlier record's is never joined (the first one is).
//! 2. Each line finds its record by `our_ref`; a line without `our_ref` by `channel_txn_id`
//!    (that index is built only if such a line exists; among records sharing the number, the
//!    first not yet taken with the line's amount, else the first not yet taken).
//! 3. A record listed by several lines is matched against one of them: the first succeeded
//!    line, or the first line if none succeeded. The other lines are `duplicate_in_channel`
//!    (a succeeded one means the channel paid twice).
//! 4. The line matched against a record is `status_mismatch` if exactly one side says
//!    succeeded, or we say failed while the channel says processing; otherwise
//!    `amount_mismatch` if the amounts differ; otherwise, for a payment we say is fully
//!    refunded (`refunded_fen >= amount_fen`) yet credited to the merchant
//!    (`settled_to_merchant_fen > 0`), `credited_after_refund`; otherwise `matched`.
//! 5. A line without a record is `unexpected_in_channel`; a succeeded record without a line is
//!    `missing_in_channel`; other records without a line belong to no class.

use std::collections::HashMap;

use crate::fields::format_yuan;
use crate::record::{OurRecord, OurStatus};
use crate::report::{ReconClass, ReconItem, ReconReport};
use crate::statement::{LineKind, LineStatus, Statement, StatementLine};

const NONE: usize = usize::MAX;

/// Records by one key, one table per kind.
struct Index<'a> {
    payments: HashMap<&'a str, usize>,
    refunds: HashMap<&'a str, usize>,
}

impl<'a> Index<'a> {
    fn by_ref(records: &'a [OurRecord]) -> Index<'a> {
        let payments = records
            .iter()
            .filter(|r| r.kind == LineKind::Payment)
            .count();
        let mut index = Index {
            payments: HashMap::with_capacity(payments),
            refunds: HashMap::with_capacity(records.len() - payments),
        };
        for (i, record) in records.iter().enumerate() {
            if !record.our_ref.is_empty() {
                index
                    .table_mut(record.kind)
                    .entry(record.our_ref.as_str())
                    .or_insert(i);
            }
        }
        index
    }

    fn table_mut(&mut self, kind: LineKind) -> &mut HashMap<&'a str, usize> {
        match kind {
            LineKind::Payment => &mut self.payments,
            LineKind::Refund => &mut self.refunds,
        }
    }

    fn get(&self, kind: LineKind, key: &str) -> usize {
        let table = match kind {
            LineKind::Payment => &self.payments,
            LineKind::Refund => &self.refunds,
        };
        table.get(key).copied().unwrap_or(NONE)
    }
}

/// Records by channel number; several records may share one (Alipay lists a refund under
/// its payment's number), chained in the order given.
struct TxnIndex<'a> {
    heads: Index<'a>,
    next: Vec<usize>,
}

impl<'a> TxnIndex<'a> {
    fn build(records: &'a [OurRecord]) -> TxnIndex<'a> {
        let mut heads = Index {
            payments: HashMap::new(),
            refunds: HashMap::new(),
        };
        let mut next = vec![NONE; records.len()];
        for (i, record) in records.iter().enumerate().rev() {
            if let Some(txn) = record.channel_txn_id.as_deref() {
                let previous = heads.table_mut(record.kind).insert(txn, i);
                if let Some(slot) = next.get_mut(i) {
                    *slot = previous.unwrap_or(NONE);
                }
            }
        }
        TxnIndex { heads, next }
    }

    /// The record for `line`: the first not yet taken with its amount, else the first not
    /// yet taken, else the first.
    fn find(&self, line: &StatementLine, records: &[OurRecord], primary: &[usize]) -> usize {
        let Some(txn) = line.channel_txn_id.as_deref() else {
            return NONE;
        };
        let first = self.heads.get(line.kind, txn);
        let (mut free, mut cursor) = (NONE, first);
        while cursor != NONE {
            if primary.get(cursor) == Some(&NONE) {
                if records.get(cursor).map(|r| r.amount_fen) == Some(line.amount_fen) {
                    return cursor;
                }
                if free == NONE {
                    free = cursor;
                }
            }
            cursor = self.next.get(cursor).copied().unwrap_or(NONE);
        }
        if free != NONE { free } else { first }
    }
}

/// Matches `statement` against `records` (the caller's records of the statement's channel
/// and business date). See the module documentation for the rules.
pub fn reconcile(statement: &Statement, records: &[OurRecord]) -> ReconReport {
    let lines = &statement.lines;
    let index = Index::by_ref(records);
    let txn_index = lines
        .iter()
        .any(|l| l.our_ref.is_empty())
        .then(|| TxnIndex::build(records));

    // Pass 1: each line's record, and each record's primary line.
    let mut line_record = vec![NONE; lines.len()];
    let mut primary = vec![NONE; records.len()];
    for (li, line) in lines.iter().enumerate() {
        let r = if !line.our_ref.is_empty() {
            index.get(line.kind, &line.our_ref)
        } else {
            txn_index
                .as_ref()
                .map_or(NONE, |t| t.find(line, records, &primary))
        };
        let Some(slot) = primary.get_mut(r) else {
            continue;
        };
        if let Some(lr) = line_record.get_mut(li) {
            *lr = r;
        }
        let replaces = *slot == NONE
            || (line.status == LineStatus::Succeeded
                && lines
                    .get(*slot)
                    .is_some_and(|p| p.status != LineStatus::Succeeded));
        if replaces {
            *slot = li;
        }
    }

    // Pass 2: a class per line.
    let mut report = ReconReport {
        lines: lines.len() as u64,
        records: records.len() as u64,
        ..ReconReport::default()
    };
    for (li, line) in lines.iter().enumerate() {
        let r = line_record.get(li).copied().unwrap_or(NONE);
        let (Some(record), Some(&p)) = (records.get(r), primary.get(r)) else {
            report.count(ReconClass::UnexpectedInChannel, line.amount_fen, 0);
            report.items.push(unexpected(line));
            continue;
        };
        if p != li {
            report.count(ReconClass::DuplicateInChannel, line.amount_fen, 0);
            let first = lines.get(p).map_or(0, |l| l.line_no);
            report.items.push(duplicate(line, record, first));
            continue;
        }
        let class = compare(line, record);
        report.count(class, line.amount_fen, record.amount_fen);
        if class != ReconClass::Matched {
            report.items.push(paired(class, line, record));
        }
    }

    // Pass 3: records no line matched.
    for (record, &p) in records.iter().zip(&primary) {
        if p != NONE {
            continue;
        }
        if record.status == OurStatus::Succeeded {
            report.count(ReconClass::MissingInChannel, 0, record.amount_fen);
            report.items.push(missing(record));
        } else {
            report.unlisted_not_succeeded += 1;
        }
    }
    report
}

/// The class of a line matched against its record.
fn compare(line: &StatementLine, record: &OurRecord) -> ReconClass {
    let ours = record.status == OurStatus::Succeeded;
    let theirs = line.status == LineStatus::Succeeded;
    if ours != theirs
        || (record.status == OurStatus::Failed && line.status == LineStatus::Processing)
    {
        ReconClass::StatusMismatch
    } else if line.amount_fen != record.amount_fen {
        ReconClass::AmountMismatch
    } else if credited_after_refund(record) {
        ReconClass::CreditedAfterRefund
    } else {
        ReconClass::Matched
    }
}

/// A succeeded payment fully refunded by succeeded refunds, for which settlement has still
/// credited the merchant a positive net.
fn credited_after_refund(record: &OurRecord) -> bool {
    record.kind == LineKind::Payment
        && record.status == OurStatus::Succeeded
        && record.refunded_fen >= record.amount_fen
        && record.settled_to_merchant_fen.is_some_and(|fen| fen > 0)
}

fn unexpected(line: &StatementLine) -> ReconItem {
    ReconItem {
        class: ReconClass::UnexpectedInChannel,
        kind: line.kind,
        line_no: Some(line.line_no),
        our_ref: (!line.our_ref.is_empty()).then(|| line.our_ref.clone()),
        channel_txn_id: line.channel_txn_id.clone(),
        our_amount_fen: None,
        channel_amount_fen: Some(line.amount_fen),
        detail: format!(
            "the channel lists a {} {} of {} CNY ({}) that yuanlu has no record of",
            line.status.id(),
            line.kind.id(),
            format_yuan(line.amount_fen),
            describe_refs(line),
        ),
    }
}

fn duplicate(line: &StatementLine, record: &OurRecord, first_line: u64) -> ReconItem {
    let detail = if line.status == LineStatus::Succeeded {
        format!(
            "the channel lists {} {} again as succeeded ({} CNY), after line {first_line}: paid twice",
            line.kind.id(),
            record.our_ref,
            format_yuan(line.amount_fen),
        )
    } else {
        format!(
            "the channel lists {} {} again as {} ({} CNY) besides line {first_line}; no money moved on this line",
            line.kind.id(),
            record.our_ref,
            line.status.id(),
            format_yuan(line.amount_fen),
        )
    };
    ReconItem {
        class: ReconClass::DuplicateInChannel,
        kind: line.kind,
        line_no: Some(line.line_no),
        our_ref: Some(record.our_ref.clone()),
        channel_txn_id: line.channel_txn_id.clone(),
        our_amount_fen: Some(record.amount_fen),
        channel_amount_fen: Some(line.amount_fen),
        detail,
    }
}

fn paired(class: ReconClass, line: &StatementLine, record: &OurRecord) -> ReconItem {
    let detail = match class {
        ReconClass::StatusMismatch => format!(
            "yuanlu says the {} is {}, the channel says {}",
            line.kind.id(),
            record.status.id(),
            line.status.id()
        ),
        ReconClass::AmountMismatch => format!(
            "yuanlu has {} CNY, the channel {} CNY (difference {} CNY)",
            format_yuan(record.amount_fen),
            format_yuan(line.amount_fen),
            format_yuan(line.amount_fen.saturating_sub(record.amount_fen)),
        ),
        _ => format!(
            "the payment of {} CNY is fully refunded ({} CNY) but settlement still credited the merchant {} CNY for it",
            format_yuan(record.amount_fen),
            format_yuan(record.refunded_fen),
            format_yuan(record.settled_to_merchant_fen.unwrap_or(0)),
        ),
    };
    ReconItem {
        class,
        kind: line.kind,
        line_no: Some(line.line_no),
        our_ref: Some(record.our_ref.clone()),
        channel_txn_id: line
            .channel_txn_id
            .clone()
            .or_else(|| record.channel_txn_id.clone()),
        our_amount_fen: Some(record.amount_fen),
        channel_amount_fen: Some(line.amount_fen),
        detail,
    }
}

fn missing(record: &OurRecord) -> ReconItem {
    ReconItem {
        class: ReconClass::MissingInChannel,
        kind: record.kind,
        line_no: None,
        our_ref: Some(record.our_ref.clone()),
        channel_txn_id: record.channel_txn_id.clone(),
        our_amount_fen: Some(record.amount_fen),
        channel_amount_fen: None,
        detail: format!(
            "yuanlu says the {} of {} CNY succeeded; the channel's statement does not list it",
            record.kind.id(),
            format_yuan(record.amount_fen),
        ),
    }
}

fn describe_refs(line: &StatementLine) -> String {
    match (line.our_ref.as_str(), line.channel_txn_id.as_deref()) {
        ("", Some(txn)) => format!("channel number {txn}"),
        (ours, None) => format!("our reference {ours}"),
        (ours, Some(txn)) => format!("our reference {ours}, channel number {txn}"),
    }
}
