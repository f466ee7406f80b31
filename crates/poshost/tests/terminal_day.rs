//! A terminal's day against a host on 127.0.0.1:0, and the codes of what it must refuse,
//! on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use yuanlu_engine::clock::Clock;
use yuanlu_iso8583::{Frame, Message, mac};
use yuanlu_poshost::client::Original;

use common::{PAN, Setup};

fn code(answer: &Message) -> &str {
    answer.get_str(39).unwrap()
}

async fn terminal_day(setup: &Setup) {
    let mut t = setup.terminal(1).await;
    let signed = t.sign_on().await.unwrap();
    assert_eq!(code(&signed), "00");
    assert_eq!(signed.get(62).map(<[u8]>::len), Some(40));

    let sale1 = t.sale(PAN, 1000).unwrap();
    let a1 = t.exchange(sale1.clone()).await.unwrap();
    assert_eq!(code(&a1), "00");
    assert!(
        mac::verify(&a1, t.mak.as_ref().unwrap()),
        "answers carry the MAC"
    );
    let sale2 = t.sale(PAN, 2500).unwrap();
    let a2 = t.exchange(sale2).await.unwrap();
    assert_eq!(code(&a2), "00");
    let sale3 = t.sale(PAN, 700).unwrap();
    let a3 = t.exchange(sale3.clone()).await.unwrap();
    assert_eq!(code(&a3), "00");

    // A repeat of sale 1 (same batch and trace) gets its first answer and records nothing.
    let again = t.exchange(sale1).await.unwrap();
    assert_eq!(again.get_str(37), a1.get_str(37));
    assert_eq!(again.get_str(12), a1.get_str(12));

    let void = t.void(PAN, 2500, &Original::of(&a2, &t.batch_no)).unwrap();
    assert_eq!(code(&t.exchange(void).await.unwrap()), "00");
    let partial = t.refund(PAN, 300, &Original::of(&a1, &t.batch_no)).unwrap();
    assert_eq!(code(&t.exchange(partial).await.unwrap()), "00");
    let over = t.refund(PAN, 800, &Original::of(&a1, &t.batch_no)).unwrap();
    assert_eq!(
        code(&t.exchange(over).await.unwrap()),
        "61",
        "700 left to refund"
    );

    // Sale 3's answer "timed out": the terminal reverses it, twice; and something never sent.
    let reversal = t.reversal(&sale3).unwrap();
    assert_eq!(code(&t.exchange(reversal.clone()).await.unwrap()), "00");
    assert_eq!(code(&t.exchange(reversal).await.unwrap()), "00");
    let mut never = t.sale(PAN, 100).unwrap();
    never.set(11, "999999").unwrap();
    let never = t.reversal(&never).unwrap();
    assert_eq!(code(&t.exchange(never).await.unwrap()), "00");

    // Debits: 1000 + 2500 − 2500 (void), sale 3 reversed; credits: the 300 refund.
    let wrong = t.settlement((3500, 2), (300, 1)).unwrap();
    let answer = t.exchange(wrong).await.unwrap();
    assert_eq!(
        answer.get_str(48).unwrap().as_bytes()[30],
        b'2',
        "not balanced"
    );
    let right = t.settlement((1000, 1), (300, 1)).unwrap();
    let answer = t.exchange(right).await.unwrap();
    assert_eq!(code(&answer), "00");
    assert_eq!(answer.get_str(48).unwrap().as_bytes()[30], b'1', "balanced");

    // The terminal, as `GET /v1/terminals` lists it: signed on to batch 000001.
    let mine = setup.engine.list_terminals(&setup.merchant).await.unwrap();
    assert_eq!(mine.data.len(), 1);
    assert_eq!(mine.data[0].batch_no.as_deref(), Some("000001"));
    let all = setup
        .engine
        .list_terminals(&yuanlu_engine::auth::Principal::Admin)
        .await
        .unwrap();
    assert_eq!(all.data.len(), 1);

    // The API shows the same payments and refunds.
    let page = setup
        .engine
        .list_payments(&setup.merchant, 100, None)
        .await
        .unwrap();
    assert_eq!(
        page.data.len(),
        3,
        "the repeat recorded nothing; the never-sent sale is not there"
    );
    for p in &page.data {
        assert_eq!(p.terminal_id.as_deref(), Some(common::TERMINAL_ID));
        assert_eq!(p.payer.account.as_deref(), Some("**** 7890"));
        assert_eq!(p.voucher.batch_no.as_deref(), Some("000001"));
    }
    let by_rrn = |answer: &Message| {
        let rrn = answer.get_str(37).unwrap().to_string();
        page.data
            .iter()
            .find(|p| p.voucher.rrn.as_deref() == Some(&rrn))
            .unwrap()
            .clone()
    };
    let p1 = by_rrn(&a1);
    assert_eq!(p1.amount, 1000);
    assert_eq!(p1.amount_refunded + p1.amount_in_flight, 300);
    assert!(by_rrn(&a2).voided || by_rrn(&a2).refundable == 0);
    assert_eq!(by_rrn(&a3).refundable, 0, "the reversed sale was undone");
}

async fn refusals(setup: &Setup) {
    // Before sign-on: A0.
    let mut t = setup.terminal(7).await;
    let early = t.sale(PAN, 100).unwrap();
    assert_eq!(code(&t.exchange(early).await.unwrap()), "A0");
    t.sign_on().await.unwrap();

    // A message altered after its MAC: A0.
    let mut sale = t.sale(PAN, 100).unwrap();
    mac::sign(&mut sale, t.mak.as_ref().unwrap()).unwrap();
    sale.set(4, "000000009999").unwrap();
    let body = t
        .send_raw(&Frame::new(sale).encode().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&Frame::decode_body(&body).unwrap().message), "A0");

    // An unregistered 41/42 pair: 97.
    let mut stranger = yuanlu_poshost::client::TerminalClient::connect(
        &setup.address,
        "99999999",
        common::MERCHANT_NO,
        &setup.tmk,
        1,
    )
    .await
    .unwrap();
    assert_eq!(code(&stranger.sign_on().await.unwrap()), "97");

    // A frame that does not decode: 30.
    let mut garbage = vec![
        0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 0x10, 0x03, 0x02, 0x00,
    ];
    garbage.extend([0x20, 0, 0, 0, 0, 0, 0, 0, 0xAA]);
    let mut framed = u16::try_from(garbage.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(garbage);
    let body = t.send_raw(&framed).await.unwrap();
    let answer = Frame::decode_body(&body).unwrap().message;
    assert_eq!((answer.mti(), code(&answer)), ("0210", "30"));

    // Yesterday's sale cannot be voided: 12.
    let sale = t.sale(PAN, 500).unwrap();
    let a = t.exchange(sale).await.unwrap();
    assert_eq!(code(&a), "00");
    setup.clock.advance(Duration::days(1)).unwrap();
    let void = t.void(PAN, 500, &Original::of(&a, &t.batch_no)).unwrap();
    assert_eq!(code(&t.exchange(void).await.unwrap()), "12");
    // A void of the wrong amount, an unknown original: 64 is checked after the day, so 25.
    let mut unknown = Original::of(&a, &t.batch_no);
    unknown.rrn = "000000000000".into();
    let refund = t.refund(PAN, 100, &unknown).unwrap();
    assert_eq!(code(&t.exchange(refund).await.unwrap()), "25");
    let _ = setup.clock.now();
}

#[tokio::test]
async fn terminal_day_on_sqlite() {
    let setup = common::sqlite().await;
    terminal_day(&setup).await;
    setup.finish().await;
}

#[tokio::test]
async fn terminal_day_on_postgres() {
    let Some(setup) = common::postgres("poshost::terminal_day_on_postgres").await else {
        return;
    };
    terminal_day(&setup).await;
    setup.finish().await;
}

#[tokio::test]
async fn refusals_on_sqlite() {
    let setup = common::sqlite().await;
    refusals(&setup).await;
    setup.finish().await;
}

#[tokio::test]
async fn refusals_on_postgres() {
    let Some(setup) = common::postgres("poshost::refusals_on_postgres").await else {
        return;
    };
    refusals(&setup).await;
    setup.finish().await;
}
