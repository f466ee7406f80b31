//! Money is an `i64` count of fen (1/100 CNY). Rates are parts per million (0.38 % = 3 800),
//! so every computation is exact integer arithmetic in `i128` with explicit half-up rounding.

use serde::{Deserialize, Serialize};

/// The only currency yuanlu accepts.
pub const CURRENCY: &str = "CNY";

/// One million: the denominator of a rate in parts per million.
pub const PPM: i64 = 1_000_000;

/// `numerator / denominator` rounded half up (away from zero for the positive values used
/// here). Both inputs are non-negative in every caller; a zero denominator yields zero.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i128 {
    if denominator == 0 {
        return 0;
    }
    (2 * numerator + denominator) / (2 * denominator)
}

/// `amount × rate_ppm / 1 000 000`, rounded half up to the fen.
pub fn apply_rate_ppm(amount_fen: i64, rate_ppm: i64) -> i64 {
    let exact = div_round_half_up(
        i128::from(amount_fen) * i128::from(rate_ppm),
        i128::from(PPM),
    );
    i64::try_from(exact).unwrap_or(i64::MAX)
}

/// Formats fen as CNY with two decimals, e.g. `99400` → `"994.00"`.
pub fn format_cny(amount_fen: i64) -> String {
    let sign = if amount_fen < 0 { "-" } else { "" };
    let abs = amount_fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A positive amount in fen, parsed once at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct PositiveFen(i64);

/// The amount was zero, negative or not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount must be a positive integer number of fen")]
pub struct NotPositive;

impl PositiveFen {
    /// Checks that `fen` is at least 1.
    pub fn new(fen: i64) -> Result<Self, NotPositive> {
        if fen >= 1 {
            Ok(Self(fen))
        } else {
            Err(NotPositive)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PositiveFen {
    type Error = NotPositive;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<PositiveFen> for i64 {
    fn from(value: PositiveFen) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_up_rounds_exact_halves_up() {
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(15, 10), 2);
        assert_eq!(
            div_round_half_up(25, 10),
            3,
            "banker's rounding would give 2"
        );
    }

    #[test]
    fn rate_of_wechat_example_is_47_fen() {
        assert_eq!(apply_rate_ppm(12_345, 3_800), 47);
    }

    #[test]
    fn seventy_five_yuan_at_038_percent_is_29_fen_not_28() {
        assert_eq!(apply_rate_ppm(7_500, 3_800), 29);
    }

    #[test]
    fn format_cny_shows_two_decimals() {
        assert_eq!(format_cny(99_400), "994.00");
        assert_eq!(format_cny(5), "0.05");
        assert_eq!(format_cny(-1_234), "-12.34");
    }

    #[test]
    fn positive_fen_refuses_zero_and_negative() {
        assert!(PositiveFen::new(0).is_err());
        assert!(PositiveFen::new(-1).is_err());
        assert_eq!(PositiveFen::new(1).map(PositiveFen::get), Ok(1));
    }
}
