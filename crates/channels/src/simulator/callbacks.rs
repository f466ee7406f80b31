//! Callback delivery: signed POSTs to the notify URL for each status change, with the
//! duplicate and out-of-order faults, retried a few times and then dropped. yuanlu must not
//! depend on them (it also queries), so dropping is the honest failure mode.
//!
//! What is announced (the plan, the event's id and time) is the entry's own
//! ([`BookEntry::callback_plan`]); each channel's simulator renders it; this module only
//! delivers, so it depends on the simulators and none of them on it.

use std::sync::Arc;
use std::time::Duration;

use super::books::{BookEntry, SimStatus};
use super::{SimChannel, SimState};
use crate::signing;

/// Tries per callback before it is dropped.
pub const MAX_CALLBACK_ATTEMPTS: u32 = 4;
/// First retry delay; doubled on each further try (50, 100, 200 ms).
pub const CALLBACK_BACKOFF_BASE_MS: u64 = 50;
/// How long one delivery may take.
pub const CALLBACK_TIMEOUT_MS: u64 = 2_000;
/// Deliveries in flight at once; more are dropped.
pub const MAX_CONCURRENT_DELIVERIES: usize = 256;

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(CALLBACK_TIMEOUT_MS))
        .build()
        // Only a broken TLS backend makes the builder fail, and we use none.
        .unwrap_or_default()
}

fn render(
    channel: SimChannel,
    entry: &BookEntry,
    status: SimStatus,
) -> serde_json::Result<Vec<u8>> {
    match channel {
        SimChannel::Wechat => super::wechat::callback_body(entry, status),
        SimChannel::Alipay => super::alipay::callback_body(entry, status),
        SimChannel::Card => super::card::callback_body(entry, status),
    }
}

/// Starts delivering an entry's callbacks, if anyone is listening and a slot is free.
pub(crate) fn spawn_for(state: Arc<SimState>, entry: BookEntry) {
    let Some(url) = entry
        .notify_url
        .clone()
        .or_else(|| state.config.notify_url.clone())
    else {
        return;
    };
    let Ok(permit) = state.callback_slots.clone().try_acquire_owned() else {
        tracing::warn!(refund_no = %entry.refund_no, "simulator callback dropped: too many in flight");
        return;
    };
    let bodies: Vec<Vec<u8>> = entry
        .callback_plan(state.faults())
        .into_iter()
        .filter_map(|status| render(state.channel(), &entry, status).ok())
        .collect();
    tokio::spawn(async move {
        let _permit = permit;
        // One after another, so the receiver sees them in the planned order.
        for body in bodies {
            deliver(&state, &url, &body).await;
        }
    });
}

async fn deliver(state: &SimState, url: &str, body: &[u8]) -> bool {
    for attempt in 0..MAX_CALLBACK_ATTEMPTS {
        if attempt > 0 {
            let backoff_ms = CALLBACK_BACKOFF_BASE_MS << (attempt - 1);
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        }
        if send_once(state, url, body).await {
            return true;
        }
    }
    tracing::warn!(
        url,
        "simulator callback dropped after {MAX_CALLBACK_ATTEMPTS} attempts"
    );
    false
}

async fn send_once(state: &SimState, url: &str, body: &[u8]) -> bool {
    let Ok(signature) = signing::sign(
        state.config.secret.as_bytes(),
        signing::transport_now_unix(),
        body,
    ) else {
        return false;
    };
    state
        .callback_client
        .post(url)
        .header(state.channel().signature_header(), signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}
