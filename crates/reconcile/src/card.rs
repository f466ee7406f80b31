//! The card network's settlement file (`CARDNET`), defined by yuanlu: one file per business
//! date, UTF-8 (in practice ASCII), `|`-separated fields, no quoting, `\n` or `\r\n` line ends.
//!
//! ```text
//! H|CARDNET|<business date YYYYMMDD>|<acquirer id>
//! D|<seq>|<SALE|REFUND>|<network ref>|<our ref>|<amount fen>|<response code>|<YYYYMMDDhhmmss, UTC+8>|<card, masked>
//! …
//! T|<count of D lines>|<sum of SALE amounts, fen>|<sum of REFUND amounts, fen>
//! ```
//!
//! - `H` is the first line and appears once; `acquirer id` is not empty.
//! - `D` lines follow, `seq` counting 1, 2, 3… without gaps. `network ref` is the network's
//!   reference (may be empty); `our ref` is our payment id for a `SALE` and our refund id for a
//!   `REFUND` (may be empty only if `network ref` is not); `amount fen` is a non-negative
//!   integer; `response code` is two letters or digits: `00` approved (succeeded), `09` in
//!   progress (processing), anything else declined (failed); the card is masked
//!   (`622848******1234`), never a full number, and may be empty.
//! - `T` is the last line: the number of `D` lines and the sums of their amounts per kind,
//!   whatever their response code. They must agree with the `D` lines.
//! - No blank lines, except that the file may end with a line break.
//!
//! Example:
//!
//! ```text
//! H|CARDNET|20260301|ACQ0001
//! D|1|SALE|N260301000001|pay_01J0000000000000000000001|12345|00|20260301093015|622848******1234
//! D|2|REFUND|N260301000002|rf_01J0000000000000000000002|2345|00|20260301141502|622848******1234
//! T|2|12345|2345
//! ```

use chrono::NaiveDate;

use crate::error::ParseError;
use crate::fields::{format_shanghai, lines, parse_count, parse_shanghai};
use crate::progress::Progress;
use crate::statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals};

/// The line of the first detail line as [`write()`] lays a file out.
pub const FIRST_LINE: u64 = 2;

/// The acquirer id [`write()`] puts in the header.
pub const ACQUIRER_ID: &str = "YUANLU";

const TIME_FORMAT: &str = "%Y%m%d%H%M%S";

enum Stage {
    Start,
    Details {
        business_date: NaiveDate,
    },
    Done {
        business_date: NaiveDate,
        declared: Totals,
    },
}

/// Reads a card network settlement file. See the module documentation for the format.
pub fn parse(bytes: &[u8], progress: &mut dyn FnMut(u64)) -> Result<Statement, ParseError> {
    let mut progress = Progress::new(progress);
    let mut stage = Stage::Start;
    let mut statement_lines = Vec::new();
    let mut totals = Totals::default();
    let mut last_line = 0;
    for (line, end, raw) in lines(bytes) {
        last_line = line;
        progress.at(end as u64);
        let text =
            std::str::from_utf8(raw).map_err(|_| ParseError::new(line, "the line is not UTF-8"))?;
        if text.is_empty() {
            return Err(ParseError::new(line, "an empty line"));
        }
        let fields: Vec<&str> = text.split('|').collect();
        stage = match stage {
            Stage::Start => Stage::Details {
                business_date: header(&fields, line)?,
            },
            Stage::Details { business_date } => match fields.first() {
                Some(&"D") => {
                    let detail = detail(&fields, line, totals.lines + 1)?;
                    totals
                        .add(&detail)
                        .ok_or_else(|| ParseError::new(line, "the amounts overflow"))?;
                    statement_lines.push(detail);
                    Stage::Details { business_date }
                }
                Some(&"T") => Stage::Done {
                    business_date,
                    declared: trailer(&fields, line, &totals)?,
                },
                _ => {
                    return Err(ParseError::new(
                        line,
                        "expected a detail line `D|…` or the trailer `T|…`",
                    ));
                }
            },
            Stage::Done { .. } => {
                return Err(ParseError::new(
                    line,
                    "unexpected content after the trailer",
                ));
            }
        };
    }
    let Stage::Done {
        business_date,
        declared,
    } = stage
    else {
        let what = match stage {
            Stage::Start => "an empty file: no header `H|CARDNET|…`",
            _ => "the file ends without its trailer `T|count|sales|refunds`",
        };
        return Err(ParseError::new(last_line + 1, what));
    };
    progress.done(bytes.len() as u64);
    Ok(Statement {
        channel: StatementChannel::Card,
        business_date,
        lines: statement_lines,
        declared_totals: Some(declared),
    })
}

fn expect_fields(fields: &[&str], count: usize, line: u64, what: &str) -> Result<(), ParseError> {
    if fields.len() == count {
        Ok(())
    } else {
        Err(ParseError::new(
            line,
            format!("{what} has {} fields, expected {count}", fields.len()),
        ))
    }
}

fn header(fields: &[&str], line: u64) -> Result<NaiveDate, ParseError> {
    if fields.first() != Some(&"H") || fields.get(1) != Some(&"CARDNET") {
        return Err(ParseError::new(
            line,
            "not a card network settlement file: the first line is not `H|CARDNET|…`",
        ));
    }
    expect_fields(fields, 4, line, "the header")?;
    let date = fields.get(2).copied().unwrap_or("");
    let business_date = (date.len() == 8)
        .then(|| NaiveDate::parse_from_str(date, "%Y%m%d").ok())
        .flatten()
        .ok_or_else(|| ParseError::new(line, format!("business date `{date}` is not YYYYMMDD")))?;
    if fields.get(3).is_none_or(|a| a.is_empty()) {
        return Err(ParseError::new(line, "the acquirer id is empty"));
    }
    Ok(business_date)
}

fn detail(fields: &[&str], line: u64, expected_seq: u64) -> Result<StatementLine, ParseError> {
    expect_fields(fields, 9, line, "the detail line")?;
    let get = |i: usize| fields.get(i).copied().unwrap_or("");
    let seq = get(1);
    if parse_count(seq).and_then(|s| u64::try_from(s).ok()) != Some(expected_seq) {
        return Err(ParseError::new(
            line,
            format!("sequence number `{seq}`, expected {expected_seq}"),
        ));
    }
    let kind = match get(2) {
        "SALE" => LineKind::Payment,
        "REFUND" => LineKind::Refund,
        other => {
            return Err(ParseError::new(
                line,
                format!("type `{other}` is not SALE or REFUND"),
            ));
        }
    };
    let network_ref = get(3);
    let our_ref = get(4);
    if network_ref.is_empty() && our_ref.is_empty() {
        return Err(ParseError::new(
            line,
            "the line has neither the network's reference nor ours",
        ));
    }
    let amount = get(5);
    let amount_fen = parse_count(amount).ok_or_else(|| {
        ParseError::new(
            line,
            format!("amount `{amount}` is not an integer number of fen"),
        )
    })?;
    let code = get(6);
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::new(
            line,
            format!("response code `{code}` is not two letters or digits"),
        ));
    }
    let status = match code {
        "00" => LineStatus::Succeeded,
        "09" => LineStatus::Processing,
        _ => LineStatus::Failed,
    };
    let time = get(7);
    let occurred_at = (time.len() == 14)
        .then(|| parse_shanghai(time, TIME_FORMAT))
        .flatten()
        .ok_or_else(|| ParseError::new(line, format!("time `{time}` is not YYYYMMDDhhmmss")))?;
    let card = get(8);
    Ok(StatementLine {
        line_no: line,
        kind,
        channel_txn_id: (!network_ref.is_empty()).then(|| network_ref.to_owned()),
        our_ref: our_ref.to_owned(),
        payment_ref: None,
        amount_fen,
        status,
        occurred_at,
        account: (!card.is_empty()).then(|| card.to_owned()),
    })
}

fn trailer(fields: &[&str], line: u64, counted: &Totals) -> Result<Totals, ParseError> {
    expect_fields(fields, 4, line, "the trailer")?;
    let number = |i: usize, what: &str| {
        let text = fields.get(i).copied().unwrap_or("");
        parse_count(text)
            .ok_or_else(|| ParseError::new(line, format!("{what} `{text}` is not an integer")))
    };
    let count = number(1, "the count")?;
    let declared = Totals {
        lines: u64::try_from(count).unwrap_or(u64::MAX),
        payment_fen: number(2, "the sum of sales")?,
        refund_fen: number(3, "the sum of refunds")?,
    };
    if declared != *counted {
        return Err(ParseError::new(
            line,
            format!(
                "the totals do not add up: the trailer says {} lines, {} fen of sales, {} fen of refunds; the file has {}, {}, {}",
                declared.lines,
                declared.payment_fen,
                declared.refund_fen,
                counted.lines,
                counted.payment_fen,
                counted.refund_fen
            ),
        ));
    }
    Ok(declared)
}

/// Writes `statement` as a card network settlement file with the trailer computed from its
/// lines. Lossy where the file cannot say something: a closed line is written as declined
/// (`05`, read back as failed); `|` and line breaks in values are replaced by spaces.
pub fn write(statement: &Statement) -> Vec<u8> {
    let mut out = String::with_capacity(64 + statement.lines.len() * 110);
    out.push_str(&format!(
        "H|CARDNET|{}|{ACQUIRER_ID}\n",
        statement.business_date.format("%Y%m%d")
    ));
    let mut totals = Totals::default();
    for (i, line) in statement.lines.iter().enumerate() {
        let _ = totals.add(line);
        let code = match line.status {
            LineStatus::Succeeded => "00",
            LineStatus::Processing => "09",
            LineStatus::Failed | LineStatus::Closed => "05",
        };
        out.push_str(&format!(
            "D|{}|{}|{}|{}|{}|{code}|{}|{}\n",
            i + 1,
            match line.kind {
                LineKind::Payment => "SALE",
                LineKind::Refund => "REFUND",
            },
            clean(line.channel_txn_id.as_deref().unwrap_or("")),
            clean(&line.our_ref),
            line.amount_fen,
            format_shanghai(line.occurred_at, TIME_FORMAT),
            clean(line.account.as_deref().unwrap_or("")),
        ));
    }
    out.push_str(&format!(
        "T|{}|{}|{}\n",
        totals.lines, totals.payment_fen, totals.refund_fen
    ));
    out.into_bytes()
}

fn clean(value: &str) -> String {
    value.replace(['|', '\r', '\n'], " ")
}
