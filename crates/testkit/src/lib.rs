//! Test support shared by the workspace's test suites; a dev-dependency only, with no
//! dependencies of its own.
//!
//! [`postgres_url`] is the one place that decides what a PostgreSQL test case does when
//! `YUANLU_TEST_DATABASE_URL` is missing: outside CI it is skipped (the README's promise: the
//! suite runs on SQLite alone), under CI it fails, so a CI job that forgot the database cannot
//! pass with every PostgreSQL case skipped. A case that runs appends its name to the file
//! named by `YUANLU_TEST_PG_CASES_FILE`, which `.ci/run` counts.

use std::io::Write;

/// Names the PostgreSQL database the tests use (each case in a fresh schema).
pub const DATABASE_URL_VAR: &str = "YUANLU_TEST_DATABASE_URL";
/// A file each PostgreSQL case that runs appends one line to (set by `.ci/run`).
pub const CASES_FILE_VAR: &str = "YUANLU_TEST_PG_CASES_FILE";

/// What a PostgreSQL case does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run against this database URL.
    Run(String),
    /// No database, not CI: skip.
    Skip,
    /// No database under CI: fail.
    Fail,
}

/// The decision from the two variables' values. `CI` counts as set unless it is empty,
/// `false` or `0` (CI systems set `true` or `1`).
pub fn decide(database_url: Option<&str>, ci: Option<&str>) -> Decision {
    match database_url.map(str::trim) {
        Some(url) if !url.is_empty() => Decision::Run(url.to_string()),
        _ if is_ci(ci) => Decision::Fail,
        _ => Decision::Skip,
    }
}

fn is_ci(ci: Option<&str>) -> bool {
    ci.map(str::trim)
        .is_some_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")))
}

/// The database URL for PostgreSQL case `case`, or `None` (after saying so) when the case
/// is skipped. Panics under CI when no database is named, and when the cases file cannot
/// be written.
#[allow(
    clippy::panic,
    reason = "a test helper: failing the test is its purpose"
)]
pub fn postgres_url(case: &str) -> Option<String> {
    let url = std::env::var(DATABASE_URL_VAR).ok();
    let ci = std::env::var("CI").ok();
    match decide(url.as_deref(), ci.as_deref()) {
        Decision::Run(url) => {
            record_case(case);
            Some(url)
        }
        Decision::Skip => {
            eprintln!("{case}: skipped, set {DATABASE_URL_VAR} to run it on PostgreSQL");
            None
        }
        Decision::Fail => panic!(
            "{case}: {DATABASE_URL_VAR} is not set, and CI is: set \
             {DATABASE_URL_VAR}=postgres://… so the PostgreSQL cases run \
             (they are skipped only outside CI)"
        ),
    }
}

#[allow(
    clippy::panic,
    reason = "a test helper: failing the test is its purpose"
)]
fn record_case(case: &str) {
    let Some(path) = std::env::var_os(CASES_FILE_VAR) else {
        return;
    };
    // One short write with O_APPEND: lines of concurrent tests do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{case}\n").as_bytes()));
    if let Err(error) = written {
        panic!(
            "{case}: cannot record the case in {}: {error}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_database_runs_with_or_without_ci() {
        let url = "postgres://h/db";
        assert_eq!(decide(Some(url), None), Decision::Run(url.into()));
        assert_eq!(decide(Some(url), Some("true")), Decision::Run(url.into()));
    }

    #[test]
    fn no_database_skips_outside_ci_and_fails_under_it() {
        for unset in [None, Some(""), Some("  ")] {
            assert_eq!(decide(unset, None), Decision::Skip);
            assert_eq!(decide(unset, Some("false")), Decision::Skip);
            assert_eq!(decide(unset, Some("0")), Decision::Skip);
            assert_eq!(decide(unset, Some("")), Decision::Skip);
            assert_eq!(decide(unset, Some("true")), Decision::Fail);
            assert_eq!(decide(unset, Some("1")), Decision::Fail);
            assert_eq!(decide(unset, Some("TRUE")), Decision::Fail);
        }
    }
}
