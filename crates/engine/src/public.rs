//! The consumer's side: look a refund up with facts only the consumer has, see where it
//! is, open a case, rate the experience once it has ended. No key is needed, so nothing
//! beyond the one refund is revealed: no actors, no internal ids but the refund's own.
//!
//! Two ways to name a refund:
//! - the merchant's refund number (on the receipt) and the last four digits of the phone
//!   given with the payment;
//! - the refund id and its payment's reference: the reference number `rrn` printed on the
//!   POS slip, or the payment id when the payment has no `rrn`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::queries_public::FeedbackRow;

use crate::Engine;
pub use crate::audience::{ConsumerDestination, ConsumerEvent, ConsumerRefund, consumer_view};
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::cases::{CaseError, CaseKind, CaseOpener, CaseOutcome, CaseStatus, NewCase, case_texts};
use crate::error::{EngineError, EngineResult};
use crate::payments::optional_text;

/// Longest comment of a rating.
pub const FEEDBACK_COMMENT_CHARS_MAX: usize = 500;
/// Longest id or reference accepted from the public (ids, `rrn`s and payment ids are
/// shorter); longer input is "not found" without a query.
pub const PUBLIC_REFERENCE_CHARS_MAX: usize = 64;
/// Wrong facts (phone digits, payment reference) accepted per refund and window before its
/// public lookup is locked until the window ends.
pub const PUBLIC_LOOKUP_FAILURES_MAX: i64 = 5;
/// The window of [`PUBLIC_LOOKUP_FAILURES_MAX`]: an hour from the first wrong lookup.
pub const PUBLIC_LOOKUP_WINDOW_SECONDS: i64 = 3_600;
/// Refunds with one receipt number looked at per lookup (numbers repeat across merchants).
pub const PUBLIC_LOOKUP_CANDIDATES_MAX: i64 = 20;
/// The audit actor of the consumer's actions.
pub const CONSUMER_ACTOR: &str = "consumer";
/// The audit action of a rating (subject: the refund).
pub const FEEDBACK_ACTION: &str = crate::timeline::action::RATED;
/// Prefixes of yuanlu's internal ids, removed from texts shown to consumers.
pub(crate) const INTERNAL_ID_PREFIXES: [&str; 9] = [
    "mch_", "pay_", "rf_", "key_", "case_", "evt_", "sms_", "stl_", "w_",
];
/// A ULID in lowercase Crockford base32 is 26 characters.
pub(crate) const ULID_CHARS: usize = 26;

/// `POST /v1/public/refunds/{id}/feedback`.
#[derive(Debug, Clone)]
pub struct GiveFeedback {
    /// 1 (bad) to 5 (good).
    pub rating: i64,
    /// Up to 500 characters.
    pub comment: Option<String>,
    /// The payment's reference number (`rrn`), or its payment id when it has none.
    pub reference: String,
}

/// A rating as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feedback {
    pub refund_id: String,
    pub rating: i64,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/public/cases`: name the refund by `refund_id` + `reference`, or by
/// `merchant_refund_no` + `phone_last4`.
#[derive(Debug, Clone)]
pub struct OpenPublicCase {
    pub refund_id: Option<String>,
    pub reference: Option<String>,
    pub merchant_refund_no: Option<String>,
    pub phone_last4: Option<String>,
    pub kind: CaseKind,
    /// What is wrong, 1–1000 characters.
    pub description: String,
    /// How to reach you (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

/// What a consumer sees of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsumerCase {
    pub id: String,
    pub refund_id: String,
    pub kind: CaseKind,
    pub status: CaseStatus,
    pub resolution: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The facts that name a refund to the public.
#[derive(Debug, Clone)]
pub enum RefundFacts {
    ByNumber {
        merchant_refund_no: String,
        phone_last4: String,
    },
    ById {
        refund_id: String,
        reference: String,
    },
    /// The refund number and the last four digits of the card (or account) paid with.
    ByCard {
        merchant_refund_no: String,
        card_last4: String,
    },
}

/// Whether a consumer case was opened or an open one of that kind was found.
#[derive(Debug, Clone)]
pub struct PublicCaseOutcome {
    pub created: bool,
    pub case: ConsumerCase,
}

fn no_match(name: &str) -> EngineError {
    EngineError::NotFound {
        what: "refund matching these facts:",
        id: name.chars().take(PUBLIC_REFERENCE_CHARS_MAX).collect(),
    }
}

fn valid_phone_last4(value: &str) -> EngineResult<()> {
    if value.len() == 4 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(EngineError::validation(
            "phone_last4",
            "give the last 4 digits of the phone number given at payment",
        ))
    }
}

fn valid_card_last4(value: &str) -> EngineResult<()> {
    if value.len() == 4 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(EngineError::validation(
            "card_last4",
            "give the last 4 digits of the card paid with",
        ))
    }
}

fn valid_merchant_refund_no(value: &str) -> EngineResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-|*@".contains(c);
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return Err(EngineError::validation(
            "merchant_refund_no",
            "give the refund number on the merchant's receipt (1 to 64 of 0-9 A-Z a-z _ - | * @)",
        ));
    }
    Ok(())
}

/// Seconds until a refund's lookup unlocks, when `failures` within the window that began at
/// `window_start_us` have locked it.
fn lock_wait(window_start_us: i64, failures: i64, now_us: i64) -> Option<u64> {
    let ends_us = window_start_us.saturating_add(PUBLIC_LOOKUP_WINDOW_SECONDS * 1_000_000);
    if failures < PUBLIC_LOOKUP_FAILURES_MAX || ends_us <= now_us {
        return None;
    }
    let seconds = (ends_us - now_us + 999_999) / 1_000_000;
    Some(u64::try_from(seconds).unwrap_or(1).max(1))
}

/// Compares without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Replaces yuanlu's internal ids (other than `keep`) in a text shown to consumers.
pub fn scrub_internal_ids(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for prefix in INTERNAL_ID_PREFIXES {
            if let Some(after) = rest.strip_prefix(prefix) {
                let body: String = after
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                let boundary_before = out
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                if boundary_before && body.len() == ULID_CHARS {
                    let id_len = prefix.len() + body.len();
                    let id = &rest[..id_len];
                    if id == keep {
                        out.push_str(id);
                    } else {
                        out.push('…');
                    }
                    rest = &rest[id_len..];
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

impl Engine {
    /// The refund the facts name, or "not found" (also for facts that do not match, so
    /// they cannot be probed one at a time), or `conflict` when a refund number and phone
    /// match refunds at several merchants.
    ///
    /// Wrong facts for an existing refund count against that refund (in the database, so
    /// every server sees them): after [`PUBLIC_LOOKUP_FAILURES_MAX`] within
    /// [`PUBLIC_LOOKUP_WINDOW_SECONDS`] its lookup is locked ([`CaseError::Locked`]) until the
    /// window ends, even for the right facts.
    pub async fn public_find_refund(&self, facts: &RefundFacts) -> Result<String, CaseError> {
        let now_us = to_micros(self.clock.now());
        let (found, wrong): (Vec<String>, Vec<String>) = {
            let mut pooled = self.db.acquire().await?;
            let mut conn = pooled.conn();
            match facts {
                RefundFacts::ByNumber {
                    merchant_refund_no,
                    phone_last4,
                } => {
                    valid_merchant_refund_no(merchant_refund_no)?;
                    valid_phone_last4(phone_last4)?;
                    let candidates = conn
                        .public_lookup_by_no(
                            merchant_refund_no,
                            phone_last4,
                            PUBLIC_LOOKUP_CANDIDATES_MAX,
                        )
                        .await?;
                    let (right, wrong): (Vec<_>, Vec<_>) =
                        candidates.into_iter().partition(|(_, matches)| *matches);
                    let ids = |v: Vec<(String, bool)>| v.into_iter().map(|(id, _)| id).collect();
                    (ids(right), ids(wrong))
                }
                RefundFacts::ByCard {
                    merchant_refund_no,
                    card_last4,
                } => {
                    valid_merchant_refund_no(merchant_refund_no)?;
                    valid_card_last4(card_last4)?;
                    let candidates = conn
                        .public_lookup_by_no_card(
                            merchant_refund_no,
                            card_last4,
                            PUBLIC_LOOKUP_CANDIDATES_MAX,
                        )
                        .await?;
                    let (right, wrong): (Vec<_>, Vec<_>) =
                        candidates.into_iter().partition(|(_, matches)| *matches);
                    let ids = |v: Vec<(String, bool)>| v.into_iter().map(|(id, _)| id).collect();
                    (ids(right), ids(wrong))
                }
                RefundFacts::ById {
                    refund_id,
                    reference,
                } => {
                    let too_long = |v: &str| v.is_empty() || v.len() > PUBLIC_REFERENCE_CHARS_MAX;
                    if too_long(refund_id) || too_long(reference) {
                        return Err(no_match(refund_id).into());
                    }
                    let Some(refund) = conn.get_refund(None, refund_id).await? else {
                        return Err(no_match(refund_id).into());
                    };
                    let payment = conn
                        .get_payment(None, &refund.payment_id)
                        .await?
                        .ok_or_else(|| {
                            EngineError::corrupt(format!(
                                "refund {refund_id} names a missing payment"
                            ))
                        })?;
                    let expected = payment.rrn.as_deref().unwrap_or(&payment.id);
                    if same_secret(expected, reference.trim()) {
                        (vec![refund.id], Vec::new())
                    } else {
                        (Vec::new(), vec![refund.id])
                    }
                }
            }
        };
        // A locked refund answers the same to right and wrong facts: no oracle.
        let named = if found.is_empty() { &wrong } else { &found };
        self.refuse_locked(named, now_us).await?;
        let name = match facts {
            RefundFacts::ByNumber {
                merchant_refund_no, ..
            } => merchant_refund_no,
            RefundFacts::ByCard {
                merchant_refund_no, ..
            } => merchant_refund_no,
            RefundFacts::ById { refund_id, .. } => refund_id,
        };
        let digits = match facts {
            RefundFacts::ByCard { .. } => "card",
            _ => "phone",
        };
        match found.as_slice() {
            [] => {
                self.count_wrong_facts(&wrong, now_us).await?;
                Err(no_match(name).into())
            }
            [one] => Ok(one.clone()),
            _ => Err(CaseError::Conflict(format!(
                "several refunds have the number {name} and this {digits}; \
                 look yours up by its refund id and payment reference instead"
            ))),
        }
    }

    /// [`CaseError::Locked`] when one of `ids` has had too many wrong lookups this window.
    async fn refuse_locked(&self, ids: &[String], now_us: i64) -> Result<(), CaseError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        for id in ids {
            if let Some((window_start_us, failures)) = conn.public_lookup_failures(id).await?
                && let Some(wait) = lock_wait(window_start_us, failures, now_us)
            {
                return Err(CaseError::Locked {
                    retry_after_seconds: wait,
                });
            }
        }
        Ok(())
    }

    /// Counts a wrong-facts lookup against each refund it named.
    async fn count_wrong_facts(&self, ids: &[String], now_us: i64) -> Result<(), CaseError> {
        if ids.is_empty() {
            return Ok(());
        }
        let window_from_us = now_us - PUBLIC_LOOKUP_WINDOW_SECONDS * 1_000_000;
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        for id in ids {
            conn.record_public_lookup_failure(id, now_us, window_from_us)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The consumer's view of the refund the facts name.
    pub async fn public_refund(&self, facts: &RefundFacts) -> Result<ConsumerRefund, CaseError> {
        let id = self.public_find_refund(facts).await?;
        let refund = self.get_refund(&Principal::Admin, &id).await?;
        let mut pooled = self.db.acquire().await?;
        let merchant = pooled
            .conn()
            .get_merchant(&refund.merchant_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("refund {id} names a missing merchant")))?;
        Ok(consumer_view(&refund, &merchant.name))
    }

    /// Records the consumer's rating of an ended refund, once.
    pub async fn public_feedback(
        &self,
        refund_id: &str,
        input: GiveFeedback,
    ) -> Result<Feedback, CaseError> {
        if !(1..=5).contains(&input.rating) {
            return Err(EngineError::validation("rating", "give a rating from 1 to 5").into());
        }
        let comment = optional_text(
            "comment",
            input.comment.as_deref(),
            FEEDBACK_COMMENT_CHARS_MAX,
        )?;
        let id = self
            .public_find_refund(&RefundFacts::ById {
                refund_id: refund_id.to_string(),
                reference: input.reference.clone(),
            })
            .await?;
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let refund = conn
            .get_refund(None, &id)
            .await?
            .ok_or_else(|| no_match(refund_id))?;
        let status = refund.status;
        if !status.is_final() {
            return Err(EngineError::InvalidTransition {
                refund_id: id,
                status: status.id().to_string(),
                action: "rated yet: ratings are taken once a refund has ended",
            }
            .into());
        }
        let row = FeedbackRow {
            refund_id: id.clone(),
            merchant_id: refund.merchant_id.clone(),
            rating: input.rating,
            comment: comment.clone(),
            created_at_us: now_us,
        };
        if !conn.insert_feedback(&row).await? {
            return Err(CaseError::Conflict(format!(
                "refund {id} has already been rated; a refund is rated once"
            )));
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &refund.merchant_id,
                at_us: now_us,
                actor: CONSUMER_ACTOR,
                action: FEEDBACK_ACTION,
                subject_id: &id,
                data: json!({ "rating": input.rating, "comment": comment }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Feedback {
            refund_id: id,
            rating: input.rating,
            comment,
            created_at: from_micros(now_us),
        })
    }

    /// A consumer opens a case on the refund the facts name; an open case of the same kind
    /// is answered instead.
    pub async fn public_open_case(
        &self,
        input: OpenPublicCase,
    ) -> Result<PublicCaseOutcome, CaseError> {
        let facts = match (
            input.refund_id,
            input.reference,
            input.merchant_refund_no,
            input.phone_last4,
        ) {
            (Some(refund_id), Some(reference), None, None) => RefundFacts::ById {
                refund_id,
                reference,
            },
            (None, None, Some(merchant_refund_no), Some(phone_last4)) => RefundFacts::ByNumber {
                merchant_refund_no,
                phone_last4,
            },
            _ => {
                return Err(EngineError::validation(
                    "refund_id",
                    "name the refund by refund_id and reference, or by merchant_refund_no and phone_last4",
                )
                .into());
            }
        };
        let (description, contact) = case_texts(&input.description, input.contact.as_deref())?;
        let id = self.public_find_refund(&facts).await?;
        let outcome = self
            .open_case_scoped(
                None,
                &NewCase {
                    refund_id: id,
                    kind: input.kind,
                    description,
                    contact,
                    opened_by: CaseOpener::Consumer,
                    actor: CONSUMER_ACTOR.to_string(),
                },
            )
            .await?;
        let case = outcome.case();
        Ok(PublicCaseOutcome {
            created: matches!(outcome, CaseOutcome::Created(_)),
            case: ConsumerCase {
                id: case.id.clone(),
                refund_id: case.refund_id.clone(),
                kind: case.kind,
                status: case.status,
                resolution: case.resolution.clone(),
                created_at: case.created_at,
                resolved_at: case.resolved_at,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ids_are_scrubbed_except_the_refund() {
        let refund = "rf_01kaaaaaaaaaaaaaaaaaaaaaaa";
        let other = "pay_01kbbbbbbbbbbbbbbbbbbbbbbb";
        let text = format!("refund {refund} of payment {other}; keep rf_short and shop_rf_x");
        assert_eq!(
            scrub_internal_ids(&text, refund),
            format!("refund {refund} of payment …; keep rf_short and shop_rf_x")
        );
        assert_eq!(scrub_internal_ids("退款已受理", refund), "退款已受理");
    }

    #[test]
    fn phone_digits_and_numbers_are_checked() {
        assert!(valid_phone_last4("0403").is_ok());
        assert!(valid_phone_last4("403").is_err());
        assert!(valid_phone_last4("04a3").is_err());
        assert!(valid_merchant_refund_no("R-2026|01").is_ok());
        assert!(valid_merchant_refund_no("no spaces").is_err());
    }
}
