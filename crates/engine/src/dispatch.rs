//! Dispatch: workers take `queued` refunds to their channel and follow them until the channel
//! confirms, refuses, or reports the route closed.
//!
//! Exactly once, by construction:
//! - a worker **leases** a refund (`claim_due_refunds`: `FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL) so one refund is worked by one worker at a time, across any number of
//!   processes; a process that dies leaves an expiring lease, never a stranded refund;
//! - before a request leaves, the refund is marked `sent` in a committed transaction, so after
//!   any crash or lost answer the next step is a **query by the refund's own id**, and the
//!   same request is resent only when the channel has no record of it;
//! - channels de-duplicate by that id, so even two workers racing after an expired lease
//!   cannot make the channel pay twice;
//! - outcomes (from the worker or from callbacks) are applied under the payment's lock and
//!   only move a refund forward: a late `processing` never overwrites `succeeded`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::json;
use yuanlu_channels::{ChannelOutcome, ConnectorError, RefundConnector, RefundRequest};
use yuanlu_domain::account::{mask_number, mask_numbers_in};
use yuanlu_domain::arrival::DestinationKind;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::{Conn, PaymentRow, RefundRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::error::{EngineError, EngineResult};
use crate::refunds::{Change, apply_transition, parse_status};
use crate::timeline::action;

/// Never sent, or the channel said it has no record: the next step is to send.
pub const SEND_STATE_NOT_SENT: &str = "not_sent";
/// A request may have reached the channel: the next step is a query.
pub const SEND_STATE_SENT: &str = "sent";
/// The channel acknowledged the refund and has not confirmed it yet.
pub const SEND_STATE_ACCEPTED: &str = "accepted";

/// A refund sent this long ago and not confirmed is overdue (and queried).
pub const UNCONFIRMED_OVERDUE_HOURS: i64 = 24;

/// The audit actor of the dispatch workers.
pub const DISPATCH_ACTOR: &str = "system:dispatch";

/// How the workers behave. Every loop and retry has a bound here.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Names the worker in leases (process and task).
    pub worker_id: String,
    /// Refunds leased per pass.
    pub batch_refunds_max: i64,
    /// How long a lease lasts: longer than a channel call with its timeout, so a live worker
    /// never loses its refund; short enough that a dead worker's refunds move on soon.
    pub lease: Duration,
    /// First retry delay after an error; doubles per attempt up to `retry_cap`, with jitter.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// First delay between queries of a refund the channel accepted but has not confirmed.
    pub confirm_poll_base: Duration,
    pub confirm_poll_cap: Duration,
    /// After this many sends without a definitive answer (the channel still has no record
    /// of the refund) it ends `abnormal`: the channel may yet pay, so an operator decides.
    pub attempts_max: i64,
    /// After this many confirmation queries failed in a row (timeouts, errors) the refund
    /// ends `abnormal` instead of being queried forever. Their delays back off like sends.
    pub query_errors_max: i64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", crate::ids::new_id("w")),
            batch_refunds_max: 32,
            lease: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(600),
            confirm_poll_base: Duration::from_secs(30),
            confirm_poll_cap: Duration::from_secs(3_600),
            attempts_max: 12,
            query_errors_max: 20,
        }
    }
}

/// The connectors, one per channel (the card network serves three).
#[derive(Clone, Default)]
pub struct ChannelSet {
    connectors: HashMap<Channel, Arc<dyn RefundConnector>>,
    /// By callback path name (`wechat`, `alipay`, `card`).
    by_name: HashMap<&'static str, Arc<dyn RefundConnector>>,
}

impl ChannelSet {
    pub fn with(mut self, channels: &[Channel], connector: Arc<dyn RefundConnector>) -> Self {
        for channel in channels {
            self.connectors.insert(*channel, connector.clone());
        }
        self.by_name.insert(connector.channel_name(), connector);
        self
    }

    pub fn connector(&self, channel: Channel) -> Option<&Arc<dyn RefundConnector>> {
        self.connectors.get(&channel)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<dyn RefundConnector>> {
        self.by_name.get(name)
    }
}

/// `base × 2^(attempt−1)`, capped, then scaled by a random factor in [0.5, 1.5).
pub fn backoff(base: Duration, cap: Duration, attempt: i64, jitter_unit: f64) -> Duration {
    let exponent = u32::try_from(attempt.clamp(1, 30) - 1).unwrap_or(0);
    let raw = base.saturating_mul(2u32.saturating_pow(exponent)).min(cap);
    raw.mul_f64(0.5 + jitter_unit.clamp(0.0, 1.0))
}

fn jittered(base: Duration, cap: Duration, attempt: i64) -> chrono::Duration {
    let unit: f64 = rand::rng().random();
    chrono::Duration::from_std(backoff(base, cap, attempt, unit))
        .unwrap_or(chrono::Duration::seconds(1))
}

/// What the worker does next with a leased refund.
enum Step {
    Send,
    Query,
    Nothing,
}

impl Engine {
    fn channel_set(&self) -> EngineResult<&ChannelSet> {
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

    /// The earliest time any refund is due, for a worker deciding how long to wait.
    pub async fn next_dispatch_due(&self) -> EngineResult<Option<DateTime<Utc>>> {
        let mut pooled = self.db.acquire().await?;
        Ok(pooled.conn().next_due_at().await?.map(from_micros))
    }

    async fn work_refund(&self, config: &DispatchConfig, row: RefundRow) -> EngineResult<()> {
        let channel = Channel::parse(&row.channel).ok_or_else(|| {
            EngineError::corrupt(format!("refund {} has channel {}", row.id, row.channel))
        })?;
        let connector = self
            .channel_set()?
            .connector(channel)
            .cloned()
            .ok_or_else(|| EngineError::corrupt(format!("no connector for {channel}")))?;
        let payment = self.payment_of(&row).await?;
        let step = match (parse_status(&row)?, row.send_state.as_str()) {
            (RefundStatus::Queued, _) | (RefundStatus::Processing, SEND_STATE_NOT_SENT) => {
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
    async fn resend_if_opened(
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
    async fn unsendable(
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
    fn reroute_account_for_channel(&self, row: &RefundRow) -> Result<Option<String>, String> {
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

    async fn payment_of(&self, row: &RefundRow) -> EngineResult<PaymentRow> {
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
    async fn resend_or_give_up(
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
    async fn query_failed(
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
            || parse_status(&row)? != RefundStatus::Processing
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
        row.lease_owner = None;
        row.lease_until_us = None;
        conn.update_refund_dispatch(&row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Dispatch gave up without a definitive answer: the refund ends `abnormal` (its money
    /// held) with the reason on its timeline, for an operator to decide.
    async fn give_up_unknown(
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
            || parse_status(&row)? != RefundStatus::Processing
        {
            return Ok(());
        }
        end_unknown(&mut conn, &mut row, &payment, reason, now_us).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the refund `sent` (committed), then calls the channel, then applies the answer.
    async fn send(
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
    async fn mark_sending(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        channel_name: &str,
    ) -> EngineResult<bool> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, refund_id).await? else {
            return Ok(false);
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str()) {
            return Ok(false);
        }
        let status = parse_status(&row)?;
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
                &mut conn,
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
            return Ok(false);
        } else if row.send_state == SEND_STATE_NOT_SENT {
            // A new route (after a reroute): a new send on the timeline.
            append_refund_event(
                &mut conn,
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
        row.send_state = SEND_STATE_SENT.to_string();
        row.dispatch_attempts += 1;
        row.query_errors = 0;
        row.next_attempt_at_us = Some(now_us + to_micros_duration(config.lease));
        conn.update_refund_dispatch(&row).await?;
        let _ = channel_name;
        tx.commit().await?;
        Ok(true)
    }

    /// A transient error or an unknown outcome: try again later (a query first, since the
    /// request may have arrived).
    async fn retry_later(
        &self,
        config: &DispatchConfig,
        refund_id: &str,
        error: &ConnectorError,
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, _)) = lock_refund(&mut conn, refund_id).await? else {
            return Ok(());
        };
        if row.lease_owner.as_deref() != Some(config.worker_id.as_str())
            || parse_status(&row)?.is_final()
        {
            return Ok(());
        }
        let delay = match error {
            ConnectorError::Unknown(_) => jittered(config.retry_base, config.retry_cap, 1),
            _ => jittered(config.retry_base, config.retry_cap, row.dispatch_attempts),
        };
        row.last_error = Some(error.to_string());
        row.next_attempt_at_us = Some(to_micros(now + delay));
        row.lease_owner = None;
        row.lease_until_us = None;
        conn.update_refund_dispatch(&row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the refund back without scheduling more work (nothing to do for it).
    async fn release(
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
        row.lease_owner = None;
        row.lease_until_us = None;
        row.next_attempt_at_us = next_attempt_at_us;
        conn.update_refund_dispatch(&row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies what a channel said about a refund, from a worker (`config` set: it holds the
    /// lease) or a callback. Idempotent and order-independent: only forward moves happen.
    pub async fn apply_outcome(
        &self,
        config: Option<&DispatchConfig>,
        refund_id: &str,
        outcome: ChannelOutcome,
    ) -> EngineResult<()> {
        let now = self.clock.now();
        let now_us = to_micros(now);
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, refund_id).await? else {
            return Err(EngineError::NotFound {
                what: "refund",
                id: refund_id.to_string(),
            });
        };
        let status = parse_status(&row)?;
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
            return Ok(());
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
                row.lease_owner = None;
                row.lease_until_us = None;
                row.next_attempt_at_us = None;
                conn.update_refund_dispatch(&row).await?;
                tx.commit().await?;
            }
            return Ok(());
        }
        let mut counters = payment.counters();
        let mut status = status;
        if late_success {
            let change = Change {
                to: RefundStatus::Processing,
                action: action::ACCEPTED,
                review_note: Some("the channel answered after dispatch stopped".to_string()),
                reviewed_by: None,
                tracking_no: None,
            };
            apply_transition(
                &mut conn,
                &mut row,
                &mut counters,
                status,
                &change,
                DISPATCH_ACTOR,
                now_us,
            )
            .await?;
            status = RefundStatus::Processing;
        }
        let channel =
            Channel::parse(&row.channel).ok_or_else(|| EngineError::corrupt("bad channel"))?;
        match outcome {
            ChannelOutcome::Processing { channel_refund_id } => {
                let first_acceptance = row.send_state != SEND_STATE_ACCEPTED;
                row.send_state = SEND_STATE_ACCEPTED.to_string();
                row.channel_refund_id = Some(channel_refund_id.clone());
                if row.expected_arrival_by_us.is_none() {
                    row.expected_arrival_by_us =
                        self.expected_arrival(channel, None, now).map(to_micros);
                }
                if holds_lease || first_acceptance {
                    let poll = config.map_or(chrono::Duration::seconds(30), |c| {
                        jittered(
                            c.confirm_poll_base,
                            c.confirm_poll_cap,
                            row.dispatch_attempts,
                        )
                    });
                    row.next_attempt_at_us =
                        Some(now_us + poll.num_microseconds().unwrap_or(30_000_000));
                }
                if holds_lease {
                    row.lease_owner = None;
                    row.lease_until_us = None;
                }
                conn.update_refund_dispatch(&row).await?;
                if first_acceptance {
                    append_refund_event(
                        &mut conn,
                        &row,
                        action::ACCEPTED,
                        now_us,
                        json!({
                            "status": "processing", "channel_refund_id": channel_refund_id,
                            "expected_arrival_by_us": row.expected_arrival_by_us,
                        }),
                    )
                    .await?;
                    crate::notify::enqueue_refund_sms(
                        &mut conn,
                        &row,
                        &payment,
                        crate::notify::SmsKind::Accepted,
                        now_us,
                    )
                    .await?;
                }
            }
            ChannelOutcome::Succeeded {
                channel_refund_id,
                received_account,
                succeeded_at,
            } => {
                // A channel may echo a full account number: only its ends are kept.
                let received_account = received_account.as_deref().map(mask_numbers_in);
                row.channel_refund_id = Some(channel_refund_id);
                row.received_account = received_account.clone();
                row.succeeded_at_us = Some(to_micros(succeeded_at));
                row.send_state = SEND_STATE_ACCEPTED.to_string();
                if row.expected_arrival_by_us.is_none() {
                    row.expected_arrival_by_us = self
                        .expected_arrival(channel, received_account.as_deref(), succeeded_at)
                        .map(to_micros);
                }
                finish(&mut row);
                let change = Change {
                    to: RefundStatus::Succeeded,
                    action: action::SUCCEEDED,
                    review_note: None,
                    reviewed_by: None,
                    tracking_no: None,
                };
                apply_transition(
                    &mut conn,
                    &mut row,
                    &mut counters,
                    status,
                    &change,
                    DISPATCH_ACTOR,
                    now_us,
                )
                .await?;
                conn.update_refund_dispatch(&row).await?;
                crate::notify::enqueue_refund_sms(
                    &mut conn,
                    &row,
                    &payment,
                    crate::notify::SmsKind::Arrived,
                    now_us,
                )
                .await?;
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
                leave_dispatch(
                    &mut conn,
                    &mut row,
                    &mut counters,
                    status,
                    step,
                    reason,
                    now_us,
                )
                .await?;
            }
            ChannelOutcome::Failed { reason } => {
                row.failure_reason = Some(reason.clone());
                let step = (RefundStatus::Failed, action::FAILED);
                leave_dispatch(
                    &mut conn,
                    &mut row,
                    &mut counters,
                    status,
                    step,
                    reason,
                    now_us,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// An operator moves an `abnormal` refund on: to a bank account the consumer gave (it is
    /// sent again, under the same refund id, to that account), or to the merchant, who paid
    /// the consumer directly (cash or a transfer at the counter): it succeeds, its
    /// destination "paid by the merchant directly", and its hold is released back to the
    /// merchant's balance (the merchant paid out of pocket; see docs/decisions.md).
    pub async fn reroute_refund(
        &self,
        who: &crate::auth::Principal,
        id: &str,
        input: RerouteInput,
    ) -> EngineResult<crate::views::Refund> {
        who.require_admin()?;
        let target = RerouteTarget::parse(&input)?;
        let account_key = match &target {
            RerouteTarget::BankAccount { .. } => Some(
                self.account_key
                    .clone()
                    .ok_or(EngineError::AccountKeyNotConfigured)?,
            ),
            RerouteTarget::Merchant(_) => None,
        };
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, id).await? else {
            return Err(EngineError::NotFound {
                what: "refund",
                id: id.to_string(),
            });
        };
        let status = parse_status(&row)?;
        if status != RefundStatus::Abnormal {
            return Err(EngineError::InvalidTransition {
                refund_id: row.id.clone(),
                status: status.id().to_string(),
                action: "rerouted",
            });
        }
        let mut counters = payment.counters();
        let actor = who.actor();
        let (note, account_shown) = match &target {
            RerouteTarget::BankAccount { display, .. } => (
                format!("rerouted to the consumer's bank account {display}"),
                Some(display.clone()),
            ),
            RerouteTarget::Merchant(paid) => (paid.note(), None),
        };
        let change = Change {
            to: RefundStatus::Processing,
            action: action::REROUTED,
            review_note: Some(note.clone()),
            reviewed_by: Some(actor.clone()),
            tracking_no: None,
        };
        apply_transition(
            &mut conn,
            &mut row,
            &mut counters,
            status,
            &change,
            &actor,
            now_us,
        )
        .await?;
        match target {
            RerouteTarget::BankAccount { account, full, .. } => {
                let key = account_key.ok_or(EngineError::AccountKeyNotConfigured)?;
                // The full number, for the channel: sealed to this refund, erased when the
                // refund leaves dispatch (`finish`).
                row.reroute_account_sealed =
                    Some(key.seal(&row.id, &full).map_err(EngineError::corrupt)?);
                row.reroute_account = Some(account);
                row.send_state = SEND_STATE_NOT_SENT.to_string();
                // A new route has its own attempts (the old one may have used them all).
                row.dispatch_attempts = 0;
                row.next_attempt_at_us = Some(now_us);
                row.received_account = account_shown;
                conn.update_refund_dispatch(&row).await?;
            }
            RerouteTarget::Merchant(_) => {
                finish(&mut row);
                // The destination marks the refund as paid by the merchant: the ledger
                // releases its hold instead of paying it out through the channel.
                row.received_account = Some(PAID_BY_MERCHANT.to_string());
                let paid = Change {
                    to: RefundStatus::Succeeded,
                    action: action::PAID_BY_MERCHANT,
                    review_note: Some(note),
                    reviewed_by: Some(actor.clone()),
                    tracking_no: None,
                };
                apply_transition(
                    &mut conn,
                    &mut row,
                    &mut counters,
                    RefundStatus::Processing,
                    &paid,
                    &actor,
                    now_us,
                )
                .await?;
                conn.update_refund_dispatch(&row).await?;
            }
        }
        let view = crate::refunds::refund_view(&mut conn, &row, &payment).await?;
        tx.commit().await?;
        Ok(view)
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
    async fn check_callback_channel(
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
        let refund_channel = Channel::parse(&row.channel).ok_or_else(|| {
            EngineError::corrupt(format!("refund {} has channel {}", row.id, row.channel))
        })?;
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

    /// Expected arrival of a refund the channel accepted at `accepted_at`.
    fn expected_arrival(
        &self,
        channel: Channel,
        received_account: Option<&str>,
        accepted_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let destination = destination_kind(channel, received_account);
        Some(self.arrival_rules.expected_arrival_by(
            &self.calendar,
            channel,
            destination,
            accepted_at,
        ))
    }
}

/// `POST /v1/refunds/{id}/reroute`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerouteInput {
    /// `bank_account` (the consumer's account, given to the operator) or `merchant`.
    pub to: String,
    /// For `bank_account`: the account number (8–30 digits) and its bank.
    pub account: Option<RerouteAccount>,
    /// For `merchant`: how the merchant paid the consumer: `cash`, `bank_transfer` or
    /// `other` (the default).
    pub method: Option<String>,
    /// For `merchant`: who at the merchant paid (at most 64 characters).
    pub paid_by: Option<String>,
    /// For `merchant`: a note (at most 200 characters).
    pub note: Option<String>,
}

/// A refund's destination once the merchant paid the consumer directly (its
/// `received_account`, which the ledger and the views read).
pub const PAID_BY_MERCHANT: &str = "paid by the merchant directly";

/// How the merchant paid the consumer, as recorded by the operator.
struct PaidByMerchant {
    method: &'static str,
    paid_by: Option<String>,
    note: Option<String>,
}

impl PaidByMerchant {
    fn parse(input: &RerouteInput) -> EngineResult<Self> {
        let method = match input.method.as_deref().map(str::trim) {
            None | Some("other") => "other",
            Some("cash") => "cash",
            Some("bank_transfer") => "bank_transfer",
            Some(_) => {
                return Err(EngineError::validation(
                    "method",
                    "use `cash`, `bank_transfer` or `other`",
                ));
            }
        };
        Ok(PaidByMerchant {
            method,
            paid_by: free_text(input.paid_by.as_deref(), "paid_by", 64)?,
            note: free_text(input.note.as_deref(), "note", 200)?,
        })
    }

    /// The timeline's note: how, by whom, and the operator's words.
    fn note(&self) -> String {
        let method = match self.method {
            "cash" => "in cash",
            "bank_transfer" => "by bank transfer",
            _ => "by other means",
        };
        let by = self
            .paid_by
            .as_deref()
            .map(|who| format!(", by {who}"))
            .unwrap_or_default();
        let note = self
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        format!("{PAID_BY_MERCHANT} ({method}{by}){note}")
    }
}

/// An optional free text: trimmed, empty as none, bounded, no control characters.
fn free_text(value: Option<&str>, field: &str, max: usize) -> EngineResult<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(EngineError::validation(
            field,
            format!("at most {max} characters, no control characters"),
        ));
    }
    Ok(Some(value.to_string()))
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerouteAccount {
    pub number: String,
    pub bank: String,
    pub holder: Option<String>,
}

enum RerouteTarget {
    /// `full` is what the channel needs (`工商银行|6222021234567890`), stored only sealed;
    /// `account` is kept (`工商银行|6222********7890`); `display` is what people see
    /// (`工商银行 **** 7890`).
    BankAccount {
        full: String,
        account: String,
        display: String,
    },
    Merchant(PaidByMerchant),
}

impl RerouteTarget {
    fn parse(input: &RerouteInput) -> EngineResult<Self> {
        let merchant_fields =
            input.method.is_some() || input.paid_by.is_some() || input.note.is_some();
        if input.to == "bank_account" && merchant_fields {
            return Err(EngineError::validation(
                "method",
                "`method`, `paid_by` and `note` are for a reroute to the merchant",
            ));
        }
        match (input.to.as_str(), &input.account) {
            ("merchant", None) => Ok(RerouteTarget::Merchant(PaidByMerchant::parse(input)?)),
            ("merchant", Some(_)) => Err(EngineError::validation(
                "account",
                "a reroute to the merchant takes no account",
            )),
            ("bank_account", Some(account)) => {
                let number: String = account
                    .number
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if !(8..=30).contains(&number.len()) || !number.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(EngineError::validation(
                        "account.number",
                        "give the account number: 8 to 30 digits",
                    ));
                }
                let bank = account.bank.trim();
                if bank.is_empty()
                    || bank.chars().count() > 64
                    || bank.chars().any(char::is_control)
                {
                    return Err(EngineError::validation(
                        "account.bank",
                        "give the bank's name (1 to 64 characters)",
                    ));
                }
                let last4 = &number[number.len() - 4..];
                Ok(RerouteTarget::BankAccount {
                    full: format!("{bank}|{number}"),
                    account: format!("{bank}|{}", mask_number(&number)),
                    display: format!("{bank} **** {last4}"),
                })
            }
            ("bank_account", None) => Err(EngineError::validation(
                "account",
                "a reroute to a bank account needs the account",
            )),
            _ => Err(EngineError::validation(
                "to",
                "use `bank_account` or `merchant`",
            )),
        }
    }
}

/// Where a refund lands, from what the channel said. Wallet refunds to the wallet's balance
/// (零钱, 余额, Huabei) arrive within hours; anything else, or not yet known, is a bank card.
pub fn destination_kind(channel: Channel, received_account: Option<&str>) -> DestinationKind {
    const BALANCE_WORDS: [&str; 5] = ["零钱", "余额", "花呗", "balance", "huabei"];
    let wallet = matches!(channel, Channel::Wechat | Channel::Alipay);
    let to_balance = received_account.is_some_and(|account| {
        let account = account.to_lowercase();
        BALANCE_WORDS.iter().any(|word| account.contains(word))
    });
    if wallet && to_balance {
        DestinationKind::Balance
    } else {
        DestinationKind::BankCard
    }
}

/// A refund leaves dispatch for `to` (abnormal or failed) with the channel's words as note.
async fn leave_dispatch(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut yuanlu_store::PaymentCounters,
    from: RefundStatus,
    (to, action): (RefundStatus, &'static str),
    reason: String,
    now_us: i64,
) -> EngineResult<()> {
    finish(row);
    let change = Change {
        to,
        action,
        review_note: Some(reason),
        reviewed_by: None,
        tracking_no: None,
    };
    apply_transition(conn, row, counters, from, &change, DISPATCH_ACTOR, now_us).await?;
    conn.update_refund_dispatch(row).await?;
    Ok(())
}

/// A `processing` refund whose outcome dispatch could not learn ends `abnormal` (its money
/// held), with the reason on its timeline, for an operator to decide.
async fn end_unknown(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    payment: &PaymentRow,
    reason: String,
    now_us: i64,
) -> EngineResult<()> {
    let mut counters = payment.counters();
    row.last_error = Some(reason.clone());
    row.query_errors = 0;
    let step = (RefundStatus::Abnormal, action::OUTCOME_UNKNOWN);
    let from = RefundStatus::Processing;
    leave_dispatch(conn, row, &mut counters, from, step, reason, now_us).await
}

/// A refund leaves the queue: no lease, nothing scheduled, and the sealed account number of
/// a reroute erased (written in the same transaction as the status).
fn finish(row: &mut RefundRow) {
    row.reroute_account_sealed = None;
    row.lease_owner = None;
    row.lease_until_us = None;
    row.next_attempt_at_us = None;
}

fn to_micros_duration(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The refund and its payment, with the payment locked (the order every writer uses).
pub(crate) async fn lock_refund(
    conn: &mut Conn<'_>,
    refund_id: &str,
) -> EngineResult<Option<(RefundRow, PaymentRow)>> {
    let Some(first) = conn.get_refund(None, refund_id).await? else {
        return Ok(None);
    };
    let payment = conn
        .lock_payment(&first.merchant_id, &first.payment_id)
        .await?
        .ok_or_else(|| {
            EngineError::corrupt(format!("refund {refund_id} names a missing payment"))
        })?;
    let row = conn
        .get_refund(None, refund_id)
        .await?
        .ok_or_else(|| EngineError::corrupt("refund vanished"))?;
    Ok(Some((row, payment)))
}

async fn append_refund_event(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    action: &str,
    now_us: i64,
    data: serde_json::Value,
) -> EngineResult<()> {
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: now_us,
            actor: DISPATCH_ACTOR,
            action,
            subject_id: &row.id,
            data,
        },
    )
    .await
}

fn refund_request(
    row: &RefundRow,
    payment: &PaymentRow,
    channel: Channel,
    reroute_account: Option<String>,
) -> RefundRequest {
    RefundRequest {
        refund_id: row.id.clone(),
        payment_id: row.payment_id.clone(),
        channel,
        amount_fen: row.amount_fen,
        payment_amount_fen: payment.amount_fen,
        payer_account: payment.payer_account.clone(),
        reroute_account,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_balances_are_told_apart_from_bank_cards() {
        assert_eq!(
            destination_kind(Channel::Wechat, Some("支付用户零钱")),
            DestinationKind::Balance
        );
        assert_eq!(
            destination_kind(Channel::Alipay, Some("余额")),
            DestinationKind::Balance
        );
        assert_eq!(
            destination_kind(Channel::Wechat, Some("招商银行信用卡0403")),
            DestinationKind::BankCard
        );
        assert_eq!(
            destination_kind(Channel::Wechat, None),
            DestinationKind::BankCard
        );
        assert_eq!(
            destination_kind(Channel::CreditCard, Some("balance")),
            DestinationKind::BankCard
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_around_it() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(base, cap, 1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(base, cap, 2, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(base, cap, 4, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(base, cap, 20, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(base, cap, 1, 0.0), Duration::from_millis(500));
        assert!(backoff(base, cap, 1, 1.0) <= Duration::from_millis(1_500));
    }
}
