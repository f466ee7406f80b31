//! Settlement on schedule (issue 16): `yuanlu serve` settles each business date by itself
//! once the configured time of the next day has passed in Asia/Shanghai (default 02:00),
//! catching up every date with activity that was missed while no server ran, oldest first.
//!
//! Time is the engine's clock, so a simulated clock drives it: move the clock past 02:00
//! and the next poll settles. Several servers on one database may run the scheduler at
//! once: each merchant's statement is written under the merchant's balance lock after
//! looking for a stored one, and `settlement_statements` is unique on `(merchant_id,
//! business_date)`, so a date is settled exactly once whoever gets there first; the other
//! server finds the stored statements and moves no money. Each server walks the dates in
//! order and starts a date only after every statement of the earlier ones exists, so a
//! statement always opens with the carried balance of the day before.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use tokio::sync::watch;
use yuanlu_domain::time::shanghai;

use crate::Engine;
use crate::error::EngineResult;

/// Dates the scheduler settles per query of the unsettled dates.
const DATES_PER_PASS: i64 = 32;

/// When settlement runs: every day at `at` (Asia/Shanghai) for the day before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleSchedule {
    pub at: NaiveTime,
}

impl Default for SettleSchedule {
    fn default() -> Self {
        SettleSchedule {
            at: NaiveTime::from_hms_opt(2, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

impl SettleSchedule {
    /// `HH:MM` (24-hour, Asia/Shanghai).
    pub fn parse(text: &str) -> Result<SettleSchedule, String> {
        NaiveTime::parse_from_str(text, "%H:%M")
            .map(|at| SettleSchedule { at })
            .map_err(|_| format!("{text:?} is not a time of day as HH:MM (e.g. 02:00)"))
    }

    /// The latest business date due for settlement at `now`: yesterday once today's `at`
    /// has passed in Asia/Shanghai, the day before yesterday until then.
    pub fn latest_due(&self, now: DateTime<Utc>) -> NaiveDate {
        let local = now.with_timezone(&shanghai());
        let back = if local.time() >= self.at { 1 } else { 2 };
        local
            .date_naive()
            .checked_sub_days(Days::new(back))
            .unwrap_or(NaiveDate::MIN)
    }
}

impl Engine {
    /// Settles, oldest first, every business date up to `through` that has ledger postings
    /// and no settlement run yet. Returns the dates this call settled (a date another
    /// server settled at the same time is listed too: its statements were found, not
    /// written twice).
    pub async fn settle_due_dates(&self, through: NaiveDate) -> EngineResult<Vec<NaiveDate>> {
        let through_text = through.format("%Y-%m-%d").to_string();
        let mut settled = Vec::new();
        loop {
            let dates = {
                let mut pooled = self.db.acquire().await?;
                pooled
                    .conn()
                    .unsettled_activity_dates(&through_text, DATES_PER_PASS)
                    .await?
            };
            if dates.is_empty() {
                return Ok(settled);
            }
            for text in dates {
                let date = crate::settlement::parse_business_date(&text)?;
                self.settle_date(date).await?;
                settled.push(date);
            }
        }
    }
}

/// Runs the schedule until `shutdown` flips: every `poll` it reads the engine's clock and,
/// when a new business date has become due (or the last pass failed), settles what is
/// due. Settles at once on start-up what was missed while the server was down.
pub async fn run_scheduler(
    engine: Engine,
    schedule: SettleSchedule,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut done_through: Option<NaiveDate> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let due = schedule.latest_due(engine.clock.now());
        if done_through != Some(due) {
            match engine.settle_due_dates(due).await {
                Ok(dates) => {
                    if !dates.is_empty() {
                        tracing::info!(
                            dates = ?dates.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                            "scheduled settlement"
                        );
                    }
                    done_through = Some(due);
                }
                Err(error) => tracing::warn!(%error, "scheduled settlement failed; retrying"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn yesterday_is_due_from_the_settle_time_on() {
        let schedule = SettleSchedule::default();
        let date = |t: &str| schedule.latest_due(at(t)).to_string();
        assert_eq!(date("2026-11-21T01:59:59+08:00"), "2026-11-19");
        assert_eq!(date("2026-11-21T02:00:00+08:00"), "2026-11-20");
        // 02:00 in Shanghai is 18:00 UTC of the day before.
        assert_eq!(date("2026-11-20T18:00:00Z"), "2026-11-20");
        assert_eq!(
            SettleSchedule::parse("23:30").unwrap().at.to_string(),
            "23:30:00"
        );
        assert!(SettleSchedule::parse("25:00").is_err());
        assert!(SettleSchedule::parse("2am").is_err());
    }
}
