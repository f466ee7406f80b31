//! The account key: seals the full account number of a reroute (AES-256-GCM) so it can be
//! stored for the dispatch worker and nobody else reads it.
//!
//! A sealed value is `v1:` and the hex of a random 96-bit nonce followed by the ciphertext
//! and its tag. The refund id is the associated data: a sealed number moved to another
//! refund does not open.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};

/// Bytes of an AES-256 key.
pub const ACCOUNT_KEY_BYTES: usize = 32;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;
/// The prefix of a sealed value: the format, so a later one can be told apart.
const SEALED_PREFIX: &str = "v1:";

/// A 256-bit key. Its bytes are never printed.
#[derive(Clone)]
pub struct AccountKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(..)")
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the sealed value is not in the v1 format")]
    Malformed,
    /// Another key sealed it, or it belongs to another refund, or it was altered.
    #[error("the account key does not match the one that sealed it")]
    KeyMismatch,
}

impl AccountKey {
    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| format!("an account key is {ACCOUNT_KEY_BYTES} bytes as 64 hex digits"))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != ACCOUNT_KEY_BYTES {
            return Err(format!(
                "an account key is {ACCOUNT_KEY_BYTES} bytes (64 hex digits), not {}",
                bytes.len()
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(Self { cipher })
    }

    /// A new random key, as 64 hex digits (what a key file holds).
    pub fn generate_hex() -> String {
        hex::encode(Key::<Aes256Gcm>::generate())
    }

    /// Seals `plaintext` for the refund `refund_id`, under a fresh random nonce.
    pub fn seal(&self, refund_id: &str, plaintext: &str) -> Result<String, String> {
        let nonce = aes_gcm::Nonce::generate();
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: refund_id.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| "the account number could not be sealed".to_string())?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", hex::encode(sealed)))
    }

    /// Opens what [`AccountKey::seal`] made for the same refund.
    pub fn open(&self, refund_id: &str, sealed: &str) -> Result<String, OpenError> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or(OpenError::Malformed)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce = aes_gcm::Nonce::try_from(nonce).map_err(|_| OpenError::Malformed)?;
        let payload = Payload {
            msg: ciphertext,
            aad: refund_id.as_bytes(),
        };
        let plaintext = self
            .cipher
            .decrypt(&nonce, payload)
            .map_err(|_| OpenError::KeyMismatch)?;
        String::from_utf8(plaintext).map_err(|_| OpenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(byte: u8) -> AccountKey {
        AccountKey::from_bytes(&[byte; ACCOUNT_KEY_BYTES]).unwrap()
    }

    #[test]
    fn opens_what_it_sealed_for_the_same_refund_only() {
        let sealed = key(1).seal("rf_1", "工商银行|6222021234567890").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("6222021234567890"));
        assert_eq!(
            key(1).open("rf_1", &sealed).unwrap(),
            "工商银行|6222021234567890"
        );
        assert_eq!(key(1).open("rf_2", &sealed), Err(OpenError::KeyMismatch));
        assert_eq!(key(2).open("rf_1", &sealed), Err(OpenError::KeyMismatch));
        assert_eq!(key(1).open("rf_1", "v1:00"), Err(OpenError::Malformed));
        assert_eq!(key(1).open("rf_1", "garbage"), Err(OpenError::Malformed));
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let (a, b) = (
            key(1).seal("rf_1", "x").unwrap(),
            key(1).seal("rf_1", "x").unwrap(),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn keys_are_64_hex_digits() {
        let generated = AccountKey::generate_hex();
        assert_eq!(generated.len(), 64);
        assert!(AccountKey::from_hex(&format!(" {generated}\n")).is_ok());
        assert!(AccountKey::from_hex("abcd").is_err());
        assert!(AccountKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
