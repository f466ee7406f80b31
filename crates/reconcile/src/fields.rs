//! Small, strict readers and writers for the values statement files carry: amounts in yuan
//! or fen, local times, CSV fields, lines. None of them panics on any input.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use yuanlu_domain::time::shanghai;

/// The most digits accepted in the integer part of an amount: a trillion yuan, far below
/// `i64::MAX` fen.
const MAX_INT_DIGITS: usize = 15;

/// A non-negative amount in yuan with at most two decimals (`12.34`, `12.3`, `12`, `0.00`)
/// as exact fen. No sign, exponent, spaces or thousands separators.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    if int.is_empty() || int.len() > MAX_INT_DIGITS || !all_digits(int) {
        return None;
    }
    let mut fen = digits_value(int)?.checked_mul(100)?;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > 2 || !all_digits(frac) {
            return None;
        }
        let cents = digits_value(frac)?;
        fen = fen.checked_add(if frac.len() == 1 { cents * 10 } else { cents })?;
    }
    Some(fen)
}

/// Like [`parse_yuan`], with an optional leading `-`: the signed value in fen.
pub fn parse_signed_yuan(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(rest) => parse_yuan(rest).map(|fen| -fen),
        None => parse_yuan(text),
    }
}

/// A non-negative integer (fen, counts, sequence numbers): 1 to 18 ASCII digits.
pub fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !all_digits(text) {
        return None;
    }
    digits_value(text)
}

/// Fen as yuan with two decimals: `1234` → `12.34`, `-5` → `-0.05`.
pub fn format_yuan(fen: i64) -> String {
    yuanlu_domain::money::format_cny(fen)
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

fn digits_value(text: &str) -> Option<i64> {
    text.bytes().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })
}

/// A wall-clock time in Asia/Shanghai in `format` (chrono syntax), as UTC.
pub fn parse_shanghai(text: &str, format: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, format).ok()?;
    shanghai()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A UTC instant as Asia/Shanghai wall-clock time in `format`.
pub fn format_shanghai(instant: DateTime<Utc>, format: &str) -> String {
    instant
        .with_timezone(&shanghai())
        .format(format)
        .to_string()
}

/// The latest Asia/Shanghai date among `instants`.
pub fn latest_shanghai_date(instants: impl Iterator<Item = DateTime<Utc>>) -> Option<NaiveDate> {
    instants.map(yuanlu_domain::time::shanghai_date).max()
}

/// `Some(text)` unless it is empty.
pub fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// Appends `field` to a CSV line, quoted (RFC 4180) if it needs to be.
pub fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Splits one CSV line (no line breaks inside fields) into `out`. Quoted fields may hold
/// commas and doubled quotes. `None` if a quote is left open or text follows a closing quote.
pub fn split_csv_line<'a>(line: &'a str, out: &mut Vec<Cow<'a, str>>) -> Option<()> {
    out.clear();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut tail = quoted;
            loop {
                let (chunk, after) = tail.split_once('"')?;
                value.push_str(chunk);
                if let Some(after_doubled) = after.strip_prefix('"') {
                    value.push('"');
                    tail = after_doubled;
                } else {
                    tail = after;
                    break;
                }
            }
            out.push(Cow::Owned(value));
            // Real bills pad after the closing quote too.
            let tail = tail.trim_start_matches([' ', '\t']);
            match tail.strip_prefix(',') {
                Some(next) => rest = next,
                None if tail.is_empty() => return Some(()),
                None => return None,
            }
        } else {
            match rest.split_once(',') {
                Some((field, next)) => {
                    out.push(Cow::Borrowed(field));
                    rest = next;
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Some(());
                }
            }
        }
    }
}

/// The lines of `bytes`: `(1-based line number, byte offset of the line's end, line without
/// its `\n` or `\r\n`)`. A final line break does not start another line.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, usize, &[u8])> {
    let mut offset = 0usize;
    let mut line_no = 0u64;
    std::iter::from_fn(move || {
        if offset >= bytes.len() {
            return None;
        }
        let rest = bytes.get(offset..)?;
        let (line, consumed) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (rest.get(..end)?, end + 1),
            None => (rest, rest.len()),
        };
        offset += consumed;
        line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some((line_no, offset, line))
    })
}

/// The number of lines in `bytes` (a final line break does not start another line).
pub fn line_count(bytes: &[u8]) -> u64 {
    let breaks = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    if bytes.last().is_some_and(|&b| b != b'\n') {
        breaks + 1
    } else {
        breaks
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn yuan_is_exact_and_strict() {
        assert_eq!(parse_yuan("12.34"), Some(1234));
        assert_eq!(parse_yuan("12.3"), Some(1230));
        assert_eq!(parse_yuan("12"), Some(1200));
        assert_eq!(parse_yuan("0.01"), Some(1));
        assert_eq!(parse_yuan("0.29"), Some(29));
        for bad in [
            "12.3x",
            "",
            ".5",
            "12.",
            "12.345",
            "-1",
            "+1",
            "1e3",
            "1,000",
            " 1",
            "1.0.0",
            "9999999999999999",
        ] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
        assert_eq!(parse_signed_yuan("-10.50"), Some(-1050));
        assert_eq!(parse_signed_yuan("--1"), None);
    }

    #[test]
    fn yuan_round_trips() {
        for fen in [0, 1, 9, 10, 99, 100, 1234, 99_999_999] {
            assert_eq!(parse_yuan(&format_yuan(fen)), Some(fen));
            assert_eq!(parse_signed_yuan(&format_yuan(-fen)), Some(-fen));
        }
    }

    #[test]
    fn csv_lines_split_with_quotes() {
        let mut out = Vec::new();
        split_csv_line(r#"a,"b,c","d""e"	,f"#, &mut out).unwrap();
        assert_eq!(out, ["a", "b,c", "d\"e", "f"]);
        assert!(split_csv_line(r#"a,"open"#, &mut out).is_none());
        assert!(split_csv_line(r#""x"y,z"#, &mut out).is_none());
        let mut line = String::new();
        push_csv_field(&mut line, "q\"u,o");
        assert_eq!(line, r#""q""u,o""#);
    }

    #[test]
    fn lines_are_numbered_and_stripped() {
        let got: Vec<_> = lines(b"a\r\nb\n\nc").map(|(n, _, l)| (n, l)).collect();
        assert_eq!(
            got,
            vec![
                (1, &b"a"[..]),
                (2, &b"b"[..]),
                (3, &b""[..]),
                (4, &b"c"[..])
            ]
        );
        assert_eq!(line_count(b"a\r\nb\n\nc"), 4);
        assert_eq!(line_count(b"a\n"), 1);
        assert_eq!(line_count(b""), 0);
    }

    #[test]
    fn shanghai_times_are_utc_plus_8() {
        let t = parse_shanghai("2026-03-01 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(format_shanghai(t, "%Y%m%d%H%M%S"), "20260301080000");
    }
}

/// Line numbers of byte offsets in one file, for readers (like `csv`'s) that report where a
/// record starts in bytes. Offsets are expected in increasing order; an earlier one restarts
/// the count.
pub struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    pub fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of a CSV record `csv` says starts at byte `offset`. `csv` reports where it
    /// started reading, before the line breaks and blank lines it skips, so those are skipped
    /// here too.
    pub fn record_line(&mut self, offset: u64) -> u64 {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let skipped = self
            .bytes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        self.line_at(offset.saturating_add(skipped as u64))
    }

    /// The 1-based line on which byte `offset` lies.
    pub fn line_at(&mut self, offset: u64) -> u64 {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let between = self.bytes.get(self.offset..offset).unwrap_or_default();
        self.line += between.iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = offset;
        self.line
    }
}

#[cfg(test)]
mod counter_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::LineCounter;

    #[test]
    fn csv_record_offsets_map_to_lines() {
        let bytes = b"a,b\r\n\r\n\nc,d\r\ne,f\n\n";
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[..]);
        let mut counter = LineCounter::new(bytes);
        let mut record = csv::ByteRecord::new();
        let mut seen = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let offset = record.position().unwrap().byte();
            seen.push((counter.record_line(offset), record.get(0).unwrap().to_vec()));
        }
        assert_eq!(
            seen,
            vec![(1, b"a".to_vec()), (4, b"c".to_vec()), (5, b"e".to_vec())]
        );
    }
}
