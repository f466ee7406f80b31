//! Refund use cases: create (every rule of the spec, idempotent on `merchant_refund_no`),
//! approve, reject, cancel, record returned goods, read with the timeline, list.
//!
//! Locking order, the same everywhere so transactions never deadlock: the payment row
//! first, then the merchant's audit head.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::decide::{
    DecideContext, RefundAsk, RefundPlan, decide_refund, status_after_return, void_becomes_refund,
};
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole};
use yuanlu_domain::review::{DayTotals, RequiredReviewer};
use yuanlu_domain::time::{shanghai_date, shanghai_day_bounds, to_micros};
use yuanlu_store::{
    BalanceRow, Conn, Db, PaymentCounters, PaymentRow, RefundFilter, RefundRow, RefundStatusUpdate,
};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::{self, new_id};
use crate::ledger::{self, LedgerEvent, PostingFacts};
use crate::notify;
use crate::payments::{IDENTIFIER_CHARS_MAX, optional_text, parse_amount};
use crate::timeline::{self, action};
use crate::tx_memo::TxMemo;
use crate::views::{self, Page, Refund};

/// Longest note accepted on a refund or a review.
pub const NOTE_CHARS_MAX: usize = 500;
/// How many times a create is retried when a concurrent one took the same
/// `merchant_refund_no` for another payment between our check and our insert.
const CREATE_ATTEMPTS_MAX: usize = 2;
/// How many times a create aborted by a deadlock or serialization conflict runs again.
const CONFLICT_RETRIES_MAX: usize = 5;

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedByInput {
    /// `merchant` (default) or `consumer` (a consumer's request relayed by the merchant).
    pub role: Option<RequesterRole>,
    /// Who asked, e.g. "cashier Li".
    pub name: Option<String>,
}

/// `POST /v1/refunds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    pub payment_id: String,
    /// Fen; omitted means the whole refundable amount.
    #[schema(value_type = Option<i64>)]
    pub amount: Option<serde_json::Value>,
    pub reason: RefundReason,
    /// Unique per merchant; repeating it with the same payment and amount returns the
    /// existing refund. 1–64 of `0-9 A-Z a-z _ - | * @`.
    pub merchant_refund_no: String,
    /// Required when the reason is `other`.
    pub note: Option<String>,
    pub requested_by: Option<RequestedByInput>,
}

/// `POST /v1/refunds/{id}/approve|reject|cancel`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewNote {
    pub note: Option<String>,
}

/// `POST /v1/refunds/{id}/return`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordReturn {
    pub tracking_no: String,
}

/// Whether a create made a new refund or found the one its number already names.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(Box<Refund>),
    Existing(Box<Refund>),
}

/// Filters of `GET /v1/refunds`.
#[derive(Debug, Clone, Default)]
pub struct RefundQuery {
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
    pub channel: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub limit: i64,
    pub starting_after: Option<String>,
}

fn valid_merchant_refund_no(value: &str) -> EngineResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-|*@".contains(c);
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return Err(EngineError::validation(
            "merchant_refund_no",
            "give 1 to 64 of 0-9 A-Z a-z _ - | * @",
        ));
    }
    Ok(())
}

/// Everything of a create request that can be checked before touching the database.
struct ParsedCreate {
    ask: RefundAsk,
    note: Option<String>,
    requested_by_name: Option<String>,
}

fn parse_create(input: &CreateRefund) -> EngineResult<ParsedCreate> {
    valid_merchant_refund_no(&input.merchant_refund_no)?;
    let amount_fen = input.amount.as_ref().map(parse_amount).transpose()?;
    let note = optional_text("note", input.note.as_deref(), NOTE_CHARS_MAX)?;
    if input.reason == RefundReason::Other && note.is_none() {
        return Err(EngineError::validation(
            "note",
            "a refund for reason `other` needs a note saying why",
        ));
    }
    let requested_by = input.requested_by.clone().unwrap_or_default();
    Ok(ParsedCreate {
        ask: RefundAsk {
            amount_fen,
            reason: input.reason,
            requested_by: requested_by.role.unwrap_or_default(),
        },
        note,
        requested_by_name: optional_text(
            "requested_by.name",
            requested_by.name.as_deref(),
            IDENTIFIER_CHARS_MAX,
        )?,
    })
}

impl Engine {
    pub async fn create_refund(
        &self,
        who: &Principal,
        input: CreateRefund,
    ) -> EngineResult<CreateOutcome> {
        let merchant_id = who.require_merchant()?.to_string();
        let parsed = parse_create(&input)?;
        let job = CreateJob {
            who: who.clone(),
            merchant_id,
            input,
            parsed,
            clock: self.clock.clone(),
        };
        self.refund_writer().submit(job).await
    }

    /// Writes these creates as one group commit, in this order, and answers each: what the
    /// refund writer does with the creates it finds queued together. Tests and benchmarks
    /// call it to make a batch's make-up certain; the API goes through [`Self::create_refund`].
    pub async fn create_refunds_together(
        &self,
        who: &Principal,
        inputs: Vec<CreateRefund>,
    ) -> Vec<EngineResult<CreateOutcome>> {
        let merchant_id = match who.require_merchant() {
            Ok(id) => id.to_string(),
            Err(_) => {
                return inputs
                    .iter()
                    .filter_map(|_| who.require_merchant().err())
                    .map(Err)
                    .collect();
            }
        };
        let mut answers: Vec<Option<EngineResult<CreateOutcome>>> = Vec::new();
        let mut jobs = Vec::new();
        for input in inputs {
            match parse_create(&input) {
                Ok(parsed) => {
                    answers.push(None);
                    jobs.push(CreateJob {
                        who: who.clone(),
                        merchant_id: merchant_id.clone(),
                        input,
                        parsed,
                        clock: self.clock.clone(),
                    });
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let mut written = crate::refund_writer::write_batch(&self.batch_target(), &jobs)
            .await
            .into_iter();
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    written.next().unwrap_or_else(|| {
                        Err(EngineError::corrupt(
                            "a batch answered fewer creates than it held",
                        ))
                    })
                })
            })
            .collect()
    }
}

/// One create, alone in its own transaction: the path when group commit is not possible
/// (a batch of one, or a batch that broke). Retries once when a concurrent create took the
/// same `merchant_refund_no` for another payment between our check and our insert: looking
/// again finds it and answers as an idempotent repeat or a conflict.
pub(crate) async fn create_alone(
    db: &Db,
    job: &CreateJob,
    stats: &crate::refund_writer::GroupCommitStats,
) -> EngineResult<CreateOutcome> {
    use yuanlu_store::StoreError::{Conflict, UniqueViolation};
    let mut conflicts = 0;
    let mut attempts = 0;
    while attempts < CREATE_ATTEMPTS_MAX {
        let mut tx = db.begin().await?;
        let outcome = match create_in(&mut tx.conn(), &mut TxMemo::default(), job).await {
            Ok(outcome) => tx
                .commit()
                .await
                .map(|()| outcome)
                .map_err(EngineError::Store),
            Err(CreateFailure::Refused(error)) => return Err(error),
            Err(CreateFailure::Broken(error)) => Err(error),
        };
        match outcome {
            // PostgreSQL broke a deadlock with another server's transaction (or a
            // concurrent worker's) by aborting ours: nothing of it was written.
            Err(EngineError::Store(Conflict(why))) if conflicts < CONFLICT_RETRIES_MAX => {
                conflicts += 1;
                stats.count_conflict_retry();
                tracing::debug!(%why, conflicts, "create aborted by a conflict; running it again");
            }
            Err(EngineError::Store(UniqueViolation(_))) => attempts += 1,
            other => return other,
        }
    }
    Err(EngineError::MerchantRefundNoConflict {
        merchant_refund_no: job.input.merchant_refund_no.clone(),
        existing_refund_id: String::new(),
        existing_payment_id: String::new(),
        existing_amount: 0,
    })
}

/// A create request, parsed and ready for a transaction.
pub(crate) struct CreateJob {
    pub who: Principal,
    pub merchant_id: String,
    pub input: CreateRefund,
    parsed: ParsedCreate,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// Why a create inside a (possibly shared) transaction did not produce a refund.
pub(crate) enum CreateFailure {
    /// A rule said no before anything was written: the transaction goes on for the others.
    Refused(EngineError),
    /// The database failed, or failed after writing: the transaction must be rolled back.
    Broken(EngineError),
}

/// Runs one create inside `conn`'s transaction, which may hold other creates of a group
/// commit: every rule is checked against what the transaction already holds.
pub(crate) async fn create_in(
    conn: &mut Conn<'_>,
    memo: &mut TxMemo,
    job: &CreateJob,
) -> Result<CreateOutcome, CreateFailure> {
    let now = job.clock.now();
    let planned = match plan_create(conn, memo, now, job).await {
        Ok(Planned::Existing(view)) => return Ok(CreateOutcome::Existing(view)),
        Ok(Planned::New(planned)) => planned,
        // On PostgreSQL a failed statement aborts the whole transaction.
        Err(error @ EngineError::Store(_)) => return Err(CreateFailure::Broken(error)),
        Err(error) => return Err(CreateFailure::Refused(error)),
    };
    write_create(conn, memo, now, job, *planned)
        .await
        .map_err(CreateFailure::Broken)
}

/// What the reads and rules decided: an idempotent repeat, or a new refund to write.
enum Planned {
    Existing(Box<Refund>),
    New(Box<NewRefund>),
}

struct NewRefund {
    payment_row: PaymentRow,
    plan: RefundPlan,
    /// The merchant's balance row, locked and read by the funding rule.
    balance: BalanceRow,
}

/// The reads and every rule; writes nothing but the merchant's balance row if it had none.
async fn plan_create(
    conn: &mut Conn<'_>,
    memo: &mut TxMemo,
    now: DateTime<Utc>,
    job: &CreateJob,
) -> EngineResult<Planned> {
    let (merchant_id, input, parsed) = (job.merchant_id.as_str(), &job.input, &job.parsed);
    let payment_row = conn
        .lock_payment(merchant_id, &input.payment_id)
        .await?
        .ok_or_else(|| EngineError::PaymentNotFound(input.payment_id.clone()))?;
    if let Some(existing) = conn
        .find_refund_by_merchant_no(merchant_id, &input.merchant_refund_no)
        .await?
    {
        let same = existing.payment_id == input.payment_id
            && parsed
                .ask
                .amount_fen
                .is_none_or(|a| a == existing.amount_fen);
        if !same {
            return Err(EngineError::MerchantRefundNoConflict {
                merchant_refund_no: input.merchant_refund_no.clone(),
                existing_refund_id: existing.id,
                existing_payment_id: existing.payment_id,
                existing_amount: existing.amount_fen,
            });
        }
        let view = refund_view(conn, &existing, &payment_row).await?;
        return Ok(Planned::Existing(Box::new(view)));
    }
    let settings = memo.settings(conn, merchant_id).await?;
    let payment = views::payment_state(&payment_row)?;
    let (day_start, day_end) = shanghai_day_bounds(shanghai_date(now));
    let totals = memo
        .day_totals(conn, merchant_id, to_micros(day_start), to_micros(day_end))
        .await?;
    let capture_date = shanghai_date(payment.captured_at)
        .format("%Y-%m-%d")
        .to_string();
    let plan = decide_refund(
        &parsed.ask,
        &DecideContext {
            settings: &settings,
            payment: &payment,
            now,
            today: DayTotals {
                sales_fen: totals.sales_fen,
                refunds_fen: totals.refunds_fen,
            },
            capture_day_settled: memo.is_settled(conn, &capture_date).await?,
        },
    )?;
    // The funding rule, under the merchant's balance lock: checked when the refund is asked
    // for, and again when it is queued (debited) if it waits first.
    let balance = memo.locked_balance(conn, merchant_id).await?;
    ledger::check_funded(
        balance,
        settings.funding,
        plan.amount_fen - plan.fee_refunded_fen,
    )?;
    Ok(Planned::New(Box::new(NewRefund {
        payment_row,
        plan,
        balance,
    })))
}

/// The writes of a new refund: the row, its ledger posting, the payment's counters, the
/// audit entry, the webhook; a void completes at once.
async fn write_create(
    conn: &mut Conn<'_>,
    memo: &mut TxMemo,
    now: DateTime<Utc>,
    job: &CreateJob,
    planned: NewRefund,
) -> EngineResult<CreateOutcome> {
    let (merchant_id, input, parsed, who) =
        (job.merchant_id.as_str(), &job.input, &job.parsed, &job.who);
    let NewRefund {
        payment_row,
        plan,
        balance,
    } = planned;
    let now_us = to_micros(now);
    let mut row = refund_row(merchant_id, input, parsed, &payment_row, &plan, now_us);
    conn.insert_refund(&row).await?;
    memo.created_refund(merchant_id, now_us, row.amount_fen);
    if needs_dispatch(plan.status, plan.refund_type) {
        let after = ledger::post_locked(
            conn,
            &refund_posting(&row, LedgerEvent::RefundQueued, now_us)?,
            balance,
        )
        .await?;
        memo.wrote_balance(merchant_id, after);
    }
    let mut counters = payment_row.counters();
    counters.amount_in_flight_fen += plan.amount_fen;
    counters.fee_returned_fen += plan.fee_refunded_fen;
    counters.refund_count += 1;
    conn.update_payment_counters(&payment_row.id, &counters)
        .await?;
    let actor = who.actor();
    let head = memo.locked_audit_head(conn, merchant_id).await?;
    let entry = audit::append_after(
        conn,
        head,
        AuditEvent {
            chain: merchant_id,
            at_us: now_us,
            actor: &actor,
            action: action::CREATED,
            subject_id: &row.id,
            data: json!({
                "status": row.status,
                "type": row.refund_type,
                "amount": row.amount_fen,
                "fee_refunded": row.fee_refunded_fen,
                "payment_id": row.payment_id,
                "merchant_refund_no": row.merchant_refund_no,
                "requested_by_role": row.requested_by_role,
                "requested_by_name": row.requested_by_name,
                "review_reasons": row.review_reasons,
            }),
        },
    )
    .await?;
    memo.appended(&entry);
    let has_webhook = memo.has_webhook(conn, merchant_id).await?;
    notify::enqueue_refund_event_if(conn, has_webhook, &row, notify::EVENT_CREATED, now_us).await?;
    if plan.status == RefundStatus::Queued && plan.refund_type == RefundType::Void {
        complete_void(conn, &mut row, &mut counters, "system", now_us).await?;
        memo.forget_locked(merchant_id);
        notify::enqueue_refund_sms(conn, &row, &payment_row, notify::SmsKind::Arrived, now_us)
            .await?;
        let view = refund_view(conn, &row, &payment_row).await?;
        return Ok(CreateOutcome::Created(Box::new(view)));
    }
    // The new refund's only audit entry is the one just written: no need to read it back.
    let view = refund_view_of(&row, &payment_row, &[entry])?;
    Ok(CreateOutcome::Created(Box::new(view)))
}

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
        self.change_refund(who, id, |row, payment| {
            let status = parse_status(row)?;
            if status != RefundStatus::PendingReview {
                return Err(invalid(row, status, verb));
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
        self.change_refund(who, id, |row, _| {
            let status = parse_status(row)?;
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
        self.change_refund(who, id, |row, _| {
            let status = parse_status(row)?;
            if status != RefundStatus::AwaitingReturn {
                return Err(invalid(row, status, "marked as returned"));
            }
            let reasons = views::review_reasons(&row.review_reasons)?;
            Ok(Change {
                to: status_after_return(&reasons),
                action: action::GOODS_RETURNED,
                review_note: None,
                reviewed_by: None,
                tracking_no: Some(tracking_no.clone()),
            })
        })
        .await
    }

    /// Reads the refund and its payment under the payment's lock, lets `decide` choose the
    /// change, and writes it with its counters and audit entry.
    async fn change_refund<F>(&self, who: &Principal, id: &str, decide: F) -> EngineResult<Refund>
    where
        F: FnOnce(&RefundRow, &PaymentRow) -> EngineResult<Change>,
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
        let change = decide(&row, &payment)?;
        let now = self.clock.now();
        let now_us = to_micros(now);
        let from = parse_status(&row)?;
        let mut counters = payment.counters();
        let queued = change.to == RefundStatus::Queued;
        if queued && row.refund_type == RefundType::Void.id() {
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
        if queued && row.refund_type == RefundType::Void.id() {
            complete_void(&mut conn, &mut row, &mut counters, "system", now_us).await?;
            notify::enqueue_refund_sms(&mut conn, &row, &payment, notify::SmsKind::Arrived, now_us)
                .await?;
        } else if queued {
            // A refund queued after review or a return waits for a dispatch worker.
            row.next_attempt_at_us = Some(now_us);
            conn.update_refund_dispatch(&row).await?;
        }
        let view = refund_view(&mut conn, &row, &payment).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn get_refund(&self, who: &Principal, id: &str) -> EngineResult<Refund> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn
            .get_refund(who.merchant_scope(), id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "refund",
                id: id.to_string(),
            })?;
        let payment = conn
            .get_payment(None, &row.payment_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("refund {id} names a missing payment")))?;
        refund_view(&mut conn, &row, &payment).await
    }

    pub async fn list_refunds(
        &self,
        who: &Principal,
        query: RefundQuery,
    ) -> EngineResult<Page<Refund>> {
        let now = self.clock.now();
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let rows = conn
            .list_refunds(&RefundFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                status: query.status.map(|s| s.id().to_string()),
                payment_id: query.payment_id,
                channel: query.channel,
                created_from_us: query.created_from.map(to_micros),
                created_to_us: query.created_to.map(to_micros),
                overdue: query.overdue.then(|| {
                    (
                        to_micros(now),
                        to_micros(
                            now - chrono::Duration::hours(
                                crate::dispatch::UNCONFIRMED_OVERDUE_HOURS,
                            ),
                        ),
                    )
                }),
                starting_after: query.starting_after,
                limit: query.limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > query.limit;
        let mut data = Vec::with_capacity(rows.len());
        for row in rows.iter().take(query.limit as usize) {
            let payment = conn
                .get_payment(None, &row.payment_id)
                .await?
                .ok_or_else(|| {
                    EngineError::corrupt(format!("refund {} names a missing payment", row.id))
                })?;
            data.push(refund_view(&mut conn, row, &payment).await?);
        }
        Ok(Page { data, has_more })
    }
}

/// A status change chosen by a use case.
pub(crate) struct Change {
    pub(crate) to: RefundStatus,
    pub(crate) action: &'static str,
    pub(crate) review_note: Option<String>,
    pub(crate) reviewed_by: Option<String>,
    pub(crate) tracking_no: Option<String>,
}

pub(crate) fn parse_status(row: &RefundRow) -> EngineResult<RefundStatus> {
    RefundStatus::parse(&row.status)
        .ok_or_else(|| EngineError::corrupt(format!("refund {} has status {}", row.id, row.status)))
}

fn invalid(row: &RefundRow, status: RefundStatus, action: &'static str) -> EngineError {
    EngineError::InvalidTransition {
        refund_id: row.id.clone(),
        status: status.id().to_string(),
        action,
    }
}

/// Writes one transition: the refund's status, the payment's counters, the audit entry.
pub(crate) async fn apply_transition(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut PaymentCounters,
    from: RefundStatus,
    change: &Change,
    actor: &str,
    now_us: i64,
) -> EngineResult<()> {
    if !from.can_become(change.to) {
        return Err(invalid(row, from, change.action));
    }
    let moved = conn
        .update_refund_status(&RefundStatusUpdate {
            refund_id: &row.id,
            from_status: from.id(),
            to_status: change.to.id(),
            review_note: change.review_note.as_deref(),
            reviewed_by: change.reviewed_by.as_deref(),
            tracking_no: change.tracking_no.as_deref(),
            failure_reason: None,
            at_us: now_us,
        })
        .await?;
    if !moved {
        return Err(EngineError::corrupt(format!(
            "refund {} moved while its payment was locked",
            row.id
        )));
    }
    ledger_effects(conn, row, from, change.to, now_us).await?;
    if from.holds_money() && !change.to.holds_money() {
        counters.amount_in_flight_fen -= row.amount_fen;
        if change.to == RefundStatus::Succeeded {
            counters.amount_refunded_fen += row.amount_fen;
            // Paid by the merchant: the ledger releases the hold, fee included.
            if paid_by_merchant(row) {
                counters.fee_returned_fen -= row.fee_refunded_fen;
            }
        } else {
            counters.fee_returned_fen -= row.fee_refunded_fen;
        }
    }
    conn.update_payment_counters(&row.payment_id, counters)
        .await?;
    row.status = change.to.id().to_string();
    row.updated_at_us = now_us;
    if let Some(note) = &change.review_note {
        row.review_note = Some(note.clone());
    }
    if let Some(by) = &change.reviewed_by {
        row.reviewed_by = Some(by.clone());
    }
    if let Some(tracking) = &change.tracking_no {
        row.tracking_no = Some(tracking.clone());
    }
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: now_us,
            actor,
            action: change.action,
            subject_id: &row.id,
            data: json!({
                "status": change.to.id(),
                "from": from.id(),
                "note": change.review_note,
                "tracking_no": change.tracking_no,
                "channel": row.channel,
                "received_account": row.received_account,
                "expected_arrival_by_us": row.expected_arrival_by_us,
            }),
        },
    )
    .await?;
    // The merchant's webhook hears of every status change, from the same transaction.
    notify::enqueue_refund_event(conn, row, notify::event_type_for(change.to), now_us).await
}

/// What a refund's transition does to the ledger. A refund is debited from the merchant when
/// it is queued (after the funding rule), credited back when it fails or is canceled after
/// that, and leaves the acquirer when the channel pays it. A void posts once, when it
/// completes (`complete_void`).
async fn ledger_effects(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    from: RefundStatus,
    to: RefundStatus,
    now_us: i64,
) -> EngineResult<()> {
    use RefundStatus::*;
    if row.refund_type == RefundType::Void.id() {
        return Ok(());
    }
    let debited = |s: RefundStatus| matches!(s, Queued | Processing | Abnormal);
    let event = match (from, to) {
        (_, Queued) if !debited(from) => {
            let merchant = conn.get_merchant(&row.merchant_id).await?.ok_or_else(|| {
                EngineError::corrupt(format!("refund {} names a missing merchant", row.id))
            })?;
            let policy = views::merchant(&merchant)?.settings.funding;
            ledger::ensure_funded(
                conn,
                &row.merchant_id,
                policy,
                row.amount_fen - row.fee_refunded_fen,
            )
            .await?;
            LedgerEvent::RefundQueued
        }
        (_, Failed | Canceled) if debited(from) => LedgerEvent::RefundReleased,
        // The merchant paid the consumer out of pocket: the refund's debit goes back to the
        // merchant (as a release does); nothing leaves through the channel.
        (_, Succeeded) if debited(from) && paid_by_merchant(row) => LedgerEvent::RefundReleased,
        (_, Succeeded) => LedgerEvent::RefundSucceeded,
        _ => return Ok(()),
    };
    post_refund(conn, row, event, now_us).await
}

/// A refund the merchant paid the consumer directly (an operator's reroute to the merchant).
pub(crate) fn paid_by_merchant(row: &RefundRow) -> bool {
    row.received_account.as_deref() == Some(crate::dispatch::PAID_BY_MERCHANT)
}

/// Posts a refund's money event.
async fn post_refund(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    event: LedgerEvent,
    now_us: i64,
) -> EngineResult<()> {
    ledger::post(conn, &refund_posting(row, event, now_us)?).await
}

/// The facts of a refund's money event.
fn refund_posting(
    row: &RefundRow,
    event: LedgerEvent,
    now_us: i64,
) -> EngineResult<PostingFacts<'_>> {
    let channel = yuanlu_domain::channel::Channel::parse(&row.channel).ok_or_else(|| {
        EngineError::corrupt(format!("refund {} has channel {}", row.id, row.channel))
    })?;
    Ok(PostingFacts {
        merchant_id: &row.merchant_id,
        event,
        reference: &row.id,
        payment_id: Some(&row.payment_id),
        channel: Some(channel),
        amount_fen: row.amount_fen,
        fee_fen: row.fee_refunded_fen,
        at: yuanlu_domain::time::from_micros(now_us),
    })
}

/// A queued refund waits for a dispatch worker; a void never does.
fn needs_dispatch(status: RefundStatus, refund_type: RefundType) -> bool {
    status == RefundStatus::Queued && refund_type == RefundType::Refund
}

/// A void about to complete whose window has passed (its business date is over, or was
/// settled) becomes a refund (退货): the refund fee rule sets the fee it returns, and the
/// caller's transition to `queued` applies the funding rule and the ledger debit, and sends
/// it along the original route. The timeline says why. A void still possible is left as is.
async fn void_or_refund(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    payment: &PaymentRow,
    counters: &mut PaymentCounters,
    now: DateTime<Utc>,
) -> EngineResult<()> {
    let state = views::payment_state(payment)?;
    let business_date = shanghai_date(state.captured_at);
    let settled = conn
        .is_settled(&business_date.format("%Y-%m-%d").to_string())
        .await?;
    let merchant = conn.get_merchant(&row.merchant_id).await?.ok_or_else(|| {
        EngineError::corrupt(format!("refund {} names a missing merchant", row.id))
    })?;
    let settings = views::merchant(&merchant)?.settings;
    let Some(fee) = void_becomes_refund(&settings, &state, row.fee_refunded_fen, now, settled)
    else {
        return Ok(());
    };
    counters.fee_returned_fen += fee - row.fee_refunded_fen;
    conn.update_refund_terms(&row.id, RefundType::Refund.id(), fee)
        .await?;
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: to_micros(now),
            actor: "system",
            action: action::BECAME_REFUND,
            subject_id: &row.id,
            data: json!({
                "status": row.status,
                "type": RefundType::Refund.id(),
                "business_date": business_date.format("%Y-%m-%d").to_string(),
                "settled": settled,
                "fee_refunded": fee,
                "fee_refunded_before": row.fee_refunded_fen,
            }),
        },
    )
    .await?;
    row.refund_type = RefundType::Refund.id().to_string();
    row.fee_refunded_fen = fee;
    Ok(())
}

/// A queued void never reaches a channel: the acquirer reverses the payment itself, so it
/// passes through `processing` to `succeeded` in the same transaction.
async fn complete_void(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut PaymentCounters,
    actor: &str,
    now_us: i64,
) -> EngineResult<()> {
    let processing = Change {
        to: RefundStatus::Processing,
        action: action::VOID_COMPLETED,
        review_note: None,
        reviewed_by: None,
        tracking_no: None,
    };
    let moved = conn
        .update_refund_status(&RefundStatusUpdate {
            refund_id: &row.id,
            from_status: RefundStatus::Queued.id(),
            to_status: processing.to.id(),
            review_note: None,
            reviewed_by: None,
            tracking_no: None,
            failure_reason: None,
            at_us: now_us,
        })
        .await?;
    if !moved {
        return Err(EngineError::corrupt(format!(
            "void {} left the queue while locked",
            row.id
        )));
    }
    let succeeded = Change {
        to: RefundStatus::Succeeded,
        ..processing
    };
    // Only a completed void voids the payment; one waiting for review holds the amount.
    counters.voided = true;
    post_refund(conn, row, LedgerEvent::VoidCompleted, now_us).await?;
    apply_transition(
        conn,
        row,
        counters,
        RefundStatus::Processing,
        &succeeded,
        actor,
        now_us,
    )
    .await
}

fn refund_row(
    merchant_id: &str,
    input: &CreateRefund,
    parsed: &ParsedCreate,
    payment: &PaymentRow,
    plan: &RefundPlan,
    now_us: i64,
) -> RefundRow {
    RefundRow {
        id: new_id(ids::REFUND),
        merchant_id: merchant_id.to_string(),
        payment_id: payment.id.clone(),
        merchant_refund_no: input.merchant_refund_no.clone(),
        channel: payment.channel.clone(),
        refund_type: plan.refund_type.id().to_string(),
        status: plan.status.id().to_string(),
        amount_fen: plan.amount_fen,
        fee_refunded_fen: plan.fee_refunded_fen,
        reason: input.reason.id().to_string(),
        note: parsed.note.clone(),
        requested_by_role: parsed.ask.requested_by.id().to_string(),
        requested_by_name: parsed.requested_by_name.clone(),
        review_reasons: views::join_review_reasons(&plan.review_reasons),
        required_reviewer: plan.required_reviewer.map(|r| r.id().to_string()),
        review_note: None,
        reviewed_by: None,
        tracking_no: None,
        failure_reason: None,
        expected_arrival_by_us: None,
        created_at_us: now_us,
        updated_at_us: now_us,
        dispatch_attempts: 0,
        next_attempt_at_us: needs_dispatch(plan.status, plan.refund_type).then_some(now_us),
        lease_owner: None,
        lease_until_us: None,
        send_state: crate::dispatch::SEND_STATE_NOT_SENT.to_string(),
        dispatched_at_us: None,
        channel_refund_id: None,
        received_account: None,
        succeeded_at_us: None,
        reroute_account: None,
        last_error: None,
        query_errors: 0,
        reroute_account_sealed: None,
    }
}

/// The full view of a refund: row, destination from its payment, timeline from the audit log.
pub(crate) async fn refund_view(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    payment: &PaymentRow,
) -> EngineResult<Refund> {
    let entries = conn.audit_of_subject(&row.id).await?;
    refund_view_of(row, payment, &entries)
}

/// The full view of a refund from its row, its payment and all its audit entries.
fn refund_view_of(
    row: &RefundRow,
    payment: &PaymentRow,
    entries: &[yuanlu_store::AuditRow],
) -> EngineResult<Refund> {
    let shell = views::refund(row, payment, Vec::new(), None)?;
    let events = timeline::timeline(entries, shell.refund_type, &shell.destination);
    let next = timeline::next_step(
        shell.status,
        shell.review.as_ref().map(|r| r.required_by),
        &shell.destination,
        shell.expected_arrival_by,
    );
    Ok(Refund {
        timeline: events,
        next_step: next,
        ..shell
    })
}
