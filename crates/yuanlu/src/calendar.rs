//! `yuanlu calendar`, and loading further years of the business calendar from the data dir.

use std::path::Path;
use std::process::ExitCode;

use yuanlu_domain::calendar::BusinessCalendar;

use crate::cli::CalendarArgs;

/// The most dates one `yuanlu calendar` call prints (about 27 years).
pub const CALENDAR_DAYS_MAX: i64 = 10_000;

/// The shipped years, plus every `<data-dir>/calendar/cn-YYYY.txt` (which may replace one).
pub fn load(data_dir: &Path) -> Result<BusinessCalendar, String> {
    let mut calendar =
        BusinessCalendar::embedded().map_err(|e| format!("shipped calendar data: {e}"))?;
    let folder = data_dir.join("calendar");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(calendar);
    };
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let Some(year) = year_of(&path) else { continue };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        calendar
            .load_year_file(year, &text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(calendar)
}

/// `cn-2027.txt` → 2027.
fn year_of(path: &Path) -> Option<i32> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("cn-")?.strip_suffix(".txt")?.parse().ok()
}

pub fn run(args: CalendarArgs) -> Result<ExitCode, String> {
    if args.to < args.from {
        return Err(format!("--to {} is before --from {}", args.to, args.from));
    }
    if (args.to - args.from).num_days() >= CALENDAR_DAYS_MAX {
        return Err(format!(
            "ask for at most {CALENDAR_DAYS_MAX} days at a time"
        ));
    }
    let calendar = load(&args.data_dir)?;
    let mut uncovered = false;
    let mut out = String::new();
    for (date, lookup) in calendar.days(args.from, args.to) {
        uncovered |= !lookup.covered;
        // Exactly two words per line (scripts read it); the coverage note goes to stderr.
        out.push_str(&format!(
            "{} {}\n",
            date.format("%Y-%m-%d"),
            lookup.kind.as_str()
        ));
    }
    print!("{out}");
    if uncovered {
        eprintln!(
            "note: some dates fall in years without calendar data; they follow Monday–Friday. \
             Add <data-dir>/calendar/cn-YYYY.txt from the State Council's announcement."
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_files_are_named_by_year() {
        assert_eq!(year_of(Path::new("/d/calendar/cn-2027.txt")), Some(2027));
        assert_eq!(year_of(Path::new("/d/calendar/notes.txt")), None);
    }
}
