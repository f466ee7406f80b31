//! `GET /v1/reports/refunds`: refunds, time to arrival, overdue refunds, cases and
//! satisfaction, per channel and per merchant, over a time range.
//!
//! What falls in the range `[from, to)`:
//! - refunds (counts and amounts by status, time to arrival, overdue) by their creation;
//! - cases by their opening; ratings by when they were given.
//!
//! Time to arrival is `succeeded_at − created_at` of succeeded refunds, in whole seconds
//! (rounded down), as nearest-rank percentiles (`p` = the value at rank `⌈p·n/100⌉` of the
//! sorted durations), computed over at most [`REPORT_DURATIONS_MAX`] refunds (the oldest);
//! `time_to_arrival_truncated` says when there were more. "Overdue" counts refunds that
//! are overdue now. Amounts are fen; the average rating is ×100 and rounded half up.
//!
//! Review time (issue 16) is from a refund's creation (the request) to the first audit
//! entry approving or rejecting it, for refunds created in the range; case handling time
//! from a case's opening to its resolution, for cases opened in the range. Both use the
//! same percentiles over at most [`REPORT_DURATIONS_MAX`] each.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::money::div_round_half_up;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::to_micros;
use yuanlu_store::queries_notify::ReportRange;

use crate::Engine;
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};

/// Most succeeded refunds whose durations are read for the percentiles of one report.
pub const REPORT_DURATIONS_MAX: i64 = 100_000;
/// The range when `from` is not given: this many days before `to`.
pub const REPORT_DAYS_DEFAULT: i64 = 30;

/// The report's scope.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Admin only: one merchant. A merchant key always reports on its own merchant.
    pub merchant_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusFigures {
    pub status: RefundStatus,
    pub count: i64,
    /// Fen.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundFigures {
    pub count: i64,
    /// Fen.
    pub amount: i64,
    /// Every status, in a fixed order, zeros included.
    pub by_status: Vec<StatusFigures>,
}

/// Seconds from creation to success; `null` without succeeded refunds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArrivalFigures {
    /// Succeeded refunds measured.
    pub count: i64,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    pub p99_seconds: Option<i64>,
}

/// Seconds a step took (issue 16): `null` percentiles when nothing was measured.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepFigures {
    /// Refunds (or cases) measured.
    pub count: i64,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseFigures {
    pub open: i64,
    pub resolved: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SatisfactionFigures {
    /// Ratings given.
    pub count: i64,
    /// Average rating × 100 (e.g. 450 for 4.5), rounded half up; `null` without ratings.
    pub average_rating_x100: Option<i64>,
    /// How many ratings of 1, 2, 3, 4 and 5.
    pub distribution: Vec<i64>,
}

/// The figures of one group (everything, one channel, or one merchant).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportFigures {
    pub refunds: RefundFigures,
    pub time_to_arrival: ArrivalFigures,
    /// Seconds from creation to the consumer saying "received" (确认收款), beside the
    /// channel's success above.
    pub time_to_confirmed_arrival: ArrivalFigures,
    /// Refunds overdue now.
    pub overdue: i64,
    pub cases: CaseFigures,
    pub satisfaction: SatisfactionFigures,
    /// Review time: from the refund's request (creation) to the reviewer's decision
    /// (approved or rejected), of the refunds created in the range that were decided.
    pub review_time: StepFigures,
    /// Case handling time: from opening to resolution, of the cases opened in the range
    /// that are resolved.
    pub case_handling_time: StepFigures,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelReport {
    pub channel: Channel,
    #[serde(flatten)]
    pub figures: ReportFigures,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MerchantReport {
    pub merchant_id: String,
    pub merchant_name: String,
    #[serde(flatten)]
    pub figures: ReportFigures,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The merchant reported on, when limited to one.
    pub merchant_id: Option<String>,
    pub total: ReportFigures,
    /// Channels with any activity in the range.
    pub by_channel: Vec<ChannelReport>,
    /// Merchants with any activity in the range.
    pub by_merchant: Vec<MerchantReport>,
    /// More succeeded refunds than [`REPORT_DURATIONS_MAX`]: percentiles cover the oldest.
    pub time_to_arrival_truncated: bool,
}

/// Running totals of one group.
#[derive(Debug, Clone, Default)]
struct Acc {
    by_status: BTreeMap<String, (i64, i64)>,
    durations_us: Vec<i64>,
    confirmed_us: Vec<i64>,
    overdue: i64,
    cases_open: i64,
    cases_resolved: i64,
    ratings: [i64; 5],
    review_us: Vec<i64>,
    case_us: Vec<i64>,
}

fn step_figures(durations_us: &[i64]) -> StepFigures {
    let mut seconds: Vec<i64> = durations_us
        .iter()
        .map(|us| us.div_euclid(1_000_000).max(0))
        .collect();
    seconds.sort_unstable();
    StepFigures {
        count: seconds.len() as i64,
        p50_seconds: percentile(&seconds, 50),
        p90_seconds: percentile(&seconds, 90),
    }
}

impl Acc {
    fn merge(&mut self, other: &Acc) {
        for (status, (count, amount)) in &other.by_status {
            let entry = self.by_status.entry(status.clone()).or_default();
            entry.0 += count;
            entry.1 += amount;
        }
        self.durations_us.extend_from_slice(&other.durations_us);
        self.confirmed_us.extend_from_slice(&other.confirmed_us);
        self.overdue += other.overdue;
        self.cases_open += other.cases_open;
        self.cases_resolved += other.cases_resolved;
        for (sum, n) in self.ratings.iter_mut().zip(other.ratings) {
            *sum += n;
        }
        self.review_us.extend_from_slice(&other.review_us);
        self.case_us.extend_from_slice(&other.case_us);
    }

    fn figures(&self) -> ReportFigures {
        let by_status: Vec<StatusFigures> = RefundStatus::ALL
            .iter()
            .map(|status| {
                let (count, amount) = self.by_status.get(status.id()).copied().unwrap_or((0, 0));
                StatusFigures {
                    status: *status,
                    count,
                    amount,
                }
            })
            .collect();
        let count: i64 = self.ratings.iter().sum();
        let weighted: i64 = self
            .ratings
            .iter()
            .zip(1_i64..)
            .map(|(n, rating)| n * rating)
            .sum();
        ReportFigures {
            refunds: RefundFigures {
                count: by_status.iter().map(|s| s.count).sum(),
                amount: by_status.iter().map(|s| s.amount).sum(),
                by_status,
            },
            time_to_arrival: arrival_figures(&self.durations_us),
            time_to_confirmed_arrival: arrival_figures(&self.confirmed_us),
            overdue: self.overdue,
            cases: CaseFigures {
                open: self.cases_open,
                resolved: self.cases_resolved,
            },
            satisfaction: SatisfactionFigures {
                count,
                average_rating_x100: (count > 0).then(|| {
                    i64::try_from(div_round_half_up(
                        i128::from(weighted) * 100,
                        i128::from(count),
                    ))
                    .unwrap_or(0)
                }),
                distribution: self.ratings.to_vec(),
            },
            review_time: step_figures(&self.review_us),
            case_handling_time: step_figures(&self.case_us),
        }
    }
}

/// Percentiles of durations in µs, as whole seconds.
fn arrival_figures(durations_us: &[i64]) -> ArrivalFigures {
    let mut seconds: Vec<i64> = durations_us
        .iter()
        .map(|us| us.div_euclid(1_000_000).max(0))
        .collect();
    seconds.sort_unstable();
    ArrivalFigures {
        count: seconds.len() as i64,
        p50_seconds: percentile(&seconds, 50),
        p90_seconds: percentile(&seconds, 90),
        p99_seconds: percentile(&seconds, 99),
    }
}

/// The nearest-rank `p`-th percentile of sorted values: the value at rank `⌈p·n/100⌉`.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

impl Engine {
    /// The refund report of the caller's scope over `[from, to)` (default: the last 30 days).
    // Long on purpose: reads the report's six aggregates and folds them per merchant and channel in one place.
    pub async fn refund_report(
        &self,
        who: &Principal,
        query: ReportQuery,
    ) -> EngineResult<RefundReport> {
        let merchant_id = match (who.merchant_scope(), query.merchant_id) {
            (None, wanted) => wanted,
            (Some(own), Some(wanted)) if wanted != own => {
                return Err(EngineError::NotFound {
                    what: "merchant",
                    id: wanted,
                });
            }
            (Some(own), _) => Some(own.to_string()),
        };
        let now = self.clock.now();
        let to = query.to.unwrap_or(now);
        let from = query
            .from
            .unwrap_or(to - Duration::days(REPORT_DAYS_DEFAULT));
        if from >= to {
            return Err(EngineError::validation("from", "from must be before to"));
        }
        let range = ReportRange {
            merchant_id: merchant_id.clone(),
            from_us: to_micros(from),
            to_us: to_micros(to),
        };
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let mut groups: BTreeMap<(String, String), Acc> = BTreeMap::new();
        let key = |merchant: &str, channel: &str| (merchant.to_string(), channel.to_string());
        for row in conn.report_refund_statuses(&range).await? {
            let acc = groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default();
            let entry = acc.by_status.entry(row.status).or_default();
            entry.0 += row.count;
            entry.1 += row.amount_fen;
        }
        let durations = conn
            .report_arrival_durations(&range, REPORT_DURATIONS_MAX + 1)
            .await?;
        let truncated = durations.len() as i64 > REPORT_DURATIONS_MAX;
        for row in durations
            .into_iter()
            .take(usize::try_from(REPORT_DURATIONS_MAX).unwrap_or(usize::MAX))
        {
            groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default()
                .durations_us
                .push(row.duration_us);
        }
        for row in conn
            .report_confirmed_durations(&range, REPORT_DURATIONS_MAX)
            .await?
        {
            groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default()
                .confirmed_us
                .push(row.duration_us);
        }
        let unconfirmed_before = yuanlu_domain::transition::unconfirmed_before(now);
        for row in conn
            .report_overdue(&range, to_micros(now), to_micros(unconfirmed_before))
            .await?
        {
            groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default()
                .overdue += row.count;
        }
        for row in conn.report_cases(&range).await? {
            let acc = groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default();
            match row.key.as_str() {
                "open" => acc.cases_open += row.count,
                _ => acc.cases_resolved += row.count,
            }
        }
        for row in conn.report_ratings(&range).await? {
            let acc = groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default();
            let slot = usize::try_from(row.rating - 1)
                .ok()
                .and_then(|i| acc.ratings.get_mut(i))
                .ok_or_else(|| {
                    EngineError::corrupt(format!("stored rating {} is not 1–5", row.rating))
                })?;
            *slot += row.count;
        }
        let cap = usize::try_from(REPORT_DURATIONS_MAX).unwrap_or(usize::MAX);
        for row in conn
            .report_review_durations(&range, REPORT_DURATIONS_MAX)
            .await?
            .into_iter()
            .take(cap)
        {
            groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default()
                .review_us
                .push(row.duration_us);
        }
        for row in conn
            .report_case_durations(&range, REPORT_DURATIONS_MAX)
            .await?
            .into_iter()
            .take(cap)
        {
            groups
                .entry(key(&row.merchant_id, &row.channel))
                .or_default()
                .case_us
                .push(row.duration_us);
        }
        let mut total = Acc::default();
        let mut by_channel: BTreeMap<String, Acc> = BTreeMap::new();
        let mut by_merchant: BTreeMap<String, Acc> = BTreeMap::new();
        for ((merchant, channel), acc) in &groups {
            total.merge(acc);
            by_channel.entry(channel.clone()).or_default().merge(acc);
            by_merchant.entry(merchant.clone()).or_default().merge(acc);
        }
        let mut channels = Vec::with_capacity(by_channel.len());
        for (channel, acc) in &by_channel {
            let channel = Channel::parse(channel)
                .ok_or_else(|| EngineError::corrupt(format!("stored channel {channel:?}")))?;
            channels.push(ChannelReport {
                channel,
                figures: acc.figures(),
            });
        }
        let mut merchants = Vec::with_capacity(by_merchant.len());
        for (merchant_id, acc) in &by_merchant {
            let name = conn
                .get_merchant(merchant_id)
                .await?
                .map(|m| m.name)
                .unwrap_or_default();
            merchants.push(MerchantReport {
                merchant_id: merchant_id.clone(),
                merchant_name: name,
                figures: acc.figures(),
            });
        }
        Ok(RefundReport {
            from,
            to,
            merchant_id,
            total: total.figures(),
            by_channel: channels,
            by_merchant: merchants,
            time_to_arrival_truncated: truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&values, 50), Some(5));
        assert_eq!(percentile(&values, 90), Some(9));
        assert_eq!(percentile(&values, 99), Some(10));
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
