//! The connector interface: execute a refund, query a refund, verify a callback.
//!
//! Every call is keyed by **our refund id** (`rf_…`), which is the channel's refund number
//! (`out_refund_no` at WeChat Pay, `out_request_no` at Alipay, the card network's
//! `refund_ref`). Channels de-duplicate by it, which is what makes a resend after an
//! unknown outcome safe: yuanlu resends the same request, never a new number.

use chrono::{DateTime, Utc};
use yuanlu_domain::account::mask_numbers_in;
use yuanlu_domain::channel::Channel;

/// What the connector needs to send a refund. Its `Debug` masks the reroute account.
#[derive(Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Our refund id: the channel's refund number.
    pub refund_id: String,
    /// Our payment id: the channel's original transaction reference.
    pub payment_id: String,
    pub channel: Channel,
    pub amount_fen: i64,
    /// The original payment's amount (WeChat Pay and Alipay want it).
    pub payment_amount_fen: i64,
    /// Masked payer account, for the card network's routing and the simulators' faults.
    pub payer_account: Option<String>,
    /// Set when an operator rerouted an abnormal refund to another account: `bank|number`
    /// with the number **whole** (`工商银行|6222021234567890`), since a bank cannot pay a
    /// masked one. yuanlu keeps it only sealed (AES-256-GCM under the account key) and the
    /// dispatch worker opens it just for this request; a connector must not log or store it
    /// (mask with `yuanlu_domain::account::mask_numbers_in` if it must show it).
    pub reroute_account: Option<String>,
}

impl std::fmt::Debug for RefundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundRequest")
            .field("refund_id", &self.refund_id)
            .field("payment_id", &self.payment_id)
            .field("channel", &self.channel)
            .field("amount_fen", &self.amount_fen)
            .field("payment_amount_fen", &self.payment_amount_fen)
            .field("payer_account", &self.payer_account)
            .field(
                "reroute_account",
                &self.reroute_account.as_deref().map(mask_numbers_in),
            )
            .finish()
    }
}

/// A channel's answer about one refund, already mapped onto our vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelOutcome {
    /// The channel accepted the refund and has not confirmed it yet.
    Processing { channel_refund_id: String },
    /// The money left the channel toward the payer.
    Succeeded {
        channel_refund_id: String,
        /// Where it went, as the channel says it (e.g. "招商银行借记卡 (**** 0403)",
        /// "零钱", "余额").
        received_account: Option<String>,
        succeeded_at: DateTime<Utc>,
    },
    /// The original route is closed (card cancelled, account frozen): an operator reroutes.
    Abnormal {
        channel_refund_id: Option<String>,
        reason: String,
    },
    /// The channel refused for good; `reason` is what a person can act on.
    Failed { reason: String },
}

/// Why a call did not give an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying with backoff: the channel said it is busy, or the connection was
    /// refused before anything was sent.
    #[error("transient channel error: {0}")]
    Transient(String),
    /// The request may or may not have reached the channel (timeout, lost answer): query
    /// by the refund id before anything is resent.
    #[error("unknown outcome: {0}")]
    Unknown(String),
    /// The channel refused the request itself (bad amount, closed payment): never retried.
    #[error("channel refused: {0}")]
    Final(String),
}

/// A verified callback from a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    pub refund_id: String,
    pub outcome: ChannelOutcome,
}

/// A callback that failed verification or parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("callback refused: {0}")]
pub struct CallbackError(pub String);

/// One channel's refund flows.
#[async_trait::async_trait]
pub trait RefundConnector: Send + Sync {
    fn channel_name(&self) -> &'static str;

    /// Sends a refund. Safe to call again with the same request: channels de-duplicate by
    /// `refund_id`.
    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError>;

    /// Asks the channel about a refund by our refund id. `Ok(None)`: the channel has no
    /// record of it (it never arrived), so resending is safe.
    async fn query(
        &self,
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError>;

    /// Verifies a callback's signature and parses it. Callbacks may repeat and arrive out of
    /// order; the caller applies them idempotently.
    fn parse_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<CallbackEvent, CallbackError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_masks_the_reroute_account() {
        let request = RefundRequest {
            refund_id: "rf_1".into(),
            payment_id: "pay_1".into(),
            channel: Channel::CreditCard,
            amount_fen: 100,
            payment_amount_fen: 1_000,
            payer_account: None,
            reroute_account: Some("工商银行|6222021234567890".into()),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("工商银行|6222********7890"), "{shown}");
        assert!(!shown.contains("6222021234567890"), "{shown}");
    }
}
