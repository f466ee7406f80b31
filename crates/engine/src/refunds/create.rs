//! Creating a refund: parse at the edge, plan under the payment's lock (every rule of the
//! domain), write the row, its money effects, audit entry and webhook.

use super::*;

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
pub(super) struct ParsedCreate {
    pub(super) ask: RefundAsk,
    pub(super) note: Option<String>,
    pub(super) requested_by_name: Option<String>,
    /// The deductions, each checked on its own, and their sum (issue 15 item 2).
    pub(super) deductions: Vec<Deduction>,
    pub(super) deducted_fen: i64,
}

fn parse_create(input: &CreateRefund) -> EngineResult<ParsedCreate> {
    valid_merchant_refund_no(&input.merchant_refund_no)?;
    let amount_fen = match input.amount {
        None => None,
        Some(AskedAmount::Fen(fen)) => Some(fen.get()),
        Some(AskedAmount::Invalid) => {
            return Err(EngineError::Refused(RefundRefusal::InvalidAmount));
        }
    };
    let note = optional_text("note", input.note.as_deref(), NOTE_CHARS_MAX)?;
    if input.reason == RefundReason::Other && note.is_none() {
        return Err(EngineError::validation(
            "note",
            "a refund for reason `other` needs a note saying why",
        ));
    }
    let requested_by = input.requested_by.clone().unwrap_or_default();
    let (deductions, deducted_fen) = deduction::validate(
        input.deductions.clone(),
        crate::payments::PAYMENT_AMOUNT_FEN_MAX,
    )?;
    Ok(ParsedCreate {
        deductions,
        deducted_fen,
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
        self.create_refund_as(who, who.actor(), input).await
    }

    /// [`Self::create_refund`] with another audit actor (a consumer's request).
    pub(crate) async fn create_refund_as(
        &self,
        who: &Principal,
        actor: String,
        input: CreateRefund,
    ) -> EngineResult<CreateOutcome> {
        let merchant_id = who.require_merchant()?.to_string();
        let parsed = parse_create(&input)?;
        let job = CreateJob {
            actor,
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
        let creates = inputs
            .into_iter()
            .map(|input| (who.clone(), input))
            .collect();
        self.create_refunds_batch(creates).await
    }

    /// [`Self::create_refunds_together`] for creates of several merchants (each with its
    /// key): one group commit, as the refund writer makes of creates queued together.
    pub async fn create_refunds_batch(
        &self,
        creates: Vec<(Principal, CreateRefund)>,
    ) -> Vec<EngineResult<CreateOutcome>> {
        let mut answers: Vec<Option<EngineResult<CreateOutcome>>> = Vec::new();
        let mut jobs = Vec::new();
        for (who, input) in creates {
            let checked = who
                .require_merchant()
                .map(str::to_string)
                .and_then(|merchant_id| Ok((merchant_id, parse_create(&input)?)));
            match checked {
                Ok((merchant_id, parsed)) => {
                    answers.push(None);
                    jobs.push(CreateJob {
                        actor: who.actor(),
                        merchant_id,
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
    /// Who the audit log names: the key's actor, or `consumer` for a consumer's request.
    pub actor: String,
    pub merchant_id: String,
    pub input: CreateRefund,
    pub(super) parsed: ParsedCreate,
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
                .is_none_or(|a| a == existing.amount_fen)
            && parsed.deducted_fen == existing.deducted_fen;
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
    let mut settings = memo.settings(conn, merchant_id).await?;
    let payment = views::payment_state(&payment_row)?;
    // Fee terms are the payment's (issue 16): the fee-refund policy in force when the
    // payment was recorded; windows, thresholds, funding and limits are today's.
    if let Some(then) = memo
        .settings_at(conn, merchant_id, payment_row.created_at_us)
        .await?
    {
        let policy = then.channel(payment.channel).fee_refund;
        let mut channel = settings.channel(payment.channel);
        channel.fee_refund = policy;
        settings.channels.insert(payment.channel, channel);
    }
    let day = DayKey::containing(merchant_id, to_micros(now));
    let totals = memo.day_totals(conn, &day).await?;
    let capture_date = shanghai_date(payment.captured_at)
        .format("%Y-%m-%d")
        .to_string();
    let plan = decide_refund_deducted(
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
        parsed.deducted_fen,
    )?;
    deduction::check_against_amount(parsed.deducted_fen, plan.amount_fen)?;
    // The funding rule, under the merchant's balance lock: checked when the refund is asked
    // for, and again when it is queued (debited) if it waits first.
    let balance = memo.locked_balance(conn, merchant_id).await?;
    // 限额, under the same balance lock: every create of this merchant counts the refunds
    // committed before it took the lock.
    if !settings.daily_refund_limit.is_unlimited() {
        let refunds = memo.day_refunds(conn, &day).await?;
        crate::ops::check_daily_limit(
            &settings.daily_refund_limit,
            refunds.refunds_count,
            refunds.refunds_fen,
            plan.amount_fen,
        )?;
    }
    // The merchant funds what goes to the consumer (the deductions stay with it).
    ledger::check_funded(
        balance,
        settings.funding,
        plan.amount_fen - parsed.deducted_fen - plan.fee_refunded_fen,
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
    let (merchant_id, input, parsed) = (job.merchant_id.as_str(), &job.input, &job.parsed);
    let NewRefund {
        payment_row,
        plan,
        balance,
    } = planned;
    let now_us = to_micros(now);
    let mut row = refund_row(merchant_id, input, parsed, &payment_row, &plan, now_us);
    conn.insert_refund(&row).await?;
    crate::evidence::hold_new_refund(conn, &row, &plan.evidence_required).await?;
    // Deductions (issue 15 item 2): their own rows, and their sum on the refund.
    row.deducted_fen = parsed.deducted_fen;
    conn.insert_refund_deductions(&crate::transition::deduction_rows(&row, &parsed.deductions))
        .await?;
    if row.status.counts_against_day() {
        // Under the balance lock `plan_create` took (see `queries_merchant_days`).
        let day = DayKey::containing(merchant_id, now_us);
        conn.add_to_merchant_days(&BTreeMap::from([(
            day.clone(),
            DaySums::refund(row.amount_fen, 1),
        )]))
        .await?;
        memo.created_refund(&day, row.amount_fen);
    }
    let effects = transition::created(plan.status, &refund_money(&row));
    if let Some(event) = effects.ledger {
        // The funding rule ran in `plan_create`, under this balance lock.
        let mut after =
            ledger::post_locked(conn, &refund_posting(&row, event, now_us), balance).await?;
        for line in &parsed.deductions {
            if let Some(facts) = crate::transition::deduction_posting(&row, event, line, now_us) {
                after = ledger::post_locked(conn, &facts, after).await?;
            }
        }
        memo.wrote_balance(merchant_id, after);
    }
    let mut counters = payment_row.counters();
    counters.apply(&effects.counters);
    conn.update_payment_counters(&payment_row.merchant_id, &payment_row.id, &counters)
        .await?;
    let actor = job.actor.clone();
    let data = created_audit_data(&row, &plan.evidence_required, &parsed.deductions);
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
            data,
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
    let mut view = refund_view_of(&row, &payment_row, &[entry])?;
    view.evidence = crate::evidence::RefundEvidence {
        missing: plan.evidence_required.clone(),
        required: plan.evidence_required,
        present: Vec::new(),
    };
    Ok(CreateOutcome::Created(Box::new(view)))
}

pub(super) fn refund_row(
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
        channel: payment.channel,
        refund_type: plan.refund_type,
        status: plan.status,
        amount_fen: plan.amount_fen,
        fee_refunded_fen: plan.fee_refunded_fen,
        reason: input.reason,
        note: parsed.note.clone(),
        requested_by_role: parsed.ask.requested_by,
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
        next_attempt_at_us: transition::needs_dispatch(plan.status, plan.refund_type)
            .then_some(now_us),
        lease_owner: None,
        lease_until_us: None,
        send_state: SendState::NotSent,
        dispatched_at_us: None,
        channel_refund_id: None,
        received_account: None,
        succeeded_at_us: None,
        reroute_account: None,
        last_error: None,
        query_errors: 0,
        reroute_account_sealed: None,
        deducted_fen: 0,
    }
}

/// The `refund.created` audit entry's data, the same whichever path wrote the refund (alone
/// or in a batch, [`super::batch`]).
pub(super) fn created_audit_data(
    row: &RefundRow,
    evidence_required: &[yuanlu_domain::evidence::EvidenceKind],
    deductions: &[Deduction],
) -> serde_json::Value {
    let mut data = json!({
        "status": row.status,
        "type": row.refund_type,
        "amount": row.amount_fen,
        "fee_refunded": row.fee_refunded_fen,
        "payment_id": row.payment_id,
        "merchant_refund_no": row.merchant_refund_no,
        "requested_by_role": row.requested_by_role,
        "requested_by_name": row.requested_by_name,
        "review_reasons": row.review_reasons,
        "evidence_required": yuanlu_domain::evidence::join_kinds(evidence_required),
    });
    if !deductions.is_empty() {
        // In the audit chain, so that what the consumer agreed to cannot be quietly changed;
        // the refund's views read them back from here.
        data["deductions"] = json!(deductions);
        data["consumer_amount"] = json!(row.amount_fen - row.deducted_fen);
    }
    data
}
