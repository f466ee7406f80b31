//! yuanlu's own statement CSV, for channels without a format of their own (UnionPay QR, or a
//! channel's statement converted by hand). UTF-8, RFC 4180 quoting, `\n` or `\r\n` line ends.
//!
//! ```text
//! #business_date=2026-03-01
//! kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account
//! payment,UQ260301000001,pay_01J0000000000000000000001,12345,succeeded,2026-03-01T01:30:15Z,6222****1234
//! refund,UQ260301000002,rf_01J0000000000000000000002,2345,succeeded,2026-03-01T06:15:02+08:00,
//! ```
//!
//! - Lines starting with `#` may come before the header; `#business_date=YYYY-MM-DD` sets
//!   the business date. Without it the business date is the latest Asia/Shanghai date among
//!   `occurred_at`, and a file without lines is refused.
//! - The header is exactly `kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account`.
//! - `kind`: `payment` or `refund`. `channel_txn_id`: the channel's number, may be empty.
//!   `our_ref`: our payment id (`pay_…`) or refund id (`rf_…`), may be empty only if
//!   `channel_txn_id` is not. `amount_fen`: a non-negative integer. `status`: `succeeded`,
//!   `processing`, `failed` or `closed`. `occurred_at`: RFC 3339 with an offset. `account`:
//!   the payer, masked, may be empty.
//! - The file declares no totals.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use csv::{ByteRecord, ReaderBuilder};

use crate::error::ParseError;
use crate::fields::{
    LineCounter, latest_shanghai_date, lines, non_empty, parse_count, push_csv_field, strip_bom,
};
use crate::progress::Progress;
use crate::statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine};

/// The header line.
pub const HEADER: &str = "kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account";

/// The line of the first data line as [`write()`] lays a file out.
pub const FIRST_LINE: u64 = 3;

const DATE_DIRECTIVE: &str = "#business_date=";

/// Reads a yuanlu statement CSV. See the module documentation for the format.
pub fn parse(bytes: &[u8], progress: &mut dyn FnMut(u64)) -> Result<Statement, ParseError> {
    let mut progress = Progress::new(progress);
    let body_start = bytes.len() - strip_bom(bytes).len();
    let body = strip_bom(bytes);
    // The comment lines before the header.
    let mut business_date = None;
    let mut offset = 0usize;
    let mut preamble_lines = 0u64;
    for (line, end, raw) in lines(body) {
        if !raw.starts_with(b"#") {
            break;
        }
        if let Some(date) = raw.strip_prefix(DATE_DIRECTIVE.as_bytes()) {
            let text = std::str::from_utf8(date).unwrap_or("");
            business_date = Some(NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(
                |_| {
                    ParseError::new(
                        line,
                        format!("{DATE_DIRECTIVE} is not followed by YYYY-MM-DD"),
                    )
                },
            )?);
        }
        offset = end;
        preamble_lines = line;
    }
    let rest = body.get(offset..).unwrap_or_default();
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(rest);
    let mut counter = LineCounter::new(rest);
    let mut record = ByteRecord::new();
    let mut statement_lines = Vec::new();
    let mut header_seen = false;
    let mut last_line = preamble_lines;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map_or(last_line + 1, |p| {
                counter.record_line(p.byte()) + preamble_lines
            });
            ParseError::new(line, format!("unreadable CSV: {e}"))
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(last_line + 1, |p| {
            counter.record_line(p.byte()) + preamble_lines
        });
        last_line = line;
        progress.at((body_start + offset) as u64 + reader.position().byte());
        if !header_seen {
            let names: Vec<&[u8]> = record.iter().collect();
            if names.join(&b","[..]) != HEADER.as_bytes() {
                return Err(ParseError::new(
                    line,
                    format!("the header is not `{HEADER}`"),
                ));
            }
            header_seen = true;
            continue;
        }
        statement_lines.push(data_line(&record, line)?);
    }
    let end = last_line + 1;
    if !header_seen {
        return Err(ParseError::new(end, format!("no header `{HEADER}`")));
    }
    let business_date = match business_date {
        Some(date) => date,
        None => latest_shanghai_date(statement_lines.iter().map(|l| l.occurred_at)).ok_or_else(
            || {
                ParseError::new(
                    end,
                    format!(
                        "no lines and no {DATE_DIRECTIVE}YYYY-MM-DD: the business date is unknown"
                    ),
                )
            },
        )?,
    };
    progress.done(bytes.len() as u64);
    Ok(Statement {
        channel: StatementChannel::Yuanlu,
        business_date,
        lines: statement_lines,
        declared_totals: None,
    })
}

fn data_line(record: &ByteRecord, line: u64) -> Result<StatementLine, ParseError> {
    if record.len() != 7 {
        return Err(ParseError::new(
            line,
            format!("expected 7 fields like the header, found {}", record.len()),
        ));
    }
    let mut values = [""; 7];
    for (i, raw) in record.iter().enumerate() {
        let slot = values
            .get_mut(i)
            .ok_or_else(|| ParseError::new(line, "too many fields"))?;
        *slot = std::str::from_utf8(raw)
            .map_err(|_| ParseError::new(line, format!("field {} is not UTF-8", i + 1)))?;
    }
    let [
        kind,
        channel_txn_id,
        our_ref,
        amount,
        status,
        occurred_at,
        account,
    ] = values;
    let kind = match kind {
        "payment" => LineKind::Payment,
        "refund" => LineKind::Refund,
        other => {
            return Err(ParseError::new(
                line,
                format!("kind `{other}` is not payment or refund"),
            ));
        }
    };
    if our_ref.is_empty() && channel_txn_id.is_empty() {
        return Err(ParseError::new(
            line,
            "the line has neither channel_txn_id nor our_ref",
        ));
    }
    let amount_fen = parse_count(amount).ok_or_else(|| {
        ParseError::new(
            line,
            format!("amount_fen `{amount}` is not a non-negative integer"),
        )
    })?;
    let status = match status {
        "succeeded" => LineStatus::Succeeded,
        "processing" => LineStatus::Processing,
        "failed" => LineStatus::Failed,
        "closed" => LineStatus::Closed,
        other => {
            return Err(ParseError::new(
                line,
                format!("status `{other}` is not succeeded, processing, failed or closed"),
            ));
        }
    };
    let occurred_at = DateTime::parse_from_rfc3339(occurred_at)
        .map_err(|_| {
            ParseError::new(
                line,
                format!("occurred_at `{occurred_at}` is not an RFC 3339 time"),
            )
        })?
        .with_timezone(&Utc);
    Ok(StatementLine {
        line_no: line,
        kind,
        channel_txn_id: non_empty(channel_txn_id),
        our_ref: our_ref.to_owned(),
        payment_ref: None,
        amount_fen,
        status,
        occurred_at,
        account: non_empty(account),
    })
}

/// Writes `statement` as a yuanlu statement CSV with its `#business_date=` line. Lossy only in
/// what the format lacks: `payment_ref` and declared totals.
pub fn write(statement: &Statement) -> Vec<u8> {
    let mut out = String::with_capacity(128 + statement.lines.len() * 120);
    out.push_str(DATE_DIRECTIVE);
    out.push_str(&statement.business_date.format("%Y-%m-%d").to_string());
    out.push('\n');
    out.push_str(HEADER);
    out.push('\n');
    for line in &statement.lines {
        let amount = line.amount_fen.to_string();
        let time = line
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let fields = [
            line.kind.id(),
            line.channel_txn_id.as_deref().unwrap_or(""),
            &line.our_ref,
            &amount,
            line.status.id(),
            &time,
            line.account.as_deref().unwrap_or(""),
        ];
        for (i, value) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, value);
        }
        out.push('\n');
    }
    out.into_bytes()
}
