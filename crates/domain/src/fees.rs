//! Merchant fees: what a payment costs the merchant, and how much of it each refund returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::money::{apply_rate_ppm, div_round_half_up};

/// What a refund returns of the payment's fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeRefundPolicy {
    /// The proportional share of the fee, computed on the cumulative refunded amount.
    Proportional,
    /// No fee is returned (a void still returns the whole fee).
    None,
}

/// Fee of a payment: `amount × rate` rounded half up to the fen, then capped.
pub fn payment_fee(amount_fen: i64, rate_ppm: i64, cap_fen: Option<i64>) -> i64 {
    let fee = apply_rate_ppm(amount_fen, rate_ppm);
    match cap_fen {
        Some(cap) => fee.min(cap),
        None => fee,
    }
}

/// The fee a proportional refund returns:
/// `round_half_up(fee × refunded_total_after / amount) − fee_returned_before`, never below zero.
///
/// `refunded_total_after` and `fee_returned_before` count succeeded and in-flight refunds.
/// Because the share is computed on the cumulative total, the returned fee never drifts and
/// reaches exactly `fee` when `refunded_total_after == amount`. The floor at zero matters
/// only after a refund was released (failed, rejected, canceled): the remaining refunds may
/// then hold one fen more than the share of their total, and the next small refund returns 0
/// instead of taking a fen back.
pub fn proportional_fee_refund(
    payment_amount_fen: i64,
    payment_fee_fen: i64,
    refunded_total_after_fen: i64,
    fee_returned_before_fen: i64,
) -> i64 {
    let share = div_round_half_up(
        i128::from(payment_fee_fen) * i128::from(refunded_total_after_fen),
        i128::from(payment_amount_fen),
    );
    let share = i64::try_from(share)
        .unwrap_or(i64::MAX)
        .min(payment_fee_fen);
    (share - fee_returned_before_fen).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_fee_example_from_spec() {
        assert_eq!(payment_fee(12_345, 3_800, None), 47);
    }

    #[test]
    fn debit_fee_is_capped_at_25_yuan() {
        assert_eq!(payment_fee(1_000_000, 5_000, Some(2_500)), 2_500);
        assert_eq!(payment_fee(100_000, 5_000, Some(2_500)), 500);
    }

    #[test]
    fn three_partial_wechat_refunds_return_13_12_13() {
        let (amount, fee) = (10_000, 38);
        let first = proportional_fee_refund(amount, fee, 3_333, 0);
        let second = proportional_fee_refund(amount, fee, 6_666, first);
        let third = proportional_fee_refund(amount, fee, 10_000, first + second);
        assert_eq!((first, second, third), (13, 12, 13));
        assert_eq!(first + second + third, fee);
    }

    #[test]
    fn full_refund_returns_whole_fee() {
        assert_eq!(proportional_fee_refund(12_345, 47, 12_345, 0), 47);
    }

    #[test]
    fn never_negative_after_a_released_refund() {
        // 100 + 100 fen refunds of a 10 000 fen payment (fee 38) return 0 + 1; the first is
        // canceled, leaving 1 fen returned on 100 fen held; a 1 fen refund returns 0, not -1.
        assert_eq!(proportional_fee_refund(10_000, 38, 101, 1), 0);
    }
}
