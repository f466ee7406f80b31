use super::*;

#[test]
fn reads_pgbench_output() {
    let out = "transaction type: script.sql\nnumber of transactions actually processed: 12345\nnumber of failed transactions: 0 (0.000%)\nlatency average = 2.592 ms\ninitial connection time = 10.1 ms\ntps = 1234.567890 (without initial connection time)\n";
    let parsed = parse_pgbench(out);
    assert_eq!(parsed.as_ref().map(|p| p.transactions), Some(12_345));
    assert_eq!(parsed.as_ref().and_then(|p| p.latency_avg_ms), Some(2.592));
    assert!(parsed.is_some_and(|p| (p.tps - 1234.56789).abs() < 1e-6));
    assert!(parse_pgbench("nothing").is_none());
}

#[test]
fn pgbench_literals_hide_colons() {
    assert_eq!(pgbench_literal(""), "''");
    assert_eq!(pgbench_literal("fee_income"), "'fee_income'");
    assert_eq!(
        pgbench_literal("refunds_in_flight:wechat"),
        "'refunds_in_flight:' || 'wechat'"
    );
}

#[test]
fn seeded_ids_are_as_long_as_real_ones() {
    let real = new_id("pay");
    assert_eq!(seeded_id("pay", Scenario::Spread, 7).len(), real.len());
    assert_eq!(seeded_key_hash("mch_s0000000000000000000000001").len(), 64);
}
