//! China's working-day calendar: which dates are business days.
//!
//! A business day is a Chinese working day: Saturdays, Sundays and public holidays are off,
//! and the State Council's adjusted working days (调休: a Saturday or Sunday made a working
//! day) are on. The calendar keeps, per year, the dates that differ from the Monday–Friday
//! week, taken from the State Council's yearly announcement (国务院办公厅关于部分节假日安排的
//! 通知). Data for 2024, 2025 and 2026 is embedded in the binary ([`BusinessCalendar::embedded`]);
//! further years are loaded from text with [`BusinessCalendar::load_year_file`].
//!
//! A year file has one date a line, `YYYY-MM-DD holiday` or `YYYY-MM-DD workday`; text after
//! `#` is a comment and blank lines are ignored:
//!
//! ```text
//! # 2026
//! 2026-02-14 workday  # 春节调休
//! 2026-02-15 holiday  # 春节
//! ```
//!
//! Outside the years it has data for, the calendar says so ([`DayLookup::covered`] is false)
//! and falls back to Monday–Friday: it never guesses holidays it was not told about.
//!
//! Every scan is bounded: finding the next business day looks at no more than
//! [`MAX_DAYS_SCANNED_PER_STEP`] days, and a year file may list at most
//! [`MAX_HOLIDAYS_PER_YEAR`] holidays, which guarantees the bound is never reached (any 366
//! consecutive days hold at least 260 weekdays and touch at most two years, so at most
//! 2 × 100 of them are holidays).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The years whose data is embedded in the binary, with their files.
const EMBEDDED_DATA: [(i32, &str); 3] = [
    (2024, include_str!("../data/cn-2024.txt")),
    (2025, include_str!("../data/cn-2025.txt")),
    (2026, include_str!("../data/cn-2026.txt")),
];

/// The years [`BusinessCalendar::embedded`] covers.
pub const EMBEDDED_YEARS: [i32; 3] = [2024, 2025, 2026];

/// At most this many days are looked at to find the next business day.
pub const MAX_DAYS_SCANNED_PER_STEP: u32 = 366;

/// A year file listing more holidays than this is refused (a real year has about 30, counting
/// the weekend days inside holiday ranges). The limit keeps [`MAX_DAYS_SCANNED_PER_STEP`]
/// sufficient; see the module documentation.
pub const MAX_HOLIDAYS_PER_YEAR: usize = 100;

/// Whether a date is worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A business day: a weekday that is not a holiday, or an adjusted working day (调休).
    Workday,
    /// A day off: a weekend day that is not an adjusted working day, or a public holiday.
    Holiday,
}

impl DayKind {
    /// The word used in year files and in `yuanlu calendar` output.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Workday => "workday",
            DayKind::Holiday => "holiday",
        }
    }

    /// The inverse of [`DayKind::as_str`].
    pub fn parse(word: &str) -> Option<DayKind> {
        match word {
            "workday" => Some(DayKind::Workday),
            "holiday" => Some(DayKind::Holiday),
            _ => None,
        }
    }

    /// What Monday–Friday alone says about `date`.
    pub fn by_weekday(date: NaiveDate) -> DayKind {
        if is_weekend(date) {
            DayKind::Holiday
        } else {
            DayKind::Workday
        }
    }
}

impl fmt::Display for DayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer for one date: its kind, and whether the calendar has data for its year. When
/// `covered` is false, `kind` is only the Monday–Friday fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DayLookup {
    pub kind: DayKind,
    pub covered: bool,
}

/// What is wrong with one line of a year file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// Not `DATE KIND`: the text is the content of the line, comment removed.
    Malformed(String),
    /// The first word is not a `YYYY-MM-DD` calendar date.
    BadDate(String),
    /// The second word is neither `holiday` nor `workday`.
    UnknownKind(String),
    /// The date is not in the year the file is loaded for.
    WrongYear(NaiveDate),
    /// The date was already listed on an earlier line.
    Duplicate { date: NaiveDate, first_line: usize },
    /// An adjusted working day must be a Saturday or a Sunday; a weekday already is one.
    WorkdayNotOnWeekend(NaiveDate),
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::Malformed(text) => write!(
                f,
                "expected `YYYY-MM-DD holiday` or `YYYY-MM-DD workday`, found `{text}`"
            ),
            LineProblem::BadDate(word) => write!(f, "`{word}` is not a YYYY-MM-DD date"),
            LineProblem::UnknownKind(word) => {
                write!(f, "`{word}` is neither `holiday` nor `workday`")
            }
            LineProblem::WrongYear(date) => write!(f, "{date} is not in the file's year"),
            LineProblem::Duplicate { date, first_line } => {
                write!(f, "{date} is already listed on line {first_line}")
            }
            LineProblem::WorkdayNotOnWeekend(date) => write!(
                f,
                "{date} is a {}: only a Saturday or Sunday can be made a workday",
                date.weekday()
            ),
        }
    }
}

/// Why a year file was refused. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar {year}, line {line}: {problem}")]
    Line {
        year: i32,
        line: usize,
        problem: LineProblem,
    },
    #[error("calendar {year}: the file lists no dates")]
    Empty { year: i32 },
    #[error("calendar {year}: {count} holidays listed, more than the {max} a year may have")]
    TooManyHolidays { year: i32, count: usize, max: usize },
}

/// China's working-day calendar: per covered year, the dates that differ from Monday–Friday.
///
/// [`BusinessCalendar::default`] covers no year at all (pure Monday–Friday, always
/// `covered: false`); [`BusinessCalendar::embedded`] covers [`EMBEDDED_YEARS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessCalendar {
    years: BTreeMap<i32, BTreeMap<NaiveDate, DayKind>>,
}

impl BusinessCalendar {
    /// The calendar with the data shipped in the binary (2024–2026). It only fails if the
    /// embedded files are broken, which the test suite rules out.
    pub fn embedded() -> Result<Self, CalendarError> {
        let mut calendar = Self::default();
        for (year, text) in EMBEDDED_DATA {
            calendar.load_year_file(year, text)?;
        }
        Ok(calendar)
    }

    /// Parses a year file and adds its year, replacing any data already held for that year.
    /// Every date must be in `year`. On error the calendar is left unchanged.
    pub fn load_year_file(&mut self, year: i32, text: &str) -> Result<(), CalendarError> {
        let exceptions = parse_year_file(year, text)?;
        self.years.insert(year, exceptions);
        Ok(())
    }

    /// Whether the calendar has data for `year`.
    pub fn covered(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The covered years, in order.
    pub fn covered_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether `date` is worked, and whether that comes from data (`covered`) or from the
    /// Monday–Friday fallback.
    pub fn lookup(&self, date: NaiveDate) -> DayLookup {
        match self.years.get(&date.year()) {
            Some(exceptions) => DayLookup {
                kind: exceptions
                    .get(&date)
                    .copied()
                    .unwrap_or_else(|| DayKind::by_weekday(date)),
                covered: true,
            },
            None => DayLookup {
                kind: DayKind::by_weekday(date),
                covered: false,
            },
        }
    }

    /// Whether `date` is worked (Monday–Friday outside covered years).
    pub fn day(&self, date: NaiveDate) -> DayKind {
        self.lookup(date).kind
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.day(date) == DayKind::Workday
    }

    /// The first business day strictly after `after`.
    ///
    /// Looks at most [`MAX_DAYS_SCANNED_PER_STEP`] days ahead, which always suffices for data
    /// that [`BusinessCalendar::load_year_file`] accepts; should it not, the last date looked
    /// at is returned. At the very end of chrono's date range, `after` itself is returned.
    pub fn next_business_day(&self, after: NaiveDate) -> NaiveDate {
        let mut date = after;
        for _ in 0..MAX_DAYS_SCANNED_PER_STEP {
            match date.succ_opt() {
                Some(next) => date = next,
                None => return date,
            }
            if self.is_business_day(date) {
                return date;
            }
        }
        date
    }

    /// The `n`-th business day strictly after `from`; `from` itself when `n` is 0.
    ///
    /// Takes `n` steps of [`BusinessCalendar::next_business_day`], each bounded, and stops
    /// early only at the end of chrono's date range.
    pub fn add_business_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut date = from;
        for _ in 0..n {
            let next = self.next_business_day(date);
            if next == date {
                break;
            }
            date = next;
        }
        date
    }

    /// Every date from `from` to `to`, both included, with its lookup; empty if `from > to`.
    /// This is what `yuanlu calendar --from D --to D` prints, one [`format_line`] each.
    pub fn days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDate, DayLookup)> + '_ {
        from.iter_days()
            .take_while(move |date| *date <= to)
            .map(move |date| (date, self.lookup(date)))
    }
}

/// One line of `yuanlu calendar` output: `YYYY-MM-DD workday` or `YYYY-MM-DD holiday`, and for
/// a year without data a trailing comment saying the answer is only Monday–Friday:
/// `2027-01-01 workday  # not covered: Monday–Friday`. The output reads back as a year file.
pub fn format_line(date: NaiveDate, lookup: DayLookup) -> String {
    if lookup.covered {
        format!("{} {}", date.format("%Y-%m-%d"), lookup.kind)
    } else {
        format!(
            "{} {}  # not covered: Monday–Friday",
            date.format("%Y-%m-%d"),
            lookup.kind
        )
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn parse_year_file(year: i32, text: &str) -> Result<BTreeMap<NaiveDate, DayKind>, CalendarError> {
    // Dates with the line they were listed on, to name both lines of a duplicate.
    let mut listed: BTreeMap<NaiveDate, (DayKind, usize)> = BTreeMap::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let refuse = |problem| CalendarError::Line {
            year,
            line,
            problem,
        };
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        let [date_word, kind_word] = words.as_slice() else {
            return Err(refuse(LineProblem::Malformed(content.to_string())));
        };
        let date = parse_date(date_word)
            .ok_or_else(|| refuse(LineProblem::BadDate((*date_word).to_string())))?;
        let kind = DayKind::parse(kind_word)
            .ok_or_else(|| refuse(LineProblem::UnknownKind((*kind_word).to_string())))?;
        if date.year() != year {
            return Err(refuse(LineProblem::WrongYear(date)));
        }
        if kind == DayKind::Workday && !is_weekend(date) {
            return Err(refuse(LineProblem::WorkdayNotOnWeekend(date)));
        }
        if let Some((_, first_line)) = listed.get(&date) {
            return Err(refuse(LineProblem::Duplicate {
                date,
                first_line: *first_line,
            }));
        }
        listed.insert(date, (kind, line));
    }
    if listed.is_empty() {
        return Err(CalendarError::Empty { year });
    }
    let holidays = listed
        .values()
        .filter(|(kind, _)| *kind == DayKind::Holiday)
        .count();
    if holidays > MAX_HOLIDAYS_PER_YEAR {
        return Err(CalendarError::TooManyHolidays {
            year,
            count: holidays,
            max: MAX_HOLIDAYS_PER_YEAR,
        });
    }
    Ok(listed
        .into_iter()
        .map(|(date, (kind, _))| (date, kind))
        .collect())
}

/// A strict `YYYY-MM-DD`: four-digit year, two-digit month and day.
fn parse_date(word: &str) -> Option<NaiveDate> {
    let bytes = word.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(word, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_parses() {
        for (year, text) in EMBEDDED_DATA {
            assert!(parse_year_file(year, text).is_ok(), "cn-{year}.txt");
        }
        assert_eq!(
            EMBEDDED_DATA.map(|(year, _)| year),
            EMBEDDED_YEARS,
            "EMBEDDED_YEARS lists the embedded files"
        );
    }

    #[test]
    fn strict_dates_refuse_short_forms() {
        assert!(parse_date("2026-2-14").is_none());
        assert!(parse_date("2026-02-14").is_some());
        assert!(parse_date("2026/02/14").is_none());
    }
}
