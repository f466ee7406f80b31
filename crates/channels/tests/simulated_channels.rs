//! Every connector against its simulator over real HTTP, one scenario per fault. Each
//! scenario is written once and run for all three channels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use yuanlu_channels::simulator::{BooksSnapshot, SimChannel, SimStatus, SimulatorConfig};
use yuanlu_channels::{
    CallbackError, ChannelOutcome, ConnectorConfig, ConnectorError, RefundConnector,
};
use yuanlu_domain::clock::Clock;

async fn success(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let connector = connector(channel, &sim, None);
    let outcome = connector.execute(&request(channel, "rf_ok")).await.unwrap();
    assert_eq!(
        received_account(&outcome),
        expected_account(channel, Some(PAYER_CARD))
    );
    let entry = sim.handle.entry("rf_ok").unwrap();
    assert_eq!(
        (entry.status, entry.paid_count, entry.paid_fen),
        (SimStatus::Success, 1, AMOUNT_FEN)
    );

    let wallet = yuanlu_channels::RefundRequest {
        payer_account: None,
        ..request(channel, "rf_wallet")
    };
    let outcome = connector.execute(&wallet).await.unwrap();
    assert_eq!(received_account(&outcome), expected_account(channel, None));
}

async fn repeat_pays_once(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let connector = connector(channel, &sim, None);
    let request = request(channel, "rf_repeat");
    let first = connector.execute(&request).await.unwrap();
    let second = connector.execute(&request).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(connector.query(&request).await.unwrap(), Some(first));
    assert_eq!(sim.handle.entry("rf_repeat").unwrap().paid_count, 1);
    assert_eq!(sim.handle.total_paid_fen(), AMOUNT_FEN);
    assert_eq!(sim.handle.snapshot().paid_refunds, 1);
}

async fn transient_books_nothing(channel: SimChannel) {
    let sim = start_sim(channel, faults("error=1")).await;
    let connector = connector(channel, &sim, None);
    let request = request(channel, "rf_busy");
    // Two attempts meet both of the channel's busy answers.
    for _ in 0..2 {
        let error = connector.execute(&request).await.unwrap_err();
        assert!(matches!(error, ConnectorError::Transient(_)), "{error:?}");
    }
    assert!(sim.handle.snapshot().refunds.is_empty());
    assert_eq!(connector.query(&request).await.unwrap(), None);
}

async fn lost_response_then_query(channel: SimChannel) {
    let sim = start_sim(channel, faults("lost=1")).await;
    let config = ConnectorConfig::new(&sim.base_url, SECRET).with_timeout(LOST_TIMEOUT);
    let connector = connector_with(channel, config);
    let request = request(channel, "rf_lost");
    let error = connector.execute(&request).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Unknown(_)), "{error:?}");

    let found = connector
        .query(&request)
        .await
        .unwrap()
        .expect("the channel booked it");
    assert_eq!(kind(&found), "succeeded");
    let never_sent = yuanlu_channels::RefundRequest {
        refund_id: "rf_never".into(),
        ..request.clone()
    };
    assert_eq!(connector.query(&never_sent).await.unwrap(), None);

    // Resending the same number after the query is safe: the stored record, paid once.
    assert_eq!(connector.execute(&request).await.unwrap(), found);
    assert_eq!(sim.handle.entry("rf_lost").unwrap().paid_count, 1);
    assert_eq!(sim.handle.total_paid_fen(), AMOUNT_FEN);
}

async fn abnormal(channel: SimChannel) {
    let sim = start_sim(channel, faults("abnormal=1")).await;
    let connector = connector(channel, &sim, None);
    let request = request(channel, "rf_abnormal");
    let outcome = connector.execute(&request).await.unwrap();
    assert_eq!(kind(&outcome), "abnormal", "{outcome:?}");
    assert_eq!(
        sim.handle.entry("rf_abnormal").unwrap().status,
        SimStatus::Abnormal
    );
    assert_eq!(sim.handle.total_paid_fen(), 0);
    let queried = connector.query(&request).await.unwrap();
    match channel {
        // Alipay's query answers success or nothing.
        SimChannel::Alipay => assert_eq!(queried, None),
        SimChannel::Wechat | SimChannel::Card => {
            assert_eq!(queried.as_ref().map(kind), Some("abnormal"))
        }
    }
}

fn callback_kinds(connector: &dyn RefundConnector, received: &[Received]) -> Vec<&'static str> {
    received
        .iter()
        .map(|callback| {
            let event = connector
                .parse_callback(&callback.headers, &callback.body)
                .unwrap();
            kind(&event.outcome)
        })
        .collect()
}

async fn reroute_after_abnormal(channel: SimChannel) {
    let sim = start_sim(channel, faults("abnormal=1")).await;
    let mut receiver = start_receiver().await;
    let connector = connector(channel, &sim, Some(&receiver.url));
    let mut request = request(channel, "rf_reroute");
    assert_eq!(
        kind(&connector.execute(&request).await.unwrap()),
        "abnormal"
    );

    // A masked number is refused for good: no bank pays to `6222********8888`.
    request.reroute_account = Some(REROUTE_CARD_MASKED.into());
    assert!(matches!(
        connector.execute(&request).await,
        Err(ConnectorError::Final(_))
    ));
    assert_eq!(sim.handle.total_paid_fen(), 0);

    request.reroute_account = Some(REROUTE_CARD.into());
    let outcome = connector.execute(&request).await.unwrap();
    assert_eq!(
        received_account(&outcome),
        expected_account(channel, Some(REROUTE_CARD_MASKED))
    );
    assert_eq!(
        kind(&connector.execute(&request).await.unwrap()),
        "succeeded"
    );

    let entry = sim.handle.entry("rf_reroute").unwrap();
    // Kept masked: the books are shown.
    assert_eq!(entry.account.as_deref(), Some(REROUTE_CARD_MASKED));
    assert_eq!(
        (entry.paid_count, sim.handle.total_paid_fen()),
        (1, AMOUNT_FEN)
    );
    // One callback per status change; two delivery tasks, so either order.
    let mut kinds = callback_kinds(connector.as_ref(), &receiver.take(2).await);
    kinds.sort_unstable();
    assert_eq!(kinds, ["abnormal", "succeeded"]);
}

async fn slow_confirmation(channel: SimChannel) {
    let sim = start_sim(channel, faults("slow=1,confirm_delay_ms=50")).await;
    let mut receiver = start_receiver().await;
    let connector = connector(channel, &sim, Some(&receiver.url));
    let request = request(channel, "rf_slow");
    let outcome = connector.execute(&request).await.unwrap();
    assert_eq!(kind(&outcome), "processing", "{outcome:?}");

    let callback = receiver.next().await;
    let event = connector
        .parse_callback(&callback.headers, &callback.body)
        .unwrap();
    assert_eq!(event.refund_id, "rf_slow");
    assert_eq!(
        received_account(&event.outcome),
        expected_account(channel, Some(PAYER_CARD))
    );
    // The callback is sent after the books changed, so the query agrees now.
    assert_eq!(
        connector.query(&request).await.unwrap(),
        Some(event.outcome)
    );
    assert_eq!(sim.handle.total_paid_fen(), AMOUNT_FEN);
}

async fn duplicate_and_out_of_order_callbacks(channel: SimChannel) {
    let sim = start_sim(channel, faults("duplicate=1,out_of_order=1")).await;
    let mut receiver = start_receiver().await;
    let connector = connector(channel, &sim, Some(&receiver.url));
    assert_eq!(
        kind(
            &connector
                .execute(&request(channel, "rf_noisy"))
                .await
                .unwrap()
        ),
        "succeeded"
    );

    let received = receiver.take(3).await;
    assert_eq!(
        callback_kinds(connector.as_ref(), &received),
        ["succeeded", "succeeded", "processing"]
    );
    assert_eq!(
        received[0].body, received[1].body,
        "a duplicate is the same callback"
    );
    for callback in &received {
        assert_eq!(
            connector
                .parse_callback(&callback.headers, &callback.body)
                .unwrap()
                .refund_id,
            "rf_noisy"
        );
    }
    assert_eq!(sim.handle.entry("rf_noisy").unwrap().paid_count, 1);
}

async fn forged_callbacks_refused(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let mut receiver = start_receiver().await;
    let connector = connector(channel, &sim, Some(&receiver.url));
    connector
        .execute(&request(channel, "rf_forged"))
        .await
        .unwrap();
    let callback = receiver.next().await;
    assert!(
        connector
            .parse_callback(&callback.headers, &callback.body)
            .is_ok()
    );

    let mut tampered = callback.body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    assert!(matches!(
        connector.parse_callback(&callback.headers, &tampered),
        Err(CallbackError(_))
    ));

    let other_secret = ConnectorConfig::new(&sim.base_url, "another-secret");
    let stranger = connector_with(channel, other_secret);
    assert!(
        stranger
            .parse_callback(&callback.headers, &callback.body)
            .is_err()
    );
    assert!(connector.parse_callback(&[], &callback.body).is_err());
}

async fn wrong_secret_request_is_final(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let config = ConnectorConfig::new(&sim.base_url, "another-secret").with_timeout(ANSWER_TIMEOUT);
    let stranger = connector_with(channel, config);
    let request = request(channel, "rf_stranger");
    for error in [
        stranger.execute(&request).await.unwrap_err(),
        stranger.query(&request).await.unwrap_err(),
    ] {
        assert!(
            matches!(&error, ConnectorError::Final(reason) if reason.contains("credentials rejected")),
            "{error:?}"
        );
    }
    assert!(sim.handle.snapshot().refunds.is_empty());
}

async fn over_refunds_refused(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let connector = connector(channel, &sim, None);
    let mut too_big = request(channel, "rf_big");
    too_big.amount_fen = PAYMENT_FEN + 1;
    assert!(matches!(
        connector.execute(&too_big).await,
        Err(ConnectorError::Final(_))
    ));

    let mut first = request(channel, "rf_part1");
    first.payment_id = "pay_shared".into();
    first.amount_fen = 6_000;
    let mut second = request(channel, "rf_part2");
    second.payment_id = "pay_shared".into();
    second.amount_fen = 4_001;
    assert_eq!(kind(&connector.execute(&first).await.unwrap()), "succeeded");
    assert!(matches!(
        connector.execute(&second).await,
        Err(ConnectorError::Final(_))
    ));

    let mut nothing = request(channel, "rf_zero");
    nothing.amount_fen = 0;
    assert!(matches!(
        connector.execute(&nothing).await,
        Err(ConnectorError::Final(_))
    ));

    let mut changed = first.clone();
    changed.amount_fen = 5_000;
    assert!(matches!(
        connector.execute(&changed).await,
        Err(ConnectorError::Final(_))
    ));
    assert_eq!(sim.handle.total_paid_fen(), 6_000);
}

async fn connection_refused_is_transient(channel: SimChannel) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config =
        ConnectorConfig::new(format!("http://{addr}"), SECRET).with_timeout(ANSWER_TIMEOUT);
    let error = connector_with(channel, config)
        .execute(&request(channel, "rf_refused"))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Transient(_)), "{error:?}");
}

async fn books_over_http(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    connector(channel, &sim, None)
        .execute(&request(channel, "rf_books"))
        .await
        .unwrap();
    let url = format!("{}/sim/books", sim.base_url);
    let client = reqwest::Client::new();
    for (bearer, context) in [(None, "no key"), (Some("not-the-secret"), "a wrong key")] {
        let mut request = client.get(&url);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "books with {context}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "unauthorized", "{problem}");
    }
    let books: BooksSnapshot = client
        .get(&url)
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(books, sim.handle.snapshot());
    assert_eq!((books.total_paid_fen, books.paid_refunds), (AMOUNT_FEN, 1));
}

/// A simulator on a simulated clock years from real time: the channel's times are the
/// clock's, and signatures (wall clock on both sides) still verify both ways.
async fn simulated_clock_dates_the_books(channel: SimChannel) {
    let at: chrono::DateTime<chrono::Utc> = "2026-09-29T02:00:00Z".parse().unwrap();
    let real_now = yuanlu_domain::clock::SystemClock.now();
    assert!((real_now - at).num_days().abs() > 1, "pick another instant");
    let clock = std::sync::Arc::new(yuanlu_domain::clock::SimulatedClock::starting_at(at));
    let sim = start_sim_with(
        channel,
        SimulatorConfig::new(SECRET)
            .with_faults(faults("none"))
            .with_clock(clock),
    )
    .await;
    let outcome = connector(channel, &sim, None)
        .execute(&request(channel, "rf_sim_clock"))
        .await
        .unwrap();
    match outcome {
        ChannelOutcome::Succeeded { succeeded_at, .. } => assert_eq!(succeeded_at, at),
        other => panic!("{other:?}"),
    }
    let entry = sim.handle.entry("rf_sim_clock").unwrap();
    assert_eq!((entry.created_at, entry.succeeded_at), (at, Some(at)));
    // Without a date, the statement is of the clock's day, and lists the refund.
    let statement = reqwest::Client::new()
        .get(format!("{}/sim/statement", sim.base_url))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(statement.status().as_u16(), 200);
    let bytes = statement.bytes().await.unwrap();
    assert!(
        bytes.windows(12).any(|w| w == b"rf_sim_clock"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

async fn wrong_channel_refused(channel: SimChannel) {
    let sim = start_sim(channel, faults("none")).await;
    let mut request = request(channel, "rf_wrong");
    request.channel = match channel {
        SimChannel::Wechat | SimChannel::Card => yuanlu_domain::channel::Channel::Alipay,
        SimChannel::Alipay => yuanlu_domain::channel::Channel::Wechat,
    };
    let error = connector(channel, &sim, None)
        .execute(&request)
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Final(_)), "{error:?}");
    assert!(sim.handle.snapshot().refunds.is_empty());
}

macro_rules! channel_suite {
    ($module:ident, $channel:expr, [$($scenario:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($channel).await;
                }
            )*
        }
    };
}

macro_rules! all_channels {
    ($($scenario:ident),* $(,)?) => {
        channel_suite!(wechat, yuanlu_channels::simulator::SimChannel::Wechat, [$($scenario),*]);
        channel_suite!(alipay, yuanlu_channels::simulator::SimChannel::Alipay, [$($scenario),*]);
        channel_suite!(card, yuanlu_channels::simulator::SimChannel::Card, [$($scenario),*]);
    };
}

all_channels!(
    success,
    repeat_pays_once,
    transient_books_nothing,
    lost_response_then_query,
    abnormal,
    reroute_after_abnormal,
    slow_confirmation,
    duplicate_and_out_of_order_callbacks,
    forged_callbacks_refused,
    wrong_secret_request_is_final,
    over_refunds_refused,
    connection_refused_is_transient,
    books_over_http,
    simulated_clock_dates_the_books,
    wrong_channel_refused,
);

#[tokio::test]
async fn card_network_serves_all_card_products() {
    let sim = start_sim(SimChannel::Card, faults("none")).await;
    let connector = connector(SimChannel::Card, &sim, None);
    for (index, product) in [
        yuanlu_domain::channel::Channel::CreditCard,
        yuanlu_domain::channel::Channel::DebitCard,
        yuanlu_domain::channel::Channel::UnionpayQr,
    ]
    .into_iter()
    .enumerate()
    {
        let mut request = request(SimChannel::Card, &format!("rf_product_{index}"));
        request.channel = product;
        assert_eq!(
            kind(&connector.execute(&request).await.unwrap()),
            "succeeded"
        );
    }
    assert_eq!(sim.handle.snapshot().paid_refunds, 3);
}

#[tokio::test]
async fn same_seed_same_world() {
    // Two simulators with one seed decide every refund number alike.
    let spec = "seed=42,abnormal=0.5";
    let first = start_sim(SimChannel::Wechat, faults(spec)).await;
    let second = start_sim(SimChannel::Wechat, faults(spec)).await;
    let (a, b) = (
        connector(SimChannel::Wechat, &first, None),
        connector(SimChannel::Wechat, &second, None),
    );
    let mut kinds = Vec::new();
    for index in 0..12 {
        let request = request(SimChannel::Wechat, &format!("rf_seed_{index}"));
        let (left, right) = (
            a.execute(&request).await.unwrap(),
            b.execute(&request).await.unwrap(),
        );
        assert_eq!(left, right);
        kinds.push(kind(&left));
    }
    assert!(
        kinds.contains(&"abnormal") && kinds.contains(&"succeeded"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn serve_runs_a_simulator() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = yuanlu_channels::simulator::SimulatorConfig::new(SECRET);
    tokio::spawn(yuanlu_channels::simulator::serve(
        listener,
        SimChannel::Alipay,
        config,
    ));
    let connector = connector_with(
        SimChannel::Alipay,
        ConnectorConfig::new(format!("http://{addr}"), SECRET).with_timeout(ANSWER_TIMEOUT),
    );
    let outcome: ChannelOutcome = connector
        .execute(&request(SimChannel::Alipay, "rf_serve"))
        .await
        .unwrap();
    assert_eq!(kind(&outcome), "succeeded");
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sim = start_sim(SimChannel::Card, faults("latency=40..60")).await;
    let connector = connector(SimChannel::Card, &sim, None);
    let started = std::time::Instant::now();
    let outcome = connector
        .execute(&request(SimChannel::Card, "rf_latent"))
        .await
        .unwrap();
    assert_eq!(kind(&outcome), "succeeded");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(40),
        "{:?}",
        started.elapsed()
    );
}

/// A receiver that fails its first delivery: the simulator must retry the same callback.
async fn flaky_receiver() -> (String, tokio::sync::mpsc::Receiver<(u32, Received)>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::{HeaderMap, StatusCode};

    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let deliveries = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, deliveries) = (tx.clone(), deliveries.clone());
            async move {
                let attempt = deliveries.fetch_add(1, Ordering::SeqCst) + 1;
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                tx.send((
                    attempt,
                    Received {
                        headers,
                        body: body.to_vec(),
                    },
                ))
                .await
                .unwrap();
                if attempt == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/notify"), rx)
}

#[tokio::test]
async fn failed_callback_is_retried_to_the_configured_url() {
    let (url, mut rx) = flaky_receiver().await;
    // The connector names no notify URL: the simulator's own setting is used.
    let config = yuanlu_channels::simulator::SimulatorConfig::new(SECRET).with_notify_url(url);
    let sim = start_sim_with(SimChannel::Wechat, config).await;
    let connector = connector(SimChannel::Wechat, &sim, None);
    connector
        .execute(&request(SimChannel::Wechat, "rf_retry"))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for expected_attempt in [1, 2] {
        let (attempt, callback) = tokio::time::timeout(CALLBACK_WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(attempt, expected_attempt);
        let event = connector
            .parse_callback(&callback.headers, &callback.body)
            .unwrap();
        assert_eq!(
            (event.refund_id.as_str(), kind(&event.outcome)),
            ("rf_retry", "succeeded")
        );
        bodies.push(callback.body);
    }
    assert_eq!(bodies[0], bodies[1]);
}
