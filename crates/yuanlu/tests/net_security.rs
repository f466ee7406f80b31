//! Network-facing guards through the real binary: `GET /metrics` (admin key on the main
//! listener, open on `--metrics-listen`) and the webhook address policy at the API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Options, PgSchema, Server};
use reqwest::Method;
use serde_json::json;

/// How long a queued refund may take to reach the in-process simulator and back.
const FLOW_DEADLINE: Duration = Duration::from_secs(30);

/// Polls the refund (the dispatch workers run on their own) until it is final.
async fn until_final(server: &Server, key: &str, refund_id: &str) -> String {
    let started = Instant::now();
    loop {
        let r = server.get(&format!("/v1/refunds/{refund_id}"), key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let status = r.str("status");
        if ["succeeded", "failed", "abnormal"].contains(&status.as_str()) {
            return status;
        }
        assert!(
            started.elapsed() < FLOW_DEADLINE,
            "refund still {status} after {FLOW_DEADLINE:?}: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the series written exactly as `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

async fn scrape(server: &Server, key: Option<&str>) -> (u16, String, String) {
    let r = server.call(Method::GET, "/metrics", key, None).await;
    (r.status, r.content_type, r.text)
}

async fn metrics_after_one_refund(options: &Options) {
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), options);
    let (_, key) = server.merchant("Metrics Tea House").await;

    // Guarded on the main listener: no key, a merchant key → refused.
    let (status, _, text) = scrape(&server, None).await;
    assert_eq!(status, 401, "{text}");
    let (status, _, text) = scrape(&server, Some(&key)).await;
    assert_eq!(status, 403, "{text}");

    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap();
    let refund = server.refund(&key, payment_id, 1_000, "M-1").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let refund_id = refund.str("id");
    assert_eq!(until_final(&server, &key, &refund_id).await, "succeeded");

    let (status, content_type, text) = scrape(&server, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect(
        r#"yuanlu_refunds{status="succeeded",channel="wechat"}"#,
        1.0,
    );
    expect(r#"yuanlu_refunds{status="queued",channel="wechat"}"#, 0.0);
    expect(
        r#"yuanlu_refunds{status="succeeded",channel="alipay"}"#,
        0.0,
    );
    expect(r#"yuanlu_dispatch_attempts_total{channel="wechat"}"#, 1.0);
    expect(
        r#"yuanlu_dispatch_outcomes_total{channel="wechat",outcome="succeeded"}"#,
        1.0,
    );
    expect("yuanlu_dispatch_queue_depth", 0.0);
    expect("yuanlu_refunds_overdue", 0.0);
    expect("yuanlu_refunds_abnormal", 0.0);
    // Latency by route template, never by raw path.
    expect(
        r#"yuanlu_http_request_duration_seconds_count{method="POST",route="/v1/refunds",status="201"}"#,
        1.0,
    );
    assert!(
        sample(
            &text,
            r#"yuanlu_http_request_duration_seconds_count{method="GET",route="/v1/refunds/{id}",status="200"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        text.contains(r#"yuanlu_http_request_duration_seconds_bucket{method="POST",route="/v1/refunds",status="201",le="0.1"}"#),
        "{text}"
    );
    assert!(
        !text.contains(&refund_id),
        "raw paths leak into labels: {text}"
    );
    assert!(
        sample(&text, "yuanlu_db_pool_connections").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "yuanlu_db_pool_idle_connections").is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, "yuanlu_db_pool_max_connections"),
        Some(16.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_need_the_admin_key_and_count_a_refund_that_flowed_sqlite() {
    metrics_after_one_refund(&Options::default()).await;
}

#[tokio::test]
async fn metrics_need_the_admin_key_and_count_a_refund_that_flowed_postgres() {
    let Some(schema) = PgSchema::create("metrics_postgres").await else {
        return;
    };
    let options = Options {
        database_url: Some(schema.url()),
        ..Options::default()
    };
    metrics_after_one_refund(&options).await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn metrics_listen_serves_metrics_without_a_key() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
            ..Options::default()
        },
    );
    let base = server
        .startup_output
        .lines()
        .find_map(|l| l.strip_prefix("metrics on "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics line in:\n{}", server.startup_output))
        .to_string();
    let r = server.http.get(&base).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            r#"yuanlu_refunds{status="succeeded",channel="wechat"}"#
        ),
        Some(0.0),
        "{text}"
    );
    // Only /metrics lives there: the API is not reachable through it.
    let other = base.replace("/metrics", "/v1/merchants");
    let r = server.http.get(&other).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The main listener still wants the key.
    let (status, _, _) = scrape(&server, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn webhook_urls_into_the_servers_network_are_refused_at_the_api() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    let (merchant_id, key) = server.merchant("SSRF Noodles").await;
    let path = format!("/v1/merchants/{merchant_id}/webhook");
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/v1/admin",
        "http://10.0.0.5/hooks",
        "http://[::1]/hooks",
        "http://localhost/hooks",
    ] {
        let r = server
            .call(Method::PUT, &path, Some(&key), Some(&json!({ "url": url })))
            .await;
        r.assert_problem(400, "webhook_url_not_allowed", url);
        assert_eq!(r.body["field"], json!("url"), "{}", r.text);
    }
    let r = server
        .call(
            Method::PUT,
            &path,
            Some(&key),
            Some(&json!({ "url": "https://8.8.8.8/hooks" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // On-premise receivers: the flag lets private targets through.
    let dir = common::data_dir();
    let open = Server::start_with(
        dir.path(),
        &Options {
            args: vec!["--allow-private-webhooks".into()],
            ..Options::default()
        },
    );
    let (merchant_id, key) = open.merchant("On-prem Noodles").await;
    let r = open
        .call(
            Method::PUT,
            &format!("/v1/merchants/{merchant_id}/webhook"),
            Some(&key),
            Some(&json!({ "url": "http://10.0.0.5/hooks" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The server's own certificate file, as PostgreSQL names it (`None` if not readable here).
async fn postgres_certificate(url: &str) -> Option<Vec<u8>> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let file: String = sqlx::query_scalar("SELECT current_setting('ssl_cert_file')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    std::fs::read(file).ok()
}

#[tokio::test]
async fn serve_verifies_postgresql_against_the_ca_file() {
    let Some(schema) = PgSchema::create("tls_postgres").await else {
        return;
    };
    let Some(certificate) = postgres_certificate(&schema.base_url).await else {
        eprintln!("skipped: the server's certificate is not readable here");
        schema.drop_schema().await;
        return;
    };
    let dir = common::data_dir();
    let ca_file = dir.path().join("postgres-ca.pem");
    std::fs::write(&ca_file, certificate).unwrap();
    {
        let server = Server::start_with(
            &dir.path().join("data"),
            &Options {
                database_url: Some(format!("{}&sslmode=verify-ca", schema.url())),
                args: vec!["--ca-file".into(), ca_file.display().to_string()],
                ..Options::default()
            },
        );
        let (merchant_id, _) = server.merchant("TLS Dumplings").await;
        assert!(merchant_id.starts_with("mch_"));
        let health = server.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status, 200, "{}", health.text);
    }
    schema.drop_schema().await;
}
