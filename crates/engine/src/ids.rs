//! Ids are a prefix and a lowercase ULID (`rf_01j…`): opaque to callers, unique across
//! processes, and ordered by creation time, which is what cursor pagination sorts by.

use std::sync::Mutex;

use rand::RngExt;
use sha2::{Digest, Sha256};

pub const MERCHANT: &str = "mch";
pub const PAYMENT: &str = "pay";
pub const REFUND: &str = "rf";
pub const API_KEY: &str = "key";

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new id with the given prefix. Ids made by one process are strictly increasing.
pub fn new_id(prefix: &str) -> String {
    let mut guard = match GENERATOR.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The monotonic generator fails only when 2^80 ids are made in one millisecond.
    let id = generator
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::generate());
    format!("{prefix}_{}", id.to_string().to_lowercase())
}

/// A new secret API key: a readable prefix and 32 random bytes in hex.
pub fn new_secret_key(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{prefix}_{}", hex::encode(bytes))
}

/// How a key is stored: SHA-256 in hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_and_increase() {
        let a = new_id(REFUND);
        let b = new_id(REFUND);
        assert!(a.starts_with("rf_"));
        assert!(b > a, "{b} should sort after {a}");
    }

    #[test]
    fn keys_are_long_random_and_hash_stably() {
        let a = new_secret_key("ylk");
        let b = new_secret_key("ylk");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
