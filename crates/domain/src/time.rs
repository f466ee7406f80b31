//! Time is stored in UTC and read in Asia/Shanghai (UTC+8 all year, no daylight saving since
//! 1991), so a fixed offset is exact and needs no time-zone database.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Offset, Utc};

/// Asia/Shanghai.
pub fn shanghai() -> FixedOffset {
    // 8 hours is within FixedOffset's ±24 h range, so this never fails; the fallback is
    // only there to avoid an `expect`.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// The calendar day in Asia/Shanghai on which `instant` falls.
pub fn shanghai_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&shanghai()).date_naive()
}

/// The UTC instants `[start, end)` of a Shanghai calendar day.
pub fn shanghai_day_bounds(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let start = start_local.and_utc() - Duration::hours(8);
    (start, start + Duration::days(1))
}

/// Asia/Shanghai's offset from UTC, and a day, in microseconds.
const SHANGHAI_OFFSET_US: i64 = 8 * 3_600 * 1_000_000;
const DAY_US: i64 = 24 * 3_600 * 1_000_000;

/// The first microsecond (UTC, since the epoch) of the Shanghai day on which the stored
/// instant `at_us` falls: how a merchant's day is keyed (`merchant_days`). The same
/// arithmetic as [`shanghai_day_bounds`], on stored integers (the migration that filled
/// `merchant_days` uses it in SQL).
pub fn shanghai_day_start_us(at_us: i64) -> i64 {
    (at_us + SHANGHAI_OFFSET_US).div_euclid(DAY_US) * DAY_US - SHANGHAI_OFFSET_US
}

/// Microseconds since the Unix epoch: how instants are stored.
pub fn to_micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn late_evening_utc_is_next_day_in_shanghai() {
        let date = shanghai_date(utc("2026-11-21T16:30:00Z"));
        assert_eq!(
            date,
            NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
        );
        let date = shanghai_date(utc("2026-11-21T15:59:59Z"));
        assert_eq!(
            date,
            NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default()
        );
    }

    #[test]
    fn day_bounds_start_at_shanghai_midnight() {
        let (start, end) =
            shanghai_day_bounds(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default());
        assert_eq!(start, utc("2026-11-21T16:00:00Z"));
        assert_eq!(end, utc("2026-11-22T16:00:00Z"));
    }

    #[test]
    fn a_day_start_in_micros_is_the_start_of_the_days_bounds() {
        for at in [
            "2026-11-21T16:00:00Z",
            "2026-11-22T15:59:59.999999Z",
            "2026-11-22T16:00:00Z",
            "1969-12-31T23:00:00Z",
        ] {
            let instant = utc(at);
            let (start, _) = shanghai_day_bounds(shanghai_date(instant));
            assert_eq!(
                shanghai_day_start_us(to_micros(instant)),
                to_micros(start),
                "{at}"
            );
        }
    }

    #[test]
    fn micros_round_trip() {
        let t = utc("2026-11-21T16:30:00.123456Z");
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
