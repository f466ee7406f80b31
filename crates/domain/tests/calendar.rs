//! China's working-day calendar, checked against the State Council's announcements for
//! 2024–2026 as written out below, independently of the data files in `crates/domain/data/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use proptest::prelude::*;
use yuanlu_domain::calendar::{
    BusinessCalendar, CalendarError, DayKind, DayLookup, EMBEDDED_YEARS, LineProblem,
    MAX_HOLIDAYS_PER_YEAR, format_line,
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn calendar() -> BusinessCalendar {
    BusinessCalendar::embedded().expect("the embedded calendar data parses")
}

/// A date as (year, month, day).
type Ymd = (i32, u32, u32);

/// Holiday ranges as announced: (festival, first day, last day), inclusive.
const HOLIDAYS: &[(&str, Ymd, Ymd)] = &[
    // 2024
    ("元旦", (2024, 1, 1), (2024, 1, 1)),
    ("春节", (2024, 2, 10), (2024, 2, 17)),
    ("清明", (2024, 4, 4), (2024, 4, 6)),
    ("劳动节", (2024, 5, 1), (2024, 5, 5)),
    ("端午", (2024, 6, 10), (2024, 6, 10)),
    ("中秋", (2024, 9, 15), (2024, 9, 17)),
    ("国庆", (2024, 10, 1), (2024, 10, 7)),
    // 2025
    ("元旦", (2025, 1, 1), (2025, 1, 1)),
    ("春节", (2025, 1, 28), (2025, 2, 4)),
    ("清明", (2025, 4, 4), (2025, 4, 6)),
    ("劳动节", (2025, 5, 1), (2025, 5, 5)),
    ("端午", (2025, 5, 31), (2025, 6, 2)),
    ("国庆·中秋", (2025, 10, 1), (2025, 10, 8)),
    // 2026
    ("元旦", (2026, 1, 1), (2026, 1, 3)),
    ("春节", (2026, 2, 15), (2026, 2, 23)),
    ("清明", (2026, 4, 4), (2026, 4, 6)),
    ("劳动节", (2026, 5, 1), (2026, 5, 5)),
    ("端午", (2026, 6, 19), (2026, 6, 21)),
    ("中秋", (2026, 9, 25), (2026, 9, 27)),
    ("国庆", (2026, 10, 1), (2026, 10, 7)),
];

/// Adjusted working days (调休) as announced, with the weekday the announcement gives.
const ADJUSTED_WORKDAYS: &[(&str, Ymd, Weekday)] = &[
    // 2024
    ("春节", (2024, 2, 4), Weekday::Sun),
    ("春节", (2024, 2, 18), Weekday::Sun),
    ("清明", (2024, 4, 7), Weekday::Sun),
    ("劳动节", (2024, 4, 28), Weekday::Sun),
    ("劳动节", (2024, 5, 11), Weekday::Sat),
    ("中秋", (2024, 9, 14), Weekday::Sat),
    ("国庆", (2024, 9, 29), Weekday::Sun),
    ("国庆", (2024, 10, 12), Weekday::Sat),
    // 2025
    ("春节", (2025, 1, 26), Weekday::Sun),
    ("春节", (2025, 2, 8), Weekday::Sat),
    ("劳动节", (2025, 4, 27), Weekday::Sun),
    ("国庆·中秋", (2025, 9, 28), Weekday::Sun),
    ("国庆·中秋", (2025, 10, 11), Weekday::Sat),
    // 2026
    ("元旦", (2026, 1, 4), Weekday::Sun),
    ("春节", (2026, 2, 14), Weekday::Sat),
    ("春节", (2026, 2, 28), Weekday::Sat),
    ("劳动节", (2026, 5, 9), Weekday::Sat),
    ("国庆", (2026, 9, 20), Weekday::Sun),
    ("国庆", (2026, 10, 10), Weekday::Sat),
];

fn announced_holidays() -> Vec<(&'static str, NaiveDate)> {
    HOLIDAYS
        .iter()
        .flat_map(|&(name, (y1, m1, d1), (y2, m2, d2))| {
            let last = date(y2, m2, d2);
            date(y1, m1, d1)
                .iter_days()
                .take_while(move |d| *d <= last)
                .map(move |d| (name, d))
        })
        .collect()
}

fn announced_workdays() -> Vec<(&'static str, NaiveDate)> {
    ADJUSTED_WORKDAYS
        .iter()
        .map(|&(name, (y, m, d), _)| (name, date(y, m, d)))
        .collect()
}

#[test]
fn the_embedded_data_parses_and_covers_2024_to_2026() {
    let calendar = BusinessCalendar::embedded();
    assert!(calendar.is_ok(), "{:?}", calendar.err());
    let calendar = calendar.unwrap();
    assert_eq!(calendar.covered_years().collect::<Vec<_>>(), EMBEDDED_YEARS);
    for year in [2024, 2025, 2026] {
        assert!(calendar.covered(year), "{year}");
    }
    assert!(!calendar.covered(2023));
    assert!(!calendar.covered(2027));
}

#[test]
fn every_day_of_every_announced_holiday_is_off() {
    let calendar = calendar();
    let holidays = announced_holidays();
    assert_eq!(holidays.len(), 28 + 28 + 33, "the table itself");
    for (name, day) in holidays {
        assert_eq!(
            calendar.lookup(day),
            DayLookup {
                kind: DayKind::Holiday,
                covered: true
            },
            "{day} ({name})"
        );
        assert!(!calendar.is_business_day(day), "{day} ({name})");
    }
}

#[test]
fn every_announced_adjusted_workday_is_a_weekend_day_and_a_business_day() {
    let calendar = calendar();
    for &(name, (y, m, d), weekday) in ADJUSTED_WORKDAYS {
        let day = date(y, m, d);
        assert_eq!(day.weekday(), weekday, "the table gives {day}'s weekday");
        assert_eq!(
            calendar.lookup(day),
            DayLookup {
                kind: DayKind::Workday,
                covered: true
            },
            "{day} ({name}调休)"
        );
        assert!(calendar.is_business_day(day), "{day} ({name}调休)");
    }
}

#[test]
fn every_other_day_of_2024_to_2026_follows_monday_to_friday() {
    let calendar = calendar();
    let holidays: Vec<NaiveDate> = announced_holidays().into_iter().map(|(_, d)| d).collect();
    let workdays: Vec<NaiveDate> = announced_workdays().into_iter().map(|(_, d)| d).collect();
    let mut checked = 0;
    for (day, lookup) in calendar.days(date(2024, 1, 1), date(2026, 12, 31)) {
        assert!(lookup.covered, "{day}");
        let expected = if holidays.contains(&day) {
            DayKind::Holiday
        } else if workdays.contains(&day) {
            DayKind::Workday
        } else if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            DayKind::Holiday
        } else {
            DayKind::Workday
        };
        assert_eq!(lookup.kind, expected, "{day} ({})", day.weekday());
        checked += 1;
    }
    assert_eq!(checked, 366 + 365 + 365);
}

#[test]
fn ordinary_weekends_are_off_and_ordinary_weekdays_are_worked() {
    let calendar = calendar();
    // An ordinary week in March 2026: Monday 9th to Sunday 15th.
    for d in 9..=13 {
        assert_eq!(calendar.day(date(2026, 3, d)), DayKind::Workday, "Mar {d}");
    }
    assert_eq!(calendar.day(date(2026, 3, 14)), DayKind::Holiday);
    assert_eq!(calendar.day(date(2026, 3, 15)), DayKind::Holiday);
    // 除夕 2024 (Fri Feb 9) was a working day: only encouraged off.
    assert!(calendar.is_business_day(date(2024, 2, 9)));
    // The weekend before 2024's 端午 Monday is an ordinary weekend.
    assert!(!calendar.is_business_day(date(2024, 6, 8)));
    assert!(!calendar.is_business_day(date(2024, 6, 9)));
}

#[test]
fn a_year_outside_the_data_falls_back_to_monday_to_friday_and_says_it_is_not_covered() {
    let calendar = calendar();
    for (day, kind) in [
        // 2027-01-01 will surely be a holiday, but the calendar has not been told.
        (date(2027, 1, 1), DayKind::Workday),
        (date(2027, 1, 2), DayKind::Holiday),
        (date(2027, 1, 3), DayKind::Holiday),
        (date(2027, 1, 4), DayKind::Workday),
        (date(2023, 12, 29), DayKind::Workday),
        (date(2023, 12, 30), DayKind::Holiday),
        (date(2023, 10, 2), DayKind::Workday),
    ] {
        assert_eq!(
            calendar.lookup(day),
            DayLookup {
                kind,
                covered: false
            },
            "{day}"
        );
        assert_eq!(calendar.day(day), kind);
    }
    assert!(!calendar.covered(2027));
    assert!(!calendar.covered(2023));
}

#[test]
fn an_empty_calendar_covers_nothing_and_is_monday_to_friday() {
    let calendar = BusinessCalendar::default();
    assert_eq!(calendar.covered_years().count(), 0);
    let lookup = calendar.lookup(date(2026, 2, 16));
    assert_eq!(
        lookup,
        DayLookup {
            kind: DayKind::Workday,
            covered: false
        }
    );
    assert_eq!(
        calendar.next_business_day(date(2026, 2, 13)),
        date(2026, 2, 16)
    );
}

const FILE_2027: &str = "\
# 2027, for the test
2027-01-01 holiday  # 元旦

2027-02-06 holiday
   2027-02-07   holiday   # 周日, listed as announced
2027-02-20 workday  # 调休
";

#[test]
fn a_2027_file_loaded_from_text_covers_2027() {
    let mut calendar = calendar();
    calendar.load_year_file(2027, FILE_2027).unwrap();
    assert!(calendar.covered(2027));
    assert_eq!(
        calendar.lookup(date(2027, 1, 1)),
        DayLookup {
            kind: DayKind::Holiday,
            covered: true
        }
    );
    assert_eq!(calendar.day(date(2027, 2, 6)), DayKind::Holiday);
    assert_eq!(calendar.day(date(2027, 2, 20)), DayKind::Workday);
    assert_eq!(calendar.day(date(2027, 2, 21)), DayKind::Holiday);
    assert_eq!(calendar.day(date(2027, 3, 1)), DayKind::Workday);
    // The other years are untouched.
    assert_eq!(calendar.day(date(2026, 2, 14)), DayKind::Workday);
    assert_eq!(
        calendar.covered_years().collect::<Vec<_>>(),
        [2024, 2025, 2026, 2027]
    );
}

#[test]
fn loading_a_year_again_replaces_its_data() {
    let mut calendar = calendar();
    calendar
        .load_year_file(2026, "2026-03-02 holiday # a test\n")
        .unwrap();
    assert_eq!(calendar.day(date(2026, 3, 2)), DayKind::Holiday);
    // The embedded 2026 exceptions are gone: Feb 16 is a plain Monday again.
    assert_eq!(calendar.day(date(2026, 2, 16)), DayKind::Workday);
    assert_eq!(calendar.day(date(2026, 2, 14)), DayKind::Holiday);
    assert!(calendar.covered(2026));
}

fn line_problem(text: &str) -> (usize, LineProblem) {
    match BusinessCalendar::default().load_year_file(2027, text) {
        Err(CalendarError::Line {
            year: 2027,
            line,
            problem,
        }) => (line, problem),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn a_malformed_line_is_refused_with_its_line_number() {
    let header = "# 2027\n2027-01-01 holiday\n\n";
    for (bad, expected) in [
        (
            "2027-01-02",
            LineProblem::Malformed("2027-01-02".to_string()),
        ),
        (
            "2027-01-02 holiday extra",
            LineProblem::Malformed("2027-01-02 holiday extra".to_string()),
        ),
        (
            "2027-02-30 holiday",
            LineProblem::BadDate("2027-02-30".to_string()),
        ),
        (
            "2027-1-2 holiday",
            LineProblem::BadDate("2027-1-2".to_string()),
        ),
        (
            "02/01/2027 holiday",
            LineProblem::BadDate("02/01/2027".to_string()),
        ),
        (
            "2027-01-02 vacation",
            LineProblem::UnknownKind("vacation".to_string()),
        ),
    ] {
        let text = format!("{header}{bad}  # comment\n2027-10-01 holiday\n");
        assert_eq!(line_problem(&text), (4, expected), "{bad}");
        let message = BusinessCalendar::default()
            .load_year_file(2027, &text)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 4"),
            "the message names the line: {message}"
        );
    }
}

#[test]
fn a_date_in_the_wrong_year_is_refused() {
    let text = "2027-01-01 holiday\n2026-10-01 holiday\n";
    assert_eq!(
        line_problem(text),
        (2, LineProblem::WrongYear(date(2026, 10, 1)))
    );
    let mut calendar = calendar();
    let before = calendar.clone();
    assert!(calendar.load_year_file(2027, text).is_err());
    assert_eq!(calendar, before, "a refused file changes nothing");
    assert!(!calendar.covered(2027));
    // The embedded 2026 file is not a 2027 file.
    let mut empty = BusinessCalendar::default();
    assert!(matches!(
        empty.load_year_file(2027, include_str!("../data/cn-2026.txt")),
        Err(CalendarError::Line {
            problem: LineProblem::WrongYear(_),
            ..
        })
    ));
}

#[test]
fn a_date_listed_twice_is_refused() {
    let text = "2027-01-01 holiday\n2027-01-02 holiday\n2027-01-01 holiday\n";
    assert_eq!(
        line_problem(text),
        (
            3,
            LineProblem::Duplicate {
                date: date(2027, 1, 1),
                first_line: 1
            }
        )
    );
}

#[test]
fn a_workday_on_a_weekday_is_refused() {
    // 2027-01-04 is a Monday: it is a working day already, so listing it is a mistake.
    assert_eq!(
        line_problem("2027-01-04 workday\n"),
        (1, LineProblem::WorkdayNotOnWeekend(date(2027, 1, 4)))
    );
}

#[test]
fn a_file_with_no_dates_or_too_many_holidays_is_refused() {
    let mut calendar = BusinessCalendar::default();
    assert_eq!(
        calendar.load_year_file(2027, "# nothing yet\n\n"),
        Err(CalendarError::Empty { year: 2027 })
    );
    let all_year: String = date(2027, 1, 1)
        .iter_days()
        .take(MAX_HOLIDAYS_PER_YEAR + 1)
        .map(|d| format!("{d} holiday\n"))
        .collect();
    assert_eq!(
        calendar.load_year_file(2027, &all_year),
        Err(CalendarError::TooManyHolidays {
            year: 2027,
            count: MAX_HOLIDAYS_PER_YEAR + 1,
            max: MAX_HOLIDAYS_PER_YEAR
        })
    );
    assert!(!calendar.covered(2027));
}

#[test]
fn the_next_business_day_skips_the_2025_national_day_week() {
    let calendar = calendar();
    // Tue 2025-09-30 → Thu 2025-10-09 (Oct 1–8 off).
    assert_eq!(
        calendar.next_business_day(date(2025, 9, 30)),
        date(2025, 10, 9)
    );
    // Fri 2025-09-26 → Sun 2025-09-28, an adjusted working day.
    assert_eq!(
        calendar.next_business_day(date(2025, 9, 26)),
        date(2025, 9, 28)
    );
}

#[test]
fn three_business_days_after_friday_13_february_2026_end_on_25_february() {
    let calendar = calendar();
    let friday = date(2026, 2, 13);
    // Sat Feb 14 is worked (调休); Feb 15–23 is the Spring Festival.
    assert_eq!(calendar.add_business_days(friday, 1), date(2026, 2, 14));
    assert_eq!(calendar.add_business_days(friday, 2), date(2026, 2, 24));
    assert_eq!(calendar.add_business_days(friday, 3), date(2026, 2, 25));
    // From the worked Saturday itself the festival is skipped at once.
    assert_eq!(
        calendar.add_business_days(date(2026, 2, 14), 1),
        date(2026, 2, 24)
    );
}

#[test]
fn zero_business_days_after_a_date_is_the_date_itself() {
    let calendar = calendar();
    assert_eq!(
        calendar.add_business_days(date(2026, 2, 15), 0),
        date(2026, 2, 15)
    );
}

#[test]
fn business_days_across_national_day_2026_include_the_adjusted_saturday() {
    let calendar = calendar();
    // Wed 2026-09-30; Oct 1–7 off; Thu Oct 8, Fri Oct 9, Sat Oct 10 (调休) worked.
    let eve = date(2026, 9, 30);
    assert_eq!(calendar.add_business_days(eve, 1), date(2026, 10, 8));
    assert_eq!(calendar.add_business_days(eve, 3), date(2026, 10, 10));
    assert_eq!(calendar.add_business_days(eve, 4), date(2026, 10, 12));
    // Fri 2026-09-18 → Sun Sep 20 (调休) is the next business day.
    assert_eq!(
        calendar.next_business_day(date(2026, 9, 18)),
        date(2026, 9, 20)
    );
}

#[test]
fn business_days_run_across_years_covered_or_not() {
    let calendar = calendar();
    // Wed 2025-12-31 → Sun 2026-01-04, worked after the New Year holiday of Jan 1–3.
    assert_eq!(
        calendar.next_business_day(date(2025, 12, 31)),
        date(2026, 1, 4)
    );
    // Thu 2026-12-31 → Fri 2027-01-01: 2027 is not covered, so it is a plain Friday.
    assert_eq!(
        calendar.next_business_day(date(2026, 12, 31)),
        date(2027, 1, 1)
    );
    assert!(!calendar.lookup(date(2027, 1, 1)).covered);
}

#[test]
fn the_calendar_command_lists_each_day_of_the_range_with_its_kind() {
    let calendar = calendar();
    let lines: Vec<String> = calendar
        .days(date(2026, 2, 13), date(2026, 2, 16))
        .map(|(d, lookup)| format_line(d, lookup))
        .collect();
    assert_eq!(
        lines,
        [
            "2026-02-13 workday",
            "2026-02-14 workday",
            "2026-02-15 holiday",
            "2026-02-16 holiday",
        ]
    );
    assert_eq!(
        calendar.days(date(2026, 2, 16), date(2026, 2, 13)).count(),
        0
    );
    assert_eq!(
        calendar.days(date(2026, 2, 16), date(2026, 2, 16)).count(),
        1
    );
}

#[test]
fn the_calendar_command_says_when_a_day_is_not_covered() {
    let calendar = calendar();
    let lines: Vec<String> = calendar
        .days(date(2026, 12, 31), date(2027, 1, 2))
        .map(|(d, lookup)| format_line(d, lookup))
        .collect();
    assert_eq!(
        lines,
        [
            "2026-12-31 workday",
            "2027-01-01 workday  # not covered: Monday–Friday",
            "2027-01-02 holiday  # not covered: Monday–Friday",
        ]
    );
}

#[test]
fn the_calendar_command_output_reads_back_as_a_year_file() {
    let calendar = calendar();
    let exported: String = calendar
        .days(date(2026, 1, 1), date(2026, 12, 31))
        .filter(|(d, lookup)| lookup.kind != DayKind::by_weekday(*d))
        .map(|(d, lookup)| format_line(d, lookup) + "\n")
        .collect();
    let mut reloaded = BusinessCalendar::default();
    reloaded.load_year_file(2026, &exported).unwrap();
    for (d, lookup) in calendar.days(date(2026, 1, 1), date(2026, 12, 31)) {
        assert_eq!(reloaded.lookup(d), lookup, "{d}");
    }
}

fn count_business_days_between(
    calendar: &BusinessCalendar,
    after: NaiveDate,
    until: NaiveDate,
) -> u32 {
    calendar
        .days(after + Duration::days(1), until)
        .filter(|(_, lookup)| lookup.kind == DayKind::Workday)
        .count() as u32
}

proptest! {
    #[test]
    fn adding_business_days_lands_on_the_nth_business_day_after_the_start(
        offset in 0i64..(5 * 366),
        n in 0u32..45,
    ) {
        // From 2023-01-01 to the end of 2027: covered years and both sides of them.
        let calendar = calendar();
        let start = date(2023, 1, 1) + Duration::days(offset);
        let result = calendar.add_business_days(start, n);
        let next = calendar.add_business_days(start, n + 1);
        prop_assert!(calendar.is_business_day(next), "{next} is a business day");
        prop_assert!(next > result, "strictly increasing in n: {result} then {next}");
        prop_assert_eq!(count_business_days_between(&calendar, result, next), 1);
        if n == 0 {
            prop_assert_eq!(result, start);
        } else {
            prop_assert!(calendar.is_business_day(result), "{result} is a business day");
        }
        prop_assert_eq!(count_business_days_between(&calendar, start, result), n);
    }
}
