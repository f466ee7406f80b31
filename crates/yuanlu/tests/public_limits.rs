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
