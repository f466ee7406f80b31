use yuanlu_reconcile::{LineKind, LineStatus, StatementChannel};

use crate::{assert_refused, date, parse_ok, utc};

const Y: StatementChannel = StatementChannel::Yuanlu;

const GOOD: &str = "#business_date=2026-03-01
kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account
payment,UQ260301000001,pay_01JNQ0000000000000000031,12345,succeeded,2026-03-01T01:30:15Z,6222****1234
refund,UQ260301000002,rf_01JNQ0000000000000000032,2345,processing,2026-03-01T14:15:02+08:00,
refund,,rf_01JNQ0000000000000000033,100,failed,2026-03-01T15:00:00.5Z,\"Zhang, San\"
payment,UQ260301000004,,7,closed,2026-03-01T16:00:00+00:00,x
";

#[test]
fn reads_a_yuanlu_csv() {
    let s = parse_ok(Y, GOOD.as_bytes());
    assert_eq!(s.channel, Y);
    assert_eq!(s.business_date, date(2026, 3, 1));
    assert_eq!(s.declared_totals, None);
    assert_eq!(s.lines.len(), 4);
    let pay = &s.lines[0];
    assert_eq!(pay.line_no, 3);
    assert_eq!(pay.kind, LineKind::Payment);
    assert_eq!(pay.channel_txn_id.as_deref(), Some("UQ260301000001"));
    assert_eq!(pay.our_ref, "pay_01JNQ0000000000000000031");
    assert_eq!(pay.amount_fen, 12_345);
    assert_eq!(pay.occurred_at, utc("2026-03-01T01:30:15Z"));
    assert_eq!(s.lines[1].occurred_at, utc("2026-03-01T06:15:02Z"));
    assert_eq!(s.lines[1].status, LineStatus::Processing);
    assert_eq!(s.lines[1].account, None);
    assert_eq!(s.lines[2].channel_txn_id, None);
    assert_eq!(s.lines[2].status, LineStatus::Failed);
    assert_eq!(s.lines[2].account.as_deref(), Some("Zhang, San"));
    assert_eq!(s.lines[3].our_ref, "");
    assert_eq!(s.lines[3].status, LineStatus::Closed);
}

#[test]
fn without_the_date_line_the_date_is_the_latest_in_shanghai() {
    let body = GOOD.split_once('\n').unwrap().1;
    let s = parse_ok(Y, body.as_bytes());
    // 2026-03-01T16:00:00Z is 2026-03-02 00:00 in Shanghai.
    assert_eq!(s.business_date, date(2026, 3, 2));
    assert_eq!(s.lines[0].line_no, 2);
    let header_only = "kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account\n";
    assert_refused(Y, header_only.as_bytes(), 2, "business date is unknown");
    let empty_day = format!("#business_date=2026-03-01\n{header_only}");
    assert!(parse_ok(Y, empty_day.as_bytes()).lines.is_empty());
}

#[test]
fn malformed_lines_are_refused_naming_their_line() {
    let replace = |from: &str, to: &str| GOOD.replacen(from, to, 1);
    assert_refused(
        Y,
        replace(",2345,", ",12.3x,").as_bytes(),
        4,
        "amount_fen `12.3x`",
    );
    assert_refused(
        Y,
        replace(",processing,", ",").as_bytes(),
        4,
        "expected 7 fields",
    );
    assert_refused(
        Y,
        replace(",processing,", ",done,").as_bytes(),
        4,
        "status `done`",
    );
    assert_refused(
        Y,
        replace("refund,UQ", "void,UQ").as_bytes(),
        4,
        "kind `void`",
    );
    assert_refused(
        Y,
        replace("2026-03-01T01:30:15Z", "2026-03-01 01:30:15").as_bytes(),
        3,
        "RFC 3339",
    );
    assert_refused(
        Y,
        replace("UQ260301000004,,", ",,").as_bytes(),
        6,
        "neither",
    );
    assert_refused(
        Y,
        replace("amount_fen", "amount").as_bytes(),
        2,
        "the header",
    );
    assert_refused(
        Y,
        replace("2026-03-01\n", "2026-13-01\n").as_bytes(),
        1,
        "YYYY-MM-DD",
    );
    assert_refused(
        Y,
        (GOOD.to_owned() + "trailing garbage\n").as_bytes(),
        7,
        "expected 7 fields",
    );
    assert_refused(Y, b"", 1, "no header");
}
