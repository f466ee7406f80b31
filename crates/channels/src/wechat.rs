//! WeChat Pay (v3 API shape): domestic refunds.
//!
//! - Execute: `POST /v3/refund/domestic/refunds` with
//!   `{out_trade_no, out_refund_no, reason?, notify_url?, amount: {refund, total, currency: "CNY"}}`
//!   answered by a refund record
//!   `{refund_id, out_refund_no, status, user_received_account, success_time, create_time, amount}`.
//! - Query: `GET /v3/refund/domestic/refunds/{out_refund_no}`: the same record, or
//!   404 `{code: "RESOURCE_NOT_EXISTS"}` when WeChat Pay never saw that number.
//! - Errors: `{code, message}` with HTTP 4xx/5xx; see [`WechatErrorCode`].
//! - Callbacks: `POST notify_url` with `{id, create_time, event_type, resource_type, summary,
//!   resource: {…}}`, see [`wire::Notification`]. WeChat Pay encrypts `resource`
//!   ([`wire::EncryptedResource`]); [`parse_notification`] reads it in clear only and refuses
//!   an encrypted one by name.
//!
//! **Signatures.** Real WeChat Pay signs requests with the merchant's RSA key
//! (`Authorization: WECHATPAY2-SHA256-RSA2048 …`), signs answers and callbacks with the
//! platform's RSA key (`Wechatpay-Signature`, `-Timestamp`, `-Nonce`, `-Serial`), and encrypts
//! callback resources with AES-256-GCM under the merchant's APIv3 key. The simulator uses
//! one shared HMAC-SHA256 secret instead ([`crate::signing`], header [`SIGNATURE_HEADER`]) and
//! sends the resource in clear. Real credentials plug in at two places only:
//! `http::SignedClient` (request signing) and [`WechatConnector::parse_callback`]
//! (signature check plus a decryption step before [`wire::Notification`] is parsed).
//!
//! **Extensions.** Requests may carry `payer_account` and `reroute_account`: the simulator
//! uses them to choose the received account and to settle a rerouted abnormal refund. Real
//! WeChat Pay knows the payer from the order and reroutes through its separate
//! "apply abnormal refund" endpoint; a production connector calls that when
//! `reroute_account` is set.

use chrono::{DateTime, Utc};
use yuanlu_domain::channel::Channel;

use crate::connector::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use crate::http::{self, ConnectorBuildError, ConnectorConfig, HttpReply, SignedClient};

/// The refunds collection.
pub const REFUNDS_PATH: &str = "/v3/refund/domestic/refunds";
/// Header carrying `t=…,v1=…` on requests and callbacks (simulator scheme, see module doc).
pub const SIGNATURE_HEADER: &str = "Wechatpay-Signature";
/// The only currency a domestic refund takes.
pub const CURRENCY: &str = "CNY";
const LABEL: &str = "WeChat Pay";

/// The JSON bodies, shared with the simulator.
pub mod wire {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefundCreate {
        pub out_trade_no: String,
        pub out_refund_no: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub notify_url: Option<String>,
        pub amount: AmountCreate,
        /// Extension (see module doc).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub payer_account: Option<String>,
        /// Extension (see module doc).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reroute_account: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AmountCreate {
        /// Fen.
        pub refund: i64,
        /// Fen: the original payment.
        pub total: i64,
        pub currency: String,
    }

    /// A refund record, as execute and query answer it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Refund {
        pub refund_id: String,
        pub out_refund_no: String,
        #[serde(default)]
        pub out_trade_no: Option<String>,
        /// `SUCCESS`, `PROCESSING`, `CLOSED`, `ABNORMAL`; kept as text so an unknown value is
        /// an error we report, not a parse failure.
        pub status: String,
        #[serde(default)]
        pub user_received_account: Option<String>,
        #[serde(default)]
        pub success_time: Option<String>,
        pub create_time: String,
        pub amount: RefundAmount,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefundAmount {
        pub refund: i64,
        pub total: i64,
        pub payer_refund: i64,
        pub currency: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ErrorBody {
        pub code: String,
        pub message: String,
    }

    /// A callback. Real WeChat Pay encrypts `resource` ([`EncryptedResource`]); this is the
    /// envelope with the resource in clear, as the simulator sends it and as it reads once
    /// decrypted.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Notification {
        pub id: String,
        pub create_time: String,
        /// `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`, or the simulator's
        /// `REFUND.PROCESSING` (a stale event for out-of-order tests).
        pub event_type: String,
        // WeChat Pay's `resource_type` and `summary` are not read.
        pub resource: NotificationResource,
    }

    /// A callback as WeChat Pay sends it: `resource` encrypted with AEAD_AES_256_GCM under
    /// the merchant's APIv3 key. Read only to recognise it (see `parse_notification`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EncryptedNotification {
        pub id: String,
        pub event_type: String,
        pub resource: EncryptedResource,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EncryptedResource {
        /// `AEAD_AES_256_GCM`.
        pub algorithm: String,
        /// Base64 of the encrypted resource JSON followed by its 16-byte tag.
        pub ciphertext: String,
        pub nonce: String,
        #[serde(default)]
        pub associated_data: Option<String>,
        /// `refund`.
        #[serde(default)]
        pub original_type: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NotificationResource {
        #[serde(default)]
        pub out_trade_no: Option<String>,
        pub out_refund_no: String,
        pub refund_id: String,
        pub refund_status: String,
        #[serde(default)]
        pub user_received_account: Option<String>,
        #[serde(default)]
        pub success_time: Option<String>,
    }
}

/// WeChat Pay's refund statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WechatStatus {
    Success,
    Processing,
    Closed,
    Abnormal,
}

impl WechatStatus {
    pub const ALL: [WechatStatus; 4] = [
        WechatStatus::Success,
        WechatStatus::Processing,
        WechatStatus::Closed,
        WechatStatus::Abnormal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WechatStatus::Success => "SUCCESS",
            WechatStatus::Processing => "PROCESSING",
            WechatStatus::Closed => "CLOSED",
            WechatStatus::Abnormal => "ABNORMAL",
        }
    }

    pub fn parse(text: &str) -> Option<WechatStatus> {
        WechatStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Callback event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WechatEventType {
    RefundSuccess,
    RefundAbnormal,
    RefundClosed,
    /// The simulator's stale event (real WeChat Pay does not notify "processing").
    RefundProcessing,
}

impl WechatEventType {
    pub const ALL: [WechatEventType; 4] = [
        WechatEventType::RefundSuccess,
        WechatEventType::RefundAbnormal,
        WechatEventType::RefundClosed,
        WechatEventType::RefundProcessing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WechatEventType::RefundSuccess => "REFUND.SUCCESS",
            WechatEventType::RefundAbnormal => "REFUND.ABNORMAL",
            WechatEventType::RefundClosed => "REFUND.CLOSED",
            WechatEventType::RefundProcessing => "REFUND.PROCESSING",
        }
    }

    pub fn parse(text: &str) -> Option<WechatEventType> {
        WechatEventType::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
    }

    /// The refund status an event announces.
    pub fn status(self) -> WechatStatus {
        match self {
            WechatEventType::RefundSuccess => WechatStatus::Success,
            WechatEventType::RefundAbnormal => WechatStatus::Abnormal,
            WechatEventType::RefundClosed => WechatStatus::Closed,
            WechatEventType::RefundProcessing => WechatStatus::Processing,
        }
    }

    pub fn for_status(status: WechatStatus) -> WechatEventType {
        match status {
            WechatStatus::Success => WechatEventType::RefundSuccess,
            WechatStatus::Abnormal => WechatEventType::RefundAbnormal,
            WechatStatus::Closed => WechatEventType::RefundClosed,
            WechatStatus::Processing => WechatEventType::RefundProcessing,
        }
    }
}

/// Error codes of the refund endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WechatErrorCode {
    SystemError,
    FrequencyLimited,
    BizErrNeedRetry,
    InvalidRequest,
    ParamError,
    NotEnough,
    UserAccountAbnormal,
    SignError,
    NoAuth,
    MchNotExists,
    ResourceNotExists,
}

impl WechatErrorCode {
    pub const ALL: [WechatErrorCode; 11] = [
        WechatErrorCode::SystemError,
        WechatErrorCode::FrequencyLimited,
        WechatErrorCode::BizErrNeedRetry,
        WechatErrorCode::InvalidRequest,
        WechatErrorCode::ParamError,
        WechatErrorCode::NotEnough,
        WechatErrorCode::UserAccountAbnormal,
        WechatErrorCode::SignError,
        WechatErrorCode::NoAuth,
        WechatErrorCode::MchNotExists,
        WechatErrorCode::ResourceNotExists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WechatErrorCode::SystemError => "SYSTEM_ERROR",
            WechatErrorCode::FrequencyLimited => "FREQUENCY_LIMITED",
            WechatErrorCode::BizErrNeedRetry => "BIZ_ERR_NEED_RETRY",
            WechatErrorCode::InvalidRequest => "INVALID_REQUEST",
            WechatErrorCode::ParamError => "PARAM_ERROR",
            WechatErrorCode::NotEnough => "NOT_ENOUGH",
            WechatErrorCode::UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
            WechatErrorCode::SignError => "SIGN_ERROR",
            WechatErrorCode::NoAuth => "NO_AUTH",
            WechatErrorCode::MchNotExists => "MCH_NOT_EXISTS",
            WechatErrorCode::ResourceNotExists => "RESOURCE_NOT_EXISTS",
        }
    }

    pub fn parse(text: &str) -> Option<WechatErrorCode> {
        WechatErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|error| format!("{field} {text:?} is not an RFC 3339 time: {error}"))
}

/// Maps a refund status onto our outcome.
pub fn outcome_from_status(
    status: WechatStatus,
    refund_id: &str,
    user_received_account: Option<&str>,
    success_time: Option<&str>,
) -> Result<ChannelOutcome, ConnectorError> {
    let channel_refund_id = refund_id.to_string();
    match status {
        WechatStatus::Success => {
            let text = success_time
                .ok_or_else(|| ConnectorError::Unknown(format!("{LABEL} said SUCCESS without success_time")))?;
            let succeeded_at = parse_time("success_time", text).map_err(ConnectorError::Unknown)?;
            Ok(ChannelOutcome::Succeeded {
                channel_refund_id,
                received_account: user_received_account.map(str::to_string),
                succeeded_at,
            })
        }
        WechatStatus::Processing => Ok(ChannelOutcome::Processing { channel_refund_id }),
        WechatStatus::Closed => Ok(ChannelOutcome::Failed {
            reason: "WeChat Pay closed the refund (CLOSED): nothing was refunded; ask for a new refund".into(),
        }),
        WechatStatus::Abnormal => Ok(ChannelOutcome::Abnormal {
            channel_refund_id: Some(channel_refund_id),
            reason: "the payer's WeChat account or bank card cannot receive it (ABNORMAL): reroute to another account"
                .into(),
        }),
    }
}

/// Maps a refund record onto our outcome; an unknown status is an unknown outcome.
pub fn outcome_from_refund(refund: &wire::Refund) -> Result<ChannelOutcome, ConnectorError> {
    let status = WechatStatus::parse(&refund.status).ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered an unknown refund status {:?}",
            refund.status
        ))
    })?;
    outcome_from_status(
        status,
        &refund.refund_id,
        refund.user_received_account.as_deref(),
        refund.success_time.as_deref(),
    )
}

/// Maps an error code onto our outcome or error.
pub fn outcome_from_error_code(
    code: WechatErrorCode,
    message: &str,
) -> Result<ChannelOutcome, ConnectorError> {
    match code {
        WechatErrorCode::SystemError
        | WechatErrorCode::FrequencyLimited
        | WechatErrorCode::BizErrNeedRetry => Err(ConnectorError::Transient(format!(
            "{LABEL} busy ({}): {message}",
            code.as_str()
        ))),
        WechatErrorCode::UserAccountAbnormal => Ok(ChannelOutcome::Abnormal {
            channel_refund_id: None,
            reason: format!(
                "the payer's WeChat account is abnormal (USER_ACCOUNT_ABNORMAL): reroute; {message}"
            ),
        }),
        WechatErrorCode::SignError | WechatErrorCode::NoAuth | WechatErrorCode::MchNotExists => {
            Err(ConnectorError::Final(format!(
                "{LABEL} refused our credentials ({}): {message}",
                code.as_str()
            )))
        }
        WechatErrorCode::NotEnough => Err(ConnectorError::Final(format!(
            "the merchant's WeChat Pay balance cannot cover the refund (NOT_ENOUGH): {message}"
        ))),
        WechatErrorCode::InvalidRequest | WechatErrorCode::ParamError => {
            Err(ConnectorError::Final(format!(
                "{LABEL} refused the refund ({}): {message}",
                code.as_str()
            )))
        }
        WechatErrorCode::ResourceNotExists => Err(ConnectorError::Final(format!(
            "{LABEL} does not know the payment (RESOURCE_NOT_EXISTS): {message}"
        ))),
    }
}

/// Maps an error answer (any status but 200).
pub fn outcome_from_error(http_status: u16, body: &[u8]) -> Result<ChannelOutcome, ConnectorError> {
    if http_status == 401 {
        return Err(http::credentials_rejected(LABEL));
    }
    let Ok(error) = serde_json::from_slice::<wire::ErrorBody>(body) else {
        // Not WeChat Pay's shape: something in between answered.
        return Err(match http_status {
            429 | 503 => ConnectorError::Transient(format!("{LABEL} answered HTTP {http_status}")),
            _ => ConnectorError::Unknown(format!(
                "{LABEL} answered HTTP {http_status} without an error body"
            )),
        });
    };
    let code = WechatErrorCode::parse(&error.code).ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered HTTP {http_status} with an unknown code {:?}: {}",
            error.code, error.message
        ))
    })?;
    outcome_from_error_code(code, &error.message)
}

/// The WeChat Pay connector.
pub struct WechatConnector {
    http: SignedClient,
}

impl WechatConnector {
    pub fn new(config: ConnectorConfig) -> Result<Self, ConnectorBuildError> {
        Ok(WechatConnector {
            http: SignedClient::new(config, SIGNATURE_HEADER, LABEL)?,
        })
    }

    fn create_body(&self, request: &RefundRequest) -> wire::RefundCreate {
        wire::RefundCreate {
            out_trade_no: request.payment_id.clone(),
            out_refund_no: request.refund_id.clone(),
            reason: None,
            notify_url: self.http.config().notify_url.clone(),
            amount: wire::AmountCreate {
                refund: request.amount_fen,
                total: request.payment_amount_fen,
                currency: CURRENCY.to_string(),
            },
            payer_account: request.payer_account.clone(),
            reroute_account: request.reroute_account.clone(),
        }
    }

    fn read_refund(reply: &HttpReply) -> Result<ChannelOutcome, ConnectorError> {
        if reply.status == 200 {
            outcome_from_refund(&http::decode(LABEL, reply)?)
        } else {
            outcome_from_error(reply.status, &reply.body)
        }
    }
}

fn check_request(request: &RefundRequest) -> Result<(), ConnectorError> {
    http::check_routed(request, request.channel == Channel::Wechat, LABEL)
}

#[async_trait::async_trait]
impl RefundConnector for WechatConnector {
    fn channel_name(&self) -> &'static str {
        "wechat"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        check_request(request)?;
        let reply = self
            .http
            .post_json(REFUNDS_PATH, &self.create_body(request))
            .await?;
        Self::read_refund(&reply)
    }

    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        check_request(request)?;
        let reply = self
            .http
            .get(&format!("{REFUNDS_PATH}/{}", request.refund_id))
            .await?;
        if reply.status == 404 {
            let not_found = serde_json::from_slice::<wire::ErrorBody>(&reply.body)
                .is_ok_and(|e| e.code == WechatErrorCode::ResourceNotExists.as_str());
            if not_found {
                return Ok(None);
            }
        }
        Self::read_refund(&reply).map(Some)
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

/// Parses a callback body whose signature was verified, its resource in clear (the
/// simulator's, or WeChat Pay's once decrypted). WeChat Pay's own encrypted body is refused
/// with a message saying so: decrypting needs the APIv3 key, which yuanlu does not take yet
/// (docs/channels.md, "Real channel credentials").
pub fn parse_notification(body: &[u8]) -> Result<CallbackEvent, CallbackError> {
    if let Ok(sealed) = serde_json::from_slice::<wire::EncryptedNotification>(body) {
        return Err(CallbackError(format!(
            "{LABEL} callback {} ({}) has its resource encrypted with {}; yuanlu reads it \
             decrypted only (no APIv3 key is configured)",
            sealed.id, sealed.event_type, sealed.resource.algorithm
        )));
    }
    let note: wire::Notification = serde_json::from_slice(body)
        .map_err(|error| CallbackError(format!("unreadable {LABEL} callback: {error}")))?;
    let event = WechatEventType::parse(&note.event_type)
        .ok_or_else(|| CallbackError(format!("unknown event_type {:?}", note.event_type)))?;
    let resource = &note.resource;
    let status = WechatStatus::parse(&resource.refund_status).ok_or_else(|| {
        CallbackError(format!(
            "unknown refund_status {:?}",
            resource.refund_status
        ))
    })?;
    if event.status() != status {
        return Err(CallbackError(format!(
            "event_type {} disagrees with refund_status {}",
            note.event_type, resource.refund_status
        )));
    }
    let outcome = outcome_from_status(
        status,
        &resource.refund_id,
        resource.user_received_account.as_deref(),
        resource.success_time.as_deref(),
    )
    .map_err(|error| CallbackError(error.to_string()))?;
    Ok(CallbackEvent {
        refund_id: resource.out_refund_no.clone(),
        outcome,
    })
}
