//! Errors as `application/problem+json` (RFC 9457) with a stable `code`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_engine::EngineError;

/// An error answer. `code` is stable; `detail` says what to do about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    /// The request field at fault, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Extra facts, e.g. `refundable` for `amount_exceeds_refundable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
    /// Sent as the `Retry-After` header (seconds), with a 429.
    #[serde(skip)]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: format!("https://yuanlu.dev/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
            extra: None,
            retry_after_seconds: None,
        }
    }

    /// 429 `rate_limited`, with `Retry-After` and `extra.retry_after_seconds`.
    pub fn rate_limited(detail: &str, retry_after_seconds: u64) -> Self {
        let seconds = retry_after_seconds.max(1);
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{detail}; try again in {seconds} s"),
        );
        problem.extra = Some(serde_json::json!({ "retry_after_seconds": seconds }));
        problem.retry_after_seconds = Some(seconds);
        problem
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <key>` with the admin key or a merchant key",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for Problem {
    fn from(error: EngineError) -> Self {
        use yuanlu_domain::decide::RefundRefusal;
        use yuanlu_domain::deduction::DeductionError;
        let status = match &error {
            EngineError::Refused(RefundRefusal::InvalidAmount)
            | EngineError::Validation { .. }
            | EngineError::UnsupportedCurrency(_)
            | EngineError::WebhookUrlNotAllowed(_) => StatusCode::BAD_REQUEST,
            EngineError::Deduction(DeductionError::ExceedRefund { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            EngineError::Deduction(_) => StatusCode::BAD_REQUEST,
            EngineError::Refused(_)
            | EngineError::InsufficientBalance { .. }
            | EngineError::DailyRefundLimitExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::PaymentNotFound(_) | EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
            EngineError::MerchantRefundNoConflict { .. }
            | EngineError::InvalidTransition { .. }
            | EngineError::CallbackChannelMismatch { .. }
            | EngineError::AccountKeyNotConfigured
            | EngineError::Conflict(_) => StatusCode::CONFLICT,
            EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
            EngineError::EvidenceRequired { .. } | EngineError::EvidenceStorageNotConfigured => {
                StatusCode::CONFLICT
            }
            EngineError::BadEvidence { code, .. } => match *code {
                "evidence_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                "evidence_unsupported_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            },
            EngineError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "internal error");
            return Problem::new(
                status,
                error.code(),
                "an internal error occurred; it was logged, and retrying is safe",
            );
        }
        let mut problem = Problem::new(status, error.code(), error.to_string());
        match &error {
            EngineError::Validation { field, .. } => problem.field = Some(field.clone()),
            EngineError::BadEvidence { field, .. } => problem.field = Some((*field).to_string()),
            EngineError::Refused(RefundRefusal::InvalidAmount) => {
                problem.field = Some("amount".into())
            }
            EngineError::UnsupportedCurrency(_) => problem.field = Some("currency".into()),
            EngineError::Deduction(DeductionError::ExceedRefund {
                deducted_fen,
                amount_fen,
            }) => {
                problem.field = Some("deductions".into());
                problem.extra =
                    Some(serde_json::json!({ "deducted": deducted_fen, "amount": amount_fen }));
            }
            EngineError::Deduction(DeductionError::Invalid { index, .. }) => {
                problem.field = Some(format!("deductions[{index}]"));
            }
            EngineError::Deduction(DeductionError::TooMany { .. }) => {
                problem.field = Some("deductions".into());
            }
            EngineError::WebhookUrlNotAllowed(_) => problem.field = Some("url".into()),
            EngineError::Refused(RefundRefusal::AmountExceedsRefundable {
                requested_fen,
                refundable_fen,
            }) => {
                problem.field = Some("amount".into());
                problem.extra = Some(
                    serde_json::json!({ "requested": requested_fen, "refundable": refundable_fen }),
                );
            }
            EngineError::InsufficientBalance {
                available_fen,
                needed_fen,
            } => {
                problem.extra =
                    Some(serde_json::json!({ "available": available_fen, "needed": needed_fen }));
            }
            EngineError::DailyRefundLimitExceeded { what, limit, used } => {
                problem.extra = Some(
                    serde_json::json!({ "limit": what, "limit_value": limit, "used_today": used }),
                );
            }
            EngineError::MerchantRefundNoConflict {
                existing_refund_id, ..
            } => {
                problem.field = Some("merchant_refund_no".into());
                problem.extra =
                    Some(serde_json::json!({ "existing_refund_id": existing_refund_id }));
            }
            _ => {}
        }
        problem
    }
}

pub type ApiResult<T> = Result<T, Problem>;
