//! The in-process simulators through the real binary: they run on the server's clock (a
//! simulated clock reaches the channel's success time and the expected arrival), their books
//! answer only the simulator secret or the admin key and hold no full account number, and
//! they are not mounted at all once a real channel is configured. A reroute to a bank account
//! reaches them with the number whole (they refuse a masked one), sealed in between under the
//! account key; on PostgreSQL with no key such a reroute is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{ADMIN_KEY, Options, PgSchema, Server, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

const SIMULATED_AT: &str = "2026-09-29T02:00:00Z";
// A failure guard only: every step normally takes tenths of a second (`fast_dispatch`).
const WAIT_AT_MOST: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_millis(50);
const FULL_NUMBER: &str = "6222021234567890";
const MASKED: &str = "6222********7890";

/// A merchant that refunds without review, and a credit-card payment of 100 CNY.
async fn shop_with_card_payment(server: &Server) -> (String, String) {
    let (_, key) = server
        .merchant_with(json!({ "name": "Mid-Autumn Mooncakes", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "credit_card", "amount": 10_000, "currency": "CNY", "payer": { "card_last4": "0403", "bank": "招商银行" } }),
        )
        .await;
    (key, payment["id"].as_str().unwrap().to_string())
}

/// `extra` plus short dispatch delays: the refund's steps follow each other in tenths of a
/// second instead of the production defaults (a 30 s first query), so the waits below stay
/// far from their deadline on a loaded machine.
fn fast_dispatch(extra: &[&str]) -> Vec<String> {
    let delays = ["--dispatch-retry-ms", "100", "--dispatch-poll-ms", "200"];
    extra
        .iter()
        .chain(delays.iter())
        .map(|s| s.to_string())
        .collect()
}

/// Polls the refund until it has `status` (it only moves forward), or fails at the deadline.
async fn wait_for_status(server: &Server, key: &str, id: &str, status: &str) -> Value {
    let started = Instant::now();
    let mut tick = tokio::time::interval(POLL_EVERY);
    loop {
        tick.tick().await;
        let refund = server.get(&format!("/v1/refunds/{id}"), key).await;
        assert_eq!(refund.status, 200, "{}", refund.text);
        if refund.str("status") == status {
            return refund.body;
        }
        assert!(
            started.elapsed() < WAIT_AT_MOST,
            "refund {id} never reached {status}: {}\n{}",
            refund.text,
            server.stderr()
        );
    }
}

/// The `n`-th business day after `after`, as `yuanlu calendar` prints the calendar.
fn nth_business_day_after(after: &str, n: usize) -> String {
    let output = common::command()
        .args(["calendar", "--from", after, "--to", "2026-10-31"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .filter(|line| line.contains("workday") && !line.starts_with(after))
        .nth(n - 1)
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_card_refund_on_the_simulated_clock_is_expected_after_the_national_day_holidays() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            clock: Some(format!("simulated={SIMULATED_AT}")),
            ..Options::default()
        },
    );
    let (key, payment_id) = shop_with_card_payment(&server).await;
    let refund = server
        .refund(&key, &payment_id, 3_000, "NATIONAL-DAY-1")
        .await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    assert_eq!(refund.str("type"), "refund", "{}", refund.text);
    let id = refund.str("id");
    let done = wait_for_status(&server, &key, &id, "succeeded").await;

    // Accepted on Tue 2026-09-29 (Shanghai). Cards: by the end of the 3rd business day
    // after: Wed 09-30, then 国庆节 Oct 1–7 off, Thu 10-08, Fri 10-09.
    assert_eq!(nth_business_day_after("2026-09-29", 3), "2026-10-09");
    let expected: DateTime<Utc> = done["expected_arrival_by"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expected,
        "2026-10-09T15:59:59.999999Z"
            .parse::<DateTime<Utc>>()
            .unwrap(),
        "{done}"
    );

    // The channel paid it at the simulated instant (the clock stands still).
    let books = server.get("/sim/card/sim/books", ADMIN_KEY).await;
    assert_eq!(books.status, 200, "{}", books.text);
    let entry = books.body["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["refund_no"] == json!(id))
        .unwrap()
        .clone();
    let at: DateTime<Utc> = SIMULATED_AT.parse().unwrap();
    for field in ["created_at", "succeeded_at"] {
        let time: DateTime<Utc> = entry[field].as_str().unwrap().parse().unwrap();
        assert_eq!(time, at, "{field}: {entry}");
    }
    // Every timeline entry is of the simulated day too.
    for event in done["timeline"].as_array().unwrap() {
        let time: DateTime<Utc> = event["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(time, at, "{event}");
    }
}

#[tokio::test]
async fn the_in_process_books_answer_only_the_admin_key_and_hold_no_full_account_number() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            args: fast_dispatch(&["--sim-faults", "abnormal=1"]),
            ..Options::default()
        },
    );
    let (key, payment_id) = shop_with_card_payment(&server).await;
    for path in [
        "/sim/card/sim/books",
        "/sim/wechat/sim/books",
        "/sim/alipay/sim/statement?date=2026-09-29",
        "/sim/card/sim/statement/injected",
    ] {
        for (bearer, who) in [
            (None, "no key"),
            (Some(key.as_str()), "a merchant key"),
            (Some("sim_not-the-secret"), "a wrong key"),
        ] {
            server
                .call(Method::GET, path, bearer, None)
                .await
                .assert_problem(401, "unauthorized", &format!("{path} with {who}"));
        }
        let allowed = server.get(path, ADMIN_KEY).await;
        assert_eq!(allowed.status, 200, "{path}: {}", allowed.text);
    }

    let refund = server.refund(&key, &payment_id, 3_000, "REROUTE-1").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let id = refund.str("id");
    wait_for_status(&server, &key, &id, "abnormal").await;
    let rerouted = server
        .post(
            &format!("/v1/refunds/{id}/reroute"),
            ADMIN_KEY,
            &json!({ "to": "bank_account", "account": { "number": FULL_NUMBER, "bank": "工商银行" } }),
        )
        .await;
    assert_eq!(rerouted.status, 200, "{}", rerouted.text);
    // The simulator refuses a masked account number for good (the refund would fail): a
    // success means the request carried the number whole.
    let done = wait_for_status(&server, &key, &id, "succeeded").await;
    assert!(!done.to_string().contains(FULL_NUMBER), "{done}");
    let books = server.get("/sim/card/sim/books", ADMIN_KEY).await;
    assert!(books.text.contains(MASKED), "{}", books.text);
    assert!(!books.text.contains(FULL_NUMBER), "{}", books.text);
    // The key that sealed it meanwhile: generated into the data dir, the owner's only.
    let key_file = dir.path().join("account.key");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key_text.trim().len(), 64, "{key_text}");
    assert!(key_text.trim().chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn on_postgresql_without_an_account_key_a_reroute_to_a_bank_account_is_refused() {
    const TEST: &str =
        "on_postgresql_without_an_account_key_a_reroute_to_a_bank_account_is_refused";
    let Some(schema) = PgSchema::create(TEST).await else {
        return;
    };
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            database_url: Some(schema.url()),
            args: fast_dispatch(&["--sim-faults", "abnormal=1"]),
            ..Options::default()
        },
    );
    let (key, payment_id) = shop_with_card_payment(&server).await;
    let refund = server.refund(&key, &payment_id, 3_000, "REROUTE-PG").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let id = refund.str("id");
    wait_for_status(&server, &key, &id, "abnormal").await;
    let refused = server
        .post(
            &format!("/v1/refunds/{id}/reroute"),
            ADMIN_KEY,
            &json!({ "to": "bank_account", "account": { "number": FULL_NUMBER, "bank": "工商银行" } }),
        )
        .await;
    refused.assert_problem(409, "account_key_not_configured", "reroute without a key");
    assert!(
        refused.text.contains("YUANLU_ACCOUNT_KEY_FILE"),
        "{}",
        refused.text
    );
    assert!(
        !dir.path().join("account.key").exists(),
        "no key is made up for a shared database"
    );
    wait_for_status(&server, &key, &id, "abnormal").await;
    drop(server);
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_separate_simulator_answers_its_books_to_its_secret_only() {
    let dir = common::data_dir();
    let simulator = Simulator::start(dir.path(), "sim-secret-0123456789abcdef", "none");
    let url = format!("{}/card/sim/books", simulator.base);
    let refused = simulator.http.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let with_admin = simulator
        .http
        .get(&url)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_admin.status().as_u16(),
        401,
        "a separate simulator knows no admin key"
    );
    assert_eq!(simulator.books("card").await["paid_refunds"], json!(0));
}

fn real_channels(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .flat_map(|name| {
            let upper = name.to_uppercase();
            [
                (
                    format!("YUANLU_{upper}_URL"),
                    "http://127.0.0.1:9".to_string(),
                ),
                (
                    format!("YUANLU_{upper}_SECRET"),
                    "real-channel-secret-0123456789".to_string(),
                ),
            ]
        })
        .collect()
}

#[tokio::test]
async fn with_real_channels_the_simulators_are_not_mounted() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            env: real_channels(&["wechat", "alipay", "card"]),
            ..Options::default()
        },
    );
    for path in ["/sim/card/sim/books", "/sim/wechat/sim/statement"] {
        let answer = server.get(path, ADMIN_KEY).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
    }
    // A real channel with the others on nothing: refused at start, never a silent simulator.
    let partial = common::data_dir();
    let mut serve = common::command();
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(partial.path())
        .envs(real_channels(&["wechat"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = tokio::process::Command::from(serve)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It must exit by itself; a server that started anyway is killed (dropped) and fails.
    let output = tokio::time::timeout(WAIT_AT_MOST, child.wait_with_output())
        .await
        .expect("serve with one real channel and no simulator kept running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("real channel is configured"), "{stderr}");
}
