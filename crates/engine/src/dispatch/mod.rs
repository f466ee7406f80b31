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
use yuanlu_domain::refund::{RefundStatus, SendState};
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::{Conn, PaymentRow, RefundRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::error::{EngineError, EngineResult};
use crate::timeline::action;
use crate::transition::{Change, apply_transition};

/// A refund sent this long ago and not confirmed is overdue (and queried): the domain's rule.
pub use yuanlu_domain::transition::UNCONFIRMED_OVERDUE_HOURS;

/// The audit actor of the dispatch workers.
/// A refund's destination once the merchant paid the consumer directly (its
/// `received_account`, which the ledger and the views read).
pub use crate::transition::PAID_BY_MERCHANT;

pub use reroute::{RerouteAccount, RerouteInput};

mod outcome;
mod reroute;
mod worker;

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
    conn.record_refund_outcome(row).await?;
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
    drop_lease(row);
    row.next_attempt_at_us = None;
}

/// The worker lets go of the refund (its lease ends); the caller writes the row.
fn drop_lease(row: &mut RefundRow) {
    row.lease_owner = None;
    row.lease_until_us = None;
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
        // The consumer's money: the refund less the deductions the merchant keeps.
        amount_fen: row.amount_fen - row.deducted_fen,
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
