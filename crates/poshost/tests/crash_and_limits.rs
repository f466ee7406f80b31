//! A host that dies between a transaction's effects and its journaled answer, and the
//! repeat that follows (SQLite and PostgreSQL); the connection limit, its freed slot, and
//! the idle and read timeouts (waiting for the close, not sleeping).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yuanlu_engine::clock::Clock;
use yuanlu_iso8583::{Frame, Message};
use yuanlu_poshost::HostConfig;
use yuanlu_poshost::client::Original;
use yuanlu_poshost::handler::CLAIM_LEASE_SECONDS;

use common::{PAN, Setup};

fn code(answer: &Message) -> &str {
    answer.get_str(39).unwrap()
}

async fn died_between(setup: &Setup) {
    let mut t = setup.terminal(1).await;
    assert_eq!(code(&t.sign_on().await.unwrap()), "00");

    // The host dies after the sale's payment and before its journaled answer.
    setup.host_handler.die_before_answer(true);
    let sale = t.sale(PAN, 1200).unwrap();
    assert!(t.exchange(sale.clone()).await.is_err(), "closed unanswered");
    setup.host_handler.die_before_answer(false);
    let paid = setup
        .engine
        .list_payments(&setup.merchant, 10, None)
        .await
        .unwrap()
        .data;
    assert_eq!(
        paid.len(),
        1,
        "the payment was written before the host died"
    );

    // The terminal dials again with the same request. Within the lease: 94.
    let mut t2 = setup.terminal(1).await;
    t2.mak = t.mak;
    let early = t2.exchange(sale.clone()).await.unwrap();
    assert_eq!(code(&early), "94");
    // After it, the repeat takes the request over: the same payment, approved, once.
    setup
        .clock
        .advance(chrono::Duration::seconds(CLAIM_LEASE_SECONDS + 1))
        .unwrap();
    let answer = t2.exchange(sale.clone()).await.unwrap();
    assert_eq!(code(&answer), "00");
    let paid = setup
        .engine
        .list_payments(&setup.merchant, 10, None)
        .await
        .unwrap()
        .data;
    assert_eq!(paid.len(), 1, "not paid twice");
    assert_eq!(paid[0].voucher.rrn.as_deref(), answer.get_str(37));
    let again = t2.exchange(sale).await.unwrap();
    assert_eq!(
        (code(&again), again.get_str(37)),
        ("00", answer.get_str(37))
    );

    // The same for a refund: dies after the refund, the repeat finds it.
    setup.host_handler.die_before_answer(true);
    let refund = t2
        .refund(PAN, 300, &Original::of(&answer, &t2.batch_no))
        .unwrap();
    assert!(t2.exchange(refund.clone()).await.is_err());
    setup.host_handler.die_before_answer(false);
    let mut t3 = setup.terminal(1).await;
    t3.mak = t.mak;
    setup
        .clock
        .advance(chrono::Duration::seconds(CLAIM_LEASE_SECONDS + 1))
        .unwrap();
    assert_eq!(code(&t3.exchange(refund).await.unwrap()), "00");
    let payment = setup
        .engine
        .get_payment(&setup.merchant, &paid[0].id)
        .await
        .unwrap();
    assert_eq!(
        payment.amount_refunded + payment.amount_in_flight,
        300,
        "one refund"
    );
}

#[tokio::test]
async fn a_host_that_dies_between_payment_and_answer_on_sqlite() {
    let setup = common::sqlite().await;
    died_between(&setup).await;
    setup.finish().await;
}

#[tokio::test]
async fn a_host_that_dies_between_payment_and_answer_on_postgres() {
    let Some(setup) =
        common::postgres("poshost::a_host_that_dies_between_payment_and_answer_on_postgres").await
    else {
        return;
    };
    died_between(&setup).await;
    setup.finish().await;
}

/// Sends a sign-on on `stream` and reads its answer; `None` when the host closed instead.
async fn sign_on(stream: &mut TcpStream) -> Option<Message> {
    let mut request = Message::new("0800").unwrap();
    request.set(11, "000001").unwrap();
    request.set(41, common::TERMINAL_ID).unwrap();
    request.set(42, common::MERCHANT_NO).unwrap();
    request.set(60, "00000001003").unwrap();
    let bytes = Frame::new(request).encode().unwrap();
    if stream.write_all(&bytes).await.is_err() {
        return None;
    }
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut body).await.ok()?;
    Some(Frame::decode_body(&body).unwrap().message)
}

/// Waits for the host to close `stream` (EOF or reset), reading nothing else.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn one_connection_over_the_limit_is_closed_and_a_freed_slot_is_reused() {
    let setup = common::sqlite_with(HostConfig {
        connections_max: 2,
        ..HostConfig::default()
    })
    .await;
    // Two connections, each answered (so each holds its slot).
    let mut first = TcpStream::connect(&setup.address).await.unwrap();
    let mut second = TcpStream::connect(&setup.address).await.unwrap();
    assert!(sign_on(&mut first).await.is_some());
    assert!(sign_on(&mut second).await.is_some());

    // The third is closed without an answer while they are open.
    let mut third = TcpStream::connect(&setup.address).await.unwrap();
    assert!(closed(&mut third).await, "closed at once");
    let mut fourth = TcpStream::connect(&setup.address).await.unwrap();
    assert!(
        sign_on(&mut fourth).await.is_none(),
        "still full: not answered"
    );

    // The first hangs up; once the host has closed it, its slot serves a new terminal.
    first.shutdown().await.unwrap();
    assert!(closed(&mut first).await);
    let mut fifth = TcpStream::connect(&setup.address).await.unwrap();
    let answer = sign_on(&mut fifth).await.expect("the freed slot");
    assert_eq!(code(&answer), "00");
    // The second still works, the limit is back at two.
    assert!(sign_on(&mut second).await.is_some());
    let mut sixth = TcpStream::connect(&setup.address).await.unwrap();
    assert!(closed(&mut sixth).await);
    drop((second, fifth));
    setup.finish().await;
}

#[tokio::test]
async fn idle_and_stalled_connections_are_closed_after_their_timeouts() {
    let idle = Duration::from_millis(150);
    let read = Duration::from_millis(400);
    let setup = common::sqlite_with(HostConfig {
        idle_timeout: idle,
        read_timeout: read,
        ..HostConfig::default()
    })
    .await;

    // Nothing sent: closed after the idle timeout.
    let began = Instant::now();
    let mut quiet = TcpStream::connect(&setup.address).await.unwrap();
    assert!(closed(&mut quiet).await);
    let waited = began.elapsed();
    assert!(waited >= idle, "closed after {waited:?}");

    // A frame begun and not finished: closed after the (longer) read timeout.
    let began = Instant::now();
    let mut stalled = TcpStream::connect(&setup.address).await.unwrap();
    stalled.write_all(&[0x00, 0x40, 0x60, 0x00]).await.unwrap();
    assert!(closed(&mut stalled).await);
    let waited = began.elapsed();
    assert!(
        waited >= read,
        "the read timeout, not the idle one: {waited:?}"
    );

    // Within the timeouts a connection is served.
    let mut busy = TcpStream::connect(&setup.address).await.unwrap();
    assert!(sign_on(&mut busy).await.is_some());
    setup.finish().await;
}
