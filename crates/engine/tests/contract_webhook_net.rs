//! Where webhooks may go (SSRF policy) and how they get there (HTTPS with an extra CA):
//! every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::notify::{OutboxQuery, SetWebhook, enqueue_refund_event};
use yuanlu_engine::webhook_net::WebhookNetwork;
use yuanlu_engine::{Engine, EngineError};

use common::Harness;

fn merchant_id(who: &Principal) -> String {
    who.merchant_scope().unwrap().to_string()
}

/// An engine on the harness's database and clock with another webhook policy.
fn engine_with(h: &Harness, allow_private: bool, roots: Vec<reqwest::Certificate>) -> Engine {
    h.engine
        .clone()
        .with_webhook_network(WebhookNetwork::new(allow_private, roots))
}

async fn set(engine: &Engine, who: &Principal, url: &str) -> Result<(), EngineError> {
    engine
        .set_webhook(who, &merchant_id(who), SetWebhook { url: url.into() })
        .await
        .map(|_| ())
}

/// A refund of the merchant with one `refund.succeeded` event in the outbox; its id.
async fn one_event(h: &Harness, who: &Principal) -> String {
    let payment = h
        .payment(who, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    let refund = h
        .refund(
            who,
            json!({ "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel",
                    "merchant_refund_no": "net-1" }),
        )
        .await;
    let row = {
        let mut pooled = h.engine.db.acquire().await.unwrap();
        pooled
            .conn()
            .get_refund(None, &refund.id)
            .await
            .unwrap()
            .unwrap()
    };
    let mut tx = h.engine.db.begin().await.unwrap();
    enqueue_refund_event(
        &mut tx.conn(),
        &row,
        "refund.succeeded",
        h.clock_now().timestamp_micros(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    h.fetch_text(&format!(
        "SELECT id FROM webhook_outbox WHERE refund_id = '{}' AND event_type = 'refund.succeeded'",
        refund.id
    ))
    .await
}

/// Webhook events of the merchant (each refund writes several).
async fn events(h: &Harness, who: &Principal) -> usize {
    h.fetch_text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox WHERE merchant_id = '{}'",
        merchant_id(who)
    ))
    .await
    .parse()
    .unwrap()
}

/// The delivery as the merchant sees it: `(status, last_error)`.
async fn delivery(engine: &Engine, who: &Principal, event_id: &str) -> (String, Option<String>) {
    let page = engine
        .list_webhook_deliveries(
            who,
            OutboxQuery {
                limit: 100,
                ..OutboxQuery::default()
            },
        )
        .await
        .unwrap();
    let found = page.data.into_iter().find(|d| d.id == event_id).unwrap();
    (found.status, found.last_error)
}

/// A plain-TCP HTTP/1.1 receiver on 127.0.0.1 that answers 200 and counts requests.
async fn plain_receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if answer_one(stream).await {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (port, count)
}

/// Reads one request (headers and a `Content-Length` body) and answers 200; true if a
/// whole request arrived.
async fn answer_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    stream.write_all(answer).await.is_ok() && stream.shutdown().await.is_ok()
}

// --- set time --------------------------------------------------------------------------------

contract!(webhook_urls_into_the_servers_own_network_are_refused, |h| {
    let strict = engine_with(&h, false, Vec::new());
    let shop = h.merchant().await;
    for url in [
        "http://127.0.0.1:8080/hooks",
        "http://10.1.2.3/hooks",
        "http://172.16.0.1/hooks",
        "http://172.31.255.254/hooks",
        "http://192.168.1.1/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hooks",
        "http://0.0.0.0/hooks",
        "http://224.0.0.1/hooks",
        "http://255.255.255.255/hooks",
        "http://2130706433/hooks",
        "http://[::1]/hooks",
        "http://[::]/hooks",
        "http://[fc00::1]/hooks",
        "http://[fd12:3456::1]/hooks",
        "http://[fe80::1]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://localhost:8080/hooks",
    ] {
        let error = set(&strict, &shop, url).await.unwrap_err();
        assert_eq!(error.code(), "webhook_url_not_allowed", "{url}");
        // The refusal names no address the server resolved.
        assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    }
    // Nothing was stored.
    assert_eq!(
        h.fetch_text(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM merchant_webhooks WHERE merchant_id = '{}'",
            merchant_id(&shop)
        ))
        .await,
        "0"
    );
    // A public address is accepted; with the flag, so is loopback.
    set(&strict, &shop, "https://8.8.8.8/hooks").await.unwrap();
    set(&h.engine, &shop, "http://127.0.0.1:8080/hooks")
        .await
        .unwrap();
});

// --- delivery time -------------------------------------------------------------------------

contract!(delivery_refuses_a_host_that_resolves_to_loopback, |h| {
    let (port, received) = plain_receiver().await;
    let shop = h.merchant().await;
    // Set while private targets were allowed (or the name re-resolves later: rebinding).
    set(&h.engine, &shop, &format!("http://localhost:{port}/hooks"))
        .await
        .unwrap();
    let event_id = one_event(&h, &shop).await;

    let strict = engine_with(&h, false, Vec::new());
    strict.deliver_webhooks_once(50).await.unwrap();
    let (status, last_error) = delivery(&strict, &shop, &event_id).await;
    assert_eq!(status, "pending");
    assert_eq!(last_error.as_deref(), Some("address_not_allowed"));
    assert_eq!(received.load(Ordering::SeqCst), 0, "nothing was sent");

    // The same event goes out once private targets are allowed: the receiver is live.
    h.clock.advance(chrono::Duration::minutes(5));
    h.engine.deliver_webhooks_once(50).await.unwrap();
    assert_eq!(delivery(&h.engine, &shop, &event_id).await.0, "delivered");
    assert_eq!(received.load(Ordering::SeqCst), events(&h, &shop).await);
});

contract!(
    delivery_refuses_an_address_literal_that_is_not_public,
    |h| {
        let (port, received) = plain_receiver().await;
        let shop = h.merchant().await;
        set(&h.engine, &shop, &format!("http://127.0.0.1:{port}/hooks"))
            .await
            .unwrap();
        let event_id = one_event(&h, &shop).await;
        let strict = engine_with(&h, false, Vec::new());
        strict.deliver_webhooks_once(50).await.unwrap();
        let (_, last_error) = delivery(&strict, &shop, &event_id).await;
        assert_eq!(last_error.as_deref(), Some("address_not_allowed"));
        assert_eq!(received.load(Ordering::SeqCst), 0);
    }
);

contract!(delivery_errors_shown_to_merchants_name_no_address, |h| {
    // A port with nothing listening: the OS says "connection refused" to 127.0.0.1:PORT.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let shop = h.merchant().await;
    set(&h.engine, &shop, &format!("http://{closed}/hooks"))
        .await
        .unwrap();
    let event_id = one_event(&h, &shop).await;
    h.engine.deliver_webhooks_once(50).await.unwrap();
    let (_, last_error) = delivery(&h.engine, &shop, &event_id).await;
    let last_error = last_error.unwrap();
    assert_eq!(last_error, "unreachable");
    assert!(!last_error.contains("127.0.0.1") && !last_error.contains(&closed.port().to_string()));
});

// --- HTTPS -----------------------------------------------------------------------------------

/// A CA and a certificate for 127.0.0.1 and localhost issued by it, made now.
struct TestPki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "yuanlu test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![server_cert.der().clone(), ca_cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    }
}

/// An HTTPS receiver on 127.0.0.1 with the PKI's server certificate; counts requests.
async fn https_receiver(pki: &TestPki) -> (u16, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // An untrusting client aborts the handshake: nothing is counted.
                if let Ok(tls) = acceptor.accept(stream).await
                    && answer_one(tls).await
                {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (port, count)
}

contract!(
    webhooks_go_over_https_to_a_receiver_the_ca_file_trusts,
    |h| {
        let pki = test_pki();
        let (port, received) = https_receiver(&pki).await;
        let shop = h.merchant().await;
        set(&h.engine, &shop, &format!("https://127.0.0.1:{port}/hooks"))
            .await
            .unwrap();
        let event_id = one_event(&h, &shop).await;

        // Without the CA: the certificate is not trusted, nothing is delivered.
        let untrusting = engine_with(&h, true, Vec::new());
        untrusting.deliver_webhooks_once(50).await.unwrap();
        let (status, last_error) = delivery(&untrusting, &shop, &event_id).await;
        assert_eq!(status, "pending");
        assert_eq!(last_error.as_deref(), Some("tls_error"));
        assert_eq!(received.load(Ordering::SeqCst), 0);

        // With the CA file's certificates: delivered over TLS.
        let roots = reqwest::Certificate::from_pem_bundle(pki.ca_pem.as_bytes()).unwrap();
        let trusting = engine_with(&h, true, roots);
        h.clock.advance(chrono::Duration::minutes(5));
        trusting.deliver_webhooks_once(50).await.unwrap();
        let (status, _) = delivery(&trusting, &shop, &event_id).await;
        assert_eq!(status, "delivered");
        assert_eq!(received.load(Ordering::SeqCst), events(&h, &shop).await);
    }
);
