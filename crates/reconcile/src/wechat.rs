//! WeChat Pay's trade bill (交易账单, `bill_type=ALL`), UTF-8 CSV.
//!
//! - Line 1: the column names, unquoted: 交易时间,公众账号ID,商户号,特约商户号,设备号,
//!   微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,
//!   代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,
//!   商户数据包,手续费,费率,订单金额,申请退款金额,费率备注. Columns are found by name; those
//!   read are listed in [`COLUMNS_READ`], the others may be absent.
//! - Then one trade row per line, every field prefixed with a backtick (`` `SUCCESS ``),
//!   as many fields as the header has columns:
//!   - 交易状态 `SUCCESS`: a payment: 微信订单号 is the channel's number, 商户订单号 ours,
//!     the amount 应结订单金额. `REVOKED`: the same, closed.
//!   - 交易状态 `REFUND`: a refund: 微信退款单号 is the channel's number, 商户退款单号 ours,
//!     商户订单号 our payment, the amount 退款金额, the status 退款状态 (`SUCCESS`,
//!     `PROCESSING`, `FAIL`, `CHANGE` = failed to the card, `REFUNDCLOSE` = closed).
//!   - 交易时间 is `YYYY-MM-DD hh:mm:ss` in Beijing time; 用户标识 the payer's openid.
//!   - Amounts are yuan with at most two decimals (`12.34`); anything else is refused.
//! - Then the summary: a row of names starting with 总交易单数 (with 应结订单总金额 and
//!   退款总金额 among them) and one backtick-prefixed row of values: the number of trade rows,
//!   the sum of 应结订单金额 over payment rows, the sum of 退款金额 over refund rows. They must
//!   agree with the rows. Nothing but blank lines may follow.
//!
//! The bill carries no date of its own: its business date is the latest Beijing date among
//! its 交易时间 (a refund row may carry its payment's time), so a bill without trade rows is
//! refused.

use csv::{ByteRecord, ReaderBuilder};

use crate::error::ParseError;
use crate::fields::{
    LineCounter, format_shanghai, format_yuan, latest_shanghai_date, line_count, non_empty,
    parse_count, parse_shanghai, parse_yuan, push_csv_field, strip_bom,
};
use crate::progress::Progress;
use crate::statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals};

/// The trade bill's columns, in WeChat's order.
pub const COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

/// The columns yuanlu reads; a bill without one of them is refused.
pub const COLUMNS_READ: [&str; 10] = [
    "交易时间",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易状态",
    "应结订单金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "退款状态",
];

/// The summary's column names, in WeChat's order.
pub const SUMMARY_COLUMNS: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The line of the first trade row as [`write()`] lays a bill out.
pub const FIRST_LINE: u64 = 2;

/// Indices of [`COLUMNS_READ`] in the header.
struct Columns {
    count: usize,
    time: usize,
    txn_id: usize,
    out_trade_no: usize,
    openid: usize,
    trade_state: usize,
    settlement_amount: usize,
    refund_id: usize,
    out_refund_no: usize,
    refund_amount: usize,
    refund_status: usize,
}

impl Columns {
    fn find(header: &ByteRecord, line: u64) -> Result<Columns, ParseError> {
        let names: Vec<&[u8]> = header.iter().map(|f| strip_bom(f).trim_ascii()).collect();
        let at = |name: &str| {
            names
                .iter()
                .position(|n| *n == name.as_bytes())
                .ok_or_else(|| {
                    ParseError::new(
                        line,
                        format!("not a WeChat Pay trade bill: the header has no column {name}"),
                    )
                })
        };
        Ok(Columns {
            count: names.len(),
            time: at("交易时间")?,
            txn_id: at("微信订单号")?,
            out_trade_no: at("商户订单号")?,
            openid: at("用户标识")?,
            trade_state: at("交易状态")?,
            settlement_amount: at("应结订单金额")?,
            refund_id: at("微信退款单号")?,
            out_refund_no: at("商户退款单号")?,
            refund_amount: at("退款金额")?,
            refund_status: at("退款状态")?,
        })
    }
}

/// Indices of the summary columns checked.
struct SummaryColumns {
    count: usize,
    trades: usize,
    settlement_total: usize,
    refund_total: usize,
}

enum Stage {
    Header,
    Trades(Columns),
    Summary(SummaryColumns),
    Done,
}

/// Reads a WeChat Pay trade bill. See the module documentation for the format.
pub fn parse(bytes: &[u8], progress: &mut dyn FnMut(u64)) -> Result<Statement, ParseError> {
    let mut progress = Progress::new(progress);
    let body = strip_bom(bytes);
    let bom = bytes.len() - body.len();
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut counter = LineCounter::new(body);
    let mut record = ByteRecord::new();
    let mut stage = Stage::Header;
    let mut lines = Vec::new();
    let mut totals = Totals::default();
    let mut declared = None;
    let mut last_line = 0;
    loop {
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&e, &mut counter, last_line))?;
        if !more {
            break;
        }
        let line = record
            .position()
            .map_or(last_line + 1, |p| counter.record_line(p.byte()));
        last_line = line;
        progress.at(reader.position().byte() + bom as u64);
        stage = match stage {
            Stage::Header => Stage::Trades(Columns::find(&record, line)?),
            Stage::Trades(columns) => {
                if field(&record, 0, line)? == SUMMARY_COLUMNS[0] {
                    Stage::Summary(summary_columns(&record, line)?)
                } else {
                    let trade = trade_row(&columns, &record, line)?;
                    totals
                        .add(&trade)
                        .ok_or_else(|| ParseError::new(line, "the amounts overflow"))?;
                    lines.push(trade);
                    Stage::Trades(columns)
                }
            }
            Stage::Summary(columns) => {
                declared = Some(summary_row(&columns, &record, line, &totals)?);
                Stage::Done
            }
            Stage::Done => {
                return Err(ParseError::new(
                    line,
                    "unexpected content after the summary rows",
                ));
            }
        };
    }
    let end = line_count(bytes) + 1;
    let Some(declared) = declared else {
        let missing = match stage {
            Stage::Header => "an empty file: not a WeChat Pay trade bill",
            Stage::Summary(_) => "the bill ends without its row of totals",
            _ => "the bill ends without its summary rows (总交易单数,…)",
        };
        return Err(ParseError::new(end, missing));
    };
    let business_date =
        latest_shanghai_date(lines.iter().map(|l| l.occurred_at)).ok_or_else(|| {
            ParseError::new(
                FIRST_LINE,
                "the bill has no trade rows, so its business date is unknown",
            )
        })?;
    progress.done(bytes.len() as u64);
    Ok(Statement {
        channel: StatementChannel::Wechat,
        business_date,
        lines,
        declared_totals: Some(declared),
    })
}

fn csv_error(error: &csv::Error, counter: &mut LineCounter<'_>, last_line: u64) -> ParseError {
    let line = error
        .position()
        .map_or(last_line + 1, |p| counter.record_line(p.byte()));
    ParseError::new(line, format!("unreadable CSV: {error}"))
}

/// Field `index` of a row as text, without its backtick and surrounding spaces.
fn field(record: &ByteRecord, index: usize, line: u64) -> Result<&str, ParseError> {
    let raw = record
        .get(index)
        .ok_or_else(|| ParseError::new(line, format!("missing field {}", index + 1)))?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| ParseError::new(line, format!("field {} is not UTF-8", index + 1)))?;
    let text = text.trim();
    Ok(text.strip_prefix('`').unwrap_or(text).trim())
}

fn named<'r>(
    record: &'r ByteRecord,
    index: usize,
    line: u64,
    name: &str,
) -> Result<&'r str, ParseError> {
    field(record, index, line).map_err(|e| ParseError::new(line, format!("{name}: {}", e.message)))
}

fn amount(record: &ByteRecord, index: usize, line: u64, name: &str) -> Result<i64, ParseError> {
    let text = named(record, index, line, name)?;
    parse_yuan(text).ok_or_else(|| {
        ParseError::new(
            line,
            format!("{name} `{text}` is not an amount in yuan with at most two decimals"),
        )
    })
}

fn trade_row(
    columns: &Columns,
    record: &ByteRecord,
    line: u64,
) -> Result<StatementLine, ParseError> {
    if record.len() != columns.count {
        return Err(ParseError::new(
            line,
            format!(
                "expected {} fields like the header, found {}",
                columns.count,
                record.len()
            ),
        ));
    }
    let time = named(record, columns.time, line, "交易时间")?;
    let occurred_at = parse_shanghai(time, TIME_FORMAT).ok_or_else(|| {
        ParseError::new(
            line,
            format!("交易时间 `{time}` is not YYYY-MM-DD hh:mm:ss"),
        )
    })?;
    let account = non_empty(named(record, columns.openid, line, "用户标识")?);
    let state = named(record, columns.trade_state, line, "交易状态")?;
    let out_trade_no = named(record, columns.out_trade_no, line, "商户订单号")?;
    let (kind, channel_txn_id, our_ref, payment_ref, amount_fen, status) = match state {
        "SUCCESS" | "REVOKED" => (
            LineKind::Payment,
            non_empty(named(record, columns.txn_id, line, "微信订单号")?),
            out_trade_no.to_owned(),
            None,
            amount(record, columns.settlement_amount, line, "应结订单金额")?,
            if state == "SUCCESS" {
                LineStatus::Succeeded
            } else {
                LineStatus::Closed
            },
        ),
        "REFUND" => {
            let refund_status = named(record, columns.refund_status, line, "退款状态")?;
            let status = match refund_status {
                "SUCCESS" => LineStatus::Succeeded,
                "PROCESSING" => LineStatus::Processing,
                "FAIL" | "CHANGE" => LineStatus::Failed,
                "REFUNDCLOSE" => LineStatus::Closed,
                other => {
                    return Err(ParseError::new(
                        line,
                        format!(
                            "退款状态 `{other}` is not SUCCESS, PROCESSING, FAIL, CHANGE or REFUNDCLOSE"
                        ),
                    ));
                }
            };
            (
                LineKind::Refund,
                non_empty(named(record, columns.refund_id, line, "微信退款单号")?),
                named(record, columns.out_refund_no, line, "商户退款单号")?.to_owned(),
                non_empty(out_trade_no),
                amount(record, columns.refund_amount, line, "退款金额")?,
                status,
            )
        }
        other => {
            return Err(ParseError::new(
                line,
                format!("交易状态 `{other}` is not SUCCESS, REVOKED or REFUND"),
            ));
        }
    };
    if our_ref.is_empty() && channel_txn_id.is_none() {
        return Err(ParseError::new(
            line,
            "the row has neither WeChat's number nor ours",
        ));
    }
    Ok(StatementLine {
        line_no: line,
        kind,
        channel_txn_id,
        our_ref,
        payment_ref,
        amount_fen,
        status,
        occurred_at,
        account,
    })
}

fn summary_columns(record: &ByteRecord, line: u64) -> Result<SummaryColumns, ParseError> {
    let names: Vec<&str> = (0..record.len())
        .map(|i| field(record, i, line))
        .collect::<Result<_, _>>()?;
    let at = |name: &str| {
        names.iter().position(|n| *n == name).ok_or_else(|| {
            ParseError::new(line, format!("the summary header has no column {name}"))
        })
    };
    Ok(SummaryColumns {
        count: names.len(),
        trades: at("总交易单数")?,
        settlement_total: at("应结订单总金额")?,
        refund_total: at("退款总金额")?,
    })
}

fn summary_row(
    columns: &SummaryColumns,
    record: &ByteRecord,
    line: u64,
    counted: &Totals,
) -> Result<Totals, ParseError> {
    if record.len() != columns.count {
        return Err(ParseError::new(
            line,
            format!(
                "expected {} totals like the summary header, found {}",
                columns.count,
                record.len()
            ),
        ));
    }
    let trades = named(record, columns.trades, line, "总交易单数")?;
    let declared = Totals {
        lines: parse_count(trades)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                ParseError::new(line, format!("总交易单数 `{trades}` is not a count"))
            })?,
        payment_fen: amount(record, columns.settlement_total, line, "应结订单总金额")?,
        refund_fen: amount(record, columns.refund_total, line, "退款总金额")?,
    };
    let checks = [
        ("总交易单数", declared.lines as i128, counted.lines as i128),
        (
            "应结订单总金额",
            declared.payment_fen.into(),
            counted.payment_fen.into(),
        ),
        (
            "退款总金额",
            declared.refund_fen.into(),
            counted.refund_fen.into(),
        ),
    ];
    for (name, said, found) in checks {
        if said != found {
            let (said, found) = if name == "总交易单数" {
                (said.to_string(), found.to_string())
            } else {
                (fen_text(said), fen_text(found))
            };
            return Err(ParseError::new(
                line,
                format!("the totals do not add up: {name} says {said}, the rows add up to {found}"),
            ));
        }
    }
    Ok(declared)
}

fn fen_text(fen: i128) -> String {
    format_yuan(i64::try_from(fen).unwrap_or(i64::MAX))
}

/// Positions in [`COLUMNS`] that [`write()`] fills per line.
mod col {
    pub const TIME: usize = 0;
    pub const TXN_ID: usize = 5;
    pub const OUT_TRADE_NO: usize = 6;
    pub const OPENID: usize = 7;
    pub const TRADE_STATE: usize = 9;
    pub const SETTLEMENT_AMOUNT: usize = 12;
    pub const REFUND_ID: usize = 14;
    pub const OUT_REFUND_NO: usize = 15;
    pub const REFUND_AMOUNT: usize = 16;
    pub const REFUND_TYPE: usize = 18;
    pub const REFUND_STATUS: usize = 19;
    pub const ORDER_AMOUNT: usize = 24;
    pub const ASKED_REFUND_AMOUNT: usize = 25;
}

/// A trade row's values before the line's own are filled in.
const ROW_DEFAULTS: [&str; 27] = [
    "",
    "wx2421b1c4370ec43b",
    "1900000109",
    "",
    "",
    "",
    "",
    "",
    "MICROPAY",
    "",
    "OTHERS",
    "CNY",
    "0.00",
    "0.00",
    "",
    "",
    "0.00",
    "0.00",
    "",
    "",
    "商品",
    "",
    "0.00",
    "0.38%",
    "0.00",
    "0.00",
    "",
];

/// Writes `statement` as a WeChat Pay trade bill (UTF-8, `\n` line ends), with the summary
/// computed from its lines. Lossy where the bill cannot say something: a payment that did
/// not succeed is written `REVOKED`; a refund row's 微信订单号 is left empty.
pub fn write(statement: &Statement) -> Vec<u8> {
    let mut out = String::with_capacity(64 + statement.lines.len() * 260);
    out.push_str(&COLUMNS.join(","));
    out.push('\n');
    let mut totals = Totals::default();
    for line in &statement.lines {
        // Overflow only loses the summary's agreement, never panics.
        let _ = totals.add(line);
        let time = format_shanghai(line.occurred_at, TIME_FORMAT);
        let yuan = format_yuan(line.amount_fen);
        let txn = line.channel_txn_id.as_deref().unwrap_or("");
        let mut row = ROW_DEFAULTS;
        row[col::TIME] = &time;
        row[col::OPENID] = line.account.as_deref().unwrap_or("");
        match line.kind {
            LineKind::Payment => {
                row[col::TXN_ID] = txn;
                row[col::OUT_TRADE_NO] = &line.our_ref;
                row[col::TRADE_STATE] = if line.status == LineStatus::Succeeded {
                    "SUCCESS"
                } else {
                    "REVOKED"
                };
                row[col::SETTLEMENT_AMOUNT] = &yuan;
                row[col::ORDER_AMOUNT] = &yuan;
            }
            LineKind::Refund => {
                row[col::OUT_TRADE_NO] = line.payment_ref.as_deref().unwrap_or("");
                row[col::TRADE_STATE] = "REFUND";
                row[col::REFUND_ID] = txn;
                row[col::OUT_REFUND_NO] = &line.our_ref;
                row[col::REFUND_AMOUNT] = &yuan;
                row[col::REFUND_TYPE] = "ORIGINAL";
                row[col::REFUND_STATUS] = match line.status {
                    LineStatus::Succeeded => "SUCCESS",
                    LineStatus::Processing => "PROCESSING",
                    LineStatus::Failed => "FAIL",
                    LineStatus::Closed => "REFUNDCLOSE",
                };
                row[col::ASKED_REFUND_AMOUNT] = &yuan;
            }
        }
        push_backtick_row(&mut out, &row);
    }
    out.push_str(&SUMMARY_COLUMNS.join(","));
    out.push('\n');
    let count = totals.lines.to_string();
    let payments = format_yuan(totals.payment_fen);
    let refunds = format_yuan(totals.refund_fen);
    push_backtick_row(
        &mut out,
        &[
            &count, &payments, &refunds, "0.00", "0.00", &payments, &refunds,
        ],
    );
    out.into_bytes()
}

fn push_backtick_row(out: &mut String, fields: &[&str]) {
    for (i, value) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(out, &format!("`{value}"));
    }
    out.push('\n');
}
