//! The simulator's own books: one record per refund number, like a real channel, and the
//! decisions an execute makes against them.
//!
//! The books are what end-to-end tests check yuanlu against: whatever faults were injected,
//! every refund number is paid at most once (`paid_count` ≤ 1), and a refund is paid only
//! when it reached SUCCESS.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use yuanlu_domain::account::mask_numbers_in;

use super::faults::{Fault, FaultConfig, stable_hash};

/// Most refund numbers one simulator books (and tracks attempts for); beyond it the
/// simulator answers "busy" rather than growing without bound.
pub const MAX_BOOKED_REFUNDS: usize = 1_000_000;

/// A refund's status at the simulated channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimStatus {
    Processing,
    Success,
    Abnormal,
}

/// One booked refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    pub refund_no: String,
    pub payment_ref: String,
    pub amount_fen: i64,
    pub payment_total_fen: i64,
    /// Where the money goes: the reroute account, else the payer's, else the wallet balance;
    /// any account number in it masked to its first and last four digits.
    pub account: Option<String>,
    pub status: SimStatus,
    pub channel_refund_id: String,
    /// 1 once the refund reached SUCCESS; never more.
    pub paid_count: u32,
    pub paid_fen: i64,
    pub created_at: DateTime<Utc>,
    pub succeeded_at: Option<DateTime<Utc>>,
    pub notify_url: Option<String>,
    /// What the fault dice are keyed on: the order in which this simulator first met the
    /// number (`#0`, `#1`, …), not the number itself, which yuanlu draws at random (ULIDs).
    /// The same seed and the same sequence of calls then meet the same faults.
    #[serde(default)]
    pub dice_key: String,
}

impl BookEntry {
    /// The statuses to announce after the entry reached its new status, in sending order:
    /// the new status, perhaps again (duplicate), perhaps then a stale PROCESSING (out of
    /// order).
    pub fn callback_plan(&self, faults: &FaultConfig) -> Vec<SimStatus> {
        let mut plan = vec![self.status];
        if faults.strikes(Fault::Duplicate, &self.dice_key, 0) {
            plan.push(self.status);
        }
        if faults.strikes(Fault::OutOfOrder, &self.dice_key, 0) {
            plan.push(SimStatus::Processing);
        }
        plan
    }

    /// A callback's id: the same for the same refund and status, so a duplicate is
    /// recognisable.
    pub fn event_id(&self, status: SimStatus) -> String {
        let status_name = match status {
            SimStatus::Processing => "processing",
            SimStatus::Success => "success",
            SimStatus::Abnormal => "abnormal",
        };
        let digest = stable_hash(0, &self.refund_no, status_name, self.paid_count);
        format!("EV{}", hex::encode(&digest[..12]))
    }

    /// The time a callback reports: fixed per entry, so a duplicate has identical bytes.
    pub fn event_time(&self) -> DateTime<Utc> {
        self.succeeded_at.unwrap_or(self.created_at)
    }
}

/// Everything the books hold, for tests and `GET /sim/books`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksSnapshot {
    /// Sorted by refund number.
    pub refunds: Vec<BookEntry>,
    pub total_paid_fen: i64,
    pub paid_refunds: usize,
}

/// An execute, as the channel-specific handler read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteCall {
    pub refund_no: String,
    pub payment_ref: String,
    pub amount_fen: i64,
    pub payment_total_fen: i64,
    pub payer_account: Option<String>,
    pub reroute_account: Option<String>,
    pub notify_url: Option<String>,
}

/// Why a refund was refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AmountNotPositive,
    AmountOverTotal,
    CumulativeOverTotal,
    /// The number is booked with another amount or payment.
    Mismatch,
    /// A reroute account with a masked number (`6222****7890`): a bank pays whole numbers.
    AccountMasked,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::AmountNotPositive => "refund amount must be positive",
            Refusal::AmountOverTotal => "refund amount exceeds the payment",
            Refusal::CumulativeOverTotal => "refunds of this payment would exceed its amount",
            Refusal::Mismatch => {
                "this refund number is already booked with another amount or payment"
            }
            Refusal::AccountMasked => "the reroute account number is masked; give it whole",
        }
    }
}

/// What an execute did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// Booked now or before. `paid_now`: this call moved the money (Alipay's
    /// `fund_change`); `lost`: book it but never answer.
    Booked {
        entry: BookEntry,
        paid_now: bool,
        lost: bool,
    },
    Refused(Refusal),
    /// Transient error, nothing recorded; `attempt` picks the error's flavour.
    Busy {
        attempt: u32,
    },
}

/// Work the execute leaves for after the books are unlocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    None,
    /// Send callbacks for this entry's new status.
    Notify(BookEntry),
    /// Confirm this refund number after the configured delay.
    ConfirmLater(String),
}

#[derive(Debug, Default)]
pub struct Books {
    entries: HashMap<String, BookEntry>,
    booked_by_payment_fen: HashMap<String, i64>,
    execute_attempts: HashMap<String, u32>,
    /// Refund number → its dice key, in order of first contact (see [`BookEntry::dice_key`]).
    dice_keys: HashMap<String, String>,
}

fn mark_paid(entry: &mut BookEntry, now: DateTime<Utc>) {
    entry.status = SimStatus::Success;
    entry.succeeded_at = Some(now);
    // The one place money moves; the guard is what "never pays twice" rests on.
    if entry.paid_count == 0 {
        entry.paid_count = 1;
        entry.paid_fen = entry.amount_fen;
    }
}

impl Books {
    pub fn entry(&self, refund_no: &str) -> Option<&BookEntry> {
        self.entries.get(refund_no)
    }

    pub fn total_paid_fen(&self) -> i64 {
        self.entries.values().map(|e| e.paid_fen).sum()
    }

    pub fn snapshot(&self) -> BooksSnapshot {
        let mut refunds: Vec<BookEntry> = self.entries.values().cloned().collect();
        refunds.sort_by(|a, b| a.refund_no.cmp(&b.refund_no));
        BooksSnapshot {
            total_paid_fen: self.total_paid_fen(),
            paid_refunds: refunds.iter().filter(|e| e.paid_count > 0).count(),
            refunds,
        }
    }

    /// The dice key of a refund number, given on first contact (a pause, an execute).
    /// Once the books are full, new numbers are keyed on themselves, so memory stays bounded.
    pub fn dice_key(&mut self, refund_no: &str) -> String {
        if let Some(key) = self.dice_keys.get(refund_no) {
            return key.clone();
        }
        if self.dice_keys.len() >= MAX_BOOKED_REFUNDS {
            return refund_no.to_string();
        }
        let key = format!("#{}", self.dice_keys.len());
        self.dice_keys.insert(refund_no.to_string(), key.clone());
        key
    }

    /// Counts an execute attempt; `None` when the books are full.
    fn bump_attempt(&mut self, refund_no: &str) -> Option<u32> {
        if !self.execute_attempts.contains_key(refund_no)
            && self.execute_attempts.len() >= MAX_BOOKED_REFUNDS
        {
            return None;
        }
        let attempts = self
            .execute_attempts
            .entry(refund_no.to_string())
            .or_insert(0);
        *attempts = attempts.saturating_add(1);
        Some(*attempts)
    }

    /// Executes a refund against the books.
    pub fn execute(
        &mut self,
        call: &ExecuteCall,
        faults: &FaultConfig,
        channel_refund_id: String,
        now: DateTime<Utc>,
    ) -> (Execution, FollowUp) {
        let Some(attempt) = self.bump_attempt(&call.refund_no) else {
            return (Execution::Busy { attempt: 0 }, FollowUp::None);
        };
        let dice_key = self.dice_key(&call.refund_no);
        if faults.strikes(Fault::Error, &dice_key, attempt) {
            return (Execution::Busy { attempt }, FollowUp::None);
        }
        match self.entries.get_mut(&call.refund_no) {
            Some(entry) => repeat(entry, call, now),
            None => self.book_new(call, faults, channel_refund_id, dice_key, now),
        }
    }

    fn refusal(&self, call: &ExecuteCall) -> Option<Refusal> {
        if call.amount_fen <= 0 {
            return Some(Refusal::AmountNotPositive);
        }
        if call.reroute_account.as_deref().is_some_and(is_masked) {
            return Some(Refusal::AccountMasked);
        }
        if call.amount_fen > call.payment_total_fen {
            return Some(Refusal::AmountOverTotal);
        }
        let booked_fen = self
            .booked_by_payment_fen
            .get(&call.payment_ref)
            .copied()
            .unwrap_or(0);
        if booked_fen.saturating_add(call.amount_fen) > call.payment_total_fen {
            return Some(Refusal::CumulativeOverTotal);
        }
        None
    }

    fn book_new(
        &mut self,
        call: &ExecuteCall,
        faults: &FaultConfig,
        channel_refund_id: String,
        dice_key: String,
        now: DateTime<Utc>,
    ) -> (Execution, FollowUp) {
        if let Some(refusal) = self.refusal(call) {
            return (Execution::Refused(refusal), FollowUp::None);
        }
        if self.entries.len() >= MAX_BOOKED_REFUNDS {
            return (Execution::Busy { attempt: 0 }, FollowUp::None);
        }
        let number = dice_key.as_str();
        // An account someone gave by hand (a reroute) is taken to work.
        let abnormal = call.reroute_account.is_none() && faults.strikes(Fault::Abnormal, number, 0);
        let slow = !abnormal && faults.strikes(Fault::Slow, number, 0);
        let mut entry = BookEntry {
            refund_no: call.refund_no.clone(),
            payment_ref: call.payment_ref.clone(),
            amount_fen: call.amount_fen,
            payment_total_fen: call.payment_total_fen,
            // Kept masked: the books are shown, and no full number is kept anywhere.
            account: call
                .reroute_account
                .as_deref()
                .or(call.payer_account.as_deref())
                .map(mask_numbers_in),
            status: if abnormal {
                SimStatus::Abnormal
            } else {
                SimStatus::Processing
            },
            channel_refund_id,
            paid_count: 0,
            paid_fen: 0,
            created_at: now,
            succeeded_at: None,
            notify_url: call.notify_url.clone(),
            dice_key: dice_key.clone(),
        };
        let follow_up = if slow {
            FollowUp::ConfirmLater(call.refund_no.clone())
        } else {
            if !abnormal {
                mark_paid(&mut entry, now);
            }
            FollowUp::Notify(entry.clone())
        };
        *self
            .booked_by_payment_fen
            .entry(call.payment_ref.clone())
            .or_insert(0) += call.amount_fen;
        self.entries.insert(call.refund_no.clone(), entry.clone());
        let lost = faults.strikes(Fault::Lost, number, 0);
        let paid_now = entry.paid_count > 0;
        (
            Execution::Booked {
                entry,
                paid_now,
                lost,
            },
            follow_up,
        )
    }

    /// Confirms a slow refund; `Some` with the entry when this call moved it to SUCCESS.
    pub fn confirm(&mut self, refund_no: &str, now: DateTime<Utc>) -> Option<BookEntry> {
        let entry = self.entries.get_mut(refund_no)?;
        if entry.status != SimStatus::Processing {
            return None;
        }
        mark_paid(entry, now);
        Some(entry.clone())
    }
}

/// A masked account number (what yuanlu shows and keeps), which no bank can pay to.
fn is_masked(account: &str) -> bool {
    account.contains('*')
}

/// A repeat of a booked number: the stored record, or the reroute of an abnormal one.
fn repeat(entry: &mut BookEntry, call: &ExecuteCall, now: DateTime<Utc>) -> (Execution, FollowUp) {
    if entry.amount_fen != call.amount_fen || entry.payment_ref != call.payment_ref {
        return (Execution::Refused(Refusal::Mismatch), FollowUp::None);
    }
    if call.reroute_account.as_deref().is_some_and(is_masked) {
        return (Execution::Refused(Refusal::AccountMasked), FollowUp::None);
    }
    if entry.notify_url.is_none() {
        entry.notify_url.clone_from(&call.notify_url);
    }
    let (follow_up, paid_now) = match (&call.reroute_account, entry.status) {
        (Some(reroute), SimStatus::Abnormal) => {
            entry.account = Some(mask_numbers_in(reroute));
            mark_paid(entry, now);
            (FollowUp::Notify(entry.clone()), true)
        }
        (_, SimStatus::Abnormal | SimStatus::Processing | SimStatus::Success) => {
            (FollowUp::None, false)
        }
    };
    let booked = Execution::Booked {
        entry: entry.clone(),
        paid_now,
        lost: false,
    };
    (booked, follow_up)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn call(refund_no: &str, amount_fen: i64) -> ExecuteCall {
        ExecuteCall {
            refund_no: refund_no.into(),
            payment_ref: "pay_1".into(),
            amount_fen,
            payment_total_fen: 10_000,
            payer_account: None,
            reroute_account: None,
            notify_url: None,
        }
    }

    fn run(books: &mut Books, faults: &FaultConfig, call: &ExecuteCall) -> Execution {
        books
            .execute(call, faults, format!("ch_{}", call.refund_no), Utc::now())
            .0
    }

    /// Every fault decision of a run: 40 refunds, numbered as yuanlu numbers them (at random:
    /// here a per-run prefix), each executed three times, with its latency and callback plan.
    fn fault_decisions(seed: u64, run_prefix: &str) -> Vec<String> {
        let faults = FaultConfig::from_spec(&format!(
            "seed={seed},error=0.3,lost=0.3,abnormal=0.2,slow=0.3,duplicate=0.3,out_of_order=0.3,latency=0..1000"
        ))
        .unwrap();
        let mut books = Books::default();
        let mut decisions = Vec::new();
        for i in 0..40 {
            let number = format!("rf_{run_prefix}_{i}");
            let latency_ms = faults.latency_ms(&books.dice_key(&number));
            let refund = ExecuteCall {
                payment_ref: format!("pay_{run_prefix}_{i}"),
                ..call(&number, 1_000)
            };
            for attempt in 0..3 {
                let decision = match run(&mut books, &faults, &refund) {
                    Execution::Booked {
                        entry,
                        paid_now,
                        lost,
                    } => format!(
                        "{i}/{attempt}: {:?} paid_now={paid_now} lost={lost} callbacks={:?}",
                        entry.status,
                        entry.callback_plan(&faults)
                    ),
                    other => format!("{i}/{attempt}: {other:?}"),
                };
                decisions.push(decision);
            }
            decisions.push(format!("{i}: latency {latency_ms} ms"));
        }
        decisions
    }

    #[test]
    fn same_seed_and_calls_replay_the_same_faults() {
        // Two runs number their refunds differently (yuanlu's ids are random), yet meet the
        // same faults in the same order; another seed is another world.
        let first = fault_decisions(7, "01jabc");
        let replay = fault_decisions(7, "01jxyz");
        assert_eq!(first, replay);
        let other_seed = fault_decisions(8, "01jabc");
        let moved = first
            .iter()
            .zip(&other_seed)
            .filter(|(a, b)| a != b)
            .count();
        assert!(moved > 10, "a new seed moved only {moved} decisions");
        // Every kind of fault is in the replayed run, so the comparison covers them all.
        let all = first.join("\n");
        for seen in [
            "Busy",
            "lost=true",
            "Abnormal",
            "Processing",
            "Success, Success",
            "Processing]",
        ] {
            assert!(all.contains(seen), "no {seen:?} in\n{all}");
        }
    }

    #[test]
    fn repeats_never_pay_twice() {
        let mut books = Books::default();
        let faults = FaultConfig::none();
        for _ in 0..5 {
            assert!(matches!(
                run(&mut books, &faults, &call("rf_1", 3_000)),
                Execution::Booked { .. }
            ));
        }
        assert_eq!(books.entry("rf_1").unwrap().paid_count, 1);
        assert_eq!(books.total_paid_fen(), 3_000);
        assert_eq!(books.snapshot().paid_refunds, 1);
    }

    #[test]
    fn refusals() {
        let mut books = Books::default();
        let faults = FaultConfig::none();
        assert_eq!(
            run(&mut books, &faults, &call("rf_0", 0)),
            Execution::Refused(Refusal::AmountNotPositive)
        );
        assert_eq!(
            run(&mut books, &faults, &call("rf_big", 10_001)),
            Execution::Refused(Refusal::AmountOverTotal)
        );
        assert!(matches!(
            run(&mut books, &faults, &call("rf_1", 6_000)),
            Execution::Booked { .. }
        ));
        assert_eq!(
            run(&mut books, &faults, &call("rf_2", 4_001)),
            Execution::Refused(Refusal::CumulativeOverTotal)
        );
        assert!(matches!(
            run(&mut books, &faults, &call("rf_3", 4_000)),
            Execution::Booked { .. }
        ));
        assert_eq!(
            run(&mut books, &faults, &call("rf_1", 5_000)),
            Execution::Refused(Refusal::Mismatch)
        );
        assert_eq!(books.total_paid_fen(), 10_000);
    }

    #[test]
    fn abnormal_then_reroute_pays_once() {
        let mut books = Books::default();
        let faults = FaultConfig {
            abnormal_rate: 1.0,
            ..FaultConfig::none()
        };
        run(&mut books, &faults, &call("rf_1", 100));
        assert_eq!(books.entry("rf_1").unwrap().status, SimStatus::Abnormal);
        assert_eq!(books.total_paid_fen(), 0);
        // A masked number cannot be paid: refused, the refund stays abnormal.
        let masked = ExecuteCall {
            reroute_account: Some("ICBC|6222********8888".into()),
            ..call("rf_1", 100)
        };
        assert_eq!(
            run(&mut books, &faults, &masked),
            Execution::Refused(Refusal::AccountMasked)
        );
        let masked_new = ExecuteCall {
            reroute_account: Some("ICBC|6222********8888".into()),
            ..call("rf_2", 100)
        };
        assert_eq!(
            run(&mut books, &faults, &masked_new),
            Execution::Refused(Refusal::AccountMasked)
        );
        assert_eq!(books.entry("rf_1").unwrap().status, SimStatus::Abnormal);
        let rerouted = ExecuteCall {
            reroute_account: Some("ICBC|6222021234568888".into()),
            ..call("rf_1", 100)
        };
        run(&mut books, &faults, &rerouted);
        run(&mut books, &faults, &rerouted);
        let entry = books.entry("rf_1").unwrap();
        assert_eq!(
            (entry.status, entry.paid_count, entry.account.as_deref()),
            (SimStatus::Success, 1, Some("ICBC|6222********8888"))
        );
        assert_eq!(books.total_paid_fen(), 100);
    }

    #[test]
    fn slow_confirms_once() {
        let mut books = Books::default();
        let faults = FaultConfig {
            slow_confirmation_rate: 1.0,
            ..FaultConfig::none()
        };
        let (execution, follow_up) =
            books.execute(&call("rf_1", 100), &faults, "ch".into(), Utc::now());
        assert!(
            matches!(execution, Execution::Booked { ref entry, .. } if entry.status == SimStatus::Processing)
        );
        assert_eq!(follow_up, FollowUp::ConfirmLater("rf_1".into()));
        assert_eq!(books.total_paid_fen(), 0);
        assert!(books.confirm("rf_1", Utc::now()).is_some());
        assert!(books.confirm("rf_1", Utc::now()).is_none());
        assert_eq!(books.total_paid_fen(), 100);
    }

    #[test]
    fn errors_record_nothing() {
        let mut books = Books::default();
        let faults = FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::none()
        };
        assert_eq!(
            run(&mut books, &faults, &call("rf_1", 100)),
            Execution::Busy { attempt: 1 }
        );
        assert_eq!(
            run(&mut books, &faults, &call("rf_1", 100)),
            Execution::Busy { attempt: 2 }
        );
        assert!(books.snapshot().refunds.is_empty());
    }
}
