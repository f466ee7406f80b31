//! The parsers against bills written from the channels' published formats, not by
//! `yuanlu_reconcile`'s own writers. Sources: `tests/fixtures/README.md`.

use yuanlu_reconcile::{LineKind, LineStatus, Statement, StatementChannel, Totals};

use crate::{date, parse_ok, utc};

/// A line as the matcher sees it: kind, channel number, ours, our payment, fen, status, time.
type Seen = (
    LineKind,
    Option<String>,
    String,
    Option<String>,
    i64,
    LineStatus,
    String,
);

fn seen(statement: &Statement) -> Vec<Seen> {
    statement
        .lines
        .iter()
        .map(|l| {
            (
                l.kind,
                l.channel_txn_id.clone(),
                l.our_ref.clone(),
                l.payment_ref.clone(),
                l.amount_fen,
                l.status,
                l.occurred_at.to_rfc3339(),
            )
        })
        .collect()
}

fn line(
    kind: LineKind,
    channel: &str,
    ours: &str,
    payment: Option<&str>,
    fen: i64,
    status: LineStatus,
    at: &str,
) -> Seen {
    (
        kind,
        Some(channel.to_owned()),
        ours.to_owned(),
        payment.map(str::to_owned),
        fen,
        status,
        utc(at).to_rfc3339(),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn wechat_trade_bill_as_published() {
    let bytes = fixture("wechat_trade_bill_all.csv");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "WeChat's bill has a BOM"
    );
    let s = parse_ok(StatementChannel::Wechat, &bytes);
    assert_eq!(s.business_date, date(2026, 9, 29));
    use LineKind::{Payment, Refund};
    use LineStatus::{Processing, Succeeded};
    assert_eq!(
        seen(&s),
        vec![
            line(
                Payment,
                "4200002086202609290745964084",
                "pay_01K6B1Q0000000000000000011",
                None,
                8_880,
                Succeeded,
                "2026-09-29T02:00:00Z"
            ),
            line(
                Refund,
                "50303108562026092901487282563",
                "rf_01K6B1Q0000000000000000012",
                Some("pay_01K6B1Q0000000000000000011"),
                888,
                Succeeded,
                "2026-09-29T02:45:16Z"
            ),
            line(
                Payment,
                "4200002086202609291745964085",
                "pay_01K6B1Q0000000000000000013",
                None,
                1_200,
                Succeeded,
                "2026-09-29T03:10:18Z"
            ),
            line(
                Refund,
                "50303108562026092983774350275",
                "rf_01K6B1Q0000000000000000014",
                Some("pay_01K6B1Q0000000000000000013"),
                1_200,
                Processing,
                "2026-09-29T15:30:00Z"
            ),
        ]
    );
    assert_eq!(
        s.declared_totals,
        Some(Totals {
            lines: 4,
            payment_fen: 10_080,
            refund_fen: 2_088
        })
    );
    assert_eq!(
        s.lines[0].account.as_deref(),
        Some("o2RW45oGxo1Z8Fhcf6Oy9rMM7aT8")
    );
}

#[test]
fn alipay_business_detail_bill_as_published() {
    let bytes = fixture("alipay_business_detail.csv");
    assert!(std::str::from_utf8(&bytes).is_err(), "Alipay's bill is GBK");
    let s = parse_ok(StatementChannel::Alipay, &bytes);
    assert_eq!(s.business_date, date(2026, 9, 29));
    use LineKind::{Payment, Refund};
    use LineStatus::Succeeded;
    assert_eq!(
        seen(&s),
        vec![
            line(
                Payment,
                "2026092922001458860515315453",
                "pay_01K6B1Q0000000000000000021",
                None,
                8_880,
                Succeeded,
                "2026-09-29T02:00:07Z"
            ),
            line(
                Refund,
                "2026092922001458860515315453",
                "rf_01K6B1Q0000000000000000022",
                Some("pay_01K6B1Q0000000000000000021"),
                888,
                Succeeded,
                "2026-09-29T06:20:31Z"
            ),
            // 订单金额 20.00 of which the merchant received 18.00 (2.00 商家优惠): the line
            // carries the order amount, the footer sums what the merchant received.
            line(
                Payment,
                "2026092922001465870515233238",
                "pay_01K6B1Q0000000000000000023",
                None,
                2_000,
                Succeeded,
                "2026-09-29T08:58:58Z"
            ),
            line(
                Refund,
                "2026092822001458860517860493",
                "rf_01K6B1Q0000000000000000025",
                Some("pay_01K6B1Q0000000000000000024"),
                3_500,
                Succeeded,
                "2026-09-29T10:02:11Z"
            ),
        ]
    );
    assert_eq!(s.lines[0].account.as_deref(), Some("*津水(602***@qq.com)"));
    assert_eq!(s.lines[3].line_no, 9);
}

#[test]
fn alipay_footer_is_checked_against_what_the_merchant_received() {
    let text = gbk_decode(&fixture("alipay_business_detail.csv"));
    // Alipay's footer sums 商家实收（元）: 88.80 + 18.00. Saying the order amounts' sum
    // (108.80) instead must be refused.
    let wrong = text.replace("商家实收共106.80元", "商家实收共108.80元");
    assert_ne!(wrong, text);
    crate::assert_refused(
        StatementChannel::Alipay,
        &gbk(&wrong),
        11,
        "#交易合计 says 2笔，108.80元, the rows add up to 2笔，106.80元",
    );
    let wrong = text.replace("商家实收退款共-43.88元", "商家实收退款共-43.89元");
    crate::assert_refused(StatementChannel::Alipay, &gbk(&wrong), 12, "#退款合计");
}

fn gbk_decode(bytes: &[u8]) -> String {
    let (text, _, bad) = encoding_rs::GBK.decode(bytes);
    assert!(!bad);
    text.into_owned()
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, bad) = encoding_rs::GBK.encode(text);
    assert!(!bad);
    bytes.into_owned()
}

#[test]
fn card_settlement_file_as_documented() {
    let s = parse_ok(StatementChannel::Card, &fixture("card_settlement.txt"));
    assert_eq!(s.business_date, date(2026, 3, 1));
    let card = |kind, channel, ours: &str, fen, status, at| {
        let mut l = line(kind, channel, ours, None, fen, status, at);
        l.3 = None;
        l
    };
    use LineKind::{Payment, Refund};
    use LineStatus::{Processing, Succeeded};
    assert_eq!(
        seen(&s),
        vec![
            card(
                Payment,
                "N260301000001",
                "pay_01J0000000000000000000001",
                12_345,
                Succeeded,
                "2026-03-01T01:30:15Z"
            ),
            card(
                Refund,
                "N260301000002",
                "rf_01J0000000000000000000002",
                2_345,
                Succeeded,
                "2026-03-01T06:15:02Z"
            ),
            card(
                Refund,
                "N260301000003",
                "rf_01J0000000000000000000003",
                500,
                Processing,
                "2026-03-01T15:59:59Z"
            ),
        ]
    );
}
