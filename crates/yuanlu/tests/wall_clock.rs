//! Every product time comes from the one clock (`yuanlu_domain::clock`, handed around as
//! `Arc<dyn Clock>`): a simulated clock must reach arrival dates, channel success times,
//! overdue, webhooks, statements and audit. This test reads every non-test Rust source of
//! the workspace and fails, naming file:line, on any read of the wall clock outside the
//! files allowed below (each with its reason), and on any migration that reads the
//! database server's clock (`now()`, `CURRENT_TIMESTAMP`). `Instant::now` (measuring
//! durations, rate limits) is not a time of day and is fine anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// What reads the wall clock, in Rust (SQL text inside Rust included).
const WALL_CLOCK: [&str; 9] = [
    "Utc::now",
    "SystemTime::now",
    "Local::now",
    "chrono::Local",
    "OffsetDateTime::now",
    "UNIX_EPOCH.elapsed",
    "CURRENT_TIMESTAMP",
    "datetime('now",
    "clock_timestamp(",
];

/// What reads the database server's clock in SQL (compared case-insensitively).
const SQL_WALL_CLOCK: [&str; 6] = [
    "current_timestamp",
    "current_date",
    "localtimestamp",
    "now()",
    "'now'",
    "clock_timestamp(",
];

/// Files (or directories, ending in `/`) that may read it, and why.
const ALLOWED: [(&str, &str); 3] = [
    (
        "crates/domain/src/clock.rs",
        "the clock itself: SystemClock is the one reader of the OS clock",
    ),
    (
        "crates/bench/src/lib.rs",
        "the benchmark stamps its report files and run ids; it is no product time",
    ),
    (
        "crates/bench/src/",
        "the benchmark generates data around today and measures real time",
    ),
];

/// Lines of `source` that read the wall clock, 1-based, skipping comments and items under
/// `#[cfg(test)]` (a test module, or a single test-only item).
fn wall_clock_lines(source: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let trimmed = lines[index].trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            index = end_of_item(&lines, index + 1);
            continue;
        }
        if !trimmed.starts_with("//") && WALL_CLOCK.iter().any(|p| trimmed.contains(p)) {
            found.push((index + 1, lines[index].trim().to_string()));
        }
        index += 1;
    }
    found
}

/// The index after the item starting at `start` (attributes, then a braced block or a line
/// ending in `;`).
fn end_of_item(lines: &[&str], start: usize) -> usize {
    let mut depth: i64 = 0;
    let mut opened = false;
    for (offset, line) in lines[start..].iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for c in code.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let trimmed = code.trim();
        let done = if opened {
            depth <= 0
        } else {
            !trimmed.starts_with("#[") && trimmed.ends_with(';')
        };
        if done {
            return start + offset + 1;
        }
    }
    lines.len()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn allowed(relative: &str) -> bool {
    ALLOWED.iter().any(|(path, reason)| {
        assert!(!reason.is_empty(), "{path} needs a reason");
        if path.ends_with('/') {
            relative.starts_with(path)
        } else {
            relative == *path
        }
    })
}

/// Lines of a SQL migration that read the database's clock (comments skipped).
fn sql_wall_clock_lines(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("--"))
        .filter(|(_, line)| {
            let lower = line.to_lowercase();
            SQL_WALL_CLOCK.iter().any(|p| lower.contains(p))
        })
        .map(|(index, line)| (index + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn no_migration_reads_the_database_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut offenders = Vec::new();
    let mut read = 0;
    for backend in ["sqlite", "postgres"] {
        let dir = root.join("crates/store/migrations").join(backend);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            read += 1;
            for (line, text) in sql_wall_clock_lines(&source) {
                offenders.push(format!("{}:{line}: {text}", path.display()));
            }
        }
    }
    assert!(read >= 2, "no migrations found");
    assert!(
        offenders.is_empty(),
        "a migration reads the database's clock; times come from the application's clock:\n{}",
        offenders.join("\n")
    );
    assert_eq!(
        sql_wall_clock_lines(
            "-- now() in a comment\nCREATE TABLE t (at TIMESTAMPTZ DEFAULT now());"
        ),
        vec![(
            2,
            "CREATE TABLE t (at TIMESTAMPTZ DEFAULT now());".to_string()
        )]
    );
}

#[test]
fn nothing_outside_the_clock_reads_the_wall_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if allowed(&relative) {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        for (line, text) in wall_clock_lines(&source) {
            offenders.push(format!("{relative}:{line}: {text}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "the wall clock is read outside the clock (take the time from the engine's or the \
         simulator's Clock instead, or add the file to ALLOWED with a reason):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scan_finds_product_code_and_skips_tests_and_comments() {
    let source = r#"
use chrono::Utc;
// Utc::now() in a comment is no read.
fn stamp() -> i64 {
    Utc::now().timestamp()
}
#[cfg(test)]
fn only_in_tests() -> std::time::SystemTime { std::time::SystemTime::now() }
#[cfg(test)]
mod tests {
    #[test]
    fn t() {
        let _ = chrono::Utc::now();
        if true { let _ = chrono::Local::now(); }
    }
}
fn after_the_tests() {
    let _ = std::time::SystemTime::now();
    let _ = std::time::Instant::now();
}
"#;
    let found: Vec<usize> = wall_clock_lines(source)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    assert_eq!(found, vec![5, 18]);
    assert!(allowed("crates/domain/src/clock.rs"));
    assert!(allowed("crates/bench/src/preload.rs"));
    assert!(!allowed("crates/engine/src/dispatch.rs"));
}
