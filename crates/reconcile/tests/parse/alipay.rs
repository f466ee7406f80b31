use encoding_rs::GBK;
use yuanlu_reconcile::{LineKind, LineStatus, StatementChannel, Totals};

use crate::{assert_refused, date, parse_ok, refused, utc};

const A: StatementChannel = StatementChannel::Alipay;

const HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
const PAY: &str = "2026030122001400001234567890\t,pay_01JNQ0000000000000000011\t,交易\t,咖啡豆 250g\t,2026-03-01 10:00:00\t,2026-03-01 10:00:05\t,S001\t,静安店\t,收银员01\t,POS-0001\t,ab***@163.com\t,88.00\t,88.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.33\t,0.00\t,\t";
const REFUND: &str = "2026030122001400001234567890\t,pay_01JNQ0000000000000000011\t,退款\t,咖啡豆 250g\t,2026-03-01 15:20:00\t,2026-03-01 15:20:01\t,S001\t,静安店\t,收银员01\t,POS-0001\t,ab***@163.com\t,  -8.80 \t,-8.80\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t, rf_01JNQ0000000000000000012\t,0.03\t,0.00\t,\t";
const PAY_2: &str = "2026030122001400001234567891\t,pay_01JNQ0000000000000000013\t,交易\t,\"矿泉水,两瓶\"\t,2026-03-01 23:00:00\t,2026-03-01 23:00:02\t,S001\t,静安店\t,收银员02\t,POS-0002\t,138****0000\t,4.00\t,4.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.02\t,0.00\t,\t";

fn text_lines(rows: &[&str], trade: &str, refund: &str) -> Vec<String> {
    let mut lines = vec![
        "#支付宝业务明细查询".to_owned(),
        "#账号：[20881234567890120156]".to_owned(),
        "#起始日期：[2026年03月01日 00:00:00]   终止日期：[2026年03月02日 00:00:00]".to_owned(),
        "#-----------------------------------------业务明细列表----------------------------------------".to_owned(),
        HEADER.to_owned(),
    ];
    lines.extend(rows.iter().map(|r| (*r).to_owned()));
    lines.push("#-----------------------------------------业务明细列表结束------------------------------------".to_owned());
    lines.push(format!("#交易合计：{trade}"));
    lines.push(format!("#退款合计：{refund}"));
    lines.push("#导出时间：[2026年03月02日 09:12:33]".to_owned());
    lines
}

fn gbk(lines: &[String]) -> Vec<u8> {
    let text = lines.join("\r\n") + "\r\n";
    let (bytes, _, unmappable) = GBK.encode(&text);
    assert!(!unmappable);
    bytes.into_owned()
}

fn good() -> Vec<String> {
    text_lines(&[PAY, REFUND, PAY_2], "2笔，92.00元", "1笔，-8.80元")
}

#[test]
fn reads_a_real_looking_gbk_bill() {
    let bytes = gbk(&good());
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test file really is GBK"
    );
    let s = parse_ok(A, &bytes);
    assert_eq!(s.channel, A);
    assert_eq!(s.business_date, date(2026, 3, 1));
    assert_eq!(
        s.declared_totals,
        Some(Totals {
            lines: 3,
            payment_fen: 9_200,
            refund_fen: 880
        })
    );
    let pay = &s.lines[0];
    assert_eq!(pay.line_no, 6);
    assert_eq!(pay.kind, LineKind::Payment);
    assert_eq!(pay.our_ref, "pay_01JNQ0000000000000000011");
    assert_eq!(
        pay.channel_txn_id.as_deref(),
        Some("2026030122001400001234567890")
    );
    assert_eq!(pay.amount_fen, 8_800);
    assert_eq!(pay.status, LineStatus::Succeeded);
    assert_eq!(pay.occurred_at, utc("2026-03-01T02:00:05Z"));
    assert_eq!(pay.account.as_deref(), Some("ab***@163.com"));
    let refund = &s.lines[1];
    assert_eq!(refund.kind, LineKind::Refund);
    assert_eq!(
        refund.our_ref, "rf_01JNQ0000000000000000012",
        "padding is trimmed"
    );
    assert_eq!(
        refund.payment_ref.as_deref(),
        Some("pay_01JNQ0000000000000000011")
    );
    assert_eq!(refund.amount_fen, 880, "refunds are negative in the bill");
    assert_eq!(s.lines[2].line_no, 8);
    assert_eq!(s.lines[2].amount_fen, 400, "a quoted field with a comma");
}

#[test]
fn dates_in_iso_form_and_positive_refund_totals_are_accepted() {
    let mut lines = text_lines(&[PAY, REFUND], "1笔，88.00元", "1笔，8.80元");
    lines[2] = "#起始日期：[2026-03-05 00:00:00]   终止日期：[2026-03-06 00:00:00]".to_owned();
    let s = parse_ok(A, &gbk(&lines));
    assert_eq!(s.business_date, date(2026, 3, 5));
}

#[test]
fn an_empty_day_parses() {
    let s = parse_ok(A, &gbk(&text_lines(&[], "0笔，0.00元", "0笔，0.00元")));
    assert!(s.lines.is_empty());
    assert_eq!(s.declared_totals, Some(Totals::default()));
}

#[test]
fn bytes_that_are_not_gbk_are_refused_naming_their_line() {
    let mut bytes = gbk(&good());
    // Line 7 (the refund row) gets a lead byte followed by an invalid trail byte.
    let line7 = bytes
        .split(|&b| b == b'\n')
        .take(6)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    bytes.splice(line7..line7, [0x81, 0x0D]);
    let error = refused(A, &bytes);
    assert_eq!(error.line, 7, "{error}");
    assert!(error.message.contains("GBK"), "{error}");
    let mut bytes = gbk(&good());
    bytes.push(0xFF);
    assert_refused(A, &bytes, 13, "GBK");
}

#[test]
fn a_utf8_bill_is_refused() {
    let text = good().join("\n");
    let error = refused(A, text.as_bytes());
    assert!(error.line >= 1, "{error}");
}

#[test]
fn a_bad_amount_is_refused_naming_its_line() {
    let bad = PAY_2.replace(",4.00\t,4.00", ",12.3x\t,4.00");
    let lines = text_lines(&[PAY, REFUND, &bad], "2笔，92.00元", "1笔，-8.80元");
    assert_refused(A, &gbk(&lines), 8, "订单金额（元） `12.3x`");
}

#[test]
fn a_missing_column_is_refused_naming_its_line() {
    let short = REFUND.rsplit_once(',').unwrap().0.to_owned();
    let lines = text_lines(&[PAY, &short, PAY_2], "2笔，92.00元", "1笔，-8.80元");
    assert_refused(A, &gbk(&lines), 7, "expected 25 fields");
    let mut lines = good();
    lines[4] = HEADER.replace("退款批次号/请求号,", "");
    assert_refused(A, &gbk(&lines), 5, "退款批次号/请求号");
}

#[test]
fn totals_that_do_not_add_up_are_refused_on_their_line() {
    let lines = text_lines(&[PAY, REFUND, PAY_2], "2笔，92.01元", "1笔，-8.80元");
    assert_refused(A, &gbk(&lines), 10, "#交易合计 says 2笔，92.01元");
    let lines = text_lines(&[PAY, REFUND, PAY_2], "2笔，92.00元", "2笔，-8.80元");
    assert_refused(A, &gbk(&lines), 11, "#退款合计");
    let lines = text_lines(&[PAY, REFUND, PAY_2], "2笔，92.00", "1笔，-8.80元");
    assert_refused(A, &gbk(&lines), 10, "N笔，X元");
}

#[test]
fn trailing_garbage_is_refused() {
    let mut lines = good();
    lines.push(String::new());
    lines.push("garbage,after,the,end".to_owned());
    assert_refused(A, &gbk(&lines), 14, "after the end of the detail list");
}

#[test]
fn structural_problems_name_their_line() {
    // No end marker: the file ends inside the list.
    let mut lines = good();
    lines.truncate(8);
    assert_refused(A, &gbk(&lines), 9, "业务明细列表结束");
    // No footer totals.
    let mut lines = good();
    lines.truncate(9);
    assert_refused(A, &gbk(&lines), 10, "#交易合计");
    // No 起始日期 before the column names.
    let mut lines = good();
    lines.remove(2);
    assert_refused(A, &gbk(&lines), 4, "#起始日期");
    // A comment inside the list.
    let mut lines = good();
    lines.insert(6, "#小计".to_owned());
    assert_refused(A, &gbk(&lines), 7, "comment inside");
    // An unknown business type.
    let odd = PAY.replace(",交易\t", ",冻结\t");
    let lines = text_lines(&[&odd], "1笔，88.00元", "0笔，0.00元");
    assert_refused(A, &gbk(&lines), 6, "业务类型 `冻结`");
    // An unclosed quote.
    let open = PAY.replace("咖啡豆 250g", "\"咖啡豆");
    let lines = text_lines(&[&open], "1笔，88.00元", "0笔，0.00元");
    assert_refused(A, &gbk(&lines), 6, "quote");
    assert_refused(A, b"", 1, "no column names");
}
