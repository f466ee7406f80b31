use std::collections::BTreeSet;

use yuanlu_reconcile::{
    DiscrepancySpec, Injected, ReconClass, StatementChannel, generate, generate_statement,
    plain_hash_join, reconcile,
};

use crate::assert_accounted;

fn found(report: &yuanlu_reconcile::ReconReport) -> BTreeSet<Injected> {
    report
        .items
        .iter()
        .map(|i| Injected {
            class: i.class,
            our_ref: i.our_ref.clone().unwrap_or_default(),
        })
        .collect()
}

#[test]
fn injected_discrepancies_are_all_found_and_nothing_else() {
    for channel in StatementChannel::ALL {
        let spec = DiscrepancySpec::each(channel, 3);
        let generated = generate(2_000, 42, &spec);
        assert_eq!(generated.statement.lines.len(), 2_000);
        assert_eq!(generated.injected.len(), 18, "{channel:?}");
        let statement = yuanlu_reconcile::parse(channel, &generated.bytes, &mut |_| {}).unwrap();
        let report = reconcile(&statement, &generated.records);
        assert_accounted(&report);
        let injected: BTreeSet<Injected> = generated.injected.iter().cloned().collect();
        assert_eq!(injected.len(), 18, "distinct refs per discrepancy");
        assert_eq!(found(&report), injected, "{channel:?}");
        for class in &ReconClass::ALL[1..] {
            assert_eq!(report.total(*class).count, 3, "{channel:?} {class:?}");
        }
        // Lines: all but the 3 duplicates and 3 unexpected pair with a record; of those, 3
        // amounts, 3 statuses and 3 credits differ.
        assert_eq!(report.total(ReconClass::Matched).count, 2_000 - 6 - 9);
    }
}

#[test]
fn counts_that_cannot_be_honoured_are_cut_and_reported_truthfully() {
    // Three lines hold one refund at most: most refund discrepancies cannot be injected.
    let generated = generate(3, 7, &DiscrepancySpec::each(StatementChannel::Card, 5));
    let report = reconcile(&generated.statement, &generated.records);
    assert_accounted(&report);
    let injected: BTreeSet<Injected> = generated.injected.iter().cloned().collect();
    assert_eq!(found(&report), injected);
}

#[test]
fn a_clean_statement_matches_fully_and_agrees_with_the_plain_join() {
    let spec = DiscrepancySpec::none(StatementChannel::Wechat);
    let (statement, records, injected) = generate_statement(10_000, 3, &spec);
    assert!(injected.is_empty());
    let report = reconcile(&statement, &records);
    assert!(report.is_clean());
    assert_eq!(report.total(ReconClass::Matched).count, 10_000);
    assert_eq!(plain_hash_join(&statement.lines, &records), 10_000);
}

#[test]
fn generation_is_reproducible() {
    let spec = DiscrepancySpec::each(StatementChannel::Alipay, 2);
    let a = generate(500, 9, &spec);
    let b = generate(500, 9, &spec);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.records, b.records);
    assert_eq!(a.injected, b.injected);
    assert_ne!(generate(500, 10, &spec).bytes, a.bytes);
}
