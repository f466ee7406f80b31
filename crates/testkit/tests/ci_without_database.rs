//! The decision of [`yuanlu_testkit::postgres_url`] in a real test process: this binary runs
//! its own ignored `probe` case in a child process with the environment under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use yuanlu_testkit::{CASES_FILE_VAR, DATABASE_URL_VAR};

/// What a PostgreSQL case does first; run only as the child of the tests below.
#[test]
#[ignore = "run in a child process by the tests of this file"]
fn probe() {
    match yuanlu_testkit::postgres_url("probe") {
        Some(url) => println!("probe ran on {url}"),
        None => println!("probe skipped"),
    }
}

/// The probe in a child with `vars` set (`None`: removed) over a clean environment.
fn run_probe(vars: &[(&str, Option<&str>)]) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["probe", "--exact", "--include-ignored", "--nocapture"]);
    for name in [DATABASE_URL_VAR, CASES_FILE_VAR, "CI"] {
        cmd.env_remove(name);
    }
    for (name, value) in vars {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let output = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn under_ci_a_missing_database_fails_the_case() {
    let (output, text) = run_probe(&[("CI", Some("true"))]);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(
            "YUANLU_TEST_DATABASE_URL is not set, and CI is: set YUANLU_TEST_DATABASE_URL="
        ),
        "{text}"
    );
    assert!(!text.contains("probe skipped"), "{text}");
}

#[test]
fn outside_ci_a_missing_database_skips_the_case() {
    for ci in [None, Some("false")] {
        let (output, text) = run_probe(&[("CI", ci)]);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("probe skipped"), "{text}");
        assert!(
            text.contains("probe: skipped, set YUANLU_TEST_DATABASE_URL"),
            "{text}"
        );
    }
}

#[test]
fn a_case_that_runs_is_counted_in_the_cases_file() {
    let dir = std::env::temp_dir().join(format!("yuanlu-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("postgres_cases.txt");
    let _ = std::fs::remove_file(&cases);
    let cases_text = cases.display().to_string();
    for _ in 0..2 {
        let (output, text) = run_probe(&[
            ("CI", Some("true")),
            (DATABASE_URL_VAR, Some("postgres://nowhere/db")),
            (CASES_FILE_VAR, Some(&cases_text)),
        ]);
        assert!(output.status.success(), "{text}");
        assert!(
            text.contains("probe ran on postgres://nowhere/db"),
            "{text}"
        );
    }
    assert_eq!(std::fs::read_to_string(&cases).unwrap(), "probe\nprobe\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
