//! `yuanlu demo` and `yuanlu serve --demo` through the real binary: the demo's claims
//! checked over the API, and the same seed giving the same demo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{ADMIN_KEY, Options, Server, command};
use serde_json::Value;

/// Runs `yuanlu demo --days 3 --seed 7` into `dir`; its report without the timing line.
fn run_demo(dir: &Path) -> String {
    let output = command()
        .args(["demo", "--days", "3", "--seed", "7", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|line| !line.starts_with("demo finished in"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The business days among the `days` dates before `today` (`yuanlu calendar`).
fn business_days_before(today: chrono::NaiveDate, days: i64, dir: &Path) -> Vec<String> {
    let from = today - chrono::Duration::days(days);
    let to = today - chrono::Duration::days(1);
    let output = command()
        .args([
            "calendar",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.ends_with("workday"))
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn demo_fills_a_month_that_the_api_confirms_and_the_seed_repeats() {
    let root = tempfile::tempdir().unwrap();
    let (first, second) = (root.path().join("a"), root.path().join("b"));
    let report = run_demo(&first);
    assert_eq!(report, run_demo(&second), "the same seed gave another demo");
    assert!(report.contains("audit verify: ok"), "{report}");
    assert!(report.contains("ledger check: balanced"), "{report}");

    // Refused on a database that already holds data.
    let again = command()
        .args(["demo", "--days", "3", "--data-dir"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let server = Server::start_with(
        &first,
        &Options {
            args: vec!["--demo".to_string()],
            ..Options::default()
        },
    );
    let ledger = server.get("/v1/ledger/check", ADMIN_KEY).await;
    assert_eq!(
        ledger.body["balanced"],
        Value::Bool(true),
        "{:?}",
        ledger.body
    );
    assert!(ledger.body["merchants_checked"].as_i64().unwrap() >= 3);
    let audit = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], Value::Bool(true), "{:?}", audit.body);

    let count = |status: &'static str| {
        let server = &server;
        async move {
            let path = format!("/v1/refunds?status={status}&limit=100");
            let page = server.get(&path, ADMIN_KEY).await;
            page.body["data"].as_array().map_or(0, Vec::len)
        }
    };
    assert!(count("succeeded").await > 0);
    assert!(count("rejected").await > 0);
    assert!(count("pending_review").await + count("awaiting_return").await > 0);
    // Abnormal ones left to an operator, or rerouted to the merchant (failed at the channel).
    assert!(count("abnormal").await + count("failed").await > 0);

    // The server resumed the demo's clock: a statement for each past business day.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("demo.json")).unwrap()).unwrap();
    // Statements of the simulators reconciled, with the exceptions injected into them.
    let mut exceptions = 0;
    let recons = saved["reconciliations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(recons.len(), 3, "{saved:?}");
    for id in recons {
        let recon = server
            .get(
                &format!("/v1/reconciliations/{}", id.as_str().unwrap()),
                ADMIN_KEY,
            )
            .await;
        exceptions += recon.body["exceptions"].as_i64().unwrap();
    }
    assert!(exceptions > 0, "no reconciliation exception");
    let now = chrono::DateTime::parse_from_rfc3339(saved["now"].as_str().unwrap()).unwrap();
    let today = now
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    let days = business_days_before(today, 3, &first);
    for day in days {
        let page = server
            .get(&format!("/v1/settlements?business_date={day}"), ADMIN_KEY)
            .await;
        let statements = page.body["data"].as_array().map_or(0, Vec::len);
        assert!(
            statements >= 3,
            "{day}: {statements} statements: {:?}",
            page.body
        );
    }
}
