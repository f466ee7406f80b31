//! Deductions agreed with the consumer (扣除手续费或税费, issue 15 item 2): a handling fee, a
//! restocking charge, tax, each with its reason.
//!
//! A refund's `amount` stays the amount asked for: it is what leaves the payment's refundable
//! amount. The deductions are kept by the merchant; the consumer gets
//! `consumer_amount = amount − Σ deductions`, which is what the channel is sent. The
//! deductions are not the acquirer's fee: the fee a refund returns is computed on `amount`
//! by the spec's rule, exactly as without deductions.
//!
//! Rules ([`validate`], [`check_against_amount`]):
//!
//! - at most [`DEDUCTION_LINES_MAX`] lines; each amount a positive integer of fen; each
//!   reason 1 to [`DEDUCTION_REASON_CHARS_MAX`] characters after trimming
//!   (`invalid_deduction`);
//! - the sum is smaller than the refund's amount: the consumer always gets at least one fen
//!   (`deductions_exceed_refund`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most deduction lines on one refund.
pub const DEDUCTION_LINES_MAX: usize = 10;
/// Most characters of a deduction's reason.
pub const DEDUCTION_REASON_CHARS_MAX: usize = 200;

/// What a deduction is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeductionKind {
    /// 手续费: a handling fee agreed with the consumer.
    HandlingFee,
    /// 折旧/restocking: the goods came back opened or used.
    Restocking,
    /// 税费: tax that is not returned.
    Tax,
    /// Anything else; the reason says what.
    Other,
}

impl DeductionKind {
    pub const ALL: [DeductionKind; 4] = [
        DeductionKind::HandlingFee,
        DeductionKind::Restocking,
        DeductionKind::Tax,
        DeductionKind::Other,
    ];

    /// The stable id used in the API and in storage.
    pub fn id(self) -> &'static str {
        match self {
            DeductionKind::HandlingFee => "handling_fee",
            DeductionKind::Restocking => "restocking",
            DeductionKind::Tax => "tax",
            DeductionKind::Other => "other",
        }
    }

    pub fn parse(id: &str) -> Option<DeductionKind> {
        DeductionKind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// Its name in English words, as statements say it.
    pub fn english(self) -> &'static str {
        match self {
            DeductionKind::HandlingFee => "handling fee",
            DeductionKind::Restocking => "restocking charge",
            DeductionKind::Tax => "tax",
            DeductionKind::Other => "other deduction",
        }
    }
}

impl std::fmt::Display for DeductionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One deduction, checked: a positive amount and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deduction {
    pub kind: DeductionKind,
    /// Fen, positive.
    #[serde(rename = "amount")]
    pub amount_fen: i64,
    pub reason: String,
}

/// Why deductions were refused; each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeductionError {
    #[error("deduction {index}: {why}")]
    Invalid { index: usize, why: String },
    #[error("at most {max} deductions on one refund, got {count}")]
    TooMany { count: usize, max: usize },
    #[error(
        "the deductions of {deducted_fen} fen leave nothing of the refund of {amount_fen} fen for the consumer; they must be smaller than the refund"
    )]
    ExceedRefund { deducted_fen: i64, amount_fen: i64 },
}

impl DeductionError {
    pub fn code(&self) -> &'static str {
        match self {
            DeductionError::Invalid { .. } | DeductionError::TooMany { .. } => "invalid_deduction",
            DeductionError::ExceedRefund { .. } => "deductions_exceed_refund",
        }
    }
}

/// Checks each line on its own (amount, reason, count) and returns the lines with their
/// reasons trimmed and their total. The total cannot overflow: at most
/// [`DEDUCTION_LINES_MAX`] lines, each checked against `amount_max_fen`.
pub fn validate(
    lines: Vec<Deduction>,
    amount_max_fen: i64,
) -> Result<(Vec<Deduction>, i64), DeductionError> {
    if lines.len() > DEDUCTION_LINES_MAX {
        return Err(DeductionError::TooMany {
            count: lines.len(),
            max: DEDUCTION_LINES_MAX,
        });
    }
    let mut total: i64 = 0;
    let mut checked = Vec::with_capacity(lines.len());
    for (index, line) in lines.into_iter().enumerate() {
        if line.amount_fen <= 0 || line.amount_fen > amount_max_fen {
            return Err(DeductionError::Invalid {
                index,
                why: format!(
                    "amount must be a positive integer of fen up to {amount_max_fen}, got {}",
                    line.amount_fen
                ),
            });
        }
        let reason = line.reason.trim();
        let chars = reason.chars().count();
        if chars == 0 || chars > DEDUCTION_REASON_CHARS_MAX {
            return Err(DeductionError::Invalid {
                index,
                why: format!(
                    "reason must be 1 to {DEDUCTION_REASON_CHARS_MAX} characters, got {chars}"
                ),
            });
        }
        if reason.chars().any(char::is_control) {
            return Err(DeductionError::Invalid {
                index,
                why: "reason must not hold control characters".to_owned(),
            });
        }
        total = total.saturating_add(line.amount_fen);
        checked.push(Deduction {
            kind: line.kind,
            amount_fen: line.amount_fen,
            reason: reason.to_owned(),
        });
    }
    Ok((checked, total))
}

/// The deductions must leave the consumer at least one fen of the refund's amount.
pub fn check_against_amount(deducted_fen: i64, amount_fen: i64) -> Result<(), DeductionError> {
    if deducted_fen >= amount_fen {
        return Err(DeductionError::ExceedRefund {
            deducted_fen,
            amount_fen,
        });
    }
    Ok(())
}

/// What the consumer gets back: the refund's amount less the deductions.
pub fn consumer_amount(amount_fen: i64, deducted_fen: i64) -> i64 {
    amount_fen - deducted_fen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: DeductionKind, amount_fen: i64, reason: &str) -> Deduction {
        Deduction {
            kind,
            amount_fen,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn lines_are_checked_and_summed() {
        let (lines, total) = validate(
            vec![
                line(
                    DeductionKind::HandlingFee,
                    500,
                    "  手续费 agreed at the till ",
                ),
                line(DeductionKind::Tax, 130, "tax"),
            ],
            10_000,
        )
        .unwrap();
        assert_eq!(total, 630);
        assert_eq!(lines[0].reason, "手续费 agreed at the till");
        assert_eq!(consumer_amount(10_000, total), 9_370);
    }

    #[test]
    fn bad_lines_are_invalid_deduction() {
        for bad in [
            line(DeductionKind::Other, 0, "zero"),
            line(DeductionKind::Other, -5, "negative"),
            line(DeductionKind::Other, 5, "   "),
            line(DeductionKind::Other, 5, &"长".repeat(201)),
            line(DeductionKind::Other, 5, "tab\tin"),
        ] {
            let error = validate(vec![bad.clone()], 10_000).unwrap_err();
            assert_eq!(error.code(), "invalid_deduction", "{bad:?}");
        }
        let long_ok = line(DeductionKind::Other, 5, &"长".repeat(200));
        assert!(validate(vec![long_ok], 10_000).is_ok());
        let many = vec![line(DeductionKind::Tax, 1, "t"); DEDUCTION_LINES_MAX + 1];
        assert_eq!(
            validate(many, 10_000).unwrap_err().code(),
            "invalid_deduction"
        );
    }

    #[test]
    fn deductions_must_leave_the_consumer_something() {
        assert!(check_against_amount(9_999, 10_000).is_ok());
        assert_eq!(
            check_against_amount(10_000, 10_000).unwrap_err().code(),
            "deductions_exceed_refund"
        );
        assert_eq!(
            check_against_amount(10_001, 10_000).unwrap_err().code(),
            "deductions_exceed_refund"
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in DeductionKind::ALL {
            assert_eq!(DeductionKind::parse(kind.id()), Some(kind));
        }
        assert_eq!(DeductionKind::parse("fee"), None);
    }
}
