//! Alipay (open-platform gateway shape): `alipay.trade.refund` and
//! `alipay.trade.fastpay.refund.query`.
//!
//! - Everything goes to `POST /gateway.do` with `{method, notify_url?, biz_content: {…}}`.
//!   Real Alipay takes form fields with `biz_content` as a JSON string and an RSA2 `sign`
//!   field; the simulator takes one JSON body signed with HMAC-SHA256 in
//!   [`SIGNATURE_HEADER`] (see [`crate::signing`]). Real keys plug in at
//!   `http::SignedClient` and [`AlipayConnector::parse_callback`].
//! - Refund: `biz_content = {out_trade_no, out_request_no (our refund id), refund_amount: "12.34"}`
//!   answered by `{alipay_trade_refund_response: {code: "10000", msg, fund_change: "Y"|"N",
//!   refund_fee, trade_no, out_trade_no, gmt_refund_pay}}`, or by an error
//!   `{code: "20000"|"40004"…, sub_code: "ACQ.…", sub_msg}` (see [`AlipayCode`],
//!   [`AlipaySubCode`]).
//! - `fund_change: "Y"` means money moved: succeeded. `"N"` means no money moved **by this
//!   call**: on a first request the refund is still processing, on a repeat it may have been
//!   refunded before. The connector cannot tell the two apart, so it asks the query.
//! - Query: `biz_content = {out_trade_no, out_request_no, query_options: ["gmt_refund_pay"]}`
//!   (without that option Alipay leaves the refund time out of the answer) answered by
//!   `{alipay_trade_fastpay_refund_query_response: {code: "10000", refund_status: "REFUND_SUCCESS",
//!   refund_amount, gmt_refund_pay}}`, or `{code: "10000"}` without `refund_amount`: Alipay
//!   has no successful refund by that number (never received, or not done yet). "The query
//!   returns success or nothing"; resending the same number is then safe.
//! - Amounts are yuan strings with at most two decimals: [`fen_to_yuan`] and
//!   [`yuan_to_fen`] convert exactly with integer arithmetic.
//! - Callbacks: `POST notify_url` with [`wire::Notification`].
//!
//! **Extensions** (simulator only; real Alipay knows them from the trade): `biz_content` may
//! carry `total_amount` (the payment, so the simulator can refuse over-refunds),
//! `payer_account` and `reroute_account`; answers carry `received_account` (real Alipay
//! reports `refund_detail_item_list` fund channels instead). Callback and query statuses
//! `REFUND_PROCESSING` and `REFUND_ABNORMAL` are the simulator's.

use yuanlu_domain::channel::Channel;

use crate::connector::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use crate::http::{self, ConnectorBuildError, ConnectorConfig, HttpReply, SignedClient};

/// The gateway every method goes to.
pub const GATEWAY_PATH: &str = "/gateway.do";
/// Header carrying `t=…,v1=…` on requests and callbacks (simulator scheme).
pub const SIGNATURE_HEADER: &str = "Alipay-Signature";
pub const METHOD_REFUND: &str = "alipay.trade.refund";
pub const METHOD_REFUND_QUERY: &str = "alipay.trade.fastpay.refund.query";
/// The `query_options` entry without which Alipay leaves `gmt_refund_pay` out of a query answer.
pub const QUERY_OPTION_REFUND_TIME: &str = "gmt_refund_pay";
/// Alipay's time format, in Beijing time.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const BEIJING_OFFSET_SECS: i32 = 8 * 3_600;
const LABEL: &str = "Alipay";

/// Longest yuan string accepted: 17 integer digits (i64 fen), a dot and two decimals.
pub const MAX_YUAN_CHARS: usize = 20;

/// The JSON bodies, shared with the simulator.
pub mod wire;

mod amount;
pub(crate) use amount::beijing;
pub use amount::{AmountError, fen_to_yuan, format_time, parse_time, yuan_to_fen};

/// Gateway result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlipayCode {
    Success,
    ServiceUnavailable,
    InsufficientAuthorization,
    MissingParameter,
    InvalidParameter,
    BusinessFailed,
    InsufficientPermissions,
}

impl AlipayCode {
    pub const ALL: [AlipayCode; 7] = [
        AlipayCode::Success,
        AlipayCode::ServiceUnavailable,
        AlipayCode::InsufficientAuthorization,
        AlipayCode::MissingParameter,
        AlipayCode::InvalidParameter,
        AlipayCode::BusinessFailed,
        AlipayCode::InsufficientPermissions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlipayCode::Success => "10000",
            AlipayCode::ServiceUnavailable => "20000",
            AlipayCode::InsufficientAuthorization => "20001",
            AlipayCode::MissingParameter => "40001",
            AlipayCode::InvalidParameter => "40002",
            AlipayCode::BusinessFailed => "40004",
            AlipayCode::InsufficientPermissions => "40006",
        }
    }

    pub fn parse(text: &str) -> Option<AlipayCode> {
        AlipayCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Business failure sub-codes of `alipay.trade.refund` (code 40004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlipaySubCode {
    SystemError,
    InvalidParameter,
    TradeNotExist,
    TradeNotAllowRefund,
    TradeHasFinished,
    TradeStatusError,
    RefundAmtNotEqualTotal,
    RefundFeeError,
    SellerBalanceNotEnough,
    DiscordantRepeatRequest,
    ReasonTradeBeenFreezen,
    BuyerAccountAbnormal,
    BuyerError,
}

impl AlipaySubCode {
    pub const ALL: [AlipaySubCode; 13] = [
        AlipaySubCode::SystemError,
        AlipaySubCode::InvalidParameter,
        AlipaySubCode::TradeNotExist,
        AlipaySubCode::TradeNotAllowRefund,
        AlipaySubCode::TradeHasFinished,
        AlipaySubCode::TradeStatusError,
        AlipaySubCode::RefundAmtNotEqualTotal,
        AlipaySubCode::RefundFeeError,
        AlipaySubCode::SellerBalanceNotEnough,
        AlipaySubCode::DiscordantRepeatRequest,
        AlipaySubCode::ReasonTradeBeenFreezen,
        AlipaySubCode::BuyerAccountAbnormal,
        AlipaySubCode::BuyerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlipaySubCode::SystemError => "ACQ.SYSTEM_ERROR",
            AlipaySubCode::InvalidParameter => "ACQ.INVALID_PARAMETER",
            AlipaySubCode::TradeNotExist => "ACQ.TRADE_NOT_EXIST",
            AlipaySubCode::TradeNotAllowRefund => "ACQ.TRADE_NOT_ALLOW_REFUND",
            AlipaySubCode::TradeHasFinished => "ACQ.TRADE_HAS_FINISHED",
            AlipaySubCode::TradeStatusError => "ACQ.TRADE_STATUS_ERROR",
            AlipaySubCode::RefundAmtNotEqualTotal => "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            AlipaySubCode::RefundFeeError => "ACQ.REFUND_FEE_ERROR",
            AlipaySubCode::SellerBalanceNotEnough => "ACQ.SELLER_BALANCE_NOT_ENOUGH",
            AlipaySubCode::DiscordantRepeatRequest => "ACQ.DISCORDANT_REPEAT_REQUEST",
            AlipaySubCode::ReasonTradeBeenFreezen => "ACQ.REASON_TRADE_BEEN_FREEZEN",
            AlipaySubCode::BuyerAccountAbnormal => "ACQ.BUYER_ACCOUNT_ABNORMAL",
            AlipaySubCode::BuyerError => "ACQ.BUYER_ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<AlipaySubCode> {
        AlipaySubCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// `fund_change` of a refund answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FundChange {
    Yes,
    No,
}

impl FundChange {
    pub fn parse(text: &str) -> Option<FundChange> {
        match text {
            "Y" => Some(FundChange::Yes),
            "N" => Some(FundChange::No),
            _ => None,
        }
    }
}

/// Refund statuses: `REFUND_SUCCESS` is Alipay's; the other two are the simulator's (callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlipayRefundStatus {
    RefundSuccess,
    RefundProcessing,
    RefundAbnormal,
}

impl AlipayRefundStatus {
    pub const ALL: [AlipayRefundStatus; 3] = [
        AlipayRefundStatus::RefundSuccess,
        AlipayRefundStatus::RefundProcessing,
        AlipayRefundStatus::RefundAbnormal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlipayRefundStatus::RefundSuccess => "REFUND_SUCCESS",
            AlipayRefundStatus::RefundProcessing => "REFUND_PROCESSING",
            AlipayRefundStatus::RefundAbnormal => "REFUND_ABNORMAL",
        }
    }

    pub fn parse(text: &str) -> Option<AlipayRefundStatus> {
        AlipayRefundStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a gateway result code means before any field is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeVerdict {
    /// `10000`: read the answer's fields.
    Success,
    /// A refusal that is an outcome of its own (an abnormal buyer account).
    Outcome(ChannelOutcome),
}

/// Maps `code`/`sub_code` onto a verdict or an error; unknown codes are unknown outcomes.
pub fn code_verdict(
    code: &str,
    sub_code: Option<&str>,
    sub_msg: &str,
) -> Result<CodeVerdict, ConnectorError> {
    let code = AlipayCode::parse(code).ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered an unknown code {code:?}: {sub_msg}"
        ))
    })?;
    match code {
        AlipayCode::Success => Ok(CodeVerdict::Success),
        AlipayCode::ServiceUnavailable => Err(ConnectorError::Transient(format!(
            "{LABEL} service unavailable (20000): {sub_msg}"
        ))),
        AlipayCode::InsufficientAuthorization | AlipayCode::InsufficientPermissions => {
            Err(ConnectorError::Final(format!(
                "{LABEL} refused our credentials ({}): {sub_msg}",
                code.as_str()
            )))
        }
        AlipayCode::MissingParameter | AlipayCode::InvalidParameter => Err(ConnectorError::Final(
            format!("{LABEL} refused the request ({}): {sub_msg}", code.as_str()),
        )),
        AlipayCode::BusinessFailed => {
            let sub_code = sub_code.ok_or_else(|| {
                ConnectorError::Unknown(format!("{LABEL} answered 40004 without sub_code"))
            })?;
            let sub = AlipaySubCode::parse(sub_code).ok_or_else(|| {
                ConnectorError::Unknown(format!(
                    "{LABEL} answered an unknown sub_code {sub_code:?}: {sub_msg}"
                ))
            })?;
            sub_code_verdict(sub, sub_msg)
        }
    }
}

/// Maps a 40004 sub-code.
pub fn sub_code_verdict(sub: AlipaySubCode, sub_msg: &str) -> Result<CodeVerdict, ConnectorError> {
    let name = sub.as_str();
    match sub {
        AlipaySubCode::SystemError => Err(ConnectorError::Transient(format!(
            "{LABEL} busy ({name}): {sub_msg}"
        ))),
        AlipaySubCode::BuyerAccountAbnormal | AlipaySubCode::BuyerError => {
            Ok(CodeVerdict::Outcome(ChannelOutcome::Abnormal {
                channel_refund_id: None,
                reason: format!(
                    "the payer's Alipay account cannot receive it ({name}): reroute; {sub_msg}"
                ),
            }))
        }
        AlipaySubCode::SellerBalanceNotEnough => Err(ConnectorError::Final(format!(
            "the merchant's Alipay balance cannot cover the refund ({name}): {sub_msg}"
        ))),
        AlipaySubCode::TradeNotAllowRefund
        | AlipaySubCode::TradeHasFinished
        | AlipaySubCode::TradeStatusError
        | AlipaySubCode::ReasonTradeBeenFreezen => Err(ConnectorError::Final(format!(
            "{LABEL} does not allow refunding this payment ({name}): {sub_msg}"
        ))),
        AlipaySubCode::RefundAmtNotEqualTotal | AlipaySubCode::DiscordantRepeatRequest => {
            Err(ConnectorError::Final(format!(
                "{LABEL} already has this refund number with other details ({name}): {sub_msg}"
            )))
        }
        AlipaySubCode::RefundFeeError
        | AlipaySubCode::InvalidParameter
        | AlipaySubCode::TradeNotExist => Err(ConnectorError::Final(format!(
            "{LABEL} refused the refund ({name}): {sub_msg}"
        ))),
    }
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, ConnectorError> {
    value.ok_or_else(|| ConnectorError::Unknown(format!("{LABEL} answer lacks {field}")))
}

fn succeeded(
    trade_no: Option<&str>,
    gmt_refund_pay: Option<&str>,
    received_account: Option<&str>,
) -> Result<ChannelOutcome, ConnectorError> {
    let gmt = required("gmt_refund_pay", gmt_refund_pay)?;
    let succeeded_at = parse_time(gmt).ok_or_else(|| {
        ConnectorError::Unknown(format!("{LABEL} gmt_refund_pay {gmt:?} is not a time"))
    })?;
    Ok(ChannelOutcome::Succeeded {
        channel_refund_id: required("trade_no", trade_no)?.to_string(),
        received_account: received_account.map(str::to_string),
        succeeded_at,
    })
}

/// What a refund answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    Outcome(ChannelOutcome),
    /// `fund_change: "N"`: processing, or refunded by an earlier request; ask the query.
    NeedsQuery {
        trade_no: String,
    },
}

/// Maps an `alipay.trade.refund` answer.
pub fn read_refund_response(
    response: &wire::RefundResponse,
) -> Result<RefundAnswer, ConnectorError> {
    let sub_msg = response.sub_msg.as_deref().unwrap_or(&response.msg);
    match code_verdict(&response.code, response.sub_code.as_deref(), sub_msg)? {
        CodeVerdict::Outcome(outcome) => Ok(RefundAnswer::Outcome(outcome)),
        CodeVerdict::Success => {
            if let Some(fee) = response.refund_fee.as_deref() {
                yuan_to_fen(fee).map_err(|error| {
                    ConnectorError::Unknown(format!("{LABEL} refund_fee {fee:?}: {error}"))
                })?;
            }
            let fund_change = required("fund_change", response.fund_change.as_deref())?;
            match FundChange::parse(fund_change) {
                Some(FundChange::Yes) => succeeded(
                    response.trade_no.as_deref(),
                    response.gmt_refund_pay.as_deref(),
                    response.received_account.as_deref(),
                )
                .map(RefundAnswer::Outcome),
                Some(FundChange::No) => Ok(RefundAnswer::NeedsQuery {
                    trade_no: required("trade_no", response.trade_no.as_deref())?.to_string(),
                }),
                None => Err(ConnectorError::Unknown(format!(
                    "{LABEL} answered an unknown fund_change {fund_change:?}"
                ))),
            }
        }
    }
}

/// Maps a refund status (query or callback) onto our outcome.
pub fn outcome_from_status(
    status: AlipayRefundStatus,
    trade_no: Option<&str>,
    gmt_refund_pay: Option<&str>,
    received_account: Option<&str>,
) -> Result<ChannelOutcome, ConnectorError> {
    match status {
        AlipayRefundStatus::RefundSuccess => succeeded(trade_no, gmt_refund_pay, received_account),
        AlipayRefundStatus::RefundProcessing => Ok(ChannelOutcome::Processing {
            channel_refund_id: required("trade_no", trade_no)?.to_string(),
        }),
        AlipayRefundStatus::RefundAbnormal => Ok(ChannelOutcome::Abnormal {
            channel_refund_id: trade_no.map(str::to_string),
            reason: "the payer's Alipay account cannot receive it (REFUND_ABNORMAL): reroute"
                .into(),
        }),
    }
}

/// Maps an `alipay.trade.fastpay.refund.query` answer; `None`: no refund by that number.
pub fn read_query_response(
    response: &wire::QueryResponse,
    expected_fen: i64,
) -> Result<Option<ChannelOutcome>, ConnectorError> {
    let sub_msg = response.sub_msg.as_deref().unwrap_or(&response.msg);
    if let CodeVerdict::Outcome(outcome) =
        code_verdict(&response.code, response.sub_code.as_deref(), sub_msg)?
    {
        return Ok(Some(outcome));
    }
    let Some(amount) = response.refund_amount.as_deref() else {
        return Ok(None);
    };
    let amount_fen = yuan_to_fen(amount).map_err(|error| {
        ConnectorError::Unknown(format!("{LABEL} refund_amount {amount:?}: {error}"))
    })?;
    if amount_fen != expected_fen {
        return Err(ConnectorError::Unknown(format!(
            "{LABEL} reports {amount} yuan for this refund number, we sent {}",
            fen_to_yuan(expected_fen)
        )));
    }
    // Alipay documents an empty refund_status on a found refund as success.
    let status = match response.refund_status.as_deref() {
        None => AlipayRefundStatus::RefundSuccess,
        Some(text) => AlipayRefundStatus::parse(text).ok_or_else(|| {
            ConnectorError::Unknown(format!(
                "{LABEL} answered an unknown refund_status {text:?}"
            ))
        })?,
    };
    outcome_from_status(
        status,
        response.trade_no.as_deref(),
        response.gmt_refund_pay.as_deref(),
        response.received_account.as_deref(),
    )
    .map(Some)
}

/// The Alipay connector.
pub struct AlipayConnector {
    http: SignedClient,
}

impl AlipayConnector {
    pub fn new(config: ConnectorConfig) -> Result<Self, ConnectorBuildError> {
        Ok(AlipayConnector {
            http: SignedClient::new(config, SIGNATURE_HEADER, LABEL)?,
        })
    }

    fn refund_body(&self, request: &RefundRequest) -> wire::GatewayRequest<wire::RefundBiz> {
        wire::GatewayRequest {
            method: METHOD_REFUND.to_string(),
            notify_url: self.http.config().notify_url.clone(),
            biz_content: wire::RefundBiz {
                out_trade_no: request.payment_id.clone(),
                out_request_no: request.refund_id.clone(),
                refund_amount: fen_to_yuan(request.amount_fen),
                total_amount: Some(fen_to_yuan(request.payment_amount_fen)),
                payer_account: request.payer_account.clone(),
                reroute_account: request.reroute_account.clone(),
            },
        }
    }

    fn query_body(request: &RefundRequest) -> wire::GatewayRequest<wire::QueryBiz> {
        wire::GatewayRequest {
            method: METHOD_REFUND_QUERY.to_string(),
            notify_url: None,
            biz_content: wire::QueryBiz {
                out_trade_no: request.payment_id.clone(),
                out_request_no: request.refund_id.clone(),
                query_options: vec![QUERY_OPTION_REFUND_TIME.to_string()],
            },
        }
    }

    fn reply_ok(reply: &HttpReply) -> Result<(), ConnectorError> {
        match reply.status {
            200 => Ok(()),
            401 => Err(http::credentials_rejected(LABEL)),
            429 | 503 => Err(ConnectorError::Transient(format!(
                "{LABEL} answered HTTP {}",
                reply.status
            ))),
            other => Err(ConnectorError::Unknown(format!(
                "{LABEL} answered HTTP {other}"
            ))),
        }
    }

    /// `fund_change: "N"`: the query tells a refund done earlier from one still under way.
    /// The refund was accepted either way, so a failed query still means processing.
    async fn settle_no_fund_change(
        &self,
        request: &RefundRequest,
        trade_no: String,
    ) -> ChannelOutcome {
        match self.query(request).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) | Err(_) => ChannelOutcome::Processing {
                channel_refund_id: trade_no,
            },
        }
    }
}

fn check_request(request: &RefundRequest) -> Result<(), ConnectorError> {
    if request.amount_fen <= 0 {
        return Err(ConnectorError::Final(format!(
            "refund amount must be positive, got {} fen",
            request.amount_fen
        )));
    }
    http::check_routed(request, request.channel == Channel::Alipay, LABEL)
}

#[async_trait::async_trait]
impl RefundConnector for AlipayConnector {
    fn channel_name(&self) -> &'static str {
        "alipay"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        check_request(request)?;
        let reply = self
            .http
            .post_json(GATEWAY_PATH, &self.refund_body(request))
            .await?;
        Self::reply_ok(&reply)?;
        let envelope: wire::RefundEnvelope = http::decode(LABEL, &reply)?;
        match read_refund_response(&envelope.alipay_trade_refund_response)? {
            RefundAnswer::Outcome(outcome) => Ok(outcome),
            RefundAnswer::NeedsQuery { trade_no } => {
                Ok(self.settle_no_fund_change(request, trade_no).await)
            }
        }
    }

    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        check_request(request)?;
        let reply = self
            .http
            .post_json(GATEWAY_PATH, &Self::query_body(request))
            .await?;
        Self::reply_ok(&reply)?;
        let envelope: wire::QueryEnvelope = http::decode(LABEL, &reply)?;
        read_query_response(
            &envelope.alipay_trade_fastpay_refund_query_response,
            request.amount_fen,
        )
    }

    fn parse_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        http::verify_callback(&self.http.config().secret, headers, SIGNATURE_HEADER, body)?;
        parse_notification(body)
    }
}

/// Parses a callback body whose signature was verified.
pub fn parse_notification(body: &[u8]) -> Result<CallbackEvent, CallbackError> {
    let note: wire::Notification = serde_json::from_slice(body)
        .map_err(|error| CallbackError(format!("unreadable {LABEL} callback: {error}")))?;
    yuan_to_fen(&note.refund_amount).map_err(|error| {
        CallbackError(format!("refund_amount {:?}: {error}", note.refund_amount))
    })?;
    let status = AlipayRefundStatus::parse(&note.refund_status)
        .ok_or_else(|| CallbackError(format!("unknown refund_status {:?}", note.refund_status)))?;
    let outcome = outcome_from_status(
        status,
        Some(&note.trade_no),
        note.gmt_refund_pay.as_deref(),
        note.received_account.as_deref(),
    )
    .map_err(|error| CallbackError(error.to_string()))?;
    Ok(CallbackEvent {
        refund_id: note.out_request_no,
        outcome,
    })
}

#[cfg(test)]
mod tests;
