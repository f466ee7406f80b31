//! The overdue monitor: raises its own alarm before people complain.
//!
//! A refund is overdue when it is `processing` or `abnormal` past its expected arrival, or
//! was sent to its channel more than 24 hours ago and the channel has still not accepted it
//! (the same rule as `GET /v1/refunds?overdue=true`). For each overdue refund not raised yet
//! the monitor, in one transaction under the payment's lock:
//! - opens a `not_arrived` case opened by `system` (skipped when a `not_arrived` case is
//!   open, whoever opened it, or when the monitor already opened one for the refund: after
//!   an operator resolves it, the refund stays on the overdue list but is not raised again);
//! - schedules an immediate query of a `processing` refund with nothing scheduled
//!   (`next_attempt_at_us = now`), so a dispatch worker asks the channel where it is.
//!
//! Running it again, or in several processes at once, opens no second case.

use chrono::{DateTime, Utc};
use yuanlu_domain::time::{from_micros, shanghai, to_micros};
use yuanlu_store::StoreError;
use yuanlu_store::queries_cases::CaseRow;

use crate::Engine;
use crate::cases::{CASE_ID_PREFIX, CaseKind, CaseOpener, CaseStatus, insert_case};
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use yuanlu_domain::transition::{UNCONFIRMED_OVERDUE_HOURS, unconfirmed_before};

/// Refunds examined per pass at most; the next pass takes the rest.
pub const OVERDUE_BATCH_MAX: i64 = 500;
/// The audit actor of the monitor.
pub const OVERDUE_ACTOR: &str = "system:overdue";

fn shanghai_time(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&shanghai())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

impl Engine {
    /// One pass of the monitor. Returns how many cases it opened.
    pub async fn monitor_overdue_once(&self) -> EngineResult<usize> {
        let now = self.clock.now();
        let now_us = to_micros(now);
        let before_us = to_micros(unconfirmed_before(now));
        let ids = {
            let mut pooled = self.db.acquire().await?;
            pooled
                .conn()
                .overdue_refunds_without_case(now_us, before_us, OVERDUE_BATCH_MAX)
                .await?
        };
        let mut opened = 0;
        for id in ids {
            match self.raise_overdue(&id, now_us, before_us).await {
                Ok(true) => opened += 1,
                Ok(false) => {}
                // A consumer or merchant opened a `not_arrived` case at the same moment:
                // the refund has its case.
                Err(EngineError::Store(StoreError::UniqueViolation(_))) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(opened)
    }

    /// Opens the monitor's case on one refund, if it still needs one. Locks the payment
    /// first (the order every writer of refunds uses), then re-checks under the lock.
    async fn raise_overdue(&self, id: &str, now_us: i64, before_us: i64) -> EngineResult<bool> {
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some(first) = conn.get_refund(None, id).await? else {
            return Ok(false);
        };
        conn.lock_payment(&first.merchant_id, &first.payment_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("refund {id} names a missing payment")))?;
        if !conn
            .refund_needs_overdue_case(id, now_us, before_us)
            .await?
        {
            return Ok(false);
        }
        let refund = conn
            .get_refund(None, id)
            .await?
            .ok_or_else(|| EngineError::corrupt("refund vanished under its payment's lock"))?;
        conn.schedule_refund_query(id, now_us).await?;
        let description = match refund.expected_arrival_by_us {
            Some(by) if by < now_us => format!(
                "the refund was expected by {} (Asia/Shanghai) and is still {}",
                shanghai_time(from_micros(by)),
                refund.status
            ),
            _ => format!(
                "the refund was sent to its channel at {} (Asia/Shanghai) and the channel has not accepted it within {UNCONFIRMED_OVERDUE_HOURS} hours",
                refund
                    .dispatched_at_us
                    .map(|at| shanghai_time(from_micros(at)))
                    .unwrap_or_else(|| "an unknown time".to_string())
            ),
        };
        let row = CaseRow {
            id: new_id(CASE_ID_PREFIX),
            merchant_id: refund.merchant_id.clone(),
            refund_id: refund.id.clone(),
            kind: CaseKind::NotArrived,
            description,
            contact: None,
            status: CaseStatus::Open,
            owner: None,
            resolution: None,
            opened_by: CaseOpener::System,
            created_at_us: now_us,
            resolved_at_us: None,
        };
        insert_case(&mut conn, &row, OVERDUE_ACTOR).await?;
        tx.commit().await?;
        Ok(true)
    }
}
