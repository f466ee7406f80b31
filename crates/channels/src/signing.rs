//! HMAC-SHA256 signatures shared by the connectors and the simulators.
//!
//! A signature header reads `t=<unix seconds>,v1=<hex>`, where `v1` is
//! `HMAC-SHA256(secret, "<t>.<message>")` — the same scheme as yuanlu's own merchant
//! webhooks (`Yuanlu-Signature`). Several `v1=` parts may be given (a sender rotating its
//! secret); one matching is enough. The timestamp is bound into the MAC and checked against
//! a maximum clock skew, so a captured message cannot be replayed later.
//!
//! For requests the signed message is [`request_message`]: method, path and body, so a
//! signature cannot be moved from one endpoint to another.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use yuanlu_domain::clock::{Clock, SystemClock};

type HmacSha256 = Hmac<Sha256>;

/// Default tolerance between the signer's clock and ours.
pub const DEFAULT_MAX_SKEW_SECS: i64 = 300;

/// The time signature timestamps carry and are checked against: the **wall clock**, on
/// both sides, whatever clock the product runs on. A signature's `t=` only proves freshness
/// of a message in transit (against replay); it is no product time. The other end may be a
/// real channel or a separate `yuanlu simulate` process, each on real time, so a server under
/// `--clock simulated=2026-…` that signed with its simulated time would be refused by them
/// (and would refuse their callbacks). The in-process simulators sign and verify with this
/// same function, so they agree with the connectors however far the simulated clock moved.
pub fn transport_now_unix() -> i64 {
    SystemClock.now().timestamp()
}

/// Longest signature header we parse: a handful of `v1=` parts, never an unbounded string.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1_024;

/// Most comma-separated parts (`t=` plus `v1=`s) a header may carry.
pub const MAX_SIGNATURE_PARTS: usize = 8;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "signature timestamp {timestamp_unix} is more than {max_skew_secs} s from now ({now_unix})"
    )]
    Skew {
        timestamp_unix: i64,
        now_unix: i64,
        max_skew_secs: i64,
    },
    #[error("signature does not match")]
    Mismatch,
    #[error("secret unusable as an HMAC key")]
    BadKey,
}

fn mac_for(
    secret: &[u8],
    timestamp_unix: i64,
    message: &[u8],
) -> Result<HmacSha256, SignatureError> {
    // HMAC accepts keys of any length; the error branch exists only because the API is generic.
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::BadKey)?;
    mac.update(timestamp_unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(message);
    Ok(mac)
}

/// The hex MAC of `t.message`.
pub fn signature_hex(
    secret: &[u8],
    timestamp_unix: i64,
    message: &[u8],
) -> Result<String, SignatureError> {
    let mac = mac_for(secret, timestamp_unix, message)?;
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A full header value: `t=<unix>,v1=<hex>`.
pub fn sign(secret: &[u8], timestamp_unix: i64, message: &[u8]) -> Result<String, SignatureError> {
    let hex = signature_hex(secret, timestamp_unix, message)?;
    Ok(format!("t={timestamp_unix},v1={hex}"))
}

/// The parsed parts of a header, before any cryptography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp_unix: i64,
    pub v1: Vec<Vec<u8>>,
}

/// Parses `t=<unix>,v1=<hex>[,v1=<hex>…]`. Unknown parts (future versions) are ignored.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    if header.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(SignatureError::Malformed("header too long"));
    }
    let mut timestamp_unix = None;
    let mut v1 = Vec::new();
    for (index, part) in header.split(',').enumerate() {
        if index >= MAX_SIGNATURE_PARTS {
            return Err(SignatureError::Malformed("too many parts"));
        }
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("part without '='"))?;
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not a unix time"))?;
                if timestamp_unix.replace(t).is_some() {
                    return Err(SignatureError::Malformed("t given twice"));
                }
            }
            "v1" => {
                v1.push(hex::decode(value).map_err(|_| SignatureError::Malformed("v1 is not hex"))?)
            }
            _ => {}
        }
    }
    let timestamp_unix = timestamp_unix.ok_or(SignatureError::Malformed("no t="))?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed("no v1="));
    }
    Ok(SignatureHeader { timestamp_unix, v1 })
}

/// Verifies a header over `message`; returns the signed timestamp. The MAC comparison is
/// constant-time (`Mac::verify_slice`), so a forger learns nothing from response times.
pub fn verify(
    secret: &[u8],
    header: &str,
    message: &[u8],
    now_unix: i64,
    max_skew_secs: i64,
) -> Result<i64, SignatureError> {
    let parsed = parse_header(header)?;
    let skew_secs = now_unix
        .saturating_sub(parsed.timestamp_unix)
        .saturating_abs();
    if skew_secs > max_skew_secs {
        return Err(SignatureError::Skew {
            timestamp_unix: parsed.timestamp_unix,
            now_unix,
            max_skew_secs,
        });
    }
    let mac = mac_for(secret, parsed.timestamp_unix, message)?;
    let matched = parsed
        .v1
        .iter()
        .any(|tag| mac.clone().verify_slice(tag).is_ok());
    if matched {
        Ok(parsed.timestamp_unix)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The message signed for a request: `<METHOD> <path?query>\n<body>`. The path is the one
/// relative to the channel's base URL, so a simulator nested under a prefix still verifies.
pub fn request_message(method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(method.len() + path_and_query.len() + body.len() + 2);
    message.extend_from_slice(method.as_bytes());
    message.push(b' ');
    message.extend_from_slice(path_and_query.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message
}

/// Looks a header up by name, case-insensitively, in the `(name, value)` list callbacks carry.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sim-secret";
    const NOW: i64 = 1_760_000_000;

    #[test]
    fn sign_then_verify() {
        let header = sign(SECRET, NOW, b"{\"a\":1}").unwrap();
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(
            verify(SECRET, &header, b"{\"a\":1}", NOW + 10, 300),
            Ok(NOW)
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "1.x"), computed independently with Python's hmac module.
        assert_eq!(
            signature_hex(b"key", 1, b"x").unwrap(),
            "fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
    }

    #[test]
    fn tampered_body_wrong_secret_and_skew_are_refused() {
        let header = sign(SECRET, NOW, b"body").unwrap();
        assert_eq!(
            verify(SECRET, &header, b"bodY", NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, b"body", NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(SECRET, &header, b"body", NOW + 301, 300),
            Err(SignatureError::Skew { .. })
        ));
        assert!(matches!(
            verify(SECRET, &header, b"body", NOW - 301, 300),
            Err(SignatureError::Skew { .. })
        ));
    }

    #[test]
    fn rotated_secrets_any_v1_matches() {
        let good = signature_hex(SECRET, NOW, b"m").unwrap();
        let header = format!("t={NOW},v1={},v1={good}", "00".repeat(32));
        assert_eq!(verify(SECRET, &header, b"m", NOW, 300), Ok(NOW));
    }

    #[test]
    fn malformed_headers() {
        for header in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify(SECRET, header, b"m", 1, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?}"
            );
        }
        let many = format!("t=1{}", ",v1=00".repeat(MAX_SIGNATURE_PARTS));
        assert!(matches!(
            parse_header(&many),
            Err(SignatureError::Malformed("too many parts"))
        ));
        let long = "a".repeat(MAX_SIGNATURE_HEADER_LEN + 1);
        assert!(matches!(
            parse_header(&long),
            Err(SignatureError::Malformed("header too long"))
        ));
    }

    #[test]
    fn request_message_binds_method_and_path() {
        assert_eq!(
            request_message("GET", "/a?b=1", b""),
            b"GET /a?b=1\n".to_vec()
        );
        assert_ne!(
            request_message("GET", "/a", b"x"),
            request_message("POST", "/a", b"x")
        );
    }

    #[test]
    fn header_lookup_ignores_case() {
        let headers = vec![("Wechatpay-Signature".to_string(), "v".to_string())];
        assert_eq!(find_header(&headers, "wechatpay-signature"), Some("v"));
        assert_eq!(find_header(&headers, "other"), None);
    }
}
