//! Pre-authorisation, its void, completion and completion void, their reversals and
//! repeats; settlement with completions; batch upload compared line by line. Against a
//! host on 127.0.0.1:0, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use yuanlu_iso8583::Message;
use yuanlu_poshost::client::Original;
use yuanlu_poshost::upload::UploadLine;

use common::{PAN, Setup};

fn code(answer: &Message) -> &str {
    answer.get_str(39).unwrap()
}

async fn payments(setup: &Setup) -> Vec<yuanlu_engine::views::Payment> {
    setup
        .engine
        .list_payments(&setup.merchant, 100, None)
        .await
        .unwrap()
        .data
}

async fn preauth_day(setup: &Setup) {
    let mut t = setup.terminal(3).await;
    assert_eq!(code(&t.sign_on().await.unwrap()), "00");
    let batch = t.batch_no.clone();

    // A pre-authorisation holds no money: approved with RRN and auth code, no payment.
    let p1 = t.preauth(PAN, 5000).unwrap();
    let a1 = t.exchange(p1.clone()).await.unwrap();
    assert_eq!((a1.mti(), code(&a1)), ("0110", "00"));
    assert_eq!(a1.get_str(38).map(str::len), Some(6));
    assert_eq!(a1.get_str(37).map(str::len), Some(12));
    assert!(payments(setup).await.is_empty(), "a pre-auth is no payment");
    let zero = t.preauth(PAN, 0).unwrap();
    assert_eq!(code(&t.exchange(zero).await.unwrap()), "13");

    // Pre-auth 2 is voided; a second void of it 22, its completion 22.
    let a2 = {
        let m = t.preauth(PAN, 3000).unwrap();
        t.exchange(m).await.unwrap()
    };
    let o2 = Original::of(&a2, &batch);
    let wrong = t.preauth_void(PAN, 2999, &o2).unwrap();
    assert_eq!(code(&t.exchange(wrong).await.unwrap()), "64");
    let v2 = {
        let m = t.preauth_void(PAN, 3000, &o2).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!((v2.mti(), code(&v2)), ("0110", "00"));
    let again = t.preauth_void(PAN, 3000, &o2).unwrap();
    assert_eq!(code(&t.exchange(again).await.unwrap()), "22");
    let late = t.completion(PAN, 3000, &o2).unwrap();
    assert_eq!(code(&t.exchange(late).await.unwrap()), "22");

    // Completion of pre-auth 1: over its amount 61; 4800 becomes the payment.
    let o1 = Original::of(&a1, &batch);
    let over = t.completion(PAN, 5001, &o1).unwrap();
    assert_eq!(code(&t.exchange(over).await.unwrap()), "61");
    let c1 = t.completion(PAN, 4800, &o1).unwrap();
    let ac1 = t.exchange(c1.clone()).await.unwrap();
    assert_eq!((ac1.mti(), code(&ac1)), ("0210", "00"));
    // Its repeat: the first answer, no second payment.
    let repeat = t.exchange(c1).await.unwrap();
    assert_eq!(repeat.get_str(37), ac1.get_str(37));
    let paid = payments(setup).await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].amount, 4800);
    assert_eq!(paid[0].voucher.rrn.as_deref(), ac1.get_str(37));
    assert_eq!(paid[0].terminal_id.as_deref(), Some(common::TERMINAL_ID));
    // Completed: a second completion 22, a void of the pre-auth 12.
    let twice = t.completion(PAN, 100, &o1).unwrap();
    assert_eq!(code(&t.exchange(twice).await.unwrap()), "22");
    let void_completed = t.preauth_void(PAN, 5000, &o1).unwrap();
    assert_eq!(code(&t.exchange(void_completed).await.unwrap()), "12");

    // Completion void: wrong amount 64; in full, the payment is voided like a sale's void.
    let oc1 = Original::of(&ac1, &batch);
    let short = t.completion_void(PAN, 4000, &oc1).unwrap();
    assert_eq!(code(&t.exchange(short).await.unwrap()), "64");
    let cv1_request = t.completion_void(PAN, 4800, &oc1).unwrap();
    let cv1 = t.exchange(cv1_request.clone()).await.unwrap();
    assert_eq!(code(&cv1), "00");
    // Its reversal (the answer "timed out") undoes it: the void's refund is canceled, the
    // payment refundable again and the pre-authorisation completed again.
    let cv1_reversal = t.reversal(&cv1_request).unwrap();
    assert_eq!(code(&t.exchange(cv1_reversal.clone()).await.unwrap()), "00");
    assert_eq!(code(&t.exchange(cv1_reversal).await.unwrap()), "00");
    let p = payments(setup)
        .await
        .into_iter()
        .find(|p| p.amount == 4800)
        .unwrap();
    assert_eq!(p.refundable, 4800, "the completion void was reversed");
    let closed = t.completion(PAN, 100, &o1).unwrap();
    assert_eq!(
        code(&t.exchange(closed).await.unwrap()),
        "22",
        "completed again"
    );
    let cv1 = {
        let m = t.completion_void(PAN, 4800, &oc1).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!(code(&cv1), "00");
    let p = payments(setup)
        .await
        .into_iter()
        .find(|p| p.amount == 4800)
        .unwrap();
    assert_eq!(p.refundable, 0, "voided");
    let again = t.completion_void(PAN, 4800, &oc1).unwrap();
    assert_ne!(code(&t.exchange(again).await.unwrap()), "00");

    // The pre-authorisation is open again: completed for 4000, then that completion is
    // reversed (twice: the same answer) and the pre-auth is open once more.
    let c2 = t.completion(PAN, 4000, &o1).unwrap();
    let ac2 = t.exchange(c2.clone()).await.unwrap();
    assert_eq!(code(&ac2), "00");
    let rev = t.reversal(&c2).unwrap();
    assert_eq!(code(&t.exchange(rev.clone()).await.unwrap()), "00");
    assert_eq!(code(&t.exchange(rev).await.unwrap()), "00");
    let p2 = payments(setup)
        .await
        .into_iter()
        .find(|p| p.amount == 4000)
        .unwrap();
    assert_eq!(p2.refundable, 0, "the reversed completion was undone");
    let c3 = t.completion(PAN, 2500, &o1).unwrap();
    let ac3 = t.exchange(c3).await.unwrap();
    assert_eq!(code(&ac3), "00", "open again after the reversal");

    // A pre-auth reversed (its answer timed out): completing it finds nothing.
    let p3 = t.preauth(PAN, 1000).unwrap();
    let a3 = t.exchange(p3.clone()).await.unwrap();
    let rev3 = t.reversal(&p3).unwrap();
    let ar3 = t.exchange(rev3.clone()).await.unwrap();
    assert_eq!((ar3.mti(), code(&ar3)), ("0410", "00"));
    assert_eq!(code(&t.exchange(rev3).await.unwrap()), "00");
    let dead = t.completion(PAN, 1000, &Original::of(&a3, &batch)).unwrap();
    assert_eq!(code(&t.exchange(dead).await.unwrap()), "25");

    // A pre-auth void reversed: the pre-auth is open again and can be completed.
    let a4 = {
        let m = t.preauth(PAN, 800).unwrap();
        t.exchange(m).await.unwrap()
    };
    let o4 = Original::of(&a4, &batch);
    let v4 = t.preauth_void(PAN, 800, &o4).unwrap();
    assert_eq!(code(&t.exchange(v4.clone()).await.unwrap()), "00");
    assert_eq!(
        code(&{
            let m = t.reversal(&v4).unwrap();
            t.exchange(m).await.unwrap()
        }),
        "00"
    );
    let c4 = {
        let m = t.completion(PAN, 800, &o4).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!(code(&c4), "00");

    // A sale besides. Debits: completions 4800 − 4800 (voided), 4000 reversed, 2500, 800,
    // and the sale 1000: 4300 in 3; no credits. Pre-auths count for nothing.
    let sale = {
        let m = t.sale(PAN, 1000).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!(code(&sale), "00");
    let settle = t.settlement((4300, 3), (0, 0)).unwrap();
    let answer = t.exchange(settle).await.unwrap();
    assert_eq!(answer.get_str(48).unwrap().as_bytes()[30], b'1', "balanced");
    let paid: i64 = payments(setup).await.iter().map(|p| p.refundable).sum();
    assert_eq!(paid, 4300, "what the API shows agrees with the settlement");

    // Batch upload: the sale and a completion agree; one line's amount differs, one trace
    // is unknown to the host.
    let line = |answer: &Message, amount| UploadLine {
        trace_no: answer.get_str(11).unwrap().to_string(),
        pan: PAN.to_string(),
        amount_fen: amount,
    };
    let agreeing = [line(&sale, 1000), line(&ac3, 2500)];
    let up = {
        let m = t.batch_upload(&agreeing).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!((up.mti(), code(&up)), ("0330", "00"));
    let differing = [
        line(&sale, 1000),
        line(&c4, 900),
        UploadLine {
            trace_no: "999998".into(),
            pan: PAN.into(),
            amount_fen: 1,
        },
    ];
    let up = {
        let m = t.batch_upload(&differing).unwrap();
        t.exchange(m).await.unwrap()
    };
    assert_eq!(code(&up), "95", "a line differs");
    let results = up.get_str(48).unwrap();
    let trace = |a: &Message| a.get_str(11).unwrap().to_string();
    assert_eq!(
        results,
        format!("03{}0{}2{}1", trace(&sale), trace(&c4), "999998"),
        "per line: trace and result (0 agrees, 1 unknown, 2 amount differs)"
    );
    let mut bad = t.batch_upload(&agreeing).unwrap();
    bad.set(48, "02123").unwrap();
    assert_eq!(code(&t.exchange(bad).await.unwrap()), "30");

    // Balance inquiry is not offered: 40.
    let mut inquiry = t.sale(PAN, 0).unwrap();
    inquiry.set(3, "310000").unwrap();
    inquiry.set(60, format!("01{batch}000")).unwrap();
    inquiry.remove(4);
    assert_eq!(code(&t.exchange(inquiry).await.unwrap()), "40");
}

#[tokio::test]
async fn preauth_day_on_sqlite() {
    let setup = common::sqlite().await;
    preauth_day(&setup).await;
    setup.finish().await;
}

#[tokio::test]
async fn preauth_day_on_postgres() {
    let Some(setup) = common::postgres("poshost::preauth_day_on_postgres").await else {
        return;
    };
    preauth_day(&setup).await;
    setup.finish().await;
}
