//! A generator of statements and the records that go with them, for tests and the benchmark,
//! with chosen discrepancies injected and reported, so a test can check that matching finds
//! exactly them.
//!
//! Every fifth line is a refund (of the payment before it), the rest payments, all succeeded
//! on both sides, at random times of the business date, with random amounts. Each injected
//! discrepancy takes a line of its own; counts that cannot be honoured (too few lines, too few
//! refunds) are cut, and [`Generated::injected`] lists only what was done.

use chrono::{Duration, NaiveDate};
use yuanlu_domain::time::shanghai_day_bounds;

use crate::record::{OurRecord, OurStatus};
use crate::report::ReconClass;
use crate::rng::Rng;
use crate::statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals};

/// Which discrepancies to inject, and how many of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscrepancySpec {
    /// The file format (and channel) of the statement.
    pub format: StatementChannel,
    /// A refund paid twice: its line appears again (with another channel number).
    pub duplicate: usize,
    /// A refund we say succeeded that was never paid: its line is left out.
    pub missing: usize,
    /// A line whose amount is one fen more than ours.
    pub amount_off: usize,
    /// A refund line we have no record of.
    pub unexpected: usize,
    /// A line the channel says succeeded that we say is still processing.
    pub status_mismatch: usize,
    /// A fully refunded payment still credited to the merchant.
    pub credited_after_refund: usize,
}

impl DiscrepancySpec {
    /// No discrepancies: everything matches.
    pub fn none(format: StatementChannel) -> DiscrepancySpec {
        DiscrepancySpec {
            format,
            duplicate: 0,
            missing: 0,
            amount_off: 0,
            unexpected: 0,
            status_mismatch: 0,
            credited_after_refund: 0,
        }
    }

    /// `count` of every discrepancy.
    pub fn each(format: StatementChannel, count: usize) -> DiscrepancySpec {
        DiscrepancySpec {
            format,
            duplicate: count,
            missing: count,
            amount_off: count,
            unexpected: count,
            status_mismatch: count,
            credited_after_refund: count,
        }
    }
}

/// One injected discrepancy: the class matching must find for `our_ref`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Injected {
    pub class: ReconClass,
    pub our_ref: String,
}

/// A generated statement, its file, our records, and what was injected.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The statement as [`crate::write()`] writes it in the spec's format.
    pub bytes: Vec<u8>,
    /// The statement itself, as parsing `bytes` gives it back.
    pub statement: Statement,
    pub records: Vec<OurRecord>,
    pub injected: Vec<Injected>,
}

/// Generates a statement of `n_lines` lines (fewer if `n_lines` is smaller than the
/// discrepancies need) with `discrepancies`, written in `discrepancies.format`.
pub fn generate(n_lines: usize, seed: u64, discrepancies: &DiscrepancySpec) -> Generated {
    let (statement, records, injected) = generate_statement(n_lines, seed, discrepancies);
    Generated {
        bytes: crate::write(&statement),
        statement,
        records,
        injected,
    }
}

/// Like [`generate()`] without writing the file: the statement, our records, what was injected.
// Long on purpose: one statement file written line by line per format; the formats share the loop.
pub fn generate_statement(
    n_lines: usize,
    seed: u64,
    spec: &DiscrepancySpec,
) -> (Statement, Vec<OurRecord>, Vec<Injected>) {
    let mut rng = Rng::new(seed);
    let format = spec.format;
    let base_date = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    let business_date = base_date + Duration::days((seed % 300) as i64);
    let (day_start, _) = shanghai_day_bounds(business_date);
    let tag = format!("{:08x}", rng.next_u64() as u32);
    let added = spec.duplicate + spec.unexpected;
    let base = (n_lines + spec.missing).saturating_sub(added).max(1);

    let mut lines = Vec::with_capacity(base + added);
    let mut records = Vec::with_capacity(base);
    let mut last_payment: Option<(String, String, i64)> = None;
    for i in 0..base {
        let occurred_at = day_start + Duration::seconds(rng.below(86_400) as i64);
        let is_refund = i % 5 == 4 && last_payment.is_some();
        let (kind, our_ref, channel_txn_id, payment_ref, amount_fen) = match &last_payment {
            Some((pay_ref, pay_txn, pay_amount)) if is_refund => (
                LineKind::Refund,
                format!("rf_{tag}{i:018}"),
                refund_txn(format, pay_txn, &tag, i),
                Some(pay_ref.clone()),
                rng.between(1, *pay_amount),
            ),
            _ => (
                LineKind::Payment,
                format!("pay_{tag}{i:018}"),
                payment_txn(format, &tag, i),
                None,
                rng.between(1, 500_000),
            ),
        };
        if kind == LineKind::Payment {
            last_payment = Some((our_ref.clone(), channel_txn_id.clone(), amount_fen));
        }
        let fee = amount_fen * 38 / 10_000;
        records.push(OurRecord {
            kind,
            our_ref: our_ref.clone(),
            channel_txn_id: Some(channel_txn_id.clone()),
            amount_fen,
            status: OurStatus::Succeeded,
            payment_ref: payment_ref.clone(),
            settled_to_merchant_fen: (kind == LineKind::Payment).then_some(amount_fen - fee),
            refunded_fen: 0,
        });
        lines.push(StatementLine {
            line_no: 0,
            kind,
            channel_txn_id: Some(channel_txn_id),
            our_ref,
            payment_ref: payment_ref.filter(|_| carries_payment_ref(format)),
            amount_fen,
            status: LineStatus::Succeeded,
            occurred_at,
            account: Some(account(format, &mut rng)),
        });
    }

    let mut injected = Vec::new();
    let mut taken = vec![false; lines.len()];
    let mut pick = |rng: &mut Rng, kind: Option<LineKind>, lines: &[StatementLine]| {
        for _ in 0..(64 + 4 * lines.len()) {
            let i = rng.below(lines.len() as u64) as usize;
            let fits = lines
                .get(i)
                .is_some_and(|l| kind.is_none_or(|k| l.kind == k));
            if fits && taken.get(i) == Some(&false) {
                if let Some(t) = taken.get_mut(i) {
                    *t = true;
                }
                return Some(i);
            }
        }
        None
    };
    let mut remove = Vec::new();
    let mut extra = Vec::new();
    for _ in 0..spec.missing {
        if let Some(i) = pick(&mut rng, Some(LineKind::Refund), &lines) {
            remove.push(i);
            injected.push(found(ReconClass::MissingInChannel, &lines, i));
        }
    }
    for n in 0..spec.duplicate {
        if let Some(i) = pick(&mut rng, Some(LineKind::Refund), &lines) {
            if let Some(line) = lines.get(i) {
                let mut again = line.clone();
                again.channel_txn_id = Some(refund_txn(format, "", &format!("{tag}d"), n));
                extra.push(again);
            }
            injected.push(found(ReconClass::DuplicateInChannel, &lines, i));
        }
    }
    for _ in 0..spec.amount_off {
        if let Some(i) = pick(&mut rng, None, &lines) {
            if let Some(line) = lines.get_mut(i) {
                line.amount_fen += 1;
            }
            injected.push(found(ReconClass::AmountMismatch, &lines, i));
        }
    }
    for _ in 0..spec.status_mismatch {
        if let Some(i) = pick(&mut rng, None, &lines) {
            if let Some(record) = records.get_mut(i) {
                record.status = OurStatus::Processing;
            }
            injected.push(found(ReconClass::StatusMismatch, &lines, i));
        }
    }
    for _ in 0..spec.credited_after_refund {
        if let Some(i) = pick(&mut rng, Some(LineKind::Payment), &lines) {
            if let Some(record) = records.get_mut(i) {
                record.refunded_fen = record.amount_fen;
                record.settled_to_merchant_fen =
                    Some((record.amount_fen - record.amount_fen * 38 / 10_000).max(1));
            }
            injected.push(found(ReconClass::CreditedAfterRefund, &lines, i));
        }
    }
    for n in 0..spec.unexpected {
        let our_ref = format!("rf_{tag}x{n:017}");
        extra.push(StatementLine {
            line_no: 0,
            kind: LineKind::Refund,
            channel_txn_id: Some(refund_txn(format, "", &format!("{tag}u"), n)),
            our_ref: our_ref.clone(),
            payment_ref: None,
            amount_fen: rng.between(1, 100_000),
            status: LineStatus::Succeeded,
            occurred_at: day_start + Duration::seconds(rng.below(86_400) as i64),
            account: Some(account(format, &mut rng)),
        });
        injected.push(Injected {
            class: ReconClass::UnexpectedInChannel,
            our_ref,
        });
    }
    remove.sort_unstable();
    let mut removed = remove.into_iter().peekable();
    let mut lines: Vec<StatementLine> = lines
        .into_iter()
        .enumerate()
        .filter(|(i, _)| removed.next_if_eq(i).is_none())
        .map(|(_, line)| line)
        .collect();
    lines.extend(extra);
    let first = crate::first_line(format);
    for (i, line) in lines.iter_mut().enumerate() {
        line.line_no = first + i as u64;
    }
    let declared_totals = (format != StatementChannel::Yuanlu)
        .then(|| Totals::of(&lines))
        .flatten();
    let statement = Statement {
        channel: format,
        business_date,
        lines,
        declared_totals,
    };
    (statement, records, injected)
}

fn found(class: ReconClass, lines: &[StatementLine], i: usize) -> Injected {
    Injected {
        class,
        our_ref: lines.get(i).map(|l| l.our_ref.clone()).unwrap_or_default(),
    }
}

fn carries_payment_ref(format: StatementChannel) -> bool {
    matches!(format, StatementChannel::Wechat | StatementChannel::Alipay)
}

fn payment_txn(format: StatementChannel, tag: &str, i: usize) -> String {
    match format {
        StatementChannel::Wechat => format!("42000{tag}{i:015}"),
        StatementChannel::Alipay => format!("2026{tag}{i:016}"),
        StatementChannel::Card => format!("N{tag}{i:012}"),
        StatementChannel::Yuanlu => format!("UQ{tag}{i:014}"),
    }
}

/// A refund's channel number; Alipay's is its payment's.
fn refund_txn(format: StatementChannel, payment_txn: &str, tag: &str, i: usize) -> String {
    match format {
        StatementChannel::Wechat => format!("50300{tag}{i:015}"),
        StatementChannel::Alipay if !payment_txn.is_empty() => payment_txn.to_owned(),
        StatementChannel::Alipay => format!("2026{tag}{i:016}"),
        StatementChannel::Card => format!("R{tag}{i:012}"),
        StatementChannel::Yuanlu => format!("UR{tag}{i:014}"),
    }
}

fn account(format: StatementChannel, rng: &mut Rng) -> String {
    let n = rng.below(10_000);
    match format {
        StatementChannel::Wechat => format!("oUpF8uMuAJO_M2pxb1Q9zN{n:06}"),
        StatementChannel::Alipay => format!("ab***{n}@163.com"),
        StatementChannel::Card => format!("622848******{n:04}"),
        StatementChannel::Yuanlu => format!("6222****{n:04}"),
    }
}
