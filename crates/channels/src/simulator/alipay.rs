//! The Alipay simulator's gateway: `alipay.trade.refund` and
//! `alipay.trade.fastpay.refund.query` in the shape of [`crate::alipay`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::books::{BookEntry, ExecuteCall, Execution, Refusal, SimStatus};
use super::{SimState, never_answer};
use crate::alipay::{
    AlipayCode, AlipayRefundStatus, AlipaySubCode, GATEWAY_PATH, METHOD_REFUND,
    METHOD_REFUND_QUERY, fen_to_yuan, format_time, wire, yuan_to_fen,
};

/// What the simulator reports for a refund to the Alipay balance.
pub const BALANCE_ACCOUNT: &str = "余额";

pub(super) fn routes() -> Router<Arc<SimState>> {
    Router::new().route(GATEWAY_PATH, post(gateway))
}

/// The received account: the balance, or "银行卡 **** 0403" for an account given.
pub fn received_account(account: Option<&str>) -> String {
    match account {
        None => BALANCE_ACCOUNT.to_string(),
        Some(account) => format!("银行卡 {account}"),
    }
}

fn refund_status(status: SimStatus) -> AlipayRefundStatus {
    match status {
        SimStatus::Processing => AlipayRefundStatus::RefundProcessing,
        SimStatus::Success => AlipayRefundStatus::RefundSuccess,
        SimStatus::Abnormal => AlipayRefundStatus::RefundAbnormal,
    }
}

pub(super) fn callback_body(entry: &BookEntry, status: SimStatus) -> serde_json::Result<Vec<u8>> {
    let note = wire::Notification {
        notify_id: entry.event_id(status),
        notify_time: format_time(entry.event_time()),
        notify_type: "refund_status_sync".to_string(),
        out_trade_no: entry.payment_ref.clone(),
        out_request_no: entry.refund_no.clone(),
        trade_no: entry.channel_refund_id.clone(),
        refund_status: refund_status(status).as_str().to_string(),
        refund_amount: fen_to_yuan(entry.amount_fen),
        gmt_refund_pay: match status {
            SimStatus::Success => entry.succeeded_at.map(format_time),
            SimStatus::Processing | SimStatus::Abnormal => None,
        },
        received_account: Some(received_account(entry.account.as_deref())),
    };
    serde_json::to_vec(&note)
}

fn refund_answer(response: wire::RefundResponse) -> Response {
    Json(wire::RefundEnvelope {
        alipay_trade_refund_response: response,
    })
    .into_response()
}

fn refund_failure(code: AlipayCode, sub_code: &str, sub_msg: &str) -> Response {
    let msg = match code {
        AlipayCode::ServiceUnavailable => "Service Currently Unavailable",
        AlipayCode::MissingParameter => "Missing Required Arguments",
        AlipayCode::InvalidParameter => "Invalid Arguments",
        _ => "Business Failed",
    };
    refund_answer(wire::RefundResponse {
        code: code.as_str().to_string(),
        msg: msg.to_string(),
        sub_code: Some(sub_code.to_string()),
        sub_msg: Some(sub_msg.to_string()),
        ..wire::RefundResponse::default()
    })
}

fn business_failure(sub: AlipaySubCode, sub_msg: &str) -> Response {
    refund_failure(AlipayCode::BusinessFailed, sub.as_str(), sub_msg)
}

fn refusal_answer(refusal: Refusal) -> Response {
    let sub = match refusal {
        Refusal::AmountNotPositive | Refusal::AccountMasked => AlipaySubCode::InvalidParameter,
        Refusal::AmountOverTotal | Refusal::CumulativeOverTotal => AlipaySubCode::RefundFeeError,
        Refusal::Mismatch => AlipaySubCode::RefundAmtNotEqualTotal,
    };
    business_failure(sub, refusal.message())
}

fn busy_answer(attempt: u32) -> Response {
    // Alternate between Alipay's two busy answers so clients meet both.
    if attempt % 2 == 1 {
        business_failure(AlipaySubCode::SystemError, "系统错误")
    } else {
        refund_failure(
            AlipayCode::ServiceUnavailable,
            "isp.unknow-error",
            "服务暂不可用",
        )
    }
}

fn booked_answer(entry: &BookEntry, paid_now: bool) -> Response {
    if entry.status == SimStatus::Abnormal {
        return business_failure(AlipaySubCode::BuyerAccountAbnormal, "买家账户异常");
    }
    refund_answer(wire::RefundResponse {
        code: AlipayCode::Success.as_str().to_string(),
        msg: "Success".to_string(),
        fund_change: Some(if paid_now { "Y" } else { "N" }.to_string()),
        // The simulator reports this refund's amount (real Alipay: the trade's refunded total).
        refund_fee: Some(fen_to_yuan(entry.amount_fen)),
        trade_no: Some(entry.channel_refund_id.clone()),
        out_trade_no: Some(entry.payment_ref.clone()),
        gmt_refund_pay: entry.succeeded_at.map(format_time),
        received_account: Some(received_account(entry.account.as_deref())),
        ..wire::RefundResponse::default()
    })
}

fn gateway_error(status: StatusCode, code: AlipayCode, sub_code: &str, sub_msg: &str) -> Response {
    let body =
        json!({"error_response": {"code": code.as_str(), "msg": sub_msg, "sub_code": sub_code}});
    (status, Json(body)).into_response()
}

async fn gateway(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.authentic(&method, &uri, &headers, &body) {
        return gateway_error(
            StatusCode::UNAUTHORIZED,
            AlipayCode::InsufficientAuthorization,
            "isv.invalid-signature",
            "验签出错",
        );
    }
    let request: wire::GatewayRequest<Value> = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse) => {
            return gateway_error(
                StatusCode::BAD_REQUEST,
                AlipayCode::MissingParameter,
                "isv.missing-method",
                &parse.to_string(),
            );
        }
    };
    match request.method.as_str() {
        METHOD_REFUND => refund(&state, request.notify_url, request.biz_content).await,
        METHOD_REFUND_QUERY => query(&state, request.biz_content).await,
        other => gateway_error(
            StatusCode::BAD_REQUEST,
            AlipayCode::InvalidParameter,
            "isv.invalid-method",
            &format!("unknown method {other:?}"),
        ),
    }
}

/// A refund request the gateway refuses before it reaches the books.
struct BadParameter {
    code: AlipayCode,
    sub_code: &'static str,
    sub_msg: String,
}

impl BadParameter {
    fn answer(&self) -> Response {
        refund_failure(self.code, self.sub_code, &self.sub_msg)
    }
}

fn refund_call(
    biz: wire::RefundBiz,
    notify_url: Option<String>,
) -> Result<ExecuteCall, BadParameter> {
    let invalid = |field: &str, text: &str| BadParameter {
        code: AlipayCode::InvalidParameter,
        sub_code: "isv.invalid-parameter",
        sub_msg: format!("{field} {text:?} is not a yuan amount"),
    };
    let amount_fen = yuan_to_fen(&biz.refund_amount)
        .map_err(|_| invalid("refund_amount", &biz.refund_amount))?;
    let total = biz.total_amount.ok_or_else(|| BadParameter {
        code: AlipayCode::MissingParameter,
        sub_code: "isv.missing-total-amount",
        sub_msg: "total_amount (simulator extension) is required".to_string(),
    })?;
    let payment_total_fen = yuan_to_fen(&total).map_err(|_| invalid("total_amount", &total))?;
    Ok(ExecuteCall {
        refund_no: biz.out_request_no,
        payment_ref: biz.out_trade_no,
        amount_fen,
        payment_total_fen,
        payer_account: biz.payer_account,
        reroute_account: biz.reroute_account,
        notify_url,
    })
}

async fn refund(state: &Arc<SimState>, notify_url: Option<String>, biz: Value) -> Response {
    let biz: wire::RefundBiz = match serde_json::from_value(biz) {
        Ok(biz) => biz,
        Err(parse) => {
            return refund_failure(
                AlipayCode::MissingParameter,
                "isv.missing-parameter",
                &parse.to_string(),
            );
        }
    };
    let call = match refund_call(biz, notify_url) {
        Ok(call) => call,
        Err(bad) => return bad.answer(),
    };
    state.pause(&call.refund_no).await;
    // Alipay's trade_no belongs to the payment, not to the refund.
    let trade_no = state.channel_id("2026", &call.payment_ref);
    match state.execute(&call, trade_no) {
        Execution::Busy { attempt } => busy_answer(attempt),
        Execution::Refused(refusal) => refusal_answer(refusal),
        Execution::Booked { lost: true, .. } => never_answer().await,
        Execution::Booked {
            entry, paid_now, ..
        } => booked_answer(&entry, paid_now),
    }
}

fn query_answer(response: wire::QueryResponse) -> Response {
    Json(wire::QueryEnvelope {
        alipay_trade_fastpay_refund_query_response: response,
    })
    .into_response()
}

async fn query(state: &Arc<SimState>, biz: Value) -> Response {
    let biz: wire::QueryBiz = match serde_json::from_value(biz) {
        Ok(biz) => biz,
        Err(parse) => {
            return query_answer(wire::QueryResponse {
                code: AlipayCode::MissingParameter.as_str().to_string(),
                msg: "Missing Required Arguments".to_string(),
                sub_msg: Some(parse.to_string()),
                ..wire::QueryResponse::default()
            });
        }
    };
    state.pause(&biz.out_request_no).await;
    let mut answer = wire::QueryResponse {
        code: AlipayCode::Success.as_str().to_string(),
        msg: "Success".to_string(),
        out_trade_no: Some(biz.out_trade_no),
        out_request_no: Some(biz.out_request_no.clone()),
        ..wire::QueryResponse::default()
    };
    // "Success or nothing": a refund not (yet) successful is not reported.
    if let Some(entry) = state
        .entry(&biz.out_request_no)
        .filter(|e| e.status == SimStatus::Success)
    {
        answer.trade_no = Some(entry.channel_refund_id.clone());
        answer.refund_amount = Some(fen_to_yuan(entry.amount_fen));
        answer.refund_status = Some(AlipayRefundStatus::RefundSuccess.as_str().to_string());
        answer.gmt_refund_pay = entry.succeeded_at.map(format_time);
        answer.received_account = Some(received_account(entry.account.as_deref()));
    }
    query_answer(answer)
}
