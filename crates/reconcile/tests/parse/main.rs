//! Statement parsers: realistic files, malformed files refused naming their line, and
//! fuzz-style properties (no input panics).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alipay;
mod card;
mod fuzz;
mod published;
mod roundtrip;
mod wechat;
mod yuanlu_csv;

use yuanlu_reconcile::{ParseError, Statement, StatementChannel};

/// Parses, collecting progress reports.
pub fn parse_with_progress(
    channel: StatementChannel,
    bytes: &[u8],
) -> (Result<Statement, ParseError>, Vec<u64>) {
    let mut seen = Vec::new();
    let result = yuanlu_reconcile::parse(channel, bytes, &mut |b| seen.push(b));
    (result, seen)
}

pub fn parse_ok(channel: StatementChannel, bytes: &[u8]) -> Statement {
    let (result, seen) = parse_with_progress(channel, bytes);
    let statement = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen.last(),
        Some(&(bytes.len() as u64)),
        "progress ends at the file's size"
    );
    statement
}

/// The error a malformed file is refused with.
pub fn refused(channel: StatementChannel, bytes: &[u8]) -> ParseError {
    match yuanlu_reconcile::parse(channel, bytes, &mut |_| {}) {
        Ok(s) => panic!("accepted a malformed file: {s:?}"),
        Err(e) => e,
    }
}

/// Asserts the error names `line` and says something containing `words`.
#[track_caller]
pub fn assert_refused(channel: StatementChannel, bytes: &[u8], line: u64, words: &str) {
    let error = refused(channel, bytes);
    assert_eq!(error.line, line, "{error}");
    assert!(
        error.message.contains(words),
        "{error} should mention {words:?}"
    );
}

pub fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

pub fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
