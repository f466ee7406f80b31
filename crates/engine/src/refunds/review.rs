//! Review, cancel and returned goods: a use case chooses a [`Change`], the transition
//! module writes it.

use super::*;
use yuanlu_domain::decide::status_after_return_with;
use yuanlu_domain::evidence::EvidenceKind;

impl Engine {
    /// Approves a refund waiting for review: it becomes `queued` (a void completes at once).
    pub async fn approve_refund(
        &self,
        who: &Principal,
        id: &str,
        input: ReviewNote,
    ) -> EngineResult<Refund> {
        let note = optional_text("note", input.note.as_deref(), NOTE_CHARS_MAX)?;
        self.review(who, id, note, true).await
    }

    /// Rejects a refund waiting for review, with a note saying why.
    pub async fn reject_refund(
        &self,
        who: &Principal,
        id: &str,
        input: ReviewNote,
    ) -> EngineResult<Refund> {
        let note = optional_text("note", input.note.as_deref(), NOTE_CHARS_MAX)?
            .ok_or_else(|| EngineError::validation("note", "say why the refund is rejected"))?;
        self.review(who, id, Some(note), false).await
    }

    async fn review(
        &self,
        who: &Principal,
        id: &str,
        note: Option<String>,
        approve: bool,
    ) -> EngineResult<Refund> {
        let verb = if approve { "approved" } else { "rejected" };
        self.change_refund(who, id, |row, payment, missing| {
            let status = row.status;
            if status != RefundStatus::PendingReview {
                return Err(invalid(row, status, verb));
            }
            // Held for evidence its merchant requires: no approval until it is there.
            if approve && !missing.is_empty() {
                return Err(EngineError::EvidenceRequired {
                    refund_id: row.id.clone(),
                    missing: yuanlu_domain::evidence::join_kinds(missing),
                });
            }
            let required = row
                .required_reviewer
                .as_deref()
                .and_then(RequiredReviewer::parse)
                .unwrap_or(RequiredReviewer::Acquirer);
            if !who.reviewer().may_review(required) {
                let whom = match required {
                    RequiredReviewer::Acquirer => "the acquirer",
                    RequiredReviewer::Merchant => "a merchant supervisor or the acquirer",
                };
                return Err(EngineError::Forbidden(format!(
                    "this review can only be {verb} by {whom}"
                )));
            }
            let _ = payment;
            Ok(Change {
                to: if approve {
                    RefundStatus::Queued
                } else {
                    RefundStatus::Rejected
                },
                action: if approve {
                    action::APPROVED
                } else {
                    action::REJECTED
                },
                review_note: note.clone(),
                reviewed_by: Some(who.actor()),
                tracking_no: None,
            })
        })
        .await
    }

    /// Cancels a refund that has not been sent to its channel.
    pub async fn cancel_refund(
        &self,
        who: &Principal,
        id: &str,
        input: ReviewNote,
    ) -> EngineResult<Refund> {
        let note = optional_text("note", input.note.as_deref(), NOTE_CHARS_MAX)?;
        self.change_refund(who, id, |row, _, _| {
            let status = row.status;
            if !status.can_become(RefundStatus::Canceled) {
                return Err(invalid(row, status, "canceled"));
            }
            Ok(Change {
                to: RefundStatus::Canceled,
                action: action::CANCELED,
                review_note: note.clone(),
                reviewed_by: None,
                tracking_no: None,
            })
        })
        .await
    }

    /// Records the goods that came back; the refund moves on to review or the queue.
    pub async fn record_return(
        &self,
        who: &Principal,
        id: &str,
        input: RecordReturn,
    ) -> EngineResult<Refund> {
        who.require_merchant()?;
        let tracking_no = optional_text(
            "tracking_no",
            Some(&input.tracking_no),
            IDENTIFIER_CHARS_MAX,
        )?
        .ok_or_else(|| {
            EngineError::validation("tracking_no", "give the logistics tracking number")
        })?;
        self.change_refund(who, id, |row, _, missing| {
            let status = row.status;
            if status != RefundStatus::AwaitingReturn {
                return Err(invalid(row, status, "marked as returned"));
            }
            let reasons = views::review_reasons(&row.review_reasons)?;
            Ok(Change {
                // Still waiting for required evidence: to `pending_review`, held.
                to: status_after_return_with(&reasons, !missing.is_empty()),
                action: action::GOODS_RETURNED,
                review_note: None,
                reviewed_by: None,
                tracking_no: Some(tracking_no.clone()),
            })
        })
        .await
    }

    /// Reads the refund and its payment under the payment's lock, lets `decide` choose the
    /// change (told the evidence the refund still waits for, if it is held), and writes it
    /// with its counters and audit entry.
    async fn change_refund<F>(&self, who: &Principal, id: &str, decide: F) -> EngineResult<Refund>
    where
        F: FnOnce(&RefundRow, &PaymentRow, &[EvidenceKind]) -> EngineResult<Change>,
    {
        let not_found = || EngineError::NotFound {
            what: "refund",
            id: id.to_string(),
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let scope = who.merchant_scope();
        let first_read = conn.get_refund(scope, id).await?.ok_or_else(not_found)?;
        let payment = conn
            .lock_payment(&first_read.merchant_id, &first_read.payment_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("refund {id} names a missing payment")))?;
        // Read again under the lock: the status may have moved while we waited for it.
        let mut row = conn.get_refund(scope, id).await?.ok_or_else(not_found)?;
        let (hold, evidence) = crate::evidence::refund_evidence(&mut conn, id).await?;
        let missing = match hold {
            Some(hold) if hold.released_at_us.is_none() => evidence.missing,
            _ => Vec::new(),
        };
        let change = decide(&row, &payment, &missing)?;
        let now = self.clock.now();
        let now_us = to_micros(now);
        let from = row.status;
        let mut counters = payment.counters();
        let queued = change.to == RefundStatus::Queued;
        if queued && row.refund_type == RefundType::Void {
            // Decide again: the void window may have passed while it waited.
            void_or_refund(&mut conn, &mut row, &payment, &mut counters, now).await?;
        }
        apply_transition(
            &mut conn,
            &mut row,
            &mut counters,
            from,
            &change,
            &who.actor(),
            now_us,
        )
        .await?;
        if queued && row.refund_type == RefundType::Void {
            complete_void(&mut conn, &mut row, &mut counters, "system", now_us).await?;
            notify::enqueue_refund_sms(&mut conn, &row, &payment, notify::SmsKind::Arrived, now_us)
                .await?;
        } else if queued {
            // A refund queued after review or a return waits for a dispatch worker.
            row.next_attempt_at_us = Some(now_us);
            conn.queue_refund_for_dispatch(&row.merchant_id, &row.id, now_us)
                .await?;
        }
        let view = refund_view(&mut conn, &row, &payment).await?;
        tx.commit().await?;
        Ok(view)
    }
}
