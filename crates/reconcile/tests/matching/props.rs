use proptest::prelude::*;
use yuanlu_reconcile::{
    DiscrepancySpec, LineKind, LineStatus, OurRecord, OurStatus, ReconClass, StatementChannel,
    generate_statement, reconcile,
};

use crate::{assert_accounted, line, statement};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Generated statements without discrepancies match entirely.
    #[test]
    fn generated_statements_without_discrepancies_match(
        channel in prop::sample::select(StatementChannel::ALL.to_vec()),
        seed in any::<u64>(),
        n in 1usize..3_000,
    ) {
        let (statement, records, _) = generate_statement(n, seed, &DiscrepancySpec::none(channel));
        let report = reconcile(&statement, &records);
        prop_assert!(report.is_clean(), "{:?}", report.items.first());
        prop_assert_eq!(report.total(ReconClass::Matched).count, n as u64);
    }

    /// Random lines with distinct refs, whatever their status, and records that agree with
    /// them (in any order) match entirely.
    #[test]
    fn records_that_agree_with_the_lines_match(
        raw in prop::collection::vec(
            (any::<bool>(), 0i64..1_000_000, prop::sample::select(vec![
                LineStatus::Succeeded, LineStatus::Processing, LineStatus::Failed, LineStatus::Closed,
            ])),
            0..300,
        ),
        rotate in any::<prop::sample::Index>(),
    ) {
        let lines: Vec<_> = raw
            .iter()
            .enumerate()
            .map(|(i, (is_pay, amount, status))| {
                let kind = if *is_pay { LineKind::Payment } else { LineKind::Refund };
                line(kind, &format!("ref_{i}"), *amount, *status)
            })
            .collect();
        let mut records: Vec<OurRecord> = lines
            .iter()
            .map(|l| OurRecord {
                kind: l.kind,
                our_ref: l.our_ref.clone(),
                channel_txn_id: l.channel_txn_id.clone(),
                amount_fen: l.amount_fen,
                status: match l.status {
                    LineStatus::Succeeded => OurStatus::Succeeded,
                    LineStatus::Processing => OurStatus::Processing,
                    LineStatus::Failed | LineStatus::Closed => OurStatus::Failed,
                },
                payment_ref: None,
                settled_to_merchant_fen: None,
                refunded_fen: 0,
            })
            .collect();
        if !records.is_empty() {
            let k = rotate.index(records.len());
            records.rotate_left(k);
        }
        let report = reconcile(&statement(lines), &records);
        assert_accounted(&report);
        prop_assert!(report.is_clean(), "{:?}", report.items.first());
    }

    /// With discrepancies, every line and record still ends in exactly one class and the
    /// injected ones are exactly what is found.
    #[test]
    fn injected_discrepancies_are_exactly_found(
        channel in prop::sample::select(StatementChannel::ALL.to_vec()),
        seed in any::<u64>(),
        n in 1usize..500,
        counts in prop::array::uniform6(0usize..4),
    ) {
        let spec = DiscrepancySpec {
            format: channel,
            duplicate: counts[0],
            missing: counts[1],
            amount_off: counts[2],
            unexpected: counts[3],
            status_mismatch: counts[4],
            credited_after_refund: counts[5],
        };
        let (statement, records, injected) = generate_statement(n, seed, &spec);
        let report = reconcile(&statement, &records);
        assert_accounted(&report);
        let mut found: Vec<_> = report
            .items
            .iter()
            .map(|i| (i.class, i.our_ref.clone().unwrap_or_default()))
            .collect();
        let mut expected: Vec<_> = injected.into_iter().map(|i| (i.class, i.our_ref)).collect();
        found.sort();
        expected.sort();
        prop_assert_eq!(found, expected);
    }
}
