//! Alipay's yuan strings: fen → "12.34" → fen round-trips exactly, and malformed strings are
//! refused rather than guessed at.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use yuanlu_channels::alipay::{fen_to_yuan, yuan_to_fen};

/// Ways to break a well-formed amount; each must be refused.
const MUTATIONS: [fn(&str) -> String; 14] = [
    |s| format!("-{s}"),
    |s| format!("+{s}"),
    |s| format!(" {s}"),
    |s| format!("{s} "),
    |s| format!("{s}0"),
    |s| s.replace('.', ","),
    |s| s.split_once('.').map(|(_, d)| format!(".{d}")).unwrap(),
    |s| format!("0{s}"),
    |s| format!("{s}e2"),
    |s| s.replacen('.', "..", 1),
    |s| format!("{s}."),
    |s| s.split_once('.').map(|(y, _)| format!("{y}.")).unwrap(),
    |s| format!("¥{s}"),
    |s| s.replacen(|c: char| c.is_ascii_digit(), "１", 1),
];

/// An independent reading of the accepted grammar: `0|[1-9][0-9]*` then optionally `.` and one
/// or two digits.
fn well_formed(text: &str) -> bool {
    let (yuan, decimals) = match text.split_once('.') {
        Some((yuan, decimals)) => (yuan, Some(decimals)),
        None => (text, None),
    };
    let yuan_ok = yuan == "0"
        || (yuan.starts_with(|c: char| ('1'..='9').contains(&c))
            && yuan.chars().all(|c| c.is_ascii_digit()));
    let decimals_ok = decimals
        .is_none_or(|d| (1..=2).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()));
    yuan_ok && decimals_ok
}

proptest! {
    #[test]
    fn fen_round_trips(amount_fen in 0i64..=i64::MAX) {
        let text = fen_to_yuan(amount_fen);
        prop_assert_eq!(yuan_to_fen(&text), Ok(amount_fen));
        let (_, decimals) = text.split_once('.').unwrap();
        prop_assert_eq!(decimals.len(), 2);
    }

    #[test]
    fn small_amounts_round_trip(amount_fen in 0i64..100_000) {
        prop_assert_eq!(yuan_to_fen(&fen_to_yuan(amount_fen)), Ok(amount_fen));
    }

    #[test]
    fn yuan_and_cents_read_exactly(yuan in 0i64..10_000_000_000, cents in 0i64..100) {
        prop_assert_eq!(yuan_to_fen(&format!("{yuan}.{cents:02}")), Ok(yuan * 100 + cents));
        prop_assert_eq!(yuan_to_fen(&format!("{yuan}")), Ok(yuan * 100));
    }

    #[test]
    fn mutations_are_refused(amount_fen in 0i64..=i64::MAX, which in 0..MUTATIONS.len()) {
        let broken = MUTATIONS[which](&fen_to_yuan(amount_fen));
        prop_assert!(yuan_to_fen(&broken).is_err(), "{:?} was accepted", broken);
    }

    #[test]
    fn any_string_is_read_only_when_well_formed(text in "[0-9.,+\\- e¥]{0,24}|\\PC{0,24}") {
        match yuan_to_fen(&text) {
            Ok(amount_fen) => {
                prop_assert!(well_formed(&text), "{:?} accepted", text);
                prop_assert!(amount_fen >= 0);
                prop_assert_eq!(yuan_to_fen(&fen_to_yuan(amount_fen)), Ok(amount_fen));
            }
            // Refused: either malformed, or well-formed but beyond i64 fen.
            Err(_) => {
                let yuan_digits = text.split('.').next().map_or(0, str::len);
                prop_assert!(!well_formed(&text) || yuan_digits >= 17, "{:?} refused", text);
            }
        }
    }
}

#[test]
fn overflow_is_refused() {
    assert!(yuan_to_fen("92233720368547758.08").is_err());
    assert!(yuan_to_fen("99999999999999999999").is_err());
    assert_eq!(yuan_to_fen(&fen_to_yuan(i64::MAX)), Ok(i64::MAX));
}
