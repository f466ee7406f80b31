//! The card network: refunds of `credit_card`, `debit_card` and `unionpay_qr` payments.
//!
//! The shape is yuanlu's own (an acquirer-to-network JSON API in the spirit of an ISO 8583
//! refund, message type 0200/processing code 20, with ISO response codes):
//!
//! - Execute: `POST /card/refunds` with [`wire::RefundCreate`]
//!   `{refund_ref (our refund id), original_ref (our payment id), product, amount_fen,
//!   original_amount_fen, card? ("**** 0403"), reroute_account?, notify_url?}`.
//! - Answer (HTTP 200, also for declines: the decision is in-band, as on a card network):
//!   [`wire::RefundRecord`] `{refund_ref, network_ref?, status, response_code, message,
//!   received_account?, settled_at?}` with `status` one of `APPROVED`, `PENDING`, `DECLINED`,
//!   `CARD_CLOSED` and `response_code` one of
//!   - `00` approved,
//!   - `05` do not honour, `12` invalid transaction, `13` invalid amount, `14` invalid card
//!     number — final, each with a reason a person can act on,
//!   - `91` issuer unavailable, `96` system malfunction — transient, nothing recorded.
//!
//!   `CARD_CLOSED` (any code) means the card was cancelled: abnormal, reroute.
//! - Query: `GET /card/refunds/{refund_ref}`: the record, or HTTP 404
//!   `{error: "not_found", message}` when the network never recorded it.
//! - Other errors: `{error, message}` with HTTP 400 (malformed) or 401 (bad signature).
//! - Callbacks: `POST notify_url` with [`wire::Notification`] `{event_id, created_at, record}`.
//! - Signatures: `t=…,v1=…` HMAC-SHA256 in [`SIGNATURE_HEADER`] both ways
//!   ([`crate::signing`]); a real network's MAC keys plug in at
//!   `http::SignedClient` and [`CardConnector::parse_callback`].

use chrono::{DateTime, Utc};
use yuanlu_domain::channel::Channel;

use crate::connector::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use crate::http::{self, ConnectorBuildError, ConnectorConfig, HttpReply, SignedClient};

pub const REFUNDS_PATH: &str = "/card/refunds";
pub const SIGNATURE_HEADER: &str = "Card-Signature";
const LABEL: &str = "the card network";

/// The JSON bodies, shared with the simulator.
pub mod wire {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefundCreate {
        pub refund_ref: String,
        pub original_ref: String,
        /// `credit_card`, `debit_card` or `unionpay_qr`.
        pub product: String,
        pub amount_fen: i64,
        pub original_amount_fen: i64,
        /// Masked card, e.g. "**** 0403".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub card: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reroute_account: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub notify_url: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefundRecord {
        pub refund_ref: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network_ref: Option<String>,
        pub status: String,
        pub response_code: String,
        pub message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub received_account: Option<String>,
        /// RFC 3339.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub settled_at: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ErrorBody {
        pub error: String,
        pub message: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Notification {
        pub event_id: String,
        pub created_at: String,
        pub record: RefundRecord,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardStatus {
    Approved,
    Pending,
    Declined,
    CardClosed,
}

impl CardStatus {
    pub const ALL: [CardStatus; 4] = [
        CardStatus::Approved,
        CardStatus::Pending,
        CardStatus::Declined,
        CardStatus::CardClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Approved => "APPROVED",
            CardStatus::Pending => "PENDING",
            CardStatus::Declined => "DECLINED",
            CardStatus::CardClosed => "CARD_CLOSED",
        }
    }

    pub fn parse(text: &str) -> Option<CardStatus> {
        CardStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// ISO 8583 response codes the network uses for refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    Approved00,
    DoNotHonour05,
    InvalidTransaction12,
    InvalidAmount13,
    InvalidCard14,
    IssuerUnavailable91,
    SystemMalfunction96,
}

impl ResponseCode {
    pub const ALL: [ResponseCode; 7] = [
        ResponseCode::Approved00,
        ResponseCode::DoNotHonour05,
        ResponseCode::InvalidTransaction12,
        ResponseCode::InvalidAmount13,
        ResponseCode::InvalidCard14,
        ResponseCode::IssuerUnavailable91,
        ResponseCode::SystemMalfunction96,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseCode::Approved00 => "00",
            ResponseCode::DoNotHonour05 => "05",
            ResponseCode::InvalidTransaction12 => "12",
            ResponseCode::InvalidAmount13 => "13",
            ResponseCode::InvalidCard14 => "14",
            ResponseCode::IssuerUnavailable91 => "91",
            ResponseCode::SystemMalfunction96 => "96",
        }
    }

    pub fn parse(text: &str) -> Option<ResponseCode> {
        ResponseCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The network's short text for the code.
    pub fn message(self) -> &'static str {
        match self {
            ResponseCode::Approved00 => "approved",
            ResponseCode::DoNotHonour05 => "do not honour",
            ResponseCode::InvalidTransaction12 => "invalid transaction",
            ResponseCode::InvalidAmount13 => "invalid amount",
            ResponseCode::InvalidCard14 => "invalid card number",
            ResponseCode::IssuerUnavailable91 => "issuer unavailable",
            ResponseCode::SystemMalfunction96 => "system malfunction",
        }
    }
}

fn declined_reason(code: ResponseCode, message: &str) -> String {
    let advice = match code {
        ResponseCode::DoNotHonour05 => {
            "the issuing bank refused the credit: ask the cardholder to contact their bank, or refund another way"
        }
        ResponseCode::InvalidCard14 => {
            "the issuer does not recognise the card: refund to another account the cardholder gives"
        }
        ResponseCode::InvalidAmount13 => {
            "the amount is not acceptable for this payment: check it against the payment"
        }
        ResponseCode::InvalidTransaction12 => {
            "the network refuses this refund for this payment (already refunded, or other details under the same number)"
        }
        ResponseCode::Approved00
        | ResponseCode::IssuerUnavailable91
        | ResponseCode::SystemMalfunction96 => "unexpected decline",
    };
    format!(
        "declined {} ({}): {advice}; network said {message:?}",
        code.as_str(),
        code.message()
    )
}

fn network_ref(record: &wire::RefundRecord) -> Result<String, ConnectorError> {
    record.network_ref.clone().ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered {} without network_ref",
            record.status
        ))
    })
}

fn settled_at(record: &wire::RefundRecord) -> Result<DateTime<Utc>, ConnectorError> {
    let text = record
        .settled_at
        .as_deref()
        .ok_or_else(|| ConnectorError::Unknown(format!("{LABEL} approved without settled_at")))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|error| ConnectorError::Unknown(format!("settled_at {text:?}: {error}")))
}

/// Maps a status and response code onto our outcome.
pub fn outcome_from_codes(
    status: CardStatus,
    code: ResponseCode,
    record: &wire::RefundRecord,
) -> Result<ChannelOutcome, ConnectorError> {
    match (status, code) {
        (CardStatus::Approved, ResponseCode::Approved00) => Ok(ChannelOutcome::Succeeded {
            channel_refund_id: network_ref(record)?,
            received_account: record.received_account.clone(),
            succeeded_at: settled_at(record)?,
        }),
        (CardStatus::Approved, other) => Err(ConnectorError::Unknown(format!(
            "{LABEL} answered APPROVED with response code {}",
            other.as_str()
        ))),
        (CardStatus::Pending, _) => Ok(ChannelOutcome::Processing {
            channel_refund_id: network_ref(record)?,
        }),
        (
            CardStatus::Declined,
            ResponseCode::IssuerUnavailable91 | ResponseCode::SystemMalfunction96,
        ) => Err(ConnectorError::Transient(format!(
            "{LABEL}: {} ({})",
            code.message(),
            code.as_str()
        ))),
        (
            CardStatus::Declined,
            ResponseCode::DoNotHonour05
            | ResponseCode::InvalidTransaction12
            | ResponseCode::InvalidAmount13
            | ResponseCode::InvalidCard14,
        ) => Err(ConnectorError::Final(declined_reason(
            code,
            &record.message,
        ))),
        (CardStatus::Declined, ResponseCode::Approved00) => Err(ConnectorError::Unknown(format!(
            "{LABEL} answered DECLINED with response code 00"
        ))),
        (CardStatus::CardClosed, _) => Ok(ChannelOutcome::Abnormal {
            channel_refund_id: record.network_ref.clone(),
            reason: format!(
                "the card was closed (CARD_CLOSED): reroute to an account the cardholder gives; network said {:?}",
                record.message
            ),
        }),
    }
}

/// Maps a record; unknown status or code strings are unknown outcomes.
pub fn outcome_from_record(record: &wire::RefundRecord) -> Result<ChannelOutcome, ConnectorError> {
    let status = CardStatus::parse(&record.status).ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered an unknown status {:?}",
            record.status
        ))
    })?;
    let code = ResponseCode::parse(&record.response_code).ok_or_else(|| {
        ConnectorError::Unknown(format!(
            "{LABEL} answered an unknown response code {:?}",
            record.response_code
        ))
    })?;
    outcome_from_codes(status, code, record)
}

/// Maps an answer other than 200.
pub fn outcome_from_error(http_status: u16, body: &[u8]) -> Result<ChannelOutcome, ConnectorError> {
    let detail = serde_json::from_slice::<wire::ErrorBody>(body)
        .map(|e| format!("{}: {}", e.error, e.message))
        .unwrap_or_else(|_| "no error body".to_string());
    Err(match http_status {
        401 => http::credentials_rejected(LABEL),
        400 | 404 | 422 => ConnectorError::Final(format!(
            "{LABEL} refused the request (HTTP {http_status}): {detail}"
        )),
        429 | 503 => {
            ConnectorError::Transient(format!("{LABEL} busy (HTTP {http_status}): {detail}"))
        }
        _ => ConnectorError::Unknown(format!("{LABEL} answered HTTP {http_status}: {detail}")),
    })
}

/// The card-network connector (one instance serves all three card products).
pub struct CardConnector {
    http: SignedClient,
}

impl CardConnector {
    pub fn new(config: ConnectorConfig) -> Result<Self, ConnectorBuildError> {
        Ok(CardConnector {
            http: SignedClient::new(config, SIGNATURE_HEADER, LABEL)?,
        })
    }

    fn create_body(&self, request: &RefundRequest) -> wire::RefundCreate {
        wire::RefundCreate {
            refund_ref: request.refund_id.clone(),
            original_ref: request.payment_id.clone(),
            product: request.channel.id().to_string(),
            amount_fen: request.amount_fen,
            original_amount_fen: request.payment_amount_fen,
            card: request.payer_account.clone(),
            reroute_account: request.reroute_account.clone(),
            notify_url: self.http.config().notify_url.clone(),
        }
    }

    fn read_reply(reply: &HttpReply) -> Result<ChannelOutcome, ConnectorError> {
        if reply.status == 200 {
            outcome_from_record(&http::decode(LABEL, reply)?)
        } else {
            outcome_from_error(reply.status, &reply.body)
        }
    }
}

/// The channels the card network carries.
pub fn carries(channel: Channel) -> bool {
    match channel {
        Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr => true,
        Channel::Wechat | Channel::Alipay => false,
    }
}

fn check_request(request: &RefundRequest) -> Result<(), ConnectorError> {
    http::check_routed(request, carries(request.channel), LABEL)
}

#[async_trait::async_trait]
impl RefundConnector for CardConnector {
    fn channel_name(&self) -> &'static str {
        "card"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        check_request(request)?;
        let reply = self
            .http
            .post_json(REFUNDS_PATH, &self.create_body(request))
            .await?;
        Self::read_reply(&reply)
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
            // A 404 from the network's own shape is "never recorded"; any other 404 is a
            // misrouted request and must not be read as "safe to resend".
            return match serde_json::from_slice::<wire::ErrorBody>(&reply.body) {
                Ok(body) if body.error == "not_found" => Ok(None),
                _ => Err(ConnectorError::Unknown(format!(
                    "{LABEL} answered 404 without its error body"
                ))),
            };
        }
        Self::read_reply(&reply).map(Some)
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
        .map_err(|error| CallbackError(format!("unreadable card callback: {error}")))?;
    let outcome =
        outcome_from_record(&note.record).map_err(|error| CallbackError(error.to_string()))?;
    Ok(CallbackEvent {
        refund_id: note.record.refund_ref,
        outcome,
    })
}
