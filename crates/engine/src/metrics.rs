//! What `GET /metrics` reports from the engine. Counters are recorded where things happen
//! ([`record_dispatch`]); gauges are computed at scrape time ([`Engine::refresh_gauges`])
//! from the database, so every process reports the same numbers and nothing drifts.
//! The `metrics` facade sends them to whatever recorder the binary installed (none in tests
//! of the engine: then they cost nothing).

use yuanlu_channels::{ChannelOutcome, ConnectorError, RefundRequest};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::to_micros;

use crate::Engine;
use crate::error::EngineResult;

/// Requests sent to a channel, by `channel`.
pub const DISPATCH_ATTEMPTS: &str = "yuanlu_dispatch_attempts_total";
/// What those requests gave, by `channel` and `outcome`.
pub const DISPATCH_OUTCOMES: &str = "yuanlu_dispatch_outcomes_total";
/// Refunds by `status` and `channel`.
pub const REFUNDS: &str = "yuanlu_refunds";
pub const QUEUE_DEPTH: &str = "yuanlu_dispatch_queue_depth";
pub const OVERDUE: &str = "yuanlu_refunds_overdue";
pub const ABNORMAL: &str = "yuanlu_refunds_abnormal";
pub const POOL_SIZE: &str = "yuanlu_db_pool_connections";
pub const POOL_IDLE: &str = "yuanlu_db_pool_idle_connections";
pub const POOL_MAX: &str = "yuanlu_db_pool_max_connections";

/// Registers the help text of the engine's series (once, when the recorder is installed).
pub fn describe() {
    metrics::describe_counter!(
        DISPATCH_ATTEMPTS,
        "Refund requests sent to a channel, by channel."
    );
    metrics::describe_counter!(
        DISPATCH_OUTCOMES,
        "Channel answers to refund requests, by channel and outcome (accepted, succeeded, abnormal, failed, refused, transient_error, unknown)."
    );
    metrics::describe_gauge!(
        REFUNDS,
        "Refunds by status and channel, counted at scrape time."
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Queued refunds whose dispatch is due.");
    metrics::describe_gauge!(
        OVERDUE,
        "Refunds under way past their expected arrival, or sent 24 h ago and not accepted."
    );
    metrics::describe_gauge!(
        ABNORMAL,
        "Refunds in abnormal status, waiting for an operator."
    );
    metrics::describe_gauge!(POOL_SIZE, "Open database connections of this process.");
    metrics::describe_gauge!(POOL_IDLE, "Idle database connections of this process.");
    metrics::describe_gauge!(POOL_MAX, "Most database connections this process opens.");
}

/// The `outcome` label of one channel answer.
pub fn outcome_label(answer: &Result<ChannelOutcome, ConnectorError>) -> &'static str {
    match answer {
        Ok(ChannelOutcome::Processing { .. }) => "accepted",
        Ok(ChannelOutcome::Succeeded { .. }) => "succeeded",
        Ok(ChannelOutcome::Abnormal { .. }) => "abnormal",
        Ok(ChannelOutcome::Failed { .. }) => "failed",
        Err(ConnectorError::Final(_)) => "refused",
        Err(ConnectorError::Transient(_)) => "transient_error",
        Err(ConnectorError::Unknown(_)) => "unknown",
    }
}

/// Counts one request sent to a channel and its answer.
pub fn record_dispatch(request: &RefundRequest, answer: &Result<ChannelOutcome, ConnectorError>) {
    let channel = request.channel.id();
    metrics::counter!(DISPATCH_ATTEMPTS, "channel" => channel).increment(1);
    metrics::counter!(DISPATCH_OUTCOMES, "channel" => channel, "outcome" => outcome_label(answer))
        .increment(1);
}

impl Engine {
    /// Sets the gauges from the database and the pool: one grouped count of refunds by
    /// status and channel (every pair is set, so a pair that emptied reads 0), the due
    /// queue, the overdue and abnormal counts.
    pub async fn refresh_gauges(&self) -> EngineResult<()> {
        let now = self.clock.now();
        let before = yuanlu_domain::transition::unconfirmed_before(now);
        let counts = {
            let mut pooled = self.db.acquire().await?;
            pooled
                .conn()
                .refund_counts(to_micros(now), to_micros(before))
                .await?
        };
        let count_of = |status: RefundStatus, channel: Channel| {
            counts
                .by_status_channel
                .iter()
                .filter(|(s, c, _)| s == status.id() && c == channel.id())
                .map(|(_, _, n)| *n)
                .sum::<i64>()
        };
        let mut abnormal = 0;
        for &status in RefundStatus::ALL {
            for channel in Channel::ALL {
                let n = count_of(status, channel);
                if status == RefundStatus::Abnormal {
                    abnormal += n;
                }
                metrics::gauge!(REFUNDS, "status" => status.id(), "channel" => channel.id())
                    .set(n as f64);
            }
        }
        metrics::gauge!(QUEUE_DEPTH).set(counts.queue_depth as f64);
        metrics::gauge!(OVERDUE).set(counts.overdue as f64);
        metrics::gauge!(ABNORMAL).set(abnormal as f64);
        let pool = self.db.pool_use();
        metrics::gauge!(POOL_SIZE).set(f64::from(pool.size));
        metrics::gauge!(POOL_IDLE).set(f64::from(pool.idle));
        metrics::gauge!(POOL_MAX).set(f64::from(pool.max));
        Ok(())
    }
}
