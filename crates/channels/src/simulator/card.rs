//! The card-network simulator's routes, in the shape of [`crate::card`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use yuanlu_domain::channel::Channel;

use super::books::{BookEntry, ExecuteCall, Execution, Refusal, SimStatus};
use super::{SimState, never_answer};
use crate::card::{CardStatus, REFUNDS_PATH, ResponseCode, carries, wire};

pub(super) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(REFUNDS_PATH, post(create))
        .route(&format!("{REFUNDS_PATH}/{{refund_ref}}"), get(query))
}

fn utc_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The record as the network reports it in `status`.
fn record(entry: &BookEntry, status: SimStatus) -> wire::RefundRecord {
    let (card_status, code) = match status {
        SimStatus::Success => (CardStatus::Approved, ResponseCode::Approved00),
        SimStatus::Processing => (CardStatus::Pending, ResponseCode::Approved00),
        // A cancelled card: the issuer no longer knows the number.
        SimStatus::Abnormal => (CardStatus::CardClosed, ResponseCode::InvalidCard14),
    };
    wire::RefundRecord {
        refund_ref: entry.refund_no.clone(),
        network_ref: Some(entry.channel_refund_id.clone()),
        status: card_status.as_str().to_string(),
        response_code: code.as_str().to_string(),
        message: match status {
            SimStatus::Abnormal => "card closed".to_string(),
            SimStatus::Success | SimStatus::Processing => code.message().to_string(),
        },
        received_account: entry.account.clone(),
        settled_at: match status {
            SimStatus::Success => entry.succeeded_at.map(utc_time),
            SimStatus::Processing | SimStatus::Abnormal => None,
        },
    }
}

pub(super) fn callback_body(entry: &BookEntry, status: SimStatus) -> serde_json::Result<Vec<u8>> {
    let note = wire::Notification {
        event_id: entry.event_id(status),
        created_at: utc_time(entry.event_time()),
        record: record(entry, status),
    };
    serde_json::to_vec(&note)
}

fn error(status: StatusCode, error: &str, message: &str) -> Response {
    let body = wire::ErrorBody {
        error: error.to_string(),
        message: message.to_string(),
    };
    (status, Json(body)).into_response()
}

/// A decline that books nothing.
fn decline(refund_ref: &str, code: ResponseCode, message: &str) -> Response {
    Json(wire::RefundRecord {
        refund_ref: refund_ref.to_string(),
        network_ref: None,
        status: CardStatus::Declined.as_str().to_string(),
        response_code: code.as_str().to_string(),
        message: message.to_string(),
        received_account: None,
        settled_at: None,
    })
    .into_response()
}

fn refusal_decline(refund_ref: &str, refusal: Refusal) -> Response {
    let code = match refusal {
        Refusal::AmountNotPositive | Refusal::AmountOverTotal | Refusal::CumulativeOverTotal => {
            ResponseCode::InvalidAmount13
        }
        Refusal::Mismatch => ResponseCode::InvalidTransaction12,
        Refusal::AccountMasked => ResponseCode::InvalidCard14,
    };
    decline(refund_ref, code, refusal.message())
}

fn busy_decline(refund_ref: &str, attempt: u32) -> Response {
    // Alternate between the two transient codes so clients meet both.
    let code = if attempt % 2 == 1 {
        ResponseCode::SystemMalfunction96
    } else {
        ResponseCode::IssuerUnavailable91
    };
    decline(refund_ref, code, code.message())
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "signature missing or invalid",
    )
}

async fn create(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.authentic(&method, &uri, &headers, &body) {
        return unauthorized();
    }
    let request: wire::RefundCreate = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse) => return error(StatusCode::BAD_REQUEST, "bad_request", &parse.to_string()),
    };
    if !Channel::parse(&request.product).is_some_and(carries) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "product must be credit_card, debit_card or unionpay_qr",
        );
    }
    state.pause(&request.refund_ref).await;
    let refund_ref = request.refund_ref.clone();
    let call = ExecuteCall {
        refund_no: request.refund_ref,
        payment_ref: request.original_ref,
        amount_fen: request.amount_fen,
        payment_total_fen: request.original_amount_fen,
        payer_account: request.card,
        reroute_account: request.reroute_account,
        notify_url: request.notify_url,
    };
    let network_ref = state.channel_id("CN", &refund_ref);
    match state.execute(&call, network_ref) {
        Execution::Busy { attempt } => busy_decline(&refund_ref, attempt),
        Execution::Refused(refusal) => refusal_decline(&refund_ref, refusal),
        Execution::Booked { lost: true, .. } => never_answer().await,
        Execution::Booked { entry, .. } => Json(record(&entry, entry.status)).into_response(),
    }
}

async fn query(
    State(state): State<Arc<SimState>>,
    Path(refund_ref): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !state.authentic(&method, &uri, &headers, b"") {
        return unauthorized();
    }
    state.pause(&refund_ref).await;
    match state.entry(&refund_ref) {
        Some(entry) => Json(record(&entry, entry.status)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no refund with this refund_ref",
        ),
    }
}
