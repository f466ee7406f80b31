//! What a refund's creation and each of its transitions do to money, decided here once: the
//! payment's counters (refundable, held, refunded, fee returned), the ledger event posted,
//! whether the funding rule runs first. The engine applies these effects and computes none.
//! Also the overdue rule (the 24 h without the channel's acceptance).

use chrono::{DateTime, Duration, Utc};

use crate::ledger::LedgerEvent;
use crate::refund::{RefundStatus, RefundType};

/// A refund sent this long ago and not accepted by its channel is overdue (and queried).
pub const UNCONFIRMED_OVERDUE_HOURS: i64 = 24;

/// Sent before this instant and still not accepted by the channel: overdue at `now`.
pub fn unconfirmed_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(UNCONFIRMED_OVERDUE_HOURS)
}

/// The overdue rule: under way (sent, not final) and past its expected arrival, or sent more
/// than [`UNCONFIRMED_OVERDUE_HOURS`] ago and still not accepted by the channel. The store
/// writes the same rule in SQL from [`RefundStatus::may_be_overdue`] and
/// [`unconfirmed_before`].
pub fn is_overdue(
    status: RefundStatus,
    expected_arrival_by: Option<DateTime<Utc>>,
    sent_unaccepted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    status.may_be_overdue()
        && (expected_arrival_by.is_some_and(|by| by < now)
            || sent_unaccepted_at.is_some_and(|at| at < unconfirmed_before(now)))
}

/// How a change moves a payment's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub in_flight_fen: i64,
    pub refunded_fen: i64,
    pub fee_returned_fen: i64,
    pub refund_count: i64,
    /// The payment becomes voided.
    pub voided: bool,
}

/// The money of the refund a transition moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundMoney {
    pub refund_type: RefundType,
    pub amount_fen: i64,
    pub fee_refunded_fen: i64,
    /// An operator rerouted it to the merchant, who paid the consumer out of pocket.
    pub paid_by_merchant: bool,
}

/// What a creation or a transition does to money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    pub counters: CounterDelta,
    /// The ledger event to post, if any.
    pub ledger: Option<LedgerEvent>,
    /// The funding rule runs (under the merchant's balance lock) before the posting.
    pub check_funding: bool,
}

/// A refund is debited when it is queued; a void never is (it posts once, on completion).
pub fn needs_dispatch(status: RefundStatus, refund_type: RefundType) -> bool {
    status == RefundStatus::Queued && refund_type == RefundType::Refund
}

/// The effects of a new refund in `status`: its amount and fee are held from the payment,
/// and a refund queued at once is debited (the caller ran the funding rule with the plan).
pub fn created(status: RefundStatus, money: &RefundMoney) -> Effects {
    Effects {
        counters: CounterDelta {
            in_flight_fen: money.amount_fen,
            fee_returned_fen: money.fee_refunded_fen,
            refund_count: 1,
            ..CounterDelta::default()
        },
        ledger: needs_dispatch(status, money.refund_type).then_some(LedgerEvent::RefundQueued),
        check_funding: false,
    }
}

/// The refused transition: not in the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a refund cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub from: RefundStatus,
    pub to: RefundStatus,
}

/// The effects of `from` → `to`. A refund is debited from the merchant when it is queued
/// (after the funding rule), credited back when it fails or is canceled after that, and
/// leaves the acquirer when the channel pays it; paid by the merchant out of pocket, its
/// debit goes back to the merchant (as a release does). A void posts once, when it
/// completes ([`void_completed`]).
pub fn transition(
    from: RefundStatus,
    to: RefundStatus,
    money: &RefundMoney,
) -> Result<Effects, InvalidTransition> {
    if !from.can_become(to) {
        return Err(InvalidTransition { from, to });
    }
    let mut counters = CounterDelta::default();
    if from.holds_money() && !to.holds_money() {
        counters.in_flight_fen = -money.amount_fen;
        if to == RefundStatus::Succeeded {
            counters.refunded_fen = money.amount_fen;
            // Paid by the merchant: the ledger releases the hold, fee included.
            if money.paid_by_merchant {
                counters.fee_returned_fen = -money.fee_refunded_fen;
            }
        } else {
            counters.fee_returned_fen = -money.fee_refunded_fen;
        }
    }
    let ledger = match (money.refund_type, to) {
        (RefundType::Void, _) => None,
        (_, RefundStatus::Queued) if !from.is_debited() => Some(LedgerEvent::RefundQueued),
        (_, RefundStatus::Failed | RefundStatus::Canceled) if from.is_debited() => {
            Some(LedgerEvent::RefundReleased)
        }
        (_, RefundStatus::Succeeded) if from.is_debited() && money.paid_by_merchant => {
            Some(LedgerEvent::RefundReleased)
        }
        (_, RefundStatus::Succeeded) => Some(LedgerEvent::RefundSucceeded),
        _ => None,
    };
    Ok(Effects {
        counters,
        check_funding: ledger == Some(LedgerEvent::RefundQueued),
        ledger,
    })
}

/// A queued void's first step, `queued` → `processing` at the acquirer: the payment is
/// voided and the void posts. (Only a completed void voids the payment; one waiting for
/// review holds the amount.)
pub fn void_completed() -> Effects {
    Effects {
        counters: CounterDelta {
            voided: true,
            ..CounterDelta::default()
        },
        ledger: Some(LedgerEvent::VoidCompleted),
        check_funding: false,
    }
}

/// A void whose window passed becomes a refund returning `fee_after` instead of
/// `fee_before`: the payment's returned fee moves by the difference.
pub fn void_became_refund(fee_before_fen: i64, fee_after_fen: i64) -> CounterDelta {
    CounterDelta {
        fee_returned_fen: fee_after_fen - fee_before_fen,
        ..CounterDelta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefundStatus::*;

    fn money(refund_type: RefundType, paid_by_merchant: bool) -> RefundMoney {
        RefundMoney {
            refund_type,
            amount_fen: 1_000,
            fee_refunded_fen: 6,
            paid_by_merchant,
        }
    }

    #[test]
    fn a_new_refund_holds_its_amount_and_fee() {
        let e = created(PendingReview, &money(RefundType::Refund, false));
        assert_eq!(
            e.counters,
            CounterDelta {
                in_flight_fen: 1_000,
                fee_returned_fen: 6,
                refund_count: 1,
                ..CounterDelta::default()
            }
        );
        assert_eq!(e.ledger, None);
        let queued = created(Queued, &money(RefundType::Refund, false));
        assert_eq!(queued.ledger, Some(LedgerEvent::RefundQueued));
        assert_eq!(
            created(Queued, &money(RefundType::Void, false)).ledger,
            None
        );
    }

    #[test]
    fn queuing_checks_funding_and_debits() {
        let e = transition(PendingReview, Queued, &money(RefundType::Refund, false));
        assert_eq!(
            e.map(|e| (e.ledger, e.check_funding, e.counters)),
            Ok((
                Some(LedgerEvent::RefundQueued),
                true,
                CounterDelta::default()
            ))
        );
    }

    #[test]
    fn failing_after_the_debit_releases_it_and_the_fee() {
        let e = transition(Processing, Failed, &money(RefundType::Refund, false));
        assert_eq!(
            e.map(|e| (
                e.ledger,
                e.counters.in_flight_fen,
                e.counters.fee_returned_fen
            )),
            Ok((Some(LedgerEvent::RefundReleased), -1_000, -6))
        );
        let canceled = transition(PendingReview, Canceled, &money(RefundType::Refund, false));
        assert_eq!(canceled.map(|e| e.ledger), Ok(None));
    }

    #[test]
    fn success_moves_the_amount_from_held_to_refunded() {
        let e = transition(Processing, Succeeded, &money(RefundType::Refund, false));
        assert_eq!(
            e.map(|e| (e.ledger, e.counters)),
            Ok((
                Some(LedgerEvent::RefundSucceeded),
                CounterDelta {
                    in_flight_fen: -1_000,
                    refunded_fen: 1_000,
                    ..CounterDelta::default()
                }
            ))
        );
        let by_merchant = transition(Processing, Succeeded, &money(RefundType::Refund, true));
        assert_eq!(
            by_merchant.map(|e| (e.ledger, e.counters.fee_returned_fen)),
            Ok((Some(LedgerEvent::RefundReleased), -6))
        );
    }

    #[test]
    fn a_void_posts_only_when_it_completes() {
        for &(from, to) in &[(PendingReview, Queued), (Processing, Succeeded)] {
            let e = transition(from, to, &money(RefundType::Void, false));
            assert_eq!(e.map(|e| e.ledger), Ok(None), "{from} -> {to}");
        }
        assert_eq!(void_completed().ledger, Some(LedgerEvent::VoidCompleted));
        assert!(void_completed().counters.voided);
    }

    #[test]
    fn transitions_outside_the_machine_are_refused() {
        assert_eq!(
            transition(Succeeded, Failed, &money(RefundType::Refund, false)),
            Err(InvalidTransition {
                from: Succeeded,
                to: Failed
            })
        );
    }

    #[test]
    fn counts_against_the_day_while_held_or_paid() {
        for &s in RefundStatus::ALL {
            assert_eq!(
                s.counts_against_day(),
                s.holds_money() || s == Succeeded,
                "{s}"
            );
        }
    }

    #[test]
    fn overdue_when_late_or_unaccepted_for_a_day() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let hour = Duration::hours(1);
        assert!(is_overdue(Processing, Some(now - hour), None, now));
        assert!(!is_overdue(Processing, Some(now + hour), None, now));
        assert!(is_overdue(Abnormal, None, Some(now - hour * 25), now));
        assert!(!is_overdue(Abnormal, None, Some(now - hour * 23), now));
        assert!(!is_overdue(Succeeded, Some(now - hour), None, now));
    }
}
