//! The consumer confirms arrival (确认收款): once the channel reported a refund paid, the
//! consumer says whether the money reached them.
//!
//! - "received" closes the loop: it is final, and reports show the time to confirmed arrival
//!   beside the time to the channel's success.
//! - "not received" after the expected arrival date opens a `not_arrived` case at once, its
//!   description carrying the channel's refund reference for the staff who chase it (an open
//!   case of that kind is reused). Before the expected date it is recorded, and the answer
//!   says until when to wait; saying it again later opens the case.
//! - A "not received" may later become "received" (the money came late); "received" is never
//!   taken back.
//!
//! The refund is named by its id and the payment's reference, with the public lookup's
//! limits on wrong guesses. Each answer is on the merchant's audit chain.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::queries_arrival::ArrivalAnswerRow;

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::cases::{Case, CaseError, CaseKind, CaseOpener, NewCase};
use crate::error::EngineError;
use crate::public::{CONSUMER_ACTOR, ConsumerCase, RefundFacts};

/// Audit actions of the answers.
pub const RECEIVED_ACTION: &str = "refund.arrival_confirmed";
pub const NOT_RECEIVED_ACTION: &str = "refund.arrival_denied";

/// What the consumer's answer recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArrivalAnswer {
    pub refund_id: String,
    /// The answer just given.
    pub received: bool,
    pub answered_at: DateTime<Utc>,
    /// When the consumer said "received" (this time or before).
    pub received_at: Option<DateTime<Utc>>,
    /// When the money should have arrived by.
    pub expected_arrival_by: Option<DateTime<Utc>>,
    /// "Not received" before the expected date: wait until then before a case opens.
    pub wait_until: Option<DateTime<Utc>>,
    /// The `not_arrived` case the answer opened (or the open one it found).
    pub case: Option<ConsumerCase>,
}

impl From<&Case> for ConsumerCase {
    fn from(case: &Case) -> Self {
        ConsumerCase {
            id: case.id.clone(),
            refund_id: case.refund_id.clone(),
            kind: case.kind,
            status: case.status,
            resolution: case.resolution.clone(),
            created_at: case.created_at,
            resolved_at: case.resolved_at,
        }
    }
}

impl Engine {
    // Long on purpose: the lookup's lock and facts check, the answer's rules and the case
    // it may open share one transaction and one refund read.
    /// The consumer's answer to "has the money arrived?" for the refund `refund_id`, named
    /// with the payment's `reference`. See the module documentation.
    pub async fn public_answer_arrival(
        &self,
        refund_id: &str,
        reference: &str,
        received: bool,
    ) -> Result<ArrivalAnswer, CaseError> {
        let id = self
            .public_find_refund(&RefundFacts::ById {
                refund_id: refund_id.to_string(),
                reference: reference.to_string(),
            })
            .await?;
        let now = self.clock.now();
        let now_us = to_micros(now);
        let (refund, before) = {
            let mut pooled = self.db.acquire().await?;
            let mut conn = pooled.conn();
            let refund = conn.get_refund(None, &id).await?.ok_or_else(|| {
                EngineError::corrupt(format!("refund {id} vanished after its lookup"))
            })?;
            (refund, conn.get_arrival_answer(&id).await?)
        };
        let status = refund.status;
        if status != RefundStatus::Succeeded {
            return Err(EngineError::InvalidTransition {
                refund_id: id,
                status: status.id().to_string(),
                action: "confirmed as arrived yet: the channel has not reported it paid",
            }
            .into());
        }
        let already_received = before.as_ref().and_then(|a| a.received_at_us);
        if already_received.is_some() && !received {
            return Err(CaseError::Conflict(format!(
                "refund {id} was confirmed received; that answer is final"
            )));
        }
        let expected_us = refund.expected_arrival_by_us;
        let late = expected_us.is_none_or(|by| now_us > by);
        let case = if !received && late {
            let channel_ref = refund.channel_refund_id.as_deref().unwrap_or("none yet");
            let outcome = self
                .open_case_scoped(
                    None,
                    &NewCase {
                        refund_id: id.clone(),
                        kind: CaseKind::NotArrived,
                        description: format!(
                            "The consumer says the refund has not arrived, after its expected date. Channel refund reference: {channel_ref}."
                        ),
                        contact: None,
                        opened_by: CaseOpener::Consumer,
                        actor: CONSUMER_ACTOR.to_string(),
                    },
                )
                .await?;
            Some(ConsumerCase::from(outcome.case()))
        } else {
            None
        };
        let received_at_us = already_received.or(received.then_some(now_us));
        let row = ArrivalAnswerRow {
            refund_id: id.clone(),
            merchant_id: refund.merchant_id.clone(),
            received: i64::from(received),
            answered_at_us: now_us,
            received_at_us,
            case_id: case.as_ref().map(|c| c.id.clone()),
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        conn.put_arrival_answer(&row).await?;
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &refund.merchant_id,
                at_us: now_us,
                actor: CONSUMER_ACTOR,
                action: if received {
                    RECEIVED_ACTION
                } else {
                    NOT_RECEIVED_ACTION
                },
                subject_id: &id,
                data: json!({
                    "channel_refund_id": refund.channel_refund_id,
                    "case_id": row.case_id,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ArrivalAnswer {
            refund_id: id,
            received,
            answered_at: now,
            received_at: received_at_us.map(from_micros),
            expected_arrival_by: expected_us.map(from_micros),
            wait_until: (!received && !late)
                .then_some(expected_us)
                .flatten()
                .map(from_micros),
            case,
        })
    }
}
