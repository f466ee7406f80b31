//! The WeChat Pay simulator's routes: the v3 refund shape of [`crate::wechat`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};

use super::books::{BookEntry, ExecuteCall, Execution, Refusal, SimStatus};
use super::{SimState, never_answer};
use crate::wechat::{CURRENCY, REFUNDS_PATH, WechatErrorCode, WechatEventType, WechatStatus, wire};

/// What WeChat Pay reports for a refund to the wallet balance.
pub const BALANCE_ACCOUNT: &str = "支付用户零钱";
/// The bank the simulator pretends every card belongs to.
const SIM_CARD_BANK: &str = "招商银行信用卡";

pub(super) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(REFUNDS_PATH, post(create))
        .route(&format!("{REFUNDS_PATH}/{{out_refund_no}}"), get(query))
}

/// `user_received_account` for an account: "招商银行信用卡0403" for a card ending in 0403, the
/// balance when there is no account.
pub fn received_account(account: Option<&str>) -> String {
    let Some(account) = account else {
        return BALANCE_ACCOUNT.to_string();
    };
    let digits: Vec<char> = account.chars().filter(char::is_ascii_digit).collect();
    match digits.len().checked_sub(4).map(|start| &digits[start..]) {
        Some(last4) => format!("{SIM_CARD_BANK}{}", last4.iter().collect::<String>()),
        None => account.to_string(),
    }
}

fn beijing_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&crate::alipay::beijing())
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn wechat_status(status: SimStatus) -> WechatStatus {
    match status {
        SimStatus::Processing => WechatStatus::Processing,
        SimStatus::Success => WechatStatus::Success,
        SimStatus::Abnormal => WechatStatus::Abnormal,
    }
}

fn refund_record(entry: &BookEntry) -> wire::Refund {
    wire::Refund {
        refund_id: entry.channel_refund_id.clone(),
        out_refund_no: entry.refund_no.clone(),
        out_trade_no: Some(entry.payment_ref.clone()),
        status: wechat_status(entry.status).as_str().to_string(),
        user_received_account: Some(received_account(entry.account.as_deref())),
        success_time: entry.succeeded_at.map(beijing_time),
        create_time: beijing_time(entry.created_at),
        amount: wire::RefundAmount {
            refund: entry.amount_fen,
            total: entry.payment_total_fen,
            payer_refund: entry.amount_fen,
            currency: CURRENCY.to_string(),
        },
    }
}

pub(super) fn callback_body(entry: &BookEntry, status: SimStatus) -> serde_json::Result<Vec<u8>> {
    let wechat = wechat_status(status);
    let note = wire::Notification {
        id: entry.event_id(status),
        create_time: beijing_time(entry.event_time()),
        event_type: WechatEventType::for_status(wechat).as_str().to_string(),
        resource: wire::NotificationResource {
            out_trade_no: Some(entry.payment_ref.clone()),
            out_refund_no: entry.refund_no.clone(),
            refund_id: entry.channel_refund_id.clone(),
            refund_status: wechat.as_str().to_string(),
            user_received_account: Some(received_account(entry.account.as_deref())),
            success_time: match status {
                SimStatus::Success => entry.succeeded_at.map(beijing_time),
                SimStatus::Processing | SimStatus::Abnormal => None,
            },
        },
    };
    serde_json::to_vec(&note)
}

fn error(status: StatusCode, code: WechatErrorCode, message: &str) -> Response {
    let body = wire::ErrorBody {
        code: code.as_str().to_string(),
        message: message.to_string(),
    };
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        WechatErrorCode::SignError,
        "signature missing or invalid",
    )
}

fn refusal_error(refusal: Refusal) -> Response {
    let code = match refusal {
        Refusal::AmountNotPositive | Refusal::AccountMasked => WechatErrorCode::ParamError,
        Refusal::AmountOverTotal | Refusal::CumulativeOverTotal | Refusal::Mismatch => {
            WechatErrorCode::InvalidRequest
        }
    };
    error(StatusCode::BAD_REQUEST, code, refusal.message())
}

fn busy_error(attempt: u32) -> Response {
    // Alternate between WeChat Pay's two busy answers so clients meet both.
    if attempt % 2 == 1 {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            WechatErrorCode::SystemError,
            "系统错误",
        )
    } else {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            WechatErrorCode::FrequencyLimited,
            "频率超限",
        )
    }
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
        Err(parse) => {
            return error(
                StatusCode::BAD_REQUEST,
                WechatErrorCode::ParamError,
                &parse.to_string(),
            );
        }
    };
    if request.amount.currency != CURRENCY {
        return error(
            StatusCode::BAD_REQUEST,
            WechatErrorCode::ParamError,
            "currency must be CNY",
        );
    }
    state.pause(&request.out_refund_no).await;
    let call = ExecuteCall {
        refund_no: request.out_refund_no.clone(),
        payment_ref: request.out_trade_no,
        amount_fen: request.amount.refund,
        payment_total_fen: request.amount.total,
        payer_account: request.payer_account,
        reroute_account: request.reroute_account,
        notify_url: request.notify_url,
    };
    let channel_refund_id = state.channel_id("50", &request.out_refund_no);
    match state.execute(&call, channel_refund_id) {
        Execution::Busy { attempt } => busy_error(attempt),
        Execution::Refused(refusal) => refusal_error(refusal),
        Execution::Booked { lost: true, .. } => never_answer().await,
        Execution::Booked { entry, .. } => Json(refund_record(&entry)).into_response(),
    }
}

async fn query(
    State(state): State<Arc<SimState>>,
    Path(out_refund_no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !state.authentic(&method, &uri, &headers, b"") {
        return unauthorized();
    }
    state.pause(&out_refund_no).await;
    match state.entry(&out_refund_no) {
        Some(entry) => Json(refund_record(&entry)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            WechatErrorCode::ResourceNotExists,
            "退款单不存在",
        ),
    }
}
