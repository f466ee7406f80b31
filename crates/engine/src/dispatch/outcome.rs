//! What a channel said about a refund, from a worker or a callback: one function per outcome.

use super::*;

impl Engine {
    /// Applies what a channel said about a refund, from a worker (`config` set: it holds the
    /// lease) or a callback. Idempotent and order-independent: only forward moves happen.
    // Long on purpose: the guards every answer passes (lease, stale callback, late success) before one function per outcome; they share the locked row.
    pub async fn apply_outcome(
        &self,
        config: Option<&DispatchConfig>,
        refund_id: &str,
        outcome: ChannelOutcome,
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        if self
            .apply_outcome_in(&mut conn, config, refund_id, outcome, now)
            .await?
        {
            tx.commit().await?;
        }
        Ok(())
    }

    /// [`Engine::apply_outcome`] in the caller's transaction; false if nothing was written.
    // Long on purpose: see `apply_outcome`.
    pub(super) async fn apply_outcome_in(
        &self,
        conn: &mut Conn<'_>,
        config: Option<&DispatchConfig>,
        refund_id: &str,
        outcome: ChannelOutcome,
        now: DateTime<Utc>,
    ) -> EngineResult<bool> {
        let now_us = to_micros(now);
        let Some((mut row, payment)) = lock_refund(conn, refund_id).await? else {
            return Err(EngineError::NotFound {
                what: "refund",
                id: refund_id.to_string(),
            });
        };
        let status = row.status;
        let holds_lease =
            config.is_some_and(|c| row.lease_owner.as_deref() == Some(c.worker_id.as_str()));
        if holds_lease {
            // The channel answered: failed queries in a row start again from zero.
            row.query_errors = 0;
        }
        let stale_route_callback = config.is_none()
            && row.reroute_account.is_some()
            && matches!(outcome, ChannelOutcome::Abnormal { .. });
        if stale_route_callback {
            // A callback about the closed original route, arriving after the operator
            // rerouted the refund: the worker's own answers decide the new route.
            return Ok(false);
        }
        // The channel paid a refund that waits, abnormal, for an operator (dispatch gave up
        // without an answer, or the route was reported closed): record the payment, so the
        // operator cannot return the money to the merchant as well.
        let late_success = status == RefundStatus::Abnormal
            && row.reroute_account.is_none()
            && matches!(outcome, ChannelOutcome::Succeeded { .. });
        if status != RefundStatus::Processing && !late_success {
            // Final, abnormal (waiting for an operator) or not yet sent: a late or stray
            // answer changes nothing.
            if holds_lease {
                drop_lease(&mut row);
                row.next_attempt_at_us = None;
                conn.release_refund(&row).await?;
            }
            return Ok(holds_lease);
        }
        let mut counters = payment.counters();
        let mut status = status;
        if late_success {
            reopen_for_late_success(conn, &mut row, &mut counters, now_us).await?;
            status = RefundStatus::Processing;
        }
        let channel = row.channel;
        let mut answer = Answer {
            config,
            holds_lease,
            from: status,
            payment: &payment,
            counters,
            channel,
            now,
            now_us,
        };
        match outcome {
            ChannelOutcome::Processing { channel_refund_id } => {
                self.on_accepted(conn, &mut row, &answer, channel_refund_id)
                    .await?;
            }
            ChannelOutcome::Succeeded {
                channel_refund_id,
                received_account,
                succeeded_at,
            } => {
                let paid = Paid {
                    channel_refund_id,
                    received_account,
                    succeeded_at,
                };
                self.on_succeeded(conn, &mut row, &mut answer, paid).await?;
            }
            ChannelOutcome::Abnormal {
                channel_refund_id,
                reason,
            } => {
                if channel_refund_id.is_some() {
                    row.channel_refund_id = channel_refund_id;
                }
                row.last_error = Some(reason.clone());
                let step = (RefundStatus::Abnormal, action::ABNORMAL);
                on_left(conn, &mut row, &mut answer, step, reason).await?;
            }
            ChannelOutcome::Failed { reason } => {
                row.failure_reason = Some(reason.clone());
                let step = (RefundStatus::Failed, action::FAILED);
                on_left(conn, &mut row, &mut answer, step, reason).await?;
            }
        }
        Ok(true)
    }

    /// Verifies and applies a channel callback (`POST /v1/channels/{name}/notify`).
    pub async fn handle_callback(
        &self,
        channel_name: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> EngineResult<()> {
        let connector = self
            .channels
            .as_deref()
            .and_then(|set| set.by_name(channel_name))
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                what: "channel",
                id: channel_name.to_string(),
            })?;
        let event = connector
            .parse_callback(headers, body)
            .map_err(|e| EngineError::validation("body", e.to_string()))?;
        self.check_callback_channel(connector.channel_name(), &event.refund_id)
            .await?;
        match self
            .apply_outcome(None, &event.refund_id, event.outcome)
            .await
        {
            // A callback about a refund we do not know is acknowledged and logged: the
            // channel would otherwise retry it forever. Reconciliation finds such money.
            Err(EngineError::NotFound { .. }) => {
                tracing::warn!(refund_id = %event.refund_id, channel = channel_name, "callback for an unknown refund");
                Ok(())
            }
            other => other,
        }
    }

    /// A callback settles only refunds sent through the connector that verified it: a valid
    /// callback of one channel naming another channel's refund is refused, nothing written.
    /// A refund's channel never changes (a reroute keeps it), so reading it first is enough.
    pub(super) async fn check_callback_channel(
        &self,
        callback_channel: &str,
        refund_id: &str,
    ) -> EngineResult<()> {
        let row = {
            let mut pooled = self.db.acquire().await?;
            pooled.conn().get_refund(None, refund_id).await?
        };
        let Some(row) = row else {
            return Ok(());
        };
        let refund_channel = row.channel;
        let refund_connector = self.channel_set()?.connector(refund_channel);
        if refund_connector.map(|c| c.channel_name()) != Some(callback_channel) {
            tracing::warn!(refund_id, callback_channel, refund_channel = %refund_channel, "callback from another channel refused");
            return Err(EngineError::CallbackChannelMismatch {
                refund_id: row.id,
                refund_channel: refund_channel.id().to_string(),
                callback_channel: callback_channel.to_string(),
            });
        }
        Ok(())
    }

    /// Expected arrival of a refund of `merchant_id` the channel accepted at `accepted_at`,
    /// under the merchant's arrival rules (its settings, else the acquirer's defaults).
    pub(super) async fn expected_arrival(
        &self,
        conn: &mut Conn<'_>,
        merchant_id: &str,
        channel: Channel,
        received_account: Option<&str>,
        accepted_at: DateTime<Utc>,
    ) -> EngineResult<Option<DateTime<Utc>>> {
        let destination = destination_kind(channel, received_account);
        let rules = match conn.get_merchant(merchant_id).await? {
            Some(row) => crate::views::merchant(&row)?
                .settings
                .arrival_rules(&self.arrival_rules),
            None => *self.arrival_rules,
        };
        Ok(Some(rules.expected_arrival_by(
            &self.calendar,
            channel,
            destination,
            accepted_at,
        )))
    }
}

/// An `abnormal` refund the channel paid after all goes back to `processing`, so that the
/// success is applied as any other.
async fn reopen_for_late_success(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut yuanlu_store::PaymentCounters,
    now_us: i64,
) -> EngineResult<()> {
    let change = Change {
        to: RefundStatus::Processing,
        action: action::ACCEPTED,
        review_note: Some("the channel answered after dispatch stopped".to_string()),
        reviewed_by: None,
        tracking_no: None,
    };
    let from = RefundStatus::Abnormal;
    apply_transition(conn, row, counters, from, &change, DISPATCH_ACTOR, now_us).await
}

/// What is known while an answer is applied, under the payment's lock.
struct Answer<'a> {
    /// Set when a worker applies it (a callback has none).
    config: Option<&'a DispatchConfig>,
    /// The worker applying it holds the refund's lease.
    holds_lease: bool,
    /// The refund's status before the answer.
    from: RefundStatus,
    payment: &'a PaymentRow,
    counters: yuanlu_store::PaymentCounters,
    channel: Channel,
    now: DateTime<Utc>,
    now_us: i64,
}

/// The channel's word that it paid.
struct Paid {
    channel_refund_id: String,
    received_account: Option<String>,
    succeeded_at: DateTime<Utc>,
}

impl Engine {
    /// The channel accepted the refund (`processing`): remember its id and expected arrival,
    /// poll it later; the first acceptance goes on the timeline and to the consumer.
    async fn on_accepted(
        &self,
        conn: &mut Conn<'_>,
        row: &mut RefundRow,
        answer: &Answer<'_>,
        channel_refund_id: String,
    ) -> EngineResult<()> {
        let now_us = answer.now_us;
        let first_acceptance = row.send_state != SendState::Accepted;
        row.send_state = SendState::Accepted;
        row.channel_refund_id = Some(channel_refund_id.clone());
        if row.expected_arrival_by_us.is_none() {
            let merchant_id = row.merchant_id.clone();
            row.expected_arrival_by_us = self
                .expected_arrival(conn, &merchant_id, answer.channel, None, answer.now)
                .await?
                .map(to_micros);
        }
        if answer.holds_lease || first_acceptance {
            let poll = answer.config.map_or(chrono::Duration::seconds(30), |c| {
                jittered(
                    c.confirm_poll_base,
                    c.confirm_poll_cap,
                    row.dispatch_attempts,
                )
            });
            row.next_attempt_at_us = Some(now_us + poll.num_microseconds().unwrap_or(30_000_000));
        }
        if answer.holds_lease {
            drop_lease(row);
        }
        conn.record_refund_accepted(row).await?;
        if first_acceptance {
            append_refund_event(
                conn,
                row,
                action::ACCEPTED,
                now_us,
                json!({
                    "status": "processing", "channel_refund_id": channel_refund_id,
                    "expected_arrival_by_us": row.expected_arrival_by_us,
                }),
            )
            .await?;
            crate::notify::enqueue_refund_sms(
                conn,
                row,
                answer.payment,
                crate::notify::SmsKind::Accepted,
                now_us,
            )
            .await?;
        }
        Ok(())
    }

    /// The channel paid: the refund succeeds where the money landed.
    async fn on_succeeded(
        &self,
        conn: &mut Conn<'_>,
        row: &mut RefundRow,
        answer: &mut Answer<'_>,
        paid: Paid,
    ) -> EngineResult<()> {
        // A channel may echo a full account number: only its ends are kept.
        let received_account = paid.received_account.as_deref().map(mask_numbers_in);
        row.channel_refund_id = Some(paid.channel_refund_id);
        row.received_account = received_account.clone();
        row.succeeded_at_us = Some(to_micros(paid.succeeded_at));
        row.send_state = SendState::Accepted;
        if row.expected_arrival_by_us.is_none() {
            let merchant_id = row.merchant_id.clone();
            row.expected_arrival_by_us = self
                .expected_arrival(
                    conn,
                    &merchant_id,
                    answer.channel,
                    received_account.as_deref(),
                    paid.succeeded_at,
                )
                .await?
                .map(to_micros);
        }
        finish(row);
        let change = Change {
            to: RefundStatus::Succeeded,
            action: action::SUCCEEDED,
            review_note: None,
            reviewed_by: None,
            tracking_no: None,
        };
        apply_transition(
            conn,
            row,
            &mut answer.counters,
            answer.from,
            &change,
            DISPATCH_ACTOR,
            answer.now_us,
        )
        .await?;
        conn.record_refund_outcome(row).await?;
        crate::notify::enqueue_refund_sms(
            conn,
            row,
            answer.payment,
            crate::notify::SmsKind::Arrived,
            answer.now_us,
        )
        .await
    }
}

/// The channel refused the refund (`failed`) or reported its route closed (`abnormal`).
async fn on_left(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    answer: &mut Answer<'_>,
    step: (RefundStatus, &'static str),
    reason: String,
) -> EngineResult<()> {
    leave_dispatch(
        conn,
        row,
        &mut answer.counters,
        answer.from,
        step,
        reason,
        answer.now_us,
    )
    .await
}
