//! Test harness: a simulator on 127.0.0.1:0, the real connector over HTTP, and a tiny
//! callback receiver that forwards every callback into an mpsc channel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use yuanlu_channels::simulator::{self, FaultConfig, SimChannel, SimulatorConfig, SimulatorHandle};
use yuanlu_channels::{
    AlipayConnector, CardConnector, ChannelOutcome, ConnectorConfig, RefundConnector,
    RefundRequest, WechatConnector,
};
use yuanlu_domain::channel::Channel;

pub const SECRET: &str = "sim-secret-for-tests";
/// Short, so a lost response resolves fast.
pub const LOST_TIMEOUT: Duration = Duration::from_millis(300);
/// For every call that is meant to be answered: generous, so a loaded machine does not turn
/// an answer into an unknown outcome.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on waiting for a callback (never a sleep: the wait ends when it arrives).
pub const CALLBACK_WAIT: Duration = Duration::from_secs(5);
/// Callbacks buffered by the receiver.
const CALLBACK_BUFFER: usize = 64;

pub const PAYER_CARD: &str = "**** 0403";
/// A reroute account as a channel needs it: whole.
pub const REROUTE_CARD: &str = "工商银行|6222021234568888";
/// As the simulators keep and echo it.
pub const REROUTE_CARD_MASKED: &str = "工商银行|6222********8888";
pub const AMOUNT_FEN: i64 = 1_234;
pub const PAYMENT_FEN: i64 = 10_000;

pub struct Sim {
    pub base_url: String,
    pub handle: SimulatorHandle,
}

pub async fn start_sim(channel: SimChannel, faults: FaultConfig) -> Sim {
    start_sim_with(channel, SimulatorConfig::new(SECRET).with_faults(faults)).await
}

pub async fn start_sim_with(channel: SimChannel, config: SimulatorConfig) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, handle) = simulator::router(channel, config);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Sim {
        base_url: format!("http://{addr}"),
        handle,
    }
}

pub fn connector_with(channel: SimChannel, config: ConnectorConfig) -> Box<dyn RefundConnector> {
    match channel {
        SimChannel::Wechat => Box::new(WechatConnector::new(config).unwrap()),
        SimChannel::Alipay => Box::new(AlipayConnector::new(config).unwrap()),
        SimChannel::Card => Box::new(CardConnector::new(config).unwrap()),
    }
}

pub fn connector(
    channel: SimChannel,
    sim: &Sim,
    notify_url: Option<&str>,
) -> Box<dyn RefundConnector> {
    let mut config = ConnectorConfig::new(&sim.base_url, SECRET).with_timeout(ANSWER_TIMEOUT);
    if let Some(url) = notify_url {
        config = config.with_notify_url(url);
    }
    connector_with(channel, config)
}

pub fn payment_channel(channel: SimChannel) -> Channel {
    match channel {
        SimChannel::Wechat => Channel::Wechat,
        SimChannel::Alipay => Channel::Alipay,
        SimChannel::Card => Channel::CreditCard,
    }
}

pub fn request(channel: SimChannel, refund_id: &str) -> RefundRequest {
    RefundRequest {
        refund_id: refund_id.to_string(),
        payment_id: format!("pay_{refund_id}"),
        channel: payment_channel(channel),
        amount_fen: AMOUNT_FEN,
        payment_amount_fen: PAYMENT_FEN,
        payer_account: Some(PAYER_CARD.to_string()),
        reroute_account: None,
    }
}

/// What each channel reports as the received account (written out here, not taken from the
/// simulator, so the test checks it).
pub fn expected_account(channel: SimChannel, account: Option<&str>) -> Option<String> {
    match (channel, account) {
        (SimChannel::Wechat, None) => Some("支付用户零钱".into()),
        (SimChannel::Wechat, Some(PAYER_CARD)) => Some("招商银行信用卡0403".into()),
        (SimChannel::Wechat, Some(REROUTE_CARD_MASKED)) => Some("招商银行信用卡8888".into()),
        (SimChannel::Alipay, None) => Some("余额".into()),
        (SimChannel::Alipay, Some(card)) => Some(format!("银行卡 {card}")),
        (SimChannel::Card, card) => card.map(str::to_string),
        (SimChannel::Wechat, Some(other)) => panic!("no expectation for {other}"),
    }
}

/// The outcome's kind, for comparisons that ignore ids and times.
pub fn kind(outcome: &ChannelOutcome) -> &'static str {
    match outcome {
        ChannelOutcome::Processing { .. } => "processing",
        ChannelOutcome::Succeeded { .. } => "succeeded",
        ChannelOutcome::Abnormal { .. } => "abnormal",
        ChannelOutcome::Failed { .. } => "failed",
    }
}

pub fn received_account(outcome: &ChannelOutcome) -> Option<String> {
    match outcome {
        ChannelOutcome::Succeeded {
            received_account, ..
        } => received_account.clone(),
        other => panic!("expected Succeeded, got {other:?}"),
    }
}

/// One callback as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct CallbackReceiver {
    pub url: String,
    rx: mpsc::Receiver<Received>,
}

impl CallbackReceiver {
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(CALLBACK_WAIT, self.rx.recv())
            .await
            .expect("a callback within the wait")
            .expect("receiver open")
    }

    pub async fn take(&mut self, count: usize) -> Vec<Received> {
        let mut received = Vec::with_capacity(count);
        for _ in 0..count {
            received.push(self.next().await);
        }
        received
    }
}

pub async fn start_receiver() -> CallbackReceiver {
    let (tx, rx) = mpsc::channel(CALLBACK_BUFFER);
    let app = Router::new().route(
        "/notify",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_string(),
                            value.to_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                let _ = tx
                    .send(Received {
                        headers,
                        body: body.to_vec(),
                    })
                    .await;
                StatusCode::OK
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    CallbackReceiver {
        url: format!("http://{addr}/notify"),
        rx,
    }
}

pub fn faults(spec: &str) -> FaultConfig {
    FaultConfig::from_spec(spec).unwrap()
}
