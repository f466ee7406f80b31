//! The dispatch worker: claim due refunds under a lease, send or query each, and hand the
//! channel's answer to [`super::outcome`].

use super::*;
use yuanlu_store::Backend;

/// A channel's answer to a send of a batch, as the worker applies it.
enum Answered {
    Outcome(ChannelOutcome),
    Retry(ConnectorError),
}

impl Engine {
    pub(super) fn channel_set(&self) -> EngineResult<&ChannelSet> {
        self.channels
            .as_deref()
            .ok_or_else(|| EngineError::corrupt("no channel connectors are configured"))
    }

    /// One pass of a worker: lease the due refunds and work each. Returns how many it took.
    /// Tests call this directly to drain the queue deterministically.
    pub async fn dispatch_once(&self, config: &DispatchConfig) -> EngineResult<usize> {
        let now = self.clock.now();
        let lease_until =
            now + chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(60));
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .conn()
            .claim_due_refunds(
                &config.worker_id,
                to_micros(lease_until),
                to_micros(now),
                config.batch_refunds_max,
            )
            .await?;
        tx.commit().await?;
        let count = claimed.len();
        // On SQLite (one writer, a durable flush per commit) the first sends of the batch
        // share their transactions: one marks them all `sent`, one applies all answers.
        let claimed = if self.db.backend() == Backend::Sqlite && claimed.len() > 1 {
            self.send_together(config, claimed).await
        } else {
            claimed
        };
        // Each leased refund is worked on its own task: a slow channel call for one refund
        // does not hold up the others of the batch.
        let mut tasks = tokio::task::JoinSet::new();
        for row in claimed {
            let (engine, config) = (self.clone(), config.clone());
            tasks.spawn(async move { engine.work_refund(&config, row).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "dispatch step failed; the refund is retried when its lease expires")
                }
                Err(error) => {
                    tracing::error!(%error, "dispatch task panicked; the refund is retried when its lease expires")
                }
            }
        }
        Ok(count)
    }

    /// Sends the batch's refunds that go out for the first time on their route (queued, or
    /// processing and not sent, without a reroute) together: one transaction marks them
    /// `sent` (the same per-refund steps as [`Engine::mark_sending`]), the channel calls run
    /// concurrently, one transaction applies their answers (as [`Engine::apply_outcome`] and
    /// [`Engine::retry_later`] do). If a shared transaction fails, nothing of it is written
    /// and each refund takes the one-by-one path. Returns the refunds left for that path.
    async fn send_together(
        &self,
        config: &DispatchConfig,
        claimed: Vec<RefundRow>,
    ) -> Vec<RefundRow> {
        let (mut fresh, rest): (Vec<RefundRow>, Vec<RefundRow>) =
            claimed.into_iter().partition(|row| {
                row.reroute_account.is_none()
                    && matches!(
                        (row.status, row.send_state),
                        (RefundStatus::Queued, _) | (RefundStatus::Processing, SendState::NotSent)
                    )
                    && self
                        .channel_set()
                        .is_ok_and(|set| set.connector(row.channel).is_some())
            });
        if fresh.len() < 2 {
            fresh.extend(rest);
            return fresh;
        }
        // One lock order for every shared transaction: by payment, then refund.
        fresh.sort_by(|a, b| (&a.payment_id, &a.id).cmp(&(&b.payment_id, &b.id)));
        let marked = match self.mark_all_sending(config, &fresh).await {
            Ok(marked) => marked,
            Err(error) => {
                tracing::warn!(%error, "marking a batch sent failed; its refunds go one by one");
                fresh.extend(rest);
                return fresh;
            }
        };
        let mut calls = tokio::task::JoinSet::new();
        for (k, (row, payment)) in marked.into_iter().enumerate() {
            let Some(connector) = self
                .channel_set()
                .ok()
                .and_then(|set| set.connector(row.channel).cloned())
            else {
                continue;
            };
            calls.spawn(async move {
                let request = refund_request(&row, &payment, row.channel, None);
                let answer = connector.execute(&request).await;
                crate::metrics::record_dispatch(&request, &answer);
                (k, row.id, connector.channel_name(), answer)
            });
        }
        let mut answers = Vec::new();
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(done) => answers.push(done),
                Err(error) => {
                    tracing::error!(%error, "a channel call panicked; its refund is retried when its lease expires")
                }
            }
        }
        answers.sort_by_key(|(k, ..)| *k);
        let answers: Vec<(String, Answered)> = answers
            .into_iter()
            .map(|(_, id, name, answer)| {
                let answered = match answer {
                    Ok(outcome) => Answered::Outcome(outcome),
                    Err(ConnectorError::Final(reason)) => {
                        Answered::Outcome(ChannelOutcome::Failed {
                            reason: format!("{name} refused the refund: {reason}"),
                        })
                    }
                    Err(error) => Answered::Retry(error),
                };
                (id, answered)
            })
            .collect();
        if let Err(error) = self.apply_all(config, &answers).await {
            tracing::warn!(%error, "applying a batch's answers failed; they are applied one by one");
            for (id, answered) in answers {
                let applied = match answered {
                    Answered::Outcome(outcome) => {
                        self.apply_outcome(Some(config), &id, outcome).await
                    }
                    Answered::Retry(error) => self.retry_later(config, &id, &error).await,
                };
                if let Err(error) = applied {
                    tracing::warn!(%error, refund_id = %id, "dispatch step failed; the refund is retried when its lease expires");
                }
            }
        }
        rest
    }

    /// Marks every refund of `rows` sent in one transaction; those still ours, marked.
    async fn mark_all_sending(
        &self,
        config: &DispatchConfig,
        rows: &[RefundRow],
    ) -> EngineResult<Vec<(RefundRow, PaymentRow)>> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let mut marked = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(done) = mark_sending_in(&mut conn, config, &row.id, now_us).await? {
                marked.push(done);
            }
        }
        if !marked.is_empty() {
            tx.commit().await?;
        }
        Ok(marked)
    }

    /// Applies every answer of a batch in one transaction.
    async fn apply_all(
        &self,
        config: &DispatchConfig,
        answers: &[(String, Answered)],
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let mut wrote = false;
        for (id, answered) in answers {
            wrote |= match answered {
                Answered::Outcome(outcome) => {
                    self.apply_outcome_in(&mut conn, Some(config), id, outcome.clone(), now)
                        .await?
                }
                Answered::Retry(error) => retry_later_in(&mut conn, config, id, error, now).await?,
            };
        }
        if wrote {
            tx.commit().await?;
        }
        Ok(())
    }

    /// The earliest time any refund is due, for a worker deciding how long to wait.
    pub async fn next_dispatch_due(&self) -> EngineResult<Option<DateTime<Utc>>> {
        let mut pooled = self.db.acquire().await?;
        Ok(pooled.conn().next_due_at().await?.map(from_micros))
    }

    pub(super) async fn work_refund(
        &self,
        config: &DispatchConfig,
        row: RefundRow,
    ) -> EngineResult<()> {
        let channel = row.channel;
        let connector = self
            .channel_set()?
            .connector(channel)
            .cloned()
            .ok_or_else(|| EngineError::corrupt(format!("no connector for {channel}")))?;
        let payment = self.payment_of(&row).await?;
        let step = match (row.status, row.send_state) {
            (RefundStatus::Queued, _) | (RefundStatus::Processing, SendState::NotSent) => {
                Step::Send
            }
            (RefundStatus::Processing, _) => Step::Query,
            _ => Step::Nothing,
        };
        // A rerouted refund's account, whole, for a send; a query (by refund id) needs none.
        let opened = match step {
            Step::Nothing => Ok(None),
            Step::Send | Step::Query => self.reroute_account_for_channel(&row),
        };
        let request = refund_request(&row, &payment, channel, opened.clone().ok().flatten());
        match step {
            Step::Nothing => self.release(config, &row.id, None).await,
            Step::Query => match connector.query(&request).await {
                // The channel's record is the closed original route; the rerouted request
                // has not been taken yet, so it goes out (same refund id, new account).
                Ok(Some(ChannelOutcome::Abnormal { .. })) if row.reroute_account.is_some() => {
                    self.resend_if_opened(config, &row, connector.as_ref(), &request, opened)
                        .await
                }
                Ok(Some(outcome)) => self.apply_outcome(Some(config), &row.id, outcome).await,
                Ok(None) => {
                    self.resend_if_opened(config, &row, connector.as_ref(), &request, opened)
                        .await
                }
                Err(error) => self.query_failed(config, &row.id, &error).await,
            },
            Step::Send => match opened {
                Ok(_) => {
                    self.send(config, &row.id, connector.as_ref(), &request)
                        .await
                }
                Err(reason) => self.unsendable(config, &row.id, reason).await,
            },
        }
    }

    /// Resends (see `resend_or_give_up`) unless the reroute's account could not be opened.
    pub(super) async fn resend_if_opened(
        &self,
        config: &DispatchConfig,
        row: &RefundRow,
        connector: &dyn RefundConnector,
        request: &RefundRequest,
        opened: Result<Option<String>, String>,
    ) -> EngineResult<()> {
        match opened {
            Ok(_) => {
                self.resend_or_give_up(config, row, connector, request)
                    .await
            }
            Err(reason) => self.unsendable(config, &row.id, reason).await,
        }
    }

    /// A rerouted refund whose account number cannot be had whole: never sent masked, it goes
    /// back to `abnormal` with `reason` for an operator to reroute again.
    pub(super) async fn unsendable(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        reason: String,
    ) -> EngineResult<()> {
        let outcome = ChannelOutcome::Abnormal {
            channel_refund_id: None,
            reason,
        };
        self.apply_outcome(Some(config), refund_id, outcome).await
    }

    /// The account a rerouted refund is sent to, in full: opened from its sealed copy. Only
    /// the worker opens it, for the request it is about to make. `Err` is the note the refund
    /// goes abnormal with when the number cannot be had.
    pub(super) fn reroute_account_for_channel(
        &self,
        row: &RefundRow,
    ) -> Result<Option<String>, String> {
        if row.reroute_account.is_none() {
            return Ok(None);
        }
        let Some(sealed) = row.reroute_account_sealed.as_deref() else {
            return Err(
                "the full account number of this reroute is not kept (it was rerouted before yuanlu kept it sealed); reroute it again"
                    .to_string(),
            );
        };
        let Some(key) = self.account_key.as_deref() else {
            return Err(
                "no account key is configured to open this reroute's account number (YUANLU_ACCOUNT_KEY_FILE or YUANLU_ACCOUNT_KEY); configure it and reroute again"
                    .to_string(),
            );
        };
        match key.open(&row.id, sealed) {
            Ok(account) => Ok(Some(account)),
            Err(error) => {
                tracing::error!(refund_id = %row.id, %error, "a rerouted account number does not open");
                Err(format!(
                    "the account key does not match the one that sealed this reroute's account number ({error}); nothing was sent — check YUANLU_ACCOUNT_KEY_FILE / YUANLU_ACCOUNT_KEY on every server, then reroute again"
                ))
            }
        }
    }

    pub(super) async fn payment_of(&self, row: &RefundRow) -> EngineResult<PaymentRow> {
        let mut pooled = self.db.acquire().await?;
        pooled
            .conn()
            .get_payment(None, &row.payment_id)
            .await?
            .ok_or_else(|| {
                EngineError::corrupt(format!("refund {} names a missing payment", row.id))
            })
    }

    /// The channel has no record of a refund we may have sent: resend the same request,
    /// unless it has had its attempts. Then it ends `abnormal`, never `failed`: a request
    /// may still be on its way and the channel may yet pay, so releasing the money to the
    /// merchant is an operator's decision.
    pub(super) async fn resend_or_give_up(
        &self,
        config: &DispatchConfig,
        row: &RefundRow,
        connector: &dyn RefundConnector,
        request: &RefundRequest,
    ) -> EngineResult<()> {
        if row.dispatch_attempts >= config.attempts_max {
            let last = row.last_error.clone().unwrap_or_else(|| "no answer".into());
            let reason = format!(
                "{} gave no definitive answer after {} attempts (last: {last}) and its final query found no record; it may still pay: query the channel before rerouting the refund or returning it to the merchant",
                connector.channel_name(),
                row.dispatch_attempts
            );
            return self.give_up_unknown(config, &row.id, reason).await;
        }
        self.send(config, &row.id, connector, request).await
    }

    /// A confirmation query failed: query again later, backing off per failed query, until
    /// `query_errors_max` failed in a row; then the refund ends `abnormal`.
    pub(super) async fn query_failed(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        error: &ConnectorError,
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, refund_id).await? else {
            return Ok(());
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str())
            || row.status != RefundStatus::Processing
        {
            return Ok(());
        }
        row.query_errors += 1;
        row.last_error = Some(error.to_string());
        if row.query_errors >= config.query_errors_max {
            let reason = format!(
                "the channel could not be queried {} times in a row (last: {error}); the refund's outcome is unknown and the channel may still pay: query the channel before rerouting the refund or returning it to the merchant",
                row.query_errors
            );
            let now_us = to_micros(now);
            end_unknown(&mut conn, &mut row, &payment, reason, now_us).await?;
            tx.commit().await?;
            return Ok(());
        }
        let delay = jittered(config.retry_base, config.retry_cap, row.query_errors);
        row.next_attempt_at_us = Some(to_micros(now + delay));
        drop_lease(&mut row);
        conn.release_refund(&row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Dispatch gave up without a definitive answer: the refund ends `abnormal` (its money
    /// held) with the reason on its timeline, for an operator to decide.
    pub(super) async fn give_up_unknown(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        reason: String,
    ) -> EngineResult<()> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, refund_id).await? else {
            return Ok(());
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str())
            || row.status != RefundStatus::Processing
        {
            return Ok(());
        }
        end_unknown(&mut conn, &mut row, &payment, reason, now_us).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the refund `sent` (committed), then calls the channel, then applies the answer.
    pub(super) async fn send(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        connector: &dyn RefundConnector,
        request: &RefundRequest,
    ) -> EngineResult<()> {
        if !self
            .mark_sending(config, refund_id, connector.channel_name())
            .await?
        {
            return Ok(());
        }
        let answer = connector.execute(request).await;
        crate::metrics::record_dispatch(request, &answer);
        match answer {
            Ok(outcome) => self.apply_outcome(Some(config), refund_id, outcome).await,
            Err(ConnectorError::Final(reason)) => {
                let reason = format!("{} refused the refund: {reason}", connector.channel_name());
                self.apply_outcome(Some(config), refund_id, ChannelOutcome::Failed { reason })
                    .await
            }
            Err(error) => self.retry_later(config, refund_id, &error).await,
        }
    }

    /// Records that a request is about to leave: `queued → processing` on the first send,
    /// `send_state = sent`, one more attempt. Returns false if the refund is no longer ours.
    pub(super) async fn mark_sending(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        channel_name: &str,
    ) -> EngineResult<bool> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let marked = mark_sending_in(&mut conn, config, refund_id, now_us).await?;
        let _ = channel_name;
        if marked.is_some() {
            tx.commit().await?;
        }
        Ok(marked.is_some())
    }
}

/// [`Engine::mark_sending`] in the caller's transaction: the refund (marked) and its
/// payment, or `None` if it is no longer ours (nothing written then).
pub(super) async fn mark_sending_in(
    conn: &mut Conn<'_>,
    config: &DispatchConfig,
    refund_id: &str,
    now_us: i64,
) -> EngineResult<Option<(RefundRow, PaymentRow)>> {
    {
        let Some((mut row, payment)) = lock_refund(conn, refund_id).await? else {
            return Ok(None);
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str()) {
            return Ok(None);
        }
        let status = row.status;
        if status == RefundStatus::Queued {
            let mut counters = payment.counters();
            let change = Change {
                to: RefundStatus::Processing,
                action: action::SENT,
                review_note: None,
                reviewed_by: None,
                tracking_no: None,
            };
            apply_transition(
                conn,
                &mut row,
                &mut counters,
                status,
                &change,
                DISPATCH_ACTOR,
                now_us,
            )
            .await?;
            row.dispatched_at_us = Some(now_us);
        } else if status != RefundStatus::Processing {
            return Ok(None);
        } else if row.send_state == SendState::NotSent {
            // A new route (after a reroute): a new send on the timeline.
            append_refund_event(
                conn,
                &row,
                action::SENT,
                now_us,
                json!({
                    "status": "processing", "channel": row.channel,
                    "rerouted_to": row.received_account,
                }),
            )
            .await?;
        }
        row.send_state = SendState::Sent;
        row.dispatch_attempts += 1;
        row.query_errors = 0;
        row.next_attempt_at_us = Some(now_us + to_micros_duration(config.lease));
        conn.mark_refund_sent(&row).await?;
        Ok(Some((row, payment)))
    }
}

impl Engine {
    /// A transient error or an unknown outcome: try again later (a query first, since the
    /// request may have arrived).
    pub(super) async fn retry_later(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        error: &ConnectorError,
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        if retry_later_in(&mut conn, config, refund_id, error, now).await? {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// [`Engine::retry_later`] in the caller's transaction; false if nothing was written.
pub(super) async fn retry_later_in(
    conn: &mut Conn<'_>,
    config: &DispatchConfig,
    refund_id: &str,
    error: &ConnectorError,
    now: DateTime<Utc>,
) -> EngineResult<bool> {
    let Some((mut row, _)) = lock_refund(conn, refund_id).await? else {
        return Ok(false);
    };
    if row.lease_owner.as_deref() != Some(config.worker_id.as_str()) || row.status.is_final() {
        return Ok(false);
    }
    let delay = match error {
        ConnectorError::Unknown(_) => jittered(config.retry_base, config.retry_cap, 1),
        _ => jittered(config.retry_base, config.retry_cap, row.dispatch_attempts),
    };
    row.last_error = Some(error.to_string());
    row.next_attempt_at_us = Some(to_micros(now + delay));
    drop_lease(&mut row);
    conn.release_refund(&row).await?;
    Ok(true)
}

impl Engine {
    /// Gives the refund back without scheduling more work (nothing to do for it).
    pub(super) async fn release(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        next_attempt_at_us: Option<i64>,
    ) -> EngineResult<()> {
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, _)) = lock_refund(&mut conn, refund_id).await? else {
            return Ok(());
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str()) {
            return Ok(());
        }
        drop_lease(&mut row);
        row.next_attempt_at_us = next_attempt_at_us;
        conn.release_refund(&row).await?;
        tx.commit().await?;
        Ok(())
    }
}
