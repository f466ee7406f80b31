use yuanlu_reconcile::{LineKind, LineStatus, StatementChannel, Totals};

use crate::{assert_refused, date, parse_ok, utc};

const W: StatementChannel = StatementChannel::Wechat;

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const PAY_1: &str = "`2026-03-01 09:30:15,`wx2421b1c4370ec43b,`1900000109,`0,`POS-0001,`4200002026030100000000000001,`pay_01JNQ0000000000000000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`SUCCESS,`CMB_DEBIT,`CNY,`123.45,`0.00,`0,`0,`0.00,`0.00,`,`,`咖啡豆 250g,`,`0.47,`0.38%,`123.45,`0.00,`";
const REFUND_1: &str = "`2026-03-01 14:15:02,`wx2421b1c4370ec43b,`1900000109,`0,`POS-0001,`4200002026030100000000000001,`pay_01JNQ0000000000000000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`REFUND,`CMB_DEBIT,`CNY,`0.00,`0.00,`50300000012026030100000000001,`rf_01JNQ0000000000000000002,`23.45,`0.00,`ORIGINAL,`SUCCESS,`咖啡豆 250g,`,`-0.09,`0.38%,`0.00,`23.45,`";
const PAY_2: &str = "`2026-03-01 23:59:59,`wx2421b1c4370ec43b,`1900000109,`0,`POS-0002,`4200002026030100000000000003,`pay_01JNQ0000000000000000003,`oUpF8uAbCdEf_M2pxb1Q9zNjWeS6,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`10,`0.0,`0,`0,`0,`0,`,`,`矿泉水,`,`0.04,`0.38%,`10.00,`0.00,`";
const SUMMARY: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";
const TOTALS: &str = "`3,`133.45,`23.45,`0.00,`0.42,`133.45,`23.45";

fn bill(rows: &[&str]) -> Vec<u8> {
    let mut text = String::new();
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text.into_bytes()
}

fn good() -> Vec<&'static str> {
    vec![HEADER, PAY_1, REFUND_1, PAY_2, SUMMARY, TOTALS]
}

#[test]
fn reads_a_real_looking_bill() {
    let s = parse_ok(W, &bill(&good()));
    assert_eq!(s.channel, W);
    assert_eq!(s.business_date, date(2026, 3, 1));
    assert_eq!(
        s.declared_totals,
        Some(Totals {
            lines: 3,
            payment_fen: 13_345,
            refund_fen: 2_345
        })
    );
    assert_eq!(s.lines.len(), 3);
    let pay = &s.lines[0];
    assert_eq!(pay.line_no, 2);
    assert_eq!(pay.kind, LineKind::Payment);
    assert_eq!(pay.our_ref, "pay_01JNQ0000000000000000001");
    assert_eq!(
        pay.channel_txn_id.as_deref(),
        Some("4200002026030100000000000001")
    );
    assert_eq!(pay.payment_ref, None);
    assert_eq!(pay.amount_fen, 12_345);
    assert_eq!(pay.status, LineStatus::Succeeded);
    assert_eq!(pay.occurred_at, utc("2026-03-01T01:30:15Z"));
    assert_eq!(pay.account.as_deref(), Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"));
    let refund = &s.lines[1];
    assert_eq!(refund.line_no, 3);
    assert_eq!(refund.kind, LineKind::Refund);
    assert_eq!(refund.our_ref, "rf_01JNQ0000000000000000002");
    assert_eq!(
        refund.channel_txn_id.as_deref(),
        Some("50300000012026030100000000001")
    );
    assert_eq!(
        refund.payment_ref.as_deref(),
        Some("pay_01JNQ0000000000000000001")
    );
    assert_eq!(refund.amount_fen, 2_345);
    // "10" and "0.0" are exact amounts too; 23:59:59 in Beijing is still the business date.
    assert_eq!(s.lines[2].amount_fen, 1_000);
    assert_eq!(s.lines[2].occurred_at, utc("2026-03-01T15:59:59Z"));
}

#[test]
fn backticks_are_stripped_once_and_optional() {
    let without = PAY_1.replace('`', "");
    let doubled = PAY_1.replace("`oUpF8", "``oUpF8");
    let s = parse_ok(
        W,
        &bill(&[
            HEADER,
            &without,
            &doubled,
            SUMMARY,
            "`2,`246.90,`0.00,`0,`0,`0,`0",
        ]),
    );
    assert_eq!(s.lines[0].amount_fen, 12_345);
    assert_eq!(s.lines[0].our_ref, "pay_01JNQ0000000000000000001");
    assert_eq!(
        s.lines[1].account.as_deref(),
        Some("`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    );
}

#[test]
fn bom_and_crlf_are_accepted() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(good().join("\r\n").into_bytes());
    let s = parse_ok(W, &bytes);
    assert_eq!(s.lines.len(), 3);
    assert_eq!(s.lines[2].line_no, 4);
}

#[test]
fn refund_statuses() {
    let processing = REFUND_1.replace("`ORIGINAL,`SUCCESS", "`ORIGINAL,`PROCESSING");
    let failed = REFUND_1.replace("`ORIGINAL,`SUCCESS", "`ORIGINAL,`CHANGE");
    let closed = REFUND_1.replace("`ORIGINAL,`SUCCESS", "`ORIGINAL,`REFUNDCLOSE");
    let revoked = PAY_2.replace("`SUCCESS", "`REVOKED");
    let s = parse_ok(
        W,
        &bill(&[
            HEADER,
            &processing,
            &failed,
            &closed,
            &revoked,
            SUMMARY,
            "`4,`10.00,`70.35,`0,`0,`0,`0",
        ]),
    );
    let statuses: Vec<_> = s.lines.iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        [
            LineStatus::Processing,
            LineStatus::Failed,
            LineStatus::Closed,
            LineStatus::Closed
        ]
    );
    let bad = REFUND_1.replace("`ORIGINAL,`SUCCESS", "`ORIGINAL,`MAYBE");
    assert_refused(
        W,
        &bill(&[HEADER, PAY_1, &bad, SUMMARY, TOTALS]),
        3,
        "退款状态",
    );
}

#[test]
fn a_bad_amount_is_refused_naming_its_line() {
    let mut rows = good();
    let bad = REFUND_1.replace("`23.45,`0.00,`ORIGINAL", "`12.3x,`0.00,`ORIGINAL");
    rows[2] = &bad;
    assert_refused(W, &bill(&rows), 3, "退款金额 `12.3x`");
    for amount in ["12.345", "-1.00", "1e2", "1,23"] {
        let bad = PAY_2.replace("`10,`0.0", &format!("`{amount},`0.0"));
        let mut rows = good();
        rows[3] = &bad;
        let error = crate::refused(W, &bill(&rows));
        assert_eq!(error.line, 4, "{amount}: {error}");
    }
}

#[test]
fn a_missing_column_is_refused_naming_its_line() {
    let short = PAY_2.rsplit_once(',').unwrap().0.to_owned();
    let mut rows = good();
    rows[3] = &short;
    assert_refused(W, &bill(&rows), 4, "expected 27 fields");
    let header = HEADER.replace("商户退款单号,", "");
    assert_refused(W, &bill(&[&header, SUMMARY, TOTALS]), 1, "商户退款单号");
}

#[test]
fn totals_that_do_not_add_up_are_refused_on_the_totals_line() {
    let mut rows = good();
    rows[5] = "`3,`133.46,`23.45,`0.00,`0.42,`133.45,`23.45";
    assert_refused(W, &bill(&rows), 6, "应结订单总金额");
    rows[5] = "`2,`133.45,`23.45,`0.00,`0.42,`133.45,`23.45";
    assert_refused(W, &bill(&rows), 6, "总交易单数 says 2");
    rows[5] = "`3,`133.45,`0.00,`0.00,`0.42,`133.45,`23.45";
    assert_refused(W, &bill(&rows), 6, "退款总金额");
    rows[5] = "`3,`133.45";
    assert_refused(W, &bill(&rows), 6, "expected 7 totals");
}

#[test]
fn trailing_garbage_is_refused() {
    let mut rows = good();
    rows.push("");
    rows.push("garbage");
    assert_refused(W, &bill(&rows), 8, "after the summary");
}

#[test]
fn a_truncated_bill_is_refused_after_its_last_line() {
    assert_refused(W, &bill(&good()[..4]), 5, "summary rows");
    assert_refused(W, &bill(&good()[..5]), 6, "row of totals");
    assert_refused(W, b"", 1, "empty");
}

#[test]
fn other_bad_rows_name_their_line() {
    let state = PAY_2.replace("`SUCCESS", "`NOTPAY");
    assert_refused(
        W,
        &bill(&[HEADER, PAY_1, &state, SUMMARY, TOTALS]),
        3,
        "交易状态 `NOTPAY`",
    );
    let time = PAY_1.replace("2026-03-01 09:30:15", "2026-02-30 09:30:15");
    assert_refused(W, &bill(&[HEADER, &time, SUMMARY, TOTALS]), 2, "交易时间");
    let mut latin1 = bill(&[HEADER, PAY_1]);
    latin1.extend(b"`\xff\xfe");
    latin1.extend(&PAY_2.as_bytes()[1..]);
    latin1.push(b'\n');
    let error = crate::refused(W, &latin1);
    assert_eq!(error.line, 3, "{error}");
    assert_refused(
        W,
        &bill(&[HEADER, SUMMARY, "`0,`0.00,`0.00,`0,`0,`0,`0"]),
        2,
        "no trade rows",
    );
}
