//! The public lookup's per-address limit through the real binary: the client is the TCP
//! peer, and a forwarding header counts only when the peer is a `--trusted-proxy`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Options, Server};

/// `PUBLIC_REQUESTS_PER_MINUTE` of the web crate; a token may refill while the test runs.
const BURST: usize = 30;

/// One lookup (of a refund that does not exist) with optional forwarding headers:
/// `(status, Retry-After)`.
async fn lookup(server: &Server, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut req = server
        .http
        .get(server.url("/v1/public/refunds/NO-SUCH-1?phone_last4=0403"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = req.send().await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), retry_after)
}

/// Lookups until the first 429; returns how many were answered before it.
async fn exhaust(server: &Server, headers: &[(&str, &str)]) -> usize {
    for answered in 0..BURST + 5 {
        let (status, retry_after) = lookup(server, headers).await;
        if status == 429 {
            let seconds: u64 = retry_after
                .expect("a 429 without Retry-After")
                .parse()
                .unwrap();
            assert!((1..=60).contains(&seconds), "{seconds}");
            return answered;
        }
        assert_eq!(status, 404);
    }
    panic!("never limited after {} lookups", BURST + 5);
}

#[tokio::test]
async fn without_a_trusted_proxy_forwarded_headers_do_not_buy_new_buckets() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    // A client that makes up a new X-Forwarded-For per request is still one client.
    let mut answered = 0;
    let mut limited = false;
    for n in 0..BURST + 5 {
        let forwarded = format!("198.51.100.{n}");
        let (status, _) = lookup(
            &server,
            &[
                ("x-forwarded-for", &forwarded),
                ("forwarded", &format!("for={forwarded}")),
            ],
        )
        .await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 404);
        answered += 1;
    }
    assert!(limited, "spoofed X-Forwarded-For escaped the limit");
    assert!((BURST..=BURST + 2).contains(&answered), "{answered}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            args: vec!["--trusted-proxy".into(), "127.0.0.1,10.0.0.0/8".into()],
            ..Default::default()
        },
    );
    let first = [("x-forwarded-for", "198.51.100.1")];
    let answered = exhaust(&server, &first).await;
    assert!((BURST..=BURST + 2).contains(&answered), "{answered}");
    // Another client behind the same proxy, by either header, and the proxy itself, are not
    // limited by the first client's requests.
    assert_eq!(
        lookup(&server, &[("x-forwarded-for", "198.51.100.2")])
            .await
            .0,
        404
    );
    assert_eq!(
        lookup(&server, &[("forwarded", "for=\"[2001:db8::1]:4711\"")])
            .await
            .0,
        404
    );
    assert_eq!(lookup(&server, &[]).await.0, 404);
    // The first client stays limited, also through a second trusted hop.
    assert_eq!(
        lookup(&server, &[("x-forwarded-for", "198.51.100.1, 10.1.2.3")])
            .await
            .0,
        429
    );
}

#[tokio::test]
async fn a_bad_trusted_proxy_is_refused_at_start() {
    let dir = common::data_dir();
    let output = common::command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("YUANLU_TRUSTED_PROXY", "proxy.internal")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trusted-proxy"), "{stderr}");
}

/// Wrong references lock one refund's lookup (429 with Retry-After, even for the right
/// reference), and the lock outlives a restart: it is kept in the database.
#[tokio::test]
async fn wrong_facts_lock_a_refund_across_a_restart() {
    let dir = common::data_dir();
    let mut server = Server::start(dir.path());
    let (_, key) = server.merchant("Lock Tea").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap();
    let refund = server.refund(&key, payment_id, 100, "LOCK-1").await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    let refund_id = refund.str("id");
    let by_id =
        |reference: &str| format!("/v1/public/refunds/by-id/{refund_id}?reference={reference}");
    let get = |server: &Server, path: String| {
        let request = server.http.get(server.url(&path));
        async move {
            let response = request.send().await.unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    };
    assert_eq!(get(&server, by_id(payment_id)).await.0, 200);
    for n in 0..5 {
        let (status, _, body) = get(&server, by_id(&format!("pay_wrong{n}"))).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, retry_after, body) = get(&server, by_id(payment_id)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=3_600).contains(&seconds), "{seconds}");
    server.kill();
    let server = Server::start(dir.path());
    let (status, _, body) = get(&server, by_id(payment_id)).await;
    assert_eq!(status, 429, "the lock did not survive a restart: {body}");
}
