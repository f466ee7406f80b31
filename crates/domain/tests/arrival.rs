//! Expected arrival of a refund after the channel accepted it: the "Expected arrival" rule of
//! the spec's "Channels, fees and where the money goes back" section.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use yuanlu_domain::arrival::{
    ArrivalRule, ArrivalRules, ChannelArrival, DestinationKind, ExpectedArrival,
};
use yuanlu_domain::calendar::BusinessCalendar;
use yuanlu_domain::channel::Channel;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn calendar() -> BusinessCalendar {
    BusinessCalendar::embedded().expect("the embedded calendar data parses")
}

const CARD_LIKE: [Channel; 3] = [Channel::CreditCard, Channel::DebitCard, Channel::UnionpayQr];
const WALLETS: [Channel; 2] = [Channel::Wechat, Channel::Alipay];

#[test]
fn the_default_rules_are_the_specs() {
    let rules = ArrivalRules::default();
    for channel in CARD_LIKE {
        for destination in [DestinationKind::Balance, DestinationKind::BankCard] {
            assert_eq!(
                rules.rule(channel, destination),
                ArrivalRule::BusinessDays(3),
                "{channel} {destination:?}"
            );
        }
    }
    for channel in WALLETS {
        assert_eq!(
            rules.rule(channel, DestinationKind::Balance),
            ArrivalRule::Hours(2),
            "{channel}"
        );
        assert_eq!(
            rules.rule(channel, DestinationKind::BankCard),
            ArrivalRule::BusinessDays(3),
            "{channel}"
        );
    }
}

#[test]
fn a_card_refund_accepted_on_friday_13_february_2026_is_expected_by_the_end_of_25_february() {
    // Fri 15:00 Shanghai. Business days after Feb 13: Sat 14 (调休), Tue 24, Wed 25.
    let accepted = utc("2026-02-13T15:00:00+08:00");
    let rules = ArrivalRules::default();
    let calendar = calendar();
    for channel in CARD_LIKE {
        assert_eq!(
            rules.expected_arrival_by(&calendar, channel, DestinationKind::BankCard, accepted),
            utc("2026-02-25T23:59:59.999999+08:00"),
            "{channel}"
        );
    }
    assert_eq!(
        utc("2026-02-25T23:59:59.999999+08:00"),
        utc("2026-02-25T15:59:59.999999Z")
    );
}

#[test]
fn a_wallet_refund_to_a_bank_card_takes_three_business_days_like_a_card() {
    let accepted = utc("2026-02-13T15:00:00+08:00");
    let rules = ArrivalRules::default();
    let calendar = calendar();
    for channel in WALLETS {
        assert_eq!(
            rules.expected_arrival_by(&calendar, channel, DestinationKind::BankCard, accepted),
            utc("2026-02-25T23:59:59.999999+08:00"),
            "{channel}"
        );
    }
}

#[test]
fn the_day_of_acceptance_is_its_shanghai_date_not_its_utc_date() {
    // 2026-02-13T16:30Z is Sat Feb 14 00:30 in Shanghai: the count starts after Feb 14, so
    // the days are Feb 24, 25 and 26.
    let accepted = utc("2026-02-13T16:30:00Z");
    let by = ArrivalRules::default().expected_arrival_by(
        &calendar(),
        Channel::CreditCard,
        DestinationKind::BankCard,
        accepted,
    );
    assert_eq!(by, utc("2026-02-26T23:59:59.999999+08:00"));
    // One second before Shanghai midnight it is still Friday the 13th.
    let by = ArrivalRules::default().expected_arrival_by(
        &calendar(),
        Channel::CreditCard,
        DestinationKind::BankCard,
        utc("2026-02-13T23:59:59+08:00"),
    );
    assert_eq!(by, utc("2026-02-25T23:59:59.999999+08:00"));
}

#[test]
fn a_card_refund_accepted_the_morning_of_a_business_day_does_not_count_that_day() {
    // Tue 2026-03-10 at 09:00: Wed 11, Thu 12, Fri 13 → end of Fri Mar 13.
    let by = ArrivalRules::default().expected_arrival_by(
        &calendar(),
        Channel::DebitCard,
        DestinationKind::BankCard,
        utc("2026-03-10T09:00:00+08:00"),
    );
    assert_eq!(by, utc("2026-03-13T23:59:59.999999+08:00"));
}

#[test]
fn a_card_refund_accepted_before_national_day_2025_is_expected_on_the_adjusted_saturday() {
    // Tue 2025-09-30; Oct 1–8 off; Thu Oct 9, Fri Oct 10, Sat Oct 11 (调休).
    let by = ArrivalRules::default().expected_arrival_by(
        &calendar(),
        Channel::UnionpayQr,
        DestinationKind::BankCard,
        utc("2025-09-30T10:00:00+08:00"),
    );
    assert_eq!(by, utc("2025-10-11T23:59:59.999999+08:00"));
}

#[test]
fn a_card_refund_accepted_during_national_day_2026_counts_from_the_first_day_back() {
    // Accepted on a holiday, Sat 2026-10-03: Thu Oct 8, Fri Oct 9, Sat Oct 10 (调休).
    let by = ArrivalRules::default().expected_arrival_by(
        &calendar(),
        Channel::CreditCard,
        DestinationKind::BankCard,
        utc("2026-10-03T12:00:00+08:00"),
    );
    assert_eq!(by, utc("2026-10-10T23:59:59.999999+08:00"));
}

#[test]
fn a_wallet_refund_to_a_balance_arrives_within_two_hours_even_on_a_holiday() {
    let rules = ArrivalRules::default();
    let calendar = calendar();
    for channel in WALLETS {
        // During the 2026 Spring Festival.
        assert_eq!(
            rules.expected_arrival_by(
                &calendar,
                channel,
                DestinationKind::Balance,
                utc("2026-02-17T10:15:30.5+08:00")
            ),
            utc("2026-02-17T12:15:30.5+08:00"),
            "{channel}"
        );
        // Across Shanghai midnight.
        assert_eq!(
            rules.expected_arrival_by(
                &calendar,
                channel,
                DestinationKind::Balance,
                utc("2026-02-13T23:30:00+08:00")
            ),
            utc("2026-02-14T01:30:00+08:00"),
            "{channel}"
        );
    }
}

#[test]
fn rules_are_configurable_per_channel_and_destination() {
    let mut rules = ArrivalRules::default();
    *rules.channel_mut(Channel::Alipay) = ChannelArrival {
        balance: ArrivalRule::Hours(24),
        bank_card: ArrivalRule::BusinessDays(1),
    };
    rules.channel_mut(Channel::DebitCard).bank_card = ArrivalRule::BusinessDays(0);
    let calendar = calendar();
    let accepted = utc("2026-02-13T15:00:00+08:00");
    assert_eq!(
        rules.expected_arrival_by(
            &calendar,
            Channel::Alipay,
            DestinationKind::Balance,
            accepted
        ),
        utc("2026-02-14T15:00:00+08:00")
    );
    assert_eq!(
        rules.expected_arrival_by(
            &calendar,
            Channel::Alipay,
            DestinationKind::BankCard,
            accepted
        ),
        utc("2026-02-14T23:59:59.999999+08:00")
    );
    // Zero business days: by the end of the day of acceptance.
    assert_eq!(
        rules.expected_arrival_by(
            &calendar,
            Channel::DebitCard,
            DestinationKind::BankCard,
            accepted
        ),
        utc("2026-02-13T23:59:59.999999+08:00")
    );
    // The other channels keep the spec's rules.
    assert_eq!(
        rules.expected_arrival_by(
            &calendar,
            Channel::Wechat,
            DestinationKind::Balance,
            accepted
        ),
        utc("2026-02-13T17:00:00+08:00")
    );
}

#[test]
fn an_arrival_counted_in_a_year_without_data_says_so() {
    let rules = ArrivalRules::default();
    let calendar = calendar();
    // Thu 2026-12-31: Fri 2027-01-01, Mon Jan 4, Tue Jan 5, counted Monday–Friday.
    let expected = rules.expected_arrival(
        &calendar,
        Channel::CreditCard,
        DestinationKind::BankCard,
        utc("2026-12-31T10:00:00+08:00"),
    );
    assert_eq!(
        expected,
        ExpectedArrival {
            by: utc("2027-01-05T23:59:59.999999+08:00"),
            calendar_covered: false
        }
    );
    let covered = rules.expected_arrival(
        &calendar,
        Channel::CreditCard,
        DestinationKind::BankCard,
        utc("2026-12-01T10:00:00+08:00"),
    );
    assert!(covered.calendar_covered);
    // An hours rule needs no calendar.
    let wallet = rules.expected_arrival(
        &calendar,
        Channel::Wechat,
        DestinationKind::Balance,
        utc("2030-01-01T10:00:00+08:00"),
    );
    assert!(wallet.calendar_covered);
}

#[test]
fn rules_serialize_with_snake_case_names() {
    let json = serde_json::to_value(ArrivalRules::default()).unwrap();
    assert_eq!(json["wechat"]["balance"], serde_json::json!({"hours": 2}));
    assert_eq!(
        json["credit_card"]["bank_card"],
        serde_json::json!({"business_days": 3})
    );
    let back: ArrivalRules = serde_json::from_value(json).unwrap();
    assert_eq!(back, ArrivalRules::default());
}
