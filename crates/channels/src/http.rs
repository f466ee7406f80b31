//! Shared HTTP plumbing for the connectors: configuration, signed requests, bounded reads, and
//! how transport failures map onto [`ConnectorError`].
//!
//! The mapping is the heart of the unknown-outcome rule: a failure **before** anything was
//! sent (connection refused, bad URL) is [`ConnectorError::Transient`] — resending cannot
//! double-pay; any failure **after** the request may have left (timeout, reset, garbled
//! answer) is [`ConnectorError::Unknown`] — query first.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connector::ConnectorError;
use crate::signing;

/// Default whole-request timeout: long enough for a busy channel, short enough that a worker
/// does not hold a refund for minutes.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Largest answer read from a channel; anything bigger is not a refund answer.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Longest refund number the channels accept (WeChat Pay's `out_refund_no` limit).
pub const MAX_REFUND_NUMBER_CHARS: usize = 64;

/// How many `source()` levels an error message reports.
const MAX_ERROR_CHAIN: usize = 8;

/// How to reach one channel.
#[derive(Clone)]
pub struct ConnectorConfig {
    /// E.g. `http://127.0.0.1:7301` for a simulator; paths are appended to it.
    pub base_url: String,
    /// Shared secret: signs every request and verifies every callback.
    pub secret: String,
    /// Whole-request timeout; when it fires the outcome is unknown.
    pub timeout: Duration,
    /// Where the channel should send callbacks; `None` leaves it to the channel's settings.
    pub notify_url: Option<String>,
    /// Certificates trusted besides the system's roots (`--ca-file`).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl ConnectorConfig {
    pub fn new(base_url: impl Into<String>, secret: impl Into<String>) -> Self {
        ConnectorConfig {
            base_url: base_url.into(),
            secret: secret.into(),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            notify_url: None,
            extra_roots: Vec::new(),
        }
    }

    pub fn with_extra_roots(mut self, roots: Vec<reqwest::Certificate>) -> Self {
        self.extra_roots = roots;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_notify_url(mut self, notify_url: impl Into<String>) -> Self {
        self.notify_url = Some(notify_url.into());
        self
    }
}

impl std::fmt::Debug for ConnectorConfig {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("base_url", &self.base_url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("notify_url", &self.notify_url)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

/// A connector could not be built (the HTTP client refused its settings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build connector: {0}")]
pub struct ConnectorBuildError(pub String);

/// Reads `--ca-file`: one or more PEM certificates trusted for outgoing HTTPS besides the
/// system's roots. A file with no certificate is an error, not a silent no-op.
pub fn load_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

/// A channel's raw answer.
#[derive(Debug, Clone)]
pub(crate) struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An HTTP client that signs every request with the channel's secret.
pub(crate) struct SignedClient {
    client: reqwest::Client,
    config: ConnectorConfig,
    signature_header: &'static str,
    label: &'static str,
}

impl SignedClient {
    pub fn new(
        config: ConnectorConfig,
        signature_header: &'static str,
        label: &'static str,
    ) -> Result<Self, ConnectorBuildError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .tls_certs_merge(config.extra_roots.iter().cloned())
            .build()
            .map_err(|error| ConnectorBuildError(error.to_string()))?;
        Ok(SignedClient {
            client,
            config,
            signature_header,
            label,
        })
    }

    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    pub async fn post_json<T: Serialize>(
        &self,
        path: &str,
        payload: &T,
    ) -> Result<HttpReply, ConnectorError> {
        let body = serde_json::to_vec(payload).map_err(|error| {
            ConnectorError::Final(format!("cannot encode {} request: {error}", self.label))
        })?;
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn get(&self, path: &str) -> Result<HttpReply, ConnectorError> {
        self.send(reqwest::Method::GET, path, Vec::new()).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<HttpReply, ConnectorError> {
        let message = signing::request_message(method.as_str(), path, &body);
        let signature = signing::sign(
            self.config.secret.as_bytes(),
            signing::transport_now_unix(),
            &message,
        )
        .map_err(|error| {
            ConnectorError::Transient(format!("cannot sign {} request: {error}", self.label))
        })?;
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut builder = self
            .client
            .request(method, url)
            .header(self.signature_header, signature);
        if !body.is_empty() {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|error| transport_error(self.label, &error))?;
        let status = response.status().as_u16();
        let body = read_limited(self.label, &mut response).await?;
        Ok(HttpReply { status, body })
    }
}

async fn read_limited(
    label: &str,
    response: &mut reqwest::Response,
) -> Result<Vec<u8>, ConnectorError> {
    let mut body = Vec::new();
    // Bounded by MAX_RESPONSE_BYTES and by the client's whole-request timeout.
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport_error(label, &error))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ConnectorError::Unknown(format!(
                "{label} answered more than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a transport failure: refused before sending → transient; anything after → unknown.
pub fn transport_error(label: &str, error: &reqwest::Error) -> ConnectorError {
    let detail = error_chain(error);
    if error.is_timeout() {
        // Also covers a connect timeout: we cannot tell it apart reliably, and querying
        // first is always safe.
        ConnectorError::Unknown(format!("{label} did not answer in time: {detail}"))
    } else if error.is_connect() || error.is_builder() {
        ConnectorError::Transient(format!("{label} not reached, nothing sent: {detail}"))
    } else {
        ConnectorError::Unknown(format!("{label} connection failed after sending: {detail}"))
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    for _ in 0..MAX_ERROR_CHAIN {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Decodes a channel's JSON answer; an unreadable answer to a sent request is unknown.
pub(crate) fn decode<T: DeserializeOwned>(
    label: &str,
    reply: &HttpReply,
) -> Result<T, ConnectorError> {
    serde_json::from_slice(&reply.body).map_err(|error| {
        ConnectorError::Unknown(format!(
            "{label} answered HTTP {} with an unreadable body: {error}",
            reply.status
        ))
    })
}

/// Refuses, before anything is sent, a refund this connector does not carry (`label` names
/// the channel in the message) or whose refund number the channels would reject.
pub(crate) fn check_routed(
    request: &crate::connector::RefundRequest,
    carried: bool,
    label: &str,
) -> Result<(), ConnectorError> {
    if !carried {
        return Err(ConnectorError::Final(format!(
            "a {} refund cannot go through {label}",
            request.channel
        )));
    }
    check_refund_number(&request.refund_id)
}

/// The refund id is the channel's refund number and goes into URL paths: keep it to the
/// characters every channel accepts, so nothing needs escaping.
pub(crate) fn check_refund_number(refund_id: &str) -> Result<(), ConnectorError> {
    let usable = !refund_id.is_empty()
        && refund_id.len() <= MAX_REFUND_NUMBER_CHARS
        && refund_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if usable {
        Ok(())
    } else {
        Err(ConnectorError::Final(format!(
            "refund id {refund_id:?} is not usable as a channel refund number \
             (1–{MAX_REFUND_NUMBER_CHARS} of A–Z, a–z, 0–9, '_', '-')"
        )))
    }
}

/// The shared "credentials rejected" answer to HTTP 401.
pub(crate) fn credentials_rejected(label: &str) -> ConnectorError {
    ConnectorError::Final(format!(
        "credentials rejected by {label}: check the connector's secret"
    ))
}

/// Verifies a callback's signature header with the default skew.
pub(crate) fn verify_callback(
    secret: &str,
    headers: &[(String, String)],
    header_name: &str,
    body: &[u8],
) -> Result<(), crate::connector::CallbackError> {
    use crate::connector::CallbackError;
    let header = signing::find_header(headers, header_name)
        .ok_or_else(|| CallbackError(format!("missing {header_name} header")))?;
    signing::verify(
        secret.as_bytes(),
        header,
        body,
        signing::transport_now_unix(),
        signing::DEFAULT_MAX_SKEW_SECS,
    )
    .map(|_| ())
    .map_err(|error| CallbackError(error.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn refund_numbers() {
        assert!(check_refund_number("rf_01JABCDEF-x").is_ok());
        for bad in ["", "rf/1", "rf 1", "rf?x", "退款", &"a".repeat(65)] {
            assert!(
                matches!(check_refund_number(bad), Err(ConnectorError::Final(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = ConnectorConfig::new("http://x", "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
