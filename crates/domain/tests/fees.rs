//! Merchant fees of the spec's "Channels, fees and where the money goes back" section.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::{FeeRefundPolicy, payment_fee, proportional_fee_refund};
use yuanlu_domain::money::{apply_rate_ppm, div_round_half_up, format_cny};
use yuanlu_domain::settings::{ChannelSettings, MerchantSettings};

fn default_fee(channel: Channel, amount_fen: i64) -> i64 {
    let s = ChannelSettings::default_for(channel);
    payment_fee(amount_fen, s.fee_rate_ppm, s.fee_cap_fen)
}

#[test]
fn spec_example_12345_fen_by_wechat_costs_47_fen() {
    assert_eq!(default_fee(Channel::Wechat, 12_345), 47);
    assert_eq!(default_fee(Channel::Alipay, 12_345), 47);
}

#[test]
fn spec_example_1000000_fen_by_debit_card_is_capped_at_2500_fen() {
    assert_eq!(default_fee(Channel::DebitCard, 1_000_000), 2_500);
}

#[test]
fn debit_fee_below_the_cap_is_not_capped() {
    assert_eq!(default_fee(Channel::DebitCard, 100_000), 500);
    assert_eq!(
        default_fee(Channel::DebitCard, 499_999),
        2_500,
        "2 499.995 rounds up to the cap"
    );
    assert_eq!(default_fee(Channel::DebitCard, 499_800), 2_499);
    assert_eq!(default_fee(Channel::DebitCard, 500_000), 2_500);
}

#[test]
fn credit_card_and_unionpay_qr_fees_are_not_capped() {
    assert_eq!(default_fee(Channel::CreditCard, 1_000_000), 6_000);
    assert_eq!(default_fee(Channel::UnionpayQr, 1_000_000), 6_000);
    assert_eq!(default_fee(Channel::Wechat, 1_000_000), 3_800);
}

#[test]
fn fee_rounds_half_up_not_to_even_7500_fen_at_038_percent_is_29() {
    // 7 500 × 0.0038 = 28.5: half-up gives 29, banker's rounding would give 28.
    assert_eq!(default_fee(Channel::Wechat, 7_500), 29);
    assert_eq!(apply_rate_ppm(7_500, 3_800), 29);
}

#[test]
fn fee_rounds_half_up_for_card_rates_too() {
    // 4 750 × 0.006 = 28.5 → 29; 4 900 × 0.005 = 24.5 → 25 (banker's: 28 and 24).
    assert_eq!(default_fee(Channel::CreditCard, 4_750), 29);
    assert_eq!(default_fee(Channel::DebitCard, 4_900), 25);
}

#[test]
fn fee_below_half_a_fen_rounds_down() {
    // 131 × 0.0038 = 0.4978 → 0; 132 × 0.0038 = 0.5016 → 1.
    assert_eq!(default_fee(Channel::Wechat, 131), 0);
    assert_eq!(default_fee(Channel::Wechat, 132), 1);
    assert_eq!(default_fee(Channel::Wechat, 1), 0);
}

#[test]
fn half_up_division_rounds_every_exact_half_up() {
    for (n, d, expected) in [
        (1, 2, 1),
        (3, 2, 2),
        (5, 2, 3),
        (25, 10, 3),
        (35, 10, 4),
        (24, 10, 2),
        (26, 10, 3),
    ] {
        assert_eq!(div_round_half_up(n, d), expected, "{n}/{d}");
    }
    assert_eq!(div_round_half_up(7, 0), 0, "a zero denominator yields zero");
}

#[test]
fn merchant_fee_settings_override_the_channel_defaults() {
    let mut settings = MerchantSettings::default();
    let wechat = settings.channels.get_mut(&Channel::Wechat).unwrap();
    wechat.fee_rate_ppm = 2_000;
    wechat.fee_cap_fen = Some(10);
    let s = settings.channel(Channel::Wechat);
    assert_eq!(payment_fee(1_000, s.fee_rate_ppm, s.fee_cap_fen), 2);
    assert_eq!(payment_fee(100_000, s.fee_rate_ppm, s.fee_cap_fen), 10);
}

#[test]
fn spec_default_fee_refund_policies_are_proportional_for_wallets_and_none_otherwise() {
    let settings = MerchantSettings::default();
    for channel in Channel::ALL {
        let expected = match channel {
            Channel::Wechat | Channel::Alipay => FeeRefundPolicy::Proportional,
            _ => FeeRefundPolicy::None,
        };
        assert_eq!(settings.channel(channel).fee_refund, expected, "{channel}");
    }
}

#[test]
fn spec_example_proportional_fee_returns_13_12_13_for_3333_3333_3334() {
    let (amount, fee) = (10_000, default_fee(Channel::Wechat, 10_000));
    assert_eq!(fee, 38);
    let first = proportional_fee_refund(amount, fee, 3_333, 0);
    let second = proportional_fee_refund(amount, fee, 6_666, first);
    let third = proportional_fee_refund(amount, fee, 10_000, first + second);
    assert_eq!([first, second, third], [13, 12, 13]);
}

#[test]
fn proportional_fee_of_a_full_refund_is_the_whole_fee() {
    assert_eq!(proportional_fee_refund(12_345, 47, 12_345, 0), 47);
    assert_eq!(
        proportional_fee_refund(1_000_000, 2_500, 1_000_000, 0),
        2_500
    );
}

#[test]
fn proportional_fee_never_exceeds_what_is_left_of_the_fee() {
    // All of the fee already returned: nothing more, even for the last fen.
    assert_eq!(proportional_fee_refund(10_000, 38, 10_000, 38), 0);
}

#[test]
fn proportional_fee_is_never_negative_after_a_released_refund() {
    // 1 fen returned on 100 fen still held (its twin was canceled): a 1 fen refund returns 0.
    assert_eq!(proportional_fee_refund(10_000, 38, 101, 1), 0);
}

#[test]
fn format_cny_shows_yuan_with_two_decimals() {
    assert_eq!(format_cny(1_234_567), "12345.67");
    assert_eq!(format_cny(0), "0.00");
}
