//! Alipay's business detail bill (业务明细), CSV encoded in GBK.
//!
//! - Lines starting with `#` are comments. Before the column names: `#支付宝业务明细查询`,
//!   `#账号：[…]`, `#起始日期：[YYYY年MM月DD日 hh:mm:ss]   终止日期：[…]` (required: its date is
//!   the business date) and `#-----…业务明细列表…-----`.
//! - The first other line names the columns: 支付宝交易号,商户订单号,业务类型,商品名称,创建时间,
//!   完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,
//!   支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,
//!   商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注.
//!   Columns are found by name; those read are listed in [`COLUMNS_READ`].
//! - One detail row per line, as many fields as there are columns, each value possibly padded
//!   with spaces or tabs (Alipay pads with a tab):
//!   - 业务类型 `交易`: a payment: 支付宝交易号 is the channel's number, 商户订单号 ours.
//!   - 业务类型 `退款`: a refund: 退款批次号/请求号 is our refund id, 商户订单号 our payment,
//!     支付宝交易号 the payment's number at Alipay.
//!   - The amount is 订单金额（元）, yuan with at most two decimals; refunds are negative in the
//!     bill and read as their absolute value. 完成时间 (`YYYY-MM-DD hh:mm:ss`, Beijing time)
//!     is when it happened; 对方账户 the payer. The bill lists completed business only, so
//!     every line has succeeded.
//! - After the rows: `#-----…业务明细列表结束…-----`, then the footer totals as Alipay writes
//!   them, `#交易合计：N笔，商家实收共X元，商家优惠共Y元` (payment rows, sum of their
//!   商家实收（元）) and `#退款合计：N笔，商家实收退款共-X元，商家优惠退款共Y元` (refund rows),
//!   checked against the rows, and `#导出时间：[…]`. The short form `#交易合计：N笔，X元`
//!   (X the sum of 订单金额（元）) of yuanlu's earlier writer is still read. Only comments and
//!   blank lines may follow the end of the list.
//! - Bytes that are not GBK are refused naming their line.

use std::borrow::Cow;

use chrono::NaiveDate;
use encoding_rs::GBK;

use crate::error::ParseError;
use crate::fields::{
    format_shanghai, format_yuan, lines, non_empty, parse_count, parse_shanghai, parse_signed_yuan,
    push_csv_field, split_csv_line, strip_bom,
};
use crate::progress::Progress;
use crate::statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals};

/// The bill's columns, in Alipay's order.
pub const COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];

/// The columns yuanlu reads; a bill without one of them is refused.
pub const COLUMNS_READ: [&str; 7] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    "对方账户",
    "订单金额（元）",
    "退款批次号/请求号",
];

/// The line of the first detail row as [`write()`] lays a bill out.
pub const FIRST_LINE: u64 = 6;

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const PAD: [char; 2] = [' ', '\t'];
const END_MARKER: &str = "业务明细列表结束";

struct Columns {
    count: usize,
    trade_no: usize,
    out_trade_no: usize,
    business: usize,
    finished: usize,
    account: usize,
    amount: usize,
    request_no: usize,
    /// 商家实收（元）, summed by Alipay's footer; optional for the short footer.
    received: Option<usize>,
}

/// A footer total: the line it is on, the count and the amount it declares.
#[derive(Clone, Copy)]
struct Footer {
    line: u64,
    count: i64,
    fen: i64,
    basis: Basis,
}

/// Which column a footer amount sums.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// Alipay's own footer: `商家实收共X元`, the sum of 商家实收（元）.
    Received,
    /// The short form `X元`: the sum of 订单金额（元）.
    OrderAmount,
}

/// Row counts and sums of one kind of row, per column a footer may sum.
#[derive(Default)]
struct KindSums {
    lines: u64,
    order_fen: i64,
    /// `None` once a row lacks a readable 商家实收（元） (or the column is absent).
    received_fen: Option<i64>,
}

impl KindSums {
    fn add(&mut self, order_fen: i64, received_fen: Option<i64>) -> Option<()> {
        let first = self.lines == 0;
        self.lines += 1;
        self.order_fen = self.order_fen.checked_add(order_fen)?;
        self.received_fen = match (first, self.received_fen, received_fen) {
            (true, _, Some(fen)) => Some(fen),
            (false, Some(sum), Some(fen)) => Some(sum.checked_add(fen)?),
            _ => None,
        };
        Some(())
    }
}

enum Stage {
    Preamble,
    Rows(Columns),
    Footer,
}

/// Reads an Alipay bill. See the module documentation for the format.
// Long on purpose: Alipay's bill read line by line: header, rows and footer checks in file order.
pub fn parse(bytes: &[u8], progress: &mut dyn FnMut(u64)) -> Result<Statement, ParseError> {
    let mut progress = Progress::new(progress);
    let mut stage = Stage::Preamble;
    let mut business_date: Option<NaiveDate> = None;
    let mut statement_lines = Vec::new();
    let mut totals = Totals::default();
    let (mut payments, mut refunds) = (KindSums::default(), KindSums::default());
    let (mut trade_footer, mut refund_footer) = (None, None);
    let mut last_line = 0;
    for (line, end, raw) in lines(bytes) {
        last_line = line;
        progress.at(end as u64);
        let raw = if line == 1 { strip_bom(raw) } else { raw };
        let text = decode(raw, line)?;
        let text = text.trim_end_matches(PAD);
        if let Some(comment) = text.strip_prefix('#') {
            match &stage {
                Stage::Preamble => {
                    if let Some(date) = start_date(comment, line)? {
                        business_date = Some(date);
                    }
                }
                Stage::Rows(_) if comment.contains(END_MARKER) => stage = Stage::Footer,
                Stage::Rows(_) => {
                    return Err(ParseError::new(
                        line,
                        "a comment inside the detail list (expected the end marker #-----业务明细列表结束-----)",
                    ));
                }
                Stage::Footer => {
                    if let Some(rest) = comment.strip_prefix("交易合计") {
                        trade_footer = Some(footer(rest, line, "交易合计")?);
                    } else if let Some(rest) = comment.strip_prefix("退款合计") {
                        refund_footer = Some(footer(rest, line, "退款合计")?);
                    }
                }
            }
            continue;
        }
        if text.trim_matches(PAD).is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(COLUMNS.len());
        stage = match stage {
            Stage::Preamble => {
                if business_date.is_none() {
                    return Err(ParseError::new(
                        line,
                        "the column names come before the #起始日期：[…] comment that dates the bill",
                    ));
                }
                split(text, line, &mut fields)?;
                Stage::Rows(Columns::find(&fields, line)?)
            }
            Stage::Rows(columns) => {
                split(text, line, &mut fields)?;
                let row = detail_row(&columns, &fields, line)?;
                let received = received_fen(&columns, &fields);
                let overflow = || ParseError::new(line, "the amounts overflow");
                totals.add(&row).ok_or_else(overflow)?;
                let sums = match row.kind {
                    LineKind::Payment => &mut payments,
                    LineKind::Refund => &mut refunds,
                };
                sums.add(row.amount_fen, received).ok_or_else(overflow)?;
                statement_lines.push(row);
                Stage::Rows(columns)
            }
            Stage::Footer => {
                return Err(ParseError::new(
                    line,
                    "unexpected content after the end of the detail list",
                ));
            }
        };
    }
    let end = last_line + 1;
    match stage {
        Stage::Footer => {}
        Stage::Preamble => {
            return Err(ParseError::new(end, "the bill has no column names"));
        }
        Stage::Rows(_) => {
            return Err(ParseError::new(
                end,
                "the bill ends without #-----业务明细列表结束----- and its totals",
            ));
        }
    }
    let trade_footer = trade_footer
        .ok_or_else(|| ParseError::new(end, "the bill ends without #交易合计：…笔，…元"))?;
    let refund_footer = refund_footer
        .ok_or_else(|| ParseError::new(end, "the bill ends without #退款合计：…笔，…元"))?;
    check(trade_footer, &payments, "交易合计")?;
    check(refund_footer, &refunds, "退款合计")?;
    let business_date =
        business_date.ok_or_else(|| ParseError::new(end, "the bill has no #起始日期"))?;
    progress.done(bytes.len() as u64);
    Ok(Statement {
        channel: StatementChannel::Alipay,
        business_date,
        lines: statement_lines,
        declared_totals: Some(totals),
    })
}

fn decode(raw: &[u8], line: u64) -> Result<Cow<'_, str>, ParseError> {
    GBK.decode_without_bom_handling_and_without_replacement(raw)
        .ok_or_else(|| ParseError::new(line, "the line is not valid GBK"))
}

fn split<'a>(text: &'a str, line: u64, out: &mut Vec<Cow<'a, str>>) -> Result<(), ParseError> {
    split_csv_line(text, out)
        .ok_or_else(|| ParseError::new(line, "unreadable CSV: a quote is not closed properly"))
}

/// The date of a `#起始日期：[2026年03月01日 00:00:00]` comment; `None` for other comments.
fn start_date(comment: &str, line: u64) -> Result<Option<NaiveDate>, ParseError> {
    let Some(rest) = comment.trim_start_matches(PAD).strip_prefix("起始日期") else {
        return Ok(None);
    };
    let bad = || {
        ParseError::new(
            line,
            "#起始日期 is not [YYYY年MM月DD日 hh:mm:ss] or [YYYY-MM-DD hh:mm:ss]",
        )
    };
    let rest = rest.trim_start_matches([':', '：', ' ']);
    let inside = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(inside, _)| inside.trim())
        .ok_or_else(bad)?;
    let date_text = inside.split_whitespace().next().unwrap_or("");
    NaiveDate::parse_from_str(date_text, "%Y年%m月%d日")
        .or_else(|_| NaiveDate::parse_from_str(date_text, "%Y-%m-%d"))
        .map(Some)
        .map_err(|_| bad())
}

/// `：3笔，商家实收共123.45元，商家优惠共0.00元` (Alipay) or `：3笔，123.45元` (short form)
/// after 交易合计 or 退款合计.
fn footer(rest: &str, line: u64, name: &str) -> Result<Footer, ParseError> {
    let bad = || {
        ParseError::new(
            line,
            format!("#{name} is not `#{name}：N笔，商家实收共X元，…` or `#{name}：N笔，X元`"),
        )
    };
    let rest = rest.trim_start_matches([':', '：', ' ']);
    let (count, rest) = rest.split_once('笔').ok_or_else(bad)?;
    let rest = rest.trim_start_matches([',', '，', ' ']);
    let count = parse_count(count.trim()).ok_or_else(bad)?;
    // Alipay names the sum: 商家实收共 (trades) or 商家实收退款共 (refunds).
    let received = ["商家实收共", "商家实收退款共"]
        .iter()
        .find_map(|label| rest.strip_prefix(label));
    let (basis, rest) = match received {
        Some(after) => (Basis::Received, after),
        None => (Basis::OrderAmount, rest),
    };
    let (amount, tail) = rest.split_once('元').ok_or_else(bad)?;
    // After Alipay's sum come more named sums (商家优惠共…元); the short form ends here.
    let tail = tail.trim();
    let tail_ok = match basis {
        Basis::Received => tail.is_empty() || tail.starts_with([',', '，']),
        Basis::OrderAmount => tail.is_empty(),
    };
    if !tail_ok {
        return Err(bad());
    }
    Ok(Footer {
        line,
        count,
        fen: parse_signed_yuan(amount.trim()).ok_or_else(bad)?.abs(),
        basis,
    })
}

fn check(footer: Footer, counted: &KindSums, name: &str) -> Result<(), ParseError> {
    let count_ok = u64::try_from(footer.count).is_ok_and(|c| c == counted.lines);
    let (fen, what) = match footer.basis {
        Basis::OrderAmount => (Some(counted.order_fen.abs()), "订单金额（元）"),
        Basis::Received if counted.lines == 0 => (Some(0), "商家实收（元）"),
        Basis::Received => (counted.received_fen.map(i64::abs), "商家实收（元）"),
    };
    let Some(fen) = fen else {
        return Err(ParseError::new(
            footer.line,
            format!("#{name} sums 商家实收（元）, which the rows do not all carry"),
        ));
    };
    if count_ok && footer.fen == fen {
        return Ok(());
    }
    Err(ParseError::new(
        footer.line,
        format!(
            "the totals do not add up: #{name} says {}笔，{}元, the rows add up to {}笔，{}元 of {what}",
            footer.count,
            format_yuan(footer.fen),
            counted.lines,
            format_yuan(fen),
        ),
    ))
}

/// A row's 商家实收（元） in fen (refunds negative in the bill), if the column is there.
fn received_fen(columns: &Columns, fields: &[Cow<'_, str>]) -> Option<i64> {
    let text = fields.get(columns.received?)?.trim_matches(PAD);
    parse_signed_yuan(text)
}

impl Columns {
    fn find(names: &[Cow<'_, str>], line: u64) -> Result<Columns, ParseError> {
        let at = |name: &str| {
            names
                .iter()
                .position(|n| n.trim_matches(PAD) == name)
                .ok_or_else(|| {
                    ParseError::new(
                        line,
                        format!("not an Alipay bill: the column names lack {name}"),
                    )
                })
        };
        Ok(Columns {
            count: names.len(),
            trade_no: at("支付宝交易号")?,
            out_trade_no: at("商户订单号")?,
            business: at("业务类型")?,
            finished: at("完成时间")?,
            account: at("对方账户")?,
            amount: at("订单金额（元）")?,
            request_no: at("退款批次号/请求号")?,
            received: at("商家实收（元）").ok(),
        })
    }
}

fn detail_row(
    columns: &Columns,
    fields: &[Cow<'_, str>],
    line: u64,
) -> Result<StatementLine, ParseError> {
    if fields.len() != columns.count {
        return Err(ParseError::new(
            line,
            format!(
                "expected {} fields like the column names, found {}",
                columns.count,
                fields.len()
            ),
        ));
    }
    let get = |i: usize| fields.get(i).map_or("", |f| f.trim_matches(PAD));
    let business = get(columns.business);
    let kind = match business {
        "交易" => LineKind::Payment,
        "退款" => LineKind::Refund,
        other => {
            return Err(ParseError::new(
                line,
                format!("业务类型 `{other}` is not 交易 or 退款"),
            ));
        }
    };
    let amount_text = get(columns.amount);
    let amount_fen = parse_signed_yuan(amount_text)
        .ok_or_else(|| {
            ParseError::new(
                line,
                format!("订单金额（元） `{amount_text}` is not an amount in yuan with at most two decimals"),
            )
        })?
        .abs();
    let finished = get(columns.finished);
    let occurred_at = parse_shanghai(finished, TIME_FORMAT).ok_or_else(|| {
        ParseError::new(
            line,
            format!("完成时间 `{finished}` is not YYYY-MM-DD hh:mm:ss"),
        )
    })?;
    let out_trade_no = get(columns.out_trade_no);
    let (our_ref, payment_ref) = match kind {
        LineKind::Payment => (out_trade_no.to_owned(), None),
        LineKind::Refund => (get(columns.request_no).to_owned(), non_empty(out_trade_no)),
    };
    let channel_txn_id = non_empty(get(columns.trade_no));
    if our_ref.is_empty() && channel_txn_id.is_none() {
        return Err(ParseError::new(
            line,
            "the row has neither Alipay's number nor ours",
        ));
    }
    Ok(StatementLine {
        line_no: line,
        kind,
        channel_txn_id,
        our_ref,
        payment_ref,
        amount_fen,
        status: LineStatus::Succeeded,
        occurred_at,
        account: non_empty(get(columns.account)),
    })
}

/// Writes `statement` as an Alipay bill: GBK, `\r\n` line ends, values padded with a tab
/// like Alipay's, refunds negative, the footer computed from the lines. Lossy where the bill
/// cannot say something: every line is written as completed, whatever its status; characters
/// GBK lacks become `&#…;`.
pub fn write(statement: &Statement) -> Vec<u8> {
    let date = statement.business_date;
    let next = date.succ_opt().unwrap_or(date);
    let mut out = String::with_capacity(512 + statement.lines.len() * 220);
    out.push_str("#支付宝业务明细查询\r\n#账号：[20880000000000000156]\r\n");
    out.push_str(&format!(
        "#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]\r\n",
        date.format("%Y年%m月%d日"),
        next.format("%Y年%m月%d日")
    ));
    out.push_str("#-----------------------------------------业务明细列表----------------------------------------\r\n");
    out.push_str(&COLUMNS.join(","));
    out.push_str("\r\n");
    let (mut payments, mut refunds) = (Totals::default(), Totals::default());
    for line in &statement.lines {
        let (business, out_trade_no, request_no, signed) = match line.kind {
            LineKind::Payment => {
                let _ = payments.add(line);
                ("交易", line.our_ref.as_str(), "", line.amount_fen)
            }
            LineKind::Refund => {
                let _ = refunds.add(line);
                (
                    "退款",
                    line.payment_ref.as_deref().unwrap_or(""),
                    line.our_ref.as_str(),
                    line.amount_fen.saturating_neg(),
                )
            }
        };
        let time = format_shanghai(line.occurred_at, TIME_FORMAT);
        let amount = format_yuan(signed);
        let fields: [&str; 25] = [
            line.channel_txn_id.as_deref().unwrap_or(""),
            out_trade_no,
            business,
            "商品",
            &time,
            &time,
            "",
            "",
            "",
            "",
            line.account.as_deref().unwrap_or(""),
            &amount,
            &amount,
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00",
            "0.00",
            request_no,
            "0.00",
            "0.00",
            "",
        ];
        for (i, value) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, value);
            out.push('\t');
        }
        out.push_str("\r\n");
    }
    out.push_str("#-----------------------------------------业务明细列表结束------------------------------------\r\n");
    out.push_str(&format!(
        "#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\r\n#退款合计：{}笔，商家实收退款共{}元，商家优惠退款共0.00元\r\n#导出时间：[{} 09:00:00]\r\n",
        payments.lines,
        format_yuan(payments.payment_fen),
        refunds.lines,
        format_yuan(refunds.refund_fen.saturating_neg()),
        next.format("%Y年%m月%d日"),
    ));
    let (bytes, _, _) = GBK.encode(&out);
    bytes.into_owned()
}
