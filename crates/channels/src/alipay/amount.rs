//! Alipay's yuan strings and Beijing wall-clock times, converted exactly.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};

use super::{BEIJING_OFFSET_SECS, MAX_YUAN_CHARS, TIME_FORMAT};

/// Why a yuan string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount longer than {MAX_YUAN_CHARS} characters")]
    TooLong,
    #[error("amount has no yuan digits before the point")]
    NoYuan,
    #[error("amount has a character other than ASCII digits and one '.'")]
    BadCharacter,
    #[error("amount has a leading zero")]
    LeadingZero,
    #[error("amount needs one or two decimals after the point")]
    BadDecimals,
    #[error("amount does not fit in i64 fen")]
    Overflow,
}

/// Fen → yuan string with exactly two decimals: 1234 → "12.34", 5 → "0.05".
pub fn fen_to_yuan(amount_fen: i64) -> String {
    let sign = if amount_fen < 0 { "-" } else { "" };
    let magnitude_fen = amount_fen.unsigned_abs();
    format!("{sign}{}.{:02}", magnitude_fen / 100, magnitude_fen % 100)
}

/// Yuan string → fen, exactly: "12.34" → 1234, "12.3" → 1230, "12" → 1200. Refuses signs,
/// spaces, exponents, separators, leading zeros ("012"), more than two decimals and overflow.
pub fn yuan_to_fen(text: &str) -> Result<i64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.len() > MAX_YUAN_CHARS {
        return Err(AmountError::TooLong);
    }
    let (yuan, decimals) = match text.split_once('.') {
        Some((yuan, decimals)) => (yuan, Some(decimals)),
        None => (text, None),
    };
    if yuan.is_empty() {
        return Err(AmountError::NoYuan);
    }
    if !yuan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::BadCharacter);
    }
    if yuan.len() > 1 && yuan.starts_with('0') {
        return Err(AmountError::LeadingZero);
    }
    let part_fen = decimals_to_fen(decimals)?;
    let yuan_whole: i64 = yuan.parse().map_err(|_| AmountError::Overflow)?;
    yuan_whole
        .checked_mul(100)
        .and_then(|fen| fen.checked_add(part_fen))
        .ok_or(AmountError::Overflow)
}

fn decimals_to_fen(decimals: Option<&str>) -> Result<i64, AmountError> {
    let Some(decimals) = decimals else {
        return Ok(0);
    };
    if !decimals.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::BadCharacter);
    }
    let digits: Vec<i64> = decimals.bytes().map(|b| i64::from(b - b'0')).collect();
    match digits.as_slice() {
        [tenths] => Ok(tenths * 10),
        [tenths, hundredths] => Ok(tenths * 10 + hundredths),
        _ => Err(AmountError::BadDecimals),
    }
}

/// China Standard Time (UTC+8), in which Alipay and WeChat Pay write times.
pub(crate) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(BEIJING_OFFSET_SECS).unwrap_or_else(|| Utc.fix())
}

/// Formats a time as Alipay does: Beijing wall-clock time.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format(TIME_FORMAT).to_string()
}

/// Parses Alipay's Beijing wall-clock time.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, TIME_FORMAT).ok()?;
    naive
        .and_local_timezone(beijing())
        .single()
        .map(|t| t.with_timezone(&Utc))
}
