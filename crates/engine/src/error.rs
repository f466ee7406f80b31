//! Engine errors. Each has a stable `code` (the spec's), an HTTP status class, and a message
//! that tells the caller what to do.

use yuanlu_domain::decide::RefundRefusal;
use yuanlu_domain::deduction::DeductionError;
use yuanlu_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Refused(#[from] RefundRefusal),
    /// Deductions that are invalid or leave the consumer nothing (issue 15 item 2).
    #[error("deductions: {0}")]
    Deduction(#[from] DeductionError),
    #[error("no payment {0} for this merchant")]
    PaymentNotFound(String),
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error(
        "merchant_refund_no {merchant_refund_no} already names refund {existing_refund_id} of payment {existing_payment_id} for {existing_amount} fen; use a new number for a different refund"
    )]
    MerchantRefundNoConflict {
        merchant_refund_no: String,
        existing_refund_id: String,
        existing_payment_id: String,
        existing_amount: i64,
    },
    #[error("refund {refund_id} is {status}; it cannot be {action}")]
    InvalidTransition {
        refund_id: String,
        status: String,
        action: &'static str,
    },
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. revoking the last admin key).
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error(
        "the merchant's balance ({available_fen} fen unsettled plus carried) cannot fund this refund's net debit of {needed_fen} fen; wait for more sales or ask the acquirer to allow carry-forward"
    )]
    InsufficientBalance { available_fen: i64, needed_fen: i64 },
    /// 限额: the merchant's daily refund limit (settings `daily_refund_limit`) would be
    /// exceeded; `what` is `amount` or `count`.
    #[error(
        "the merchant's daily refund limit of {limit} ({what}) would be exceeded: {used} used today; try tomorrow or ask the acquirer to raise the limit"
    )]
    DailyRefundLimitExceeded {
        what: &'static str,
        limit: i64,
        used: i64,
    },
    #[error(
        "a {callback_channel} callback cannot settle refund {refund_id}, which was sent to {refund_channel}; nothing was changed"
    )]
    CallbackChannelMismatch {
        refund_id: String,
        refund_channel: String,
        callback_channel: String,
    },
    /// A webhook URL whose host is not a public internet address (SSRF guard).
    #[error("url: {0}")]
    WebhookUrlNotAllowed(String),
    #[error("currency {0} is not accepted; yuanlu settles in CNY only")]
    UnsupportedCurrency(String),
    #[error(
        "no account key is configured, so a full account number cannot be kept for the channel; set YUANLU_ACCOUNT_KEY_FILE (or YUANLU_ACCOUNT_KEY) to the same 32-byte key on every server sharing this database"
    )]
    AccountKeyNotConfigured,
    /// 证明材料: the refund waits for evidence its merchant's settings require.
    #[error(
        "refund {refund_id} waits for evidence its merchant requires: {missing}; add it with POST /v1/refunds/{refund_id}/evidence"
    )]
    EvidenceRequired { refund_id: String, missing: String },
    /// An evidence upload refused: `code` is stable (`evidence_too_large`,
    /// `evidence_unsupported_type`, `evidence_empty`, `full_id_number_refused`, …).
    #[error("{field}: {message}")]
    BadEvidence {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// Files cannot be kept: this engine has no evidence directory.
    #[error(
        "no evidence directory is configured, so files cannot be kept; start yuanlu serve with --evidence-dir (or YUANLU_EVIDENCE_DIR)"
    )]
    EvidenceStorageNotConfigured,
    #[error("internal storage error: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// The stable error code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Refused(refusal) => refusal.code(),
            EngineError::Deduction(error) => error.code(),
            EngineError::PaymentNotFound(_) => "payment_not_found",
            EngineError::NotFound { .. } => "not_found",
            EngineError::MerchantRefundNoConflict { .. } => "merchant_refund_no_conflict",
            EngineError::InvalidTransition { .. } => "invalid_transition",
            EngineError::Forbidden(_) => "forbidden",
            EngineError::Conflict(_) => "conflict",
            EngineError::Validation { .. } => "validation_error",
            EngineError::UnsupportedCurrency(_) => "validation_error",
            EngineError::WebhookUrlNotAllowed(_) => "webhook_url_not_allowed",
            EngineError::InsufficientBalance { .. } => "insufficient_merchant_balance",
            EngineError::DailyRefundLimitExceeded { .. } => "daily_refund_limit_exceeded",
            EngineError::CallbackChannelMismatch { .. } => "callback_channel_mismatch",
            EngineError::AccountKeyNotConfigured => "account_key_not_configured",
            EngineError::EvidenceRequired { .. } => "evidence_required",
            EngineError::BadEvidence { code, .. } => code,
            EngineError::EvidenceStorageNotConfigured => "evidence_storage_not_configured",
            EngineError::Store(_) => "internal_error",
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        EngineError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        EngineError::Store(StoreError::Corrupt(message.into()))
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
