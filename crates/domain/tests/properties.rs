//! Property tests of the refund rules: money and fees over random sequences of refunds, the
//! state machine, and the cumulative proportional fee.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::{Case, utc};
use proptest::prelude::*;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::decide::{REFUNDS_PER_PAYMENT_MAX, RefundAsk, RefundPlan};
use yuanlu_domain::fees::{FeeRefundPolicy, payment_fee, proportional_fee_refund};
use yuanlu_domain::money::div_round_half_up;
use yuanlu_domain::payment::{PaymentKind, ShippingStatus};
use yuanlu_domain::refund::{RefundReason, RefundStatus, RefundType, RequesterRole};
use yuanlu_domain::review::DayTotals;
use yuanlu_domain::time::shanghai_date;

// ---------------------------------------------------------------------------------------
// (a) Random sequences of refund asks, successes and releases on one payment
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum AmountPick {
    /// The whole refundable amount.
    Omitted,
    /// A raw amount, possibly zero, negative or above the refundable amount.
    Fen(i64),
    /// This many thousandths of what is refundable at the time (0 ‰ asks for 0 fen).
    PerMille(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Ask {
        amount: AmountPick,
        reason: RefundReason,
        consumer: bool,
    },
    /// The channel confirms the `n`-th live refund (modulo their number).
    Succeed(usize),
    /// The `n`-th live refund fails, is rejected or is canceled: its money and fee go back.
    Release(usize),
}

#[derive(Debug, Clone)]
struct Scenario {
    channel: Channel,
    amount_fen: i64,
    fee_rate_ppm: i64,
    fee_cap_fen: Option<i64>,
    policy: FeeRefundPolicy,
    /// Seconds between capture (10:00 Shanghai) and every ask.
    asked_after_s: i64,
    settled: bool,
    kind: PaymentKind,
    member: bool,
    shipping: Option<ShippingStatus>,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Live,
    Succeeded,
    Released,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    amount_fen: i64,
    fee_fen: i64,
    void: bool,
    life: Life,
}

fn reason() -> impl Strategy<Value = RefundReason> {
    proptest::sample::select(RefundReason::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![
        2 => Just(AmountPick::Omitted),
        3 => (-3i64..=3_000_000).prop_map(AmountPick::Fen),
        2 => (-3i64..=20).prop_map(AmountPick::Fen),
        6 => (0i64..=1_000).prop_map(AmountPick::PerMille),
    ];
    prop_oneof![
        5 => (amount, reason(), proptest::bool::weighted(0.1))
            .prop_map(|(amount, reason, consumer)| Op::Ask { amount, reason, consumer }),
        3 => any::<usize>().prop_map(Op::Succeed),
        2 => any::<usize>().prop_map(Op::Release),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let channel = proptest::sample::select(Channel::ALL.to_vec());
    let amount = prop_oneof![1i64..=300, 1i64..=2_000_000];
    let rate = prop_oneof![Just(None), (0i64..=100_000).prop_map(Some),];
    let cap = prop_oneof![Just(None), (0i64..=5_000).prop_map(Some)];
    let policy = prop_oneof![
        Just(None),
        Just(Some(FeeRefundPolicy::Proportional)),
        Just(Some(FeeRefundPolicy::None)),
    ];
    // Same Shanghai day (capture at 10:00, asks until 23:59:59), or a later day in the window.
    let asked_after = prop_oneof![0i64..50_400, 86_400i64..=179 * 86_400];
    let shipping = prop_oneof![
        Just(None),
        Just(Some(ShippingStatus::Unshipped)),
        Just(Some(ShippingStatus::Shipped)),
        Just(Some(ShippingStatus::Delivered)),
    ];
    let kind = prop_oneof![
        Just(PaymentKind::Sale),
        Just(PaymentKind::PreauthCompletion)
    ];
    (
        (channel, amount, rate, cap, policy),
        (asked_after, any::<bool>(), kind, any::<bool>(), shipping),
        proptest::collection::vec(op(), 0..90),
    )
        .prop_map(
            |(
                (channel, amount_fen, rate, cap, policy),
                (asked_after_s, settled, kind, member, shipping),
                ops,
            )| {
                Scenario {
                    channel,
                    amount_fen,
                    fee_rate_ppm: rate.unwrap_or(channel.default_fee_rate_ppm()),
                    fee_cap_fen: cap.or(channel.default_fee_cap_fen()),
                    policy: policy.unwrap_or(channel.default_fee_refund()),
                    asked_after_s,
                    settled,
                    kind,
                    member,
                    shipping,
                    ops,
                }
            },
        )
}

fn case_of(s: &Scenario) -> Case {
    let mut case = Case::new(s.channel, s.amount_fen);
    let settings = case.settings.channels.get_mut(&s.channel).unwrap();
    settings.fee_rate_ppm = s.fee_rate_ppm;
    settings.fee_cap_fen = s.fee_cap_fen;
    settings.fee_refund = s.policy;
    case.payment.fee_fen = payment_fee(s.amount_fen, s.fee_rate_ppm, s.fee_cap_fen);
    case.payment.kind = s.kind;
    case.payment.member = s.member;
    case.payment.shipping_status = s.shipping;
    case.now = case.payment.captured_at + Duration::seconds(s.asked_after_s);
    case.settled = s.settled;
    // Ordinary sales, so that refund_ratio only sometimes applies.
    case.today = DayTotals {
        sales_fen: 1_000_000,
        refunds_fen: 0,
    };
    case
}

/// The payment as a store would keep it, next to the refunds it created.
struct Sim {
    case: Case,
    refunds: Vec<Held>,
}

impl Sim {
    fn live(&self) -> Vec<usize> {
        (0..self.refunds.len())
            .filter(|&i| self.refunds[i].life == Life::Live)
            .collect()
    }

    /// Asks for a refund and checks the decision against the spec's rules; applies the plan.
    fn ask(
        &mut self,
        pick: &AmountPick,
        reason: RefundReason,
        consumer: bool,
    ) -> Result<(), TestCaseError> {
        let p = &self.case.payment;
        let refundable = p.refundable_fen();
        let amount = match *pick {
            AmountPick::Omitted => None,
            AmountPick::Fen(fen) => Some(fen),
            AmountPick::PerMille(m) => Some(refundable * m / 1_000),
        };
        let requested_by = if consumer {
            RequesterRole::Consumer
        } else {
            RequesterRole::Merchant
        };
        let decision = self.case.decide(&RefundAsk {
            amount_fen: amount,
            reason,
            requested_by,
        });

        // The refusal the spec's rules call for (the window is never exceeded here).
        let expected = if p.voided {
            "payment_voided"
        } else if amount.is_some_and(|a| a < 1) {
            "invalid_amount"
        } else if amount.is_none() && refundable < 1 {
            "amount_exceeds_refundable"
        } else if p.refund_count >= REFUNDS_PER_PAYMENT_MAX {
            "too_many_refunds"
        } else if amount.unwrap_or(refundable) > refundable {
            "amount_exceeds_refundable"
        } else {
            "accepted"
        };
        prop_assert_eq!(
            common::code(&decision),
            expected,
            "amount {:?} refundable {}",
            amount,
            refundable
        );

        let Ok(plan) = decision else { return Ok(()) };
        self.check_plan(&plan, amount, reason)?;
        self.case.hold(&plan);
        self.refunds.push(Held {
            amount_fen: plan.amount_fen,
            fee_fen: plan.fee_refunded_fen,
            void: plan.refund_type == RefundType::Void,
            life: Life::Live,
        });
        Ok(())
    }

    fn check_plan(
        &self,
        plan: &RefundPlan,
        amount: Option<i64>,
        reason: RefundReason,
    ) -> Result<(), TestCaseError> {
        let p = &self.case.payment;
        let refundable = p.refundable_fen();
        prop_assert_eq!(plan.amount_fen, amount.unwrap_or(refundable));
        prop_assert!(plan.amount_fen >= 1 && plan.amount_fen <= refundable);
        prop_assert!(
            plan.fee_refunded_fen >= 0,
            "negative fee returned: {:?}",
            plan
        );
        prop_assert!(
            plan.fee_refunded_fen <= p.fee_fen - p.fee_returned_fen,
            "returns {} fen of fee with only {} left",
            plan.fee_refunded_fen,
            p.fee_fen - p.fee_returned_fen
        );

        let awaiting_return = reason.is_goods_reason()
            && p.shipping_status
                .is_some_and(ShippingStatus::goods_left_merchant);
        let void = p.channel.supports_void()
            && plan.amount_fen == p.amount_fen
            && p.amount_refunded_fen == 0
            && p.amount_in_flight_fen == 0
            && shanghai_date(p.captured_at) == shanghai_date(self.case.now)
            && !self.case.settled
            && !awaiting_return;
        prop_assert_eq!(plan.refund_type == RefundType::Void, void, "{:?}", plan);

        let policy = self.case.settings.channel(p.channel).fee_refund;
        if void {
            prop_assert_eq!(plan.fee_refunded_fen, p.fee_fen);
        } else if policy == FeeRefundPolicy::None {
            prop_assert_eq!(plan.fee_refunded_fen, 0);
        }

        let expected_status = if awaiting_return {
            RefundStatus::AwaitingReturn
        } else if plan.review_reasons.is_empty() {
            RefundStatus::Queued
        } else {
            RefundStatus::PendingReview
        };
        prop_assert_eq!(plan.status, expected_status);
        prop_assert_eq!(
            plan.required_reviewer.is_some(),
            !plan.review_reasons.is_empty()
        );
        Ok(())
    }

    fn succeed(&mut self, n: usize) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let held = &mut self.refunds[live[n % live.len()]];
        held.life = Life::Succeeded;
        self.case.payment.amount_in_flight_fen -= held.amount_fen;
        self.case.payment.amount_refunded_fen += held.amount_fen;
    }

    fn release(&mut self, n: usize) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let held = &mut self.refunds[live[n % live.len()]];
        held.life = Life::Released;
        self.case.payment.amount_in_flight_fen -= held.amount_fen;
        self.case.payment.fee_returned_fen -= held.fee_fen;
        if held.void {
            self.case.payment.voided = false;
        }
    }

    fn check_counters(&self) -> Result<(), TestCaseError> {
        let p = &self.case.payment;
        prop_assert!(p.amount_refunded_fen >= 0 && p.amount_in_flight_fen >= 0);
        prop_assert!(
            p.amount_refunded_fen + p.amount_in_flight_fen <= p.amount_fen,
            "refunded {} + in flight {} > amount {}",
            p.amount_refunded_fen,
            p.amount_in_flight_fen,
            p.amount_fen
        );
        prop_assert!(
            p.fee_returned_fen >= 0,
            "fee returned {} < 0",
            p.fee_returned_fen
        );
        prop_assert!(
            p.fee_returned_fen <= p.fee_fen,
            "fee returned {} > fee {}",
            p.fee_returned_fen,
            p.fee_fen
        );
        prop_assert_eq!(p.refund_count, i64::try_from(self.refunds.len()).unwrap());
        let held_fee: i64 = self
            .refunds
            .iter()
            .filter(|r| r.life != Life::Released)
            .map(|r| r.fee_fen)
            .sum();
        prop_assert_eq!(p.fee_returned_fen, held_fee);

        if p.amount_refunded_fen == p.amount_fen {
            // Fully refunded, every refund confirmed.
            prop_assert_eq!(p.amount_in_flight_fen, 0);
            let voided = self
                .refunds
                .iter()
                .any(|r| r.void && r.life == Life::Succeeded);
            let policy = self.case.settings.channel(p.channel).fee_refund;
            let whole_fee = voided || policy == FeeRefundPolicy::Proportional;
            prop_assert_eq!(
                p.fee_returned_fen,
                if whole_fee { p.fee_fen } else { 0 },
                "fully refunded under {:?}",
                policy
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_refund_sequences_never_refund_more_than_the_payment_nor_return_more_fee_than_it_cost(
        s in scenario()
    ) {
        let mut sim = Sim { case: case_of(&s), refunds: Vec::new() };
        for op in &s.ops {
            match op {
                Op::Ask { amount, reason, consumer } => sim.ask(amount, *reason, *consumer)?,
                Op::Succeed(n) => sim.succeed(*n),
                Op::Release(n) => sim.release(*n),
            }
            sim.check_counters()?;
        }

        // Confirm everything still under way, then refund whatever is left and confirm it:
        // a fully refunded payment has returned exactly its whole fee (proportional or void).
        while !sim.live().is_empty() {
            sim.succeed(0);
            sim.check_counters()?;
        }
        let p = &sim.case.payment;
        if !p.voided && p.refundable_fen() > 0 && p.refund_count < REFUNDS_PER_PAYMENT_MAX {
            sim.ask(&AmountPick::Omitted, RefundReason::Other, false)?;
            sim.succeed(0);
            sim.check_counters()?;
            prop_assert_eq!(sim.case.payment.amount_refunded_fen, sim.case.payment.amount_fen);
        }
    }

    #[test]
    fn proportional_refunds_splitting_a_whole_payment_return_exactly_the_whole_fee(
        amount in 1i64..=5_000_000,
        rate in 0i64..=100_000,
        parts in proptest::collection::vec(1i64..=1_000, 1..49),
    ) {
        // Split the payment into at most 49 proportional parts, refund them all (the last
        // one by omitting the amount), each confirmed before the next.
        let mut case = Case::new(Channel::Wechat, amount);
        case.payment.fee_fen = payment_fee(amount, rate, None);
        let total: i64 = parts.iter().sum();
        for part in &parts {
            let fen = amount * part / total;
            if fen < 1 || fen >= case.payment.refundable_fen() {
                continue;
            }
            let plan = case.refund(Some(fen)).unwrap();
            prop_assert!(plan.fee_refunded_fen >= 0);
            case.hold(&plan);
            case.payment.amount_in_flight_fen -= fen;
            case.payment.amount_refunded_fen += fen;
        }
        let plan = case.refund(None).unwrap();
        case.hold(&plan);
        prop_assert_eq!(case.payment.amount_refunded_fen + case.payment.amount_in_flight_fen, amount);
        prop_assert_eq!(case.payment.fee_returned_fen, case.payment.fee_fen);
    }
}

// ---------------------------------------------------------------------------------------
// (b) The refund state machine
// ---------------------------------------------------------------------------------------

/// The spec's transitions, read off the "States" diagram (`awaiting_return` goes straight to
/// `queued` once the goods are back if no review applies).
const SPEC_TRANSITIONS: &[(RefundStatus, RefundStatus)] = {
    use RefundStatus::*;
    &[
        (AwaitingReturn, PendingReview),
        (AwaitingReturn, Queued),
        (AwaitingReturn, Canceled),
        (PendingReview, Queued),
        (PendingReview, Rejected),
        (PendingReview, Canceled),
        (Queued, Processing),
        (Queued, Canceled),
        (Processing, Succeeded),
        (Processing, Failed),
        (Processing, Abnormal),
        (Abnormal, Processing),
    ]
};

fn initial_status() -> impl Strategy<Value = RefundStatus> {
    prop_oneof![
        Just(RefundStatus::AwaitingReturn),
        Just(RefundStatus::PendingReview),
        Just(RefundStatus::Queued),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_walks_over_can_become_only_take_spec_transitions_and_never_leave_a_final_state(
        start in initial_status(),
        tries in proptest::collection::vec(0usize..RefundStatus::ALL.len(), 0..60),
    ) {
        let mut status = start;
        prop_assert!(status.holds_money(), "a new refund holds its money");
        for i in tries {
            let next = RefundStatus::ALL[i];
            if !status.can_become(next) {
                continue;
            }
            prop_assert!(SPEC_TRANSITIONS.contains(&(status, next)), "{} -> {}", status, next);
            prop_assert!(!status.is_final(), "left final state {} for {}", status, next);
            // Money stays held until the refund succeeds or is released.
            prop_assert!(next.holds_money() || next.is_final(), "{} -> {}", status, next);
            if next == RefundStatus::Canceled {
                prop_assert!(status.is_before_dispatch(), "{} canceled after dispatch", status);
            }
            status = next;
        }
        if status.is_final() {
            for &next in RefundStatus::ALL {
                prop_assert!(!status.can_become(next), "final {} -> {}", status, next);
            }
        }
    }

    #[test]
    fn random_walks_choosing_among_allowed_transitions_end_only_in_final_states(
        start in initial_status(),
        picks in proptest::collection::vec(any::<usize>(), 60),
    ) {
        let mut status = start;
        let mut path = vec![status];
        for pick in picks {
            let allowed: Vec<_> =
                RefundStatus::ALL.iter().copied().filter(|&next| status.can_become(next)).collect();
            // Every transition of the spec from here exists, and no other.
            let spec: Vec<_> = RefundStatus::ALL
                .iter()
                .copied()
                .filter(|&next| SPEC_TRANSITIONS.contains(&(status, next)))
                .collect();
            prop_assert_eq!(&allowed, &spec, "from {}", status);
            if allowed.is_empty() {
                prop_assert!(status.is_final(), "stuck in non-final {} via {:?}", status, path);
                break;
            }
            prop_assert!(!status.is_final(), "final {} has ways out: {:?}", status, allowed);
            let next = allowed[pick % allowed.len()];
            prop_assert!(SPEC_TRANSITIONS.contains(&(status, next)), "{} -> {}", status, next);
            status = next;
            path.push(status);
        }
        // A refund reaches a final state only through processing (succeeded, failed) or
        // before dispatch (rejected, canceled).
        for pair in path.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            match to {
                RefundStatus::Succeeded | RefundStatus::Failed => prop_assert_eq!(from, RefundStatus::Processing),
                RefundStatus::Rejected => prop_assert_eq!(from, RefundStatus::PendingReview),
                RefundStatus::Canceled => prop_assert!(from.is_before_dispatch()),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) The cumulative proportional fee over any partition of the amount
// ---------------------------------------------------------------------------------------

fn partition() -> impl Strategy<Value = (i64, i64, Vec<i64>)> {
    (1i64..=10_000_000, 0i64..=100_000).prop_flat_map(|(amount, rate)| {
        let fee = payment_fee(amount, rate, None);
        let cuts = proptest::collection::vec(1i64..=amount, 0..60);
        (Just(amount), prop_oneof![Just(fee), 0i64..=amount], cuts).prop_map(
            |(amount, fee, mut cuts)| {
                cuts.push(amount);
                cuts.sort_unstable();
                cuts.dedup();
                let mut before = 0;
                let parts = cuts
                    .into_iter()
                    .map(|cut| {
                        let part = cut - before;
                        before = cut;
                        part
                    })
                    .collect();
                (amount, fee, parts)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn proportional_fee_refunds_over_any_partition_sum_to_exactly_the_fee((amount, fee, parts) in partition()) {
        prop_assert_eq!(parts.iter().sum::<i64>(), amount);
        let (mut refunded, mut returned) = (0i64, 0i64);
        for part in parts {
            prop_assert!(part >= 1);
            refunded += part;
            let r = proportional_fee_refund(amount, fee, refunded, returned);
            prop_assert!(r >= 0, "negative fee refund {}", r);
            returned += r;
            prop_assert!(returned <= fee);
            // Never drifts: after each refund the returned total is the rounded share.
            let share = div_round_half_up(i128::from(fee) * i128::from(refunded), i128::from(amount));
            prop_assert_eq!(i128::from(returned), share);
        }
        prop_assert_eq!(returned, fee);
    }
}

#[test]
fn capture_time_of_the_simulation_is_10_am_in_shanghai() {
    // The property above relies on asks before 50 400 s after capture falling on the capture
    // day in Shanghai.
    let captured = utc(common::CAPTURED_AT);
    assert_eq!(
        shanghai_date(captured),
        shanghai_date(captured + Duration::seconds(50_399))
    );
    assert_ne!(
        shanghai_date(captured),
        shanghai_date(captured + Duration::seconds(50_400))
    );
}
