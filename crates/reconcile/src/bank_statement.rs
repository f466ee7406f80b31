//! A merchant's bank statement (银行对账单) as a CSV file, UTF-8 (with or without a byte
//! order mark) or GBK, the two encodings Chinese online banking exports in:
//!
//! ```text
//! date,amount,counterparty,reference
//! 2026-03-03,1234.56,收单机构结算户,yuanlu stl_01J0000000000000000000001
//! 2026-03-03,-80.00,电费,
//! ```
//!
//! - The header is `date,amount,counterparty,reference`, or in Chinese
//!   `日期,金额,对方户名,摘要`; nothing comes before it.
//! - `date`: `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYYMMDD`, the day the bank booked the line.
//! - `amount`: yuan with at most two decimals, signed: a credit (收入) is positive, a debit
//!   (支出) negative (`-80.00`); a leading `+` and thousands separators (`"1,234.56"`) are
//!   accepted. Zero is refused.
//! - `counterparty` (对方户名) and `reference` (摘要/附言) may be empty.
//! - Blank lines are skipped. A file without lines is refused.
//!
//! The encoding is UTF-8 when the file is valid UTF-8, else GBK; a file that is neither is
//! refused naming the first line that is not.

use std::borrow::Cow;

use chrono::NaiveDate;
use encoding_rs::GBK;

use crate::error::ParseError;
use crate::fields::{lines, parse_signed_yuan, split_csv_line, strip_bom};

/// The English header.
pub const HEADER: &str = "date,amount,counterparty,reference";
/// The Chinese header.
pub const HEADER_ZH: &str = "日期,金额,对方户名,摘要";

/// The longest counterparty or reference kept, in characters; longer text is refused
/// rather than cut, so that a match never rests on half a reference.
pub const TEXT_CHARS_MAX: usize = 200;

/// One booked line of a bank statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankLine {
    /// The line number in the file (the header is line 1).
    pub line: u64,
    pub date: NaiveDate,
    /// Fen; positive for a credit, negative for a debit, never zero.
    pub amount_fen: i64,
    pub counterparty: String,
    pub reference: String,
}

impl BankLine {
    pub fn is_credit(&self) -> bool {
        self.amount_fen > 0
    }
}

/// A parsed bank statement: its lines in file order and the days it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankStatement {
    pub lines: Vec<BankLine>,
    /// The earliest and latest booking date among the lines.
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
}

/// Reads a bank statement. See the module documentation for the format.
pub fn parse(bytes: &[u8]) -> Result<BankStatement, ParseError> {
    let body = strip_bom(bytes);
    let utf8 = std::str::from_utf8(body).is_ok();
    let mut header_seen = false;
    let mut out = Vec::new();
    for (line, _, raw) in lines(body) {
        let text = decode(raw, utf8, line)?;
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(4);
        split_csv_line(text, &mut fields)
            .ok_or_else(|| ParseError::new(line, "unreadable CSV: a quote is not closed"))?;
        if !header_seen {
            let header: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            if header.join(",") != HEADER && header.join(",") != HEADER_ZH {
                return Err(ParseError::new(
                    line,
                    format!("the first line must be the header `{HEADER}` or `{HEADER_ZH}`"),
                ));
            }
            header_seen = true;
            continue;
        }
        out.push(bank_line(line, &fields)?);
    }
    if !header_seen {
        return Err(ParseError::new(
            1,
            format!("the file is empty: give the header `{HEADER}` and a line per booking"),
        ));
    }
    let first_date = out.iter().map(|l| l.date).min();
    let last_date = out.iter().map(|l| l.date).max();
    match (first_date, last_date) {
        (Some(first_date), Some(last_date)) => Ok(BankStatement {
            lines: out,
            first_date,
            last_date,
        }),
        _ => Err(ParseError::new(
            2,
            "the statement has no lines after its header",
        )),
    }
}

fn decode(raw: &[u8], utf8: bool, line: u64) -> Result<Cow<'_, str>, ParseError> {
    if utf8 {
        // The whole file was checked; a line boundary never splits a UTF-8 sequence.
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| ParseError::new(line, "the line is not valid UTF-8"));
    }
    GBK.decode_without_bom_handling_and_without_replacement(raw)
        .ok_or_else(|| ParseError::new(line, "the line is neither UTF-8 nor GBK"))
}

fn bank_line(line: u64, fields: &[Cow<'_, str>]) -> Result<BankLine, ParseError> {
    let [date, amount, counterparty, reference] = fields else {
        return Err(ParseError::new(
            line,
            format!("expected 4 fields ({HEADER}), found {}", fields.len()),
        ));
    };
    let date = parse_date(date.trim())
        .ok_or_else(|| ParseError::new(line, "date: give YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD"))?;
    let amount_fen = parse_amount(amount.trim()).ok_or_else(|| {
        ParseError::new(
            line,
            "amount: give yuan with at most two decimals, negative for a debit (e.g. 1234.56 or -80.00), not zero",
        )
    })?;
    Ok(BankLine {
        line,
        date,
        amount_fen,
        counterparty: text_field(counterparty, "counterparty", line)?,
        reference: text_field(reference, "reference", line)?,
    })
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
}

/// Signed yuan as fen; `+` and thousands separators accepted, zero refused.
fn parse_amount(text: &str) -> Option<i64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let plain: String = text.chars().filter(|c| *c != ',').collect();
    parse_signed_yuan(&plain).filter(|fen| *fen != 0)
}

fn text_field(text: &str, name: &str, line: u64) -> Result<String, ParseError> {
    let text = text.trim();
    if text.chars().count() > TEXT_CHARS_MAX {
        return Err(ParseError::new(
            line,
            format!("{name}: longer than {TEXT_CHARS_MAX} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ParseError::new(
            line,
            format!("{name}: holds a control character"),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reads_utf8_with_bom_and_signed_amounts() {
        let file = "\u{feff}date,amount,counterparty,reference\r\n2026-03-03,1234.56,收单机构,yuanlu stl_1\r\n\r\n20260304,\"-1,080.00\",电费,\r\n";
        let statement = parse(file.as_bytes()).unwrap();
        assert_eq!(statement.lines.len(), 2);
        assert_eq!(statement.lines[0].amount_fen, 123_456);
        assert_eq!(statement.lines[0].counterparty, "收单机构");
        assert_eq!(statement.lines[0].reference, "yuanlu stl_1");
        assert_eq!(statement.lines[1].line, 4);
        assert_eq!(statement.lines[1].amount_fen, -108_000);
        assert!(!statement.lines[1].is_credit());
        assert_eq!(statement.first_date, date("2026-03-03"));
        assert_eq!(statement.last_date, date("2026-03-04"));
    }

    #[test]
    fn reads_gbk_with_the_chinese_header() {
        let text = "日期,金额,对方户名,摘要\n2026/03/03,+99.10,银联商务,结算款\n";
        let (gbk, _, lossy) = GBK.encode(text);
        assert!(!lossy);
        assert!(
            std::str::from_utf8(&gbk).is_err(),
            "the test file must not be UTF-8"
        );
        let statement = parse(&gbk).unwrap();
        assert_eq!(statement.lines[0].amount_fen, 9_910);
        assert_eq!(statement.lines[0].counterparty, "银联商务");
        assert_eq!(statement.lines[0].reference, "结算款");
    }

    #[test]
    fn refuses_bad_lines_naming_them() {
        let cases = [
            ("", 1, "empty"),
            ("date,amount\n", 1, "header"),
            ("date,amount,counterparty,reference\n", 2, "no lines"),
            (
                "date,amount,counterparty,reference\n2026-13-01,1.00,a,b\n",
                2,
                "date",
            ),
            (
                "date,amount,counterparty,reference\n2026-03-01,0.00,a,b\n",
                2,
                "amount",
            ),
            (
                "date,amount,counterparty,reference\n2026-03-01,1.001,a,b\n",
                2,
                "amount",
            ),
            (
                "date,amount,counterparty,reference\n2026-03-01,1e3,a,b\n",
                2,
                "amount",
            ),
            (
                "date,amount,counterparty,reference\n2026-03-01,1.00,a\n",
                2,
                "4 fields",
            ),
            (
                "date,amount,counterparty,reference\n2026-03-01,1.00,\"a,b\n",
                2,
                "quote",
            ),
        ];
        for (file, line, words) in cases {
            let error = parse(file.as_bytes()).unwrap_err();
            assert_eq!(error.line, line, "{file:?}: {error:?}");
            assert!(error.message.contains(words), "{file:?}: {error:?}");
        }
    }

    #[test]
    fn refuses_bytes_that_are_neither_utf8_nor_gbk() {
        let mut file = b"date,amount,counterparty,reference\n2026-03-01,1.00,".to_vec();
        file.extend_from_slice(&[0xff, 0xff]);
        file.extend_from_slice(b",x\n");
        let error = parse(&file).unwrap_err();
        assert_eq!(error.line, 2);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn amounts_round_trip(fen in -10_000_000_000i64..10_000_000_000) {
            proptest::prop_assume!(fen != 0);
            let file = format!("{HEADER}\n2026-03-01,{},x,y\n", crate::fields::format_yuan(fen));
            let statement = parse(file.as_bytes()).unwrap();
            proptest::prop_assert_eq!(statement.lines[0].amount_fen, fen);
        }
    }
}
