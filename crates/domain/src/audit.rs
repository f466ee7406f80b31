//! The audit chain: each entry's hash covers the previous entry's hash and the entry's own
//! canonical content, so changing, removing or reordering any entry breaks every later link.
//!
//! There is one chain per merchant (and one, `system`, for acquirer-wide actions): merchants
//! are the unit of sharding and of write serialisation, so a chain never needs a global lock.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain of acquirer-wide actions that belong to no merchant.
pub const SYSTEM_CHAIN: &str = "system";

/// The hashed content of an audit entry, in a fixed field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditContent<'a> {
    pub chain: &'a str,
    pub seq: i64,
    pub at_us: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject_id: &'a str,
    /// JSON text, hashed exactly as stored.
    pub data: &'a str,
}

/// `hex(sha256(prev_hash || "\n" || canonical_json(content)))`.
pub fn entry_hash(prev_hash: &str, content: &AuditContent<'_>) -> String {
    // Serialising a struct of strings and integers cannot fail.
    let canonical = serde_json::to_string(content).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// A stored entry as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub chain: String,
    pub seq: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub subject_id: String,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEntry {
    pub fn content(&self) -> AuditContent<'_> {
        AuditContent {
            chain: &self.chain,
            seq: self.seq,
            at_us: self.at_us,
            actor: &self.actor,
            action: &self.action,
            subject_id: &self.subject_id,
            data: &self.data,
        }
    }
}

/// What is wrong with the first bad entry of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainBreak {
    /// The entry's content no longer matches its hash: it was changed.
    ContentChanged,
    /// The entry does not link to the one before it: entries were removed or reordered.
    LinkBroken,
    /// A sequence number is missing: an entry was removed.
    Missing,
    /// The chain ends before (or after) the head recorded with the last append.
    HeadMismatch,
    /// The chain is shorter than a head kept earlier (`--expect-heads`): its tail was cut.
    ShorterThanKeptHead,
    /// The chain's entry at a kept head's `seq` has another hash: it was rewritten.
    DiffersFromKeptHead,
}

/// The first bad entry found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FirstBad {
    pub chain: String,
    /// The sequence number where the chain first goes wrong.
    pub seq: i64,
    pub problem: ChainBreak,
}

/// Walks one chain's entries, which must be given in `seq` order, and returns the first
/// break. `expected_seq` and `prev_hash` start at 1 and [`GENESIS_HASH`]; the walk can be
/// resumed page by page through [`ChainWalker`].
#[derive(Debug, Clone)]
pub struct ChainWalker {
    chain: String,
    expected_seq: i64,
    prev_hash: String,
}

impl ChainWalker {
    pub fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_string(),
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }

    /// Checks the next entry; on a break, returns where.
    pub fn step(&mut self, entry: &StoredEntry) -> Result<(), FirstBad> {
        let bad = |seq, problem| FirstBad {
            chain: self.chain.clone(),
            seq,
            problem,
        };
        if entry.seq != self.expected_seq {
            return Err(bad(self.expected_seq, ChainBreak::Missing));
        }
        if entry_hash(&entry.prev_hash, &entry.content()) != entry.hash {
            return Err(bad(entry.seq, ChainBreak::ContentChanged));
        }
        if entry.prev_hash != self.prev_hash {
            return Err(bad(entry.seq, ChainBreak::LinkBroken));
        }
        self.expected_seq += 1;
        self.prev_hash = entry.hash.clone();
        Ok(())
    }

    /// Checks that the walk ended where the recorded head says the chain ends.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), FirstBad> {
        let last_seq = self.expected_seq - 1;
        if last_seq != head_seq || self.prev_hash != head_hash {
            return Err(FirstBad {
                chain: self.chain.clone(),
                seq: last_seq.min(head_seq) + 1,
                problem: ChainBreak::HeadMismatch,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let data = format!("{{\"n\":{seq}}}");
                let content = AuditContent {
                    chain: "mch_1",
                    seq,
                    at_us: seq * 1000,
                    actor: "admin",
                    action: "test",
                    subject_id: "rf_1",
                    data: &data,
                };
                let hash = entry_hash(&prev, &content);
                let entry = StoredEntry {
                    chain: "mch_1".into(),
                    seq,
                    at_us: seq * 1000,
                    actor: "admin".into(),
                    action: "test".into(),
                    subject_id: "rf_1".into(),
                    data: data.clone(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn walk(entries: &[StoredEntry], head: (i64, &str)) -> Result<(), FirstBad> {
        let mut walker = ChainWalker::new("mch_1");
        for e in entries {
            walker.step(e)?;
        }
        walker.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let entries = chain_of(5);
        let head = entries[4].hash.clone();
        assert_eq!(walk(&entries, (5, &head)), Ok(()));
    }

    #[test]
    fn changed_content_is_named() {
        let mut entries = chain_of(5);
        let head = entries[4].hash.clone();
        entries[2].data = "{\"n\":99}".into();
        assert_eq!(
            walk(&entries, (5, &head)).map_err(|b| (b.seq, b.problem)),
            Err((3, ChainBreak::ContentChanged))
        );
    }

    #[test]
    fn removed_entry_is_named() {
        let mut entries = chain_of(5);
        let head = entries[4].hash.clone();
        entries.remove(1);
        assert_eq!(
            walk(&entries, (5, &head)).map_err(|b| (b.seq, b.problem)),
            Err((2, ChainBreak::Missing))
        );
    }

    #[test]
    fn removed_tail_is_caught_by_the_head() {
        let mut entries = chain_of(5);
        let head = entries[4].hash.clone();
        entries.pop();
        assert_eq!(
            walk(&entries, (5, &head)).map_err(|b| (b.seq, b.problem)),
            Err((5, ChainBreak::HeadMismatch))
        );
    }

    #[test]
    fn swapped_entries_break_the_link() {
        let mut entries = chain_of(5);
        let head = entries[4].hash.clone();
        // Swap the content of entries 2 and 3 but keep their positions (seq renumbered).
        let (a, b) = (entries[1].clone(), entries[2].clone());
        entries[1] = StoredEntry { seq: 2, ..b };
        entries[2] = StoredEntry { seq: 3, ..a };
        assert!(walk(&entries, (5, &head)).is_err_and(|b| b.seq == 2));
    }
}
