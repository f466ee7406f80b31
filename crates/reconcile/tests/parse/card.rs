use yuanlu_reconcile::{LineKind, LineStatus, StatementChannel, Totals};

use crate::{assert_refused, date, parse_ok, utc};

const C: StatementChannel = StatementChannel::Card;

fn good() -> Vec<String> {
    [
        "H|CARDNET|20260301|ACQ0001",
        "D|1|SALE|N260301000001|pay_01JNQ0000000000000000021|12345|00|20260301093015|622848******1234",
        "D|2|REFUND|N260301000002|rf_01JNQ0000000000000000022|2345|00|20260301141502|622848******1234",
        "D|3|SALE|N260301000003|pay_01JNQ0000000000000000023|500|05|20260301235959|",
        "D|4|REFUND|N260301000004|rf_01JNQ0000000000000000024|100|09|20260302000000|436742******9876",
        "T|4|12845|2445",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn file(lines: &[String]) -> Vec<u8> {
    (lines.join("\n") + "\n").into_bytes()
}

#[test]
fn reads_a_settlement_file() {
    let s = parse_ok(C, &file(&good()));
    assert_eq!(s.channel, C);
    assert_eq!(s.business_date, date(2026, 3, 1));
    assert_eq!(
        s.declared_totals,
        Some(Totals {
            lines: 4,
            payment_fen: 12_845,
            refund_fen: 2_445
        })
    );
    let sale = &s.lines[0];
    assert_eq!(sale.line_no, 2);
    assert_eq!(sale.kind, LineKind::Payment);
    assert_eq!(sale.channel_txn_id.as_deref(), Some("N260301000001"));
    assert_eq!(sale.our_ref, "pay_01JNQ0000000000000000021");
    assert_eq!(sale.amount_fen, 12_345);
    assert_eq!(sale.status, LineStatus::Succeeded);
    assert_eq!(sale.occurred_at, utc("2026-03-01T01:30:15Z"));
    assert_eq!(sale.account.as_deref(), Some("622848******1234"));
    assert_eq!(s.lines[1].kind, LineKind::Refund);
    assert_eq!(s.lines[2].status, LineStatus::Failed);
    assert_eq!(s.lines[2].account, None);
    assert_eq!(s.lines[3].status, LineStatus::Processing);
    assert_eq!(s.lines[3].occurred_at, utc("2026-03-01T16:00:00Z"));
}

#[test]
fn crlf_and_no_final_newline_are_accepted() {
    let s = parse_ok(C, good().join("\r\n").as_bytes());
    assert_eq!(s.lines.len(), 4);
}

#[test]
fn a_bad_amount_is_refused_naming_its_line() {
    let mut lines = good();
    lines[2] = lines[2].replace("|2345|", "|12.3x|");
    assert_refused(C, &file(&lines), 3, "amount `12.3x`");
    let mut lines = good();
    lines[2] = lines[2].replace("|2345|", "|-2345|");
    assert_refused(C, &file(&lines), 3, "amount");
}

#[test]
fn a_missing_column_is_refused_naming_its_line() {
    let mut lines = good();
    lines[3] = lines[3].replace("|05|", "|");
    assert_refused(C, &file(&lines), 4, "8 fields, expected 9");
    let mut lines = good();
    lines[0] = "H|CARDNET|20260301".to_owned();
    assert_refused(C, &file(&lines), 1, "expected 4");
}

#[test]
fn totals_that_do_not_add_up_are_refused_on_the_trailer() {
    for trailer in ["T|3|12845|2445", "T|4|12846|2445", "T|4|12845|2444"] {
        let mut lines = good();
        lines[5] = trailer.to_owned();
        assert_refused(C, &file(&lines), 6, "do not add up");
    }
    let mut lines = good();
    lines[5] = "T|4|12845".to_owned();
    assert_refused(C, &file(&lines), 6, "the trailer has 3 fields");
}

#[test]
fn trailing_garbage_is_refused() {
    let mut lines = good();
    lines.push("garbage".to_owned());
    assert_refused(C, &file(&lines), 7, "after the trailer");
    let mut bytes = file(&good());
    bytes.extend(b"\n\n");
    assert_refused(C, &bytes, 7, "empty line");
}

#[test]
fn structural_problems_name_their_line() {
    let mut lines = good();
    lines.truncate(5);
    assert_refused(C, &file(&lines), 6, "without its trailer");
    let mut lines = good();
    lines[3] = lines[3].replace("D|3|", "D|5|");
    assert_refused(C, &file(&lines), 4, "sequence number `5`, expected 3");
    let mut lines = good();
    lines[0] = "H|VISA|20260301|ACQ0001".to_owned();
    assert_refused(C, &file(&lines), 1, "not a card network settlement file");
    let mut lines = good();
    lines[0] = "H|CARDNET|20260230|ACQ0001".to_owned();
    assert_refused(C, &file(&lines), 1, "YYYYMMDD");
    let mut lines = good();
    lines[1] = lines[1].replace("|SALE|", "|VOID|");
    assert_refused(C, &file(&lines), 2, "type `VOID`");
    let mut lines = good();
    lines[1] = lines[1].replace("|00|", "|000|");
    assert_refused(C, &file(&lines), 2, "response code");
    let mut lines = good();
    lines[1] = lines[1].replace("20260301093015", "2026030109301");
    assert_refused(C, &file(&lines), 2, "time");
    let mut lines = good();
    lines[1] = lines[1].replace("N260301000001|pay_01JNQ0000000000000000021", "|");
    assert_refused(C, &file(&lines), 2, "neither");
    let mut lines = good();
    lines.insert(2, "X|odd".to_owned());
    assert_refused(C, &file(&lines), 3, "expected a detail line");
    assert_refused(C, b"", 1, "empty file");
}
