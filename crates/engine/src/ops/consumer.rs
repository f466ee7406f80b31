//! `POST /v1/public/refund-requests`: a consumer asks for a refund with facts only the
//! payer has: the payment's reference number (`rrn`, on the POS slip; the payment id when
//! it has none) and the last four digits of the card, wallet account or phone that paid.
//!
//! The refund is created as a merchant's would be, with `requested_by: consumer`, so the
//! `consumer_request` review rule sends it to the merchant's review queue (or first to
//! `awaiting_return` for goods that left the shop). The consumer follows it with the
//! refund id and the reference, on the API's public lookup or the `/status` page.
//!
//! Guessing is limited as the lookup's is: per client address (the web layer's bucket) and
//! per payment: [`crate::public::PUBLIC_LOOKUP_FAILURES_MAX`] wrong last-four digits for a
//! reference within [`crate::public::PUBLIC_LOOKUP_WINDOW_SECONDS`] lock requests for that
//! payment until the window ends (counted in the database, `public_request_failures`).
//! A second request while the first still waits (awaiting return or review) returns it.

use yuanlu_domain::refund::{RefundReason, RefundStatus, RequesterRole};
use yuanlu_domain::time::to_micros;
use yuanlu_store::PaymentRow;

use crate::Engine;
use crate::auth::{MerchantRole, Principal};
use crate::cases::CaseError;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use crate::payments::optional_text;
use crate::public::{
    CONSUMER_ACTOR, ConsumerRefund, PUBLIC_LOOKUP_CANDIDATES_MAX, PUBLIC_LOOKUP_FAILURES_MAX,
    PUBLIC_LOOKUP_WINDOW_SECONDS, PUBLIC_REFERENCE_CHARS_MAX, RefundFacts,
};
use crate::refunds::{AskedAmount, CreateOutcome, CreateRefund, RequestedByInput};

/// Longest description of a consumer's request.
pub const REQUEST_DESCRIPTION_CHARS_MAX: usize = 500;
/// Longest contact of a consumer's request.
pub const REQUEST_CONTACT_CHARS_MAX: usize = 100;
/// The key id in the principal a consumer's request is created under (never a real key).
const CONSUMER_KEY_ID: &str = "consumer_request";

/// `POST /v1/public/refund-requests`.
#[derive(Debug, Clone)]
pub struct ConsumerRefundRequest {
    /// The payment's reference number (`rrn`, on the POS slip), or its payment id when it
    /// has none.
    pub reference: String,
    /// The last 4 digits of the card (or wallet account, or phone) that paid.
    pub last4: String,
    /// Fen; omitted means all that is still refundable.
    pub amount: Option<AskedAmount>,
    pub reason: RefundReason,
    /// What happened, up to 500 characters; required for `other`.
    pub description: Option<String>,
    /// How the merchant can reach you (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

/// What the consumer gets back: the refund as the public lookup shows it, and the facts
/// that look it up again (`GET /v1/public/refunds/by-id/{refund_id}?reference=`). The web
/// layer renders `refund` in the reader's language.
#[derive(Debug, Clone)]
pub struct ConsumerRequestAnswer {
    pub refund_id: String,
    pub reference: String,
    pub refund: ConsumerRefund,
}

/// Whether the request made a refund or found the one still waiting.
#[derive(Debug, Clone)]
pub struct ConsumerRequestOutcome {
    pub created: bool,
    pub answer: ConsumerRequestAnswer,
}

fn valid_last4(value: &str) -> EngineResult<()> {
    if value.len() == 4 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(EngineError::validation(
            "last4",
            "give the last 4 digits of the card, wallet account or phone that paid",
        ))
    }
}

/// The payer's account (`**** 1234`, `138****5678`) or phone ends with these digits.
fn payer_matches(payment: &PaymentRow, last4: &str) -> bool {
    let ends = |value: &Option<String>| value.as_deref().is_some_and(|v| v.ends_with(last4));
    ends(&payment.payer_account) || ends(&payment.phone)
}

fn no_payment(reference: &str) -> EngineError {
    EngineError::NotFound {
        what: "payment matching these facts:",
        id: reference.chars().take(PUBLIC_REFERENCE_CHARS_MAX).collect(),
    }
}

/// Seconds until a payment's requests unlock, when its failures have locked them.
fn lock_wait(window_start_us: i64, failures: i64, now_us: i64) -> Option<u64> {
    let ends_us = window_start_us.saturating_add(PUBLIC_LOOKUP_WINDOW_SECONDS * 1_000_000);
    if failures < PUBLIC_LOOKUP_FAILURES_MAX || ends_us <= now_us {
        return None;
    }
    let seconds = (ends_us - now_us + 999_999) / 1_000_000;
    Some(u64::try_from(seconds).unwrap_or(1).max(1))
}

impl Engine {
    // Long on purpose: the checks a consumer's request passes (facts, lock, amount, the
    // waiting refund) in the order the module documentation gives them, then one create.
    /// A consumer's refund request (see the module documentation).
    pub async fn public_request_refund(
        &self,
        input: ConsumerRefundRequest,
    ) -> Result<ConsumerRequestOutcome, CaseError> {
        let reference = input.reference.trim().to_string();
        valid_last4(&input.last4)?;
        let description = optional_text(
            "description",
            input.description.as_deref(),
            REQUEST_DESCRIPTION_CHARS_MAX,
        )?;
        let contact = optional_text(
            "contact",
            input.contact.as_deref(),
            REQUEST_CONTACT_CHARS_MAX,
        )?;
        if input.reason == RefundReason::Other && description.is_none() {
            return Err(EngineError::validation(
                "description",
                "say what happened when the reason is `other`",
            )
            .into());
        }
        if reference.is_empty() || reference.len() > PUBLIC_REFERENCE_CHARS_MAX {
            return Err(no_payment(&reference).into());
        }
        let now_us = to_micros(self.clock.now());
        let candidates = {
            let mut pooled = self.db.acquire().await?;
            pooled
                .conn()
                .payments_by_reference(&reference, PUBLIC_LOOKUP_CANDIDATES_MAX)
                .await?
        };
        let (right, wrong): (Vec<PaymentRow>, Vec<PaymentRow>) = candidates
            .into_iter()
            .partition(|p| payer_matches(p, &input.last4));
        // A locked payment answers the same to right and wrong facts: no oracle.
        let named = if right.is_empty() { &wrong } else { &right };
        {
            let mut pooled = self.db.acquire().await?;
            let mut conn = pooled.conn();
            for payment in named {
                if let Some((start, failures)) = conn.public_request_failures(&payment.id).await?
                    && let Some(retry_after_seconds) = lock_wait(start, failures, now_us)
                {
                    return Err(CaseError::Locked {
                        retry_after_seconds,
                    });
                }
            }
        }
        let payment = match right.as_slice() {
            [one] => one.clone(),
            [] => {
                if !wrong.is_empty() {
                    let window_from_us = now_us - PUBLIC_LOOKUP_WINDOW_SECONDS * 1_000_000;
                    let mut tx = self.db.begin().await?;
                    let mut conn = tx.conn();
                    for payment in &wrong {
                        conn.record_public_request_failure(&payment.id, now_us, window_from_us)
                            .await?;
                    }
                    tx.commit().await?;
                }
                return Err(no_payment(&reference).into());
            }
            _ => {
                return Err(CaseError::Conflict(
                    "several payments match these facts; ask the merchant for the refund".into(),
                ));
            }
        };
        let waiting = {
            let mut pooled = self.db.acquire().await?;
            pooled
                .conn()
                .refunds_of_payment(&payment.merchant_id, &payment.id)
                .await?
                .into_iter()
                .find(|r| {
                    r.requested_by_role == RequesterRole::Consumer
                        && (r.status == RefundStatus::PendingReview
                            || r.status == RefundStatus::AwaitingReturn)
                })
        };
        let (created, refund_id) = match waiting {
            Some(refund) => (false, refund.id),
            None => {
                let note = match (&description, &contact) {
                    (Some(d), Some(c)) => Some(format!("{d} (contact: {c})")),
                    (Some(d), None) => Some(d.clone()),
                    (None, Some(c)) => Some(format!("contact: {c}")),
                    (None, None) => None,
                };
                let merchant = Principal::Merchant {
                    merchant_id: payment.merchant_id.clone(),
                    key_id: CONSUMER_KEY_ID.to_string(),
                    role: MerchantRole::Staff,
                };
                let outcome = self
                    .create_refund_as(
                        &merchant,
                        CONSUMER_ACTOR.to_string(),
                        CreateRefund {
                            payment_id: payment.id.clone(),
                            amount: input.amount,
                            reason: input.reason,
                            merchant_refund_no: new_id("CR").to_uppercase(),
                            note,
                            requested_by: Some(RequestedByInput {
                                role: Some(RequesterRole::Consumer),
                                name: None,
                            }),
                            // Deductions are agreed by the merchant, never asked for here.
                            deductions: Vec::new(),
                        },
                    )
                    .await?;
                match outcome {
                    CreateOutcome::Created(refund) | CreateOutcome::Existing(refund) => {
                        (true, refund.id)
                    }
                }
            }
        };
        let lookup_reference = payment.rrn.clone().unwrap_or_else(|| payment.id.clone());
        let refund = self
            .public_refund(&RefundFacts::ById {
                refund_id: refund_id.clone(),
                reference: lookup_reference.clone(),
            })
            .await?;
        Ok(ConsumerRequestOutcome {
            created,
            answer: ConsumerRequestAnswer {
                refund_id,
                reference: lookup_reference,
                refund,
            },
        })
    }
}
