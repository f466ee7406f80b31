#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn yuan_examples() {
    assert_eq!(fen_to_yuan(1234), "12.34");
    assert_eq!(fen_to_yuan(5), "0.05");
    assert_eq!(fen_to_yuan(0), "0.00");
    assert_eq!(fen_to_yuan(-150), "-1.50");
    assert_eq!(fen_to_yuan(i64::MAX), "92233720368547758.07");
    assert_eq!(yuan_to_fen("12.34"), Ok(1234));
    assert_eq!(yuan_to_fen("12.3"), Ok(1230));
    assert_eq!(yuan_to_fen("12"), Ok(1200));
    assert_eq!(yuan_to_fen("0.01"), Ok(1));
    assert_eq!(yuan_to_fen("92233720368547758.07"), Ok(i64::MAX));
    assert_eq!(
        yuan_to_fen("92233720368547758.08"),
        Err(AmountError::Overflow)
    );
}

#[test]
fn beijing_time_round_trip() {
    let at = parse_time("2026-03-05 14:03:00").unwrap();
    assert_eq!(at.to_rfc3339(), "2026-03-05T06:03:00+00:00");
    assert_eq!(format_time(at), "2026-03-05 14:03:00");
    assert_eq!(parse_time("2026-03-05T14:03:00"), None);
}
