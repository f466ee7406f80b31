//! Connectors over HTTPS: a simulator behind a TLS front with a certificate made at test
//! time is reached only when its CA is trusted (`ConnectorConfig::with_extra_roots`, what
//! `--ca-file` feeds); without it nothing reaches the channel and the error is transient
//! (nothing was sent, so a resend is safe).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{ANSWER_TIMEOUT, SECRET, connector_with, request, start_sim};
use tokio::net::{TcpListener, TcpStream};
use yuanlu_channels::simulator::{FaultConfig, SimChannel};
use yuanlu_channels::{ChannelOutcome, ConnectorConfig, ConnectorError};

/// A CA's PEM, and a TLS acceptor for 127.0.0.1 with a certificate the CA issued.
fn tls_front() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "yuanlu channel test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (
        ca_cert.pem(),
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

/// Terminates TLS on 127.0.0.1 and forwards each connection to `backend` (plain HTTP);
/// counts the connections whose handshake passed.
async fn start_front(
    acceptor: tokio_rustls::TlsAcceptor,
    backend: String,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let passed = Arc::new(AtomicUsize::new(0));
    let counter = passed.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, backend, counter) = (acceptor.clone(), backend.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut plain = TcpStream::connect(backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (format!("https://{address}"), passed)
}

#[tokio::test]
async fn a_channel_behind_https_is_reached_only_with_its_ca_trusted() {
    let sim = start_sim(SimChannel::Wechat, FaultConfig::default()).await;
    let backend = sim.base_url.trim_start_matches("http://").to_string();
    let (ca_pem, acceptor) = tls_front();
    let (base, passed) = start_front(acceptor, backend).await;

    let untrusting = connector_with(
        SimChannel::Wechat,
        ConnectorConfig::new(&base, SECRET).with_timeout(ANSWER_TIMEOUT),
    );
    let refused = untrusting
        .execute(&request(SimChannel::Wechat, "rf_tls_1"))
        .await;
    assert!(
        matches!(&refused, Err(ConnectorError::Transient(m)) if m.contains("certificate")),
        "{refused:?}"
    );
    assert_eq!(passed.load(Ordering::SeqCst), 0);

    let roots = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).unwrap();
    let trusting = connector_with(
        SimChannel::Wechat,
        ConnectorConfig::new(&base, SECRET)
            .with_timeout(ANSWER_TIMEOUT)
            .with_extra_roots(roots),
    );
    let outcome = trusting
        .execute(&request(SimChannel::Wechat, "rf_tls_1"))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ChannelOutcome::Succeeded { .. } | ChannelOutcome::Processing { .. }
        ),
        "{outcome:?}"
    );
    assert!(passed.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_ca_file_without_certificates_is_an_error() {
    let dir = std::env::temp_dir().join(format!("yuanlu-ca-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    assert!(yuanlu_channels::http::load_ca_file(&empty).is_err());
    assert!(yuanlu_channels::http::load_ca_file(&dir.join("missing.pem")).is_err());
    let (ca_pem, _) = tls_front();
    let good = dir.join("ca.pem");
    std::fs::write(&good, ca_pem).unwrap();
    assert_eq!(yuanlu_channels::http::load_ca_file(&good).unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
