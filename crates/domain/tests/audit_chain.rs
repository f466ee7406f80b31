//! Property tests of the audit chain: any change to a stored entry is named at that entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use yuanlu_domain::audit::{
    AuditContent, ChainBreak, ChainWalker, FirstBad, GENESIS_HASH, StoredEntry, entry_hash,
};

const CHAIN: &str = "mch_7";

#[derive(Debug, Clone)]
struct Content {
    at_us: i64,
    actor: String,
    action: String,
    subject_id: String,
    data: String,
}

fn content() -> impl Strategy<Value = Content> {
    (
        any::<i64>(),
        "[a-z_]{0,12}",
        prop_oneof![
            Just("refund.create".to_string()),
            Just("refund.approve".to_string()),
            "\\PC{0,10}"
        ],
        "[a-z0-9_]{0,16}",
        prop_oneof![
            Just("{}".to_string()),
            "\\{\"n\":[0-9]{1,6}\\}",
            "\\PC{0,40}"
        ],
    )
        .prop_map(|(at_us, actor, action, subject_id, data)| Content {
            at_us,
            actor,
            action,
            subject_id,
            data,
        })
}

/// A well-formed chain: seq from 1, each entry linked to the hash of the one before.
fn build(contents: &[Content]) -> Vec<StoredEntry> {
    let mut prev = GENESIS_HASH.to_string();
    let mut entries = Vec::new();
    for (seq, c) in (1i64..).zip(contents) {
        let hash = entry_hash(
            &prev,
            &AuditContent {
                chain: CHAIN,
                seq,
                at_us: c.at_us,
                actor: &c.actor,
                action: &c.action,
                subject_id: &c.subject_id,
                data: &c.data,
            },
        );
        entries.push(StoredEntry {
            chain: CHAIN.to_string(),
            seq,
            at_us: c.at_us,
            actor: c.actor.clone(),
            action: c.action.clone(),
            subject_id: c.subject_id.clone(),
            data: c.data.clone(),
            prev_hash: prev,
            hash: hash.clone(),
        });
        prev = hash;
    }
    entries
}

fn head(entries: &[StoredEntry]) -> (i64, String) {
    entries
        .last()
        .map_or((0, GENESIS_HASH.to_string()), |e| (e.seq, e.hash.clone()))
}

fn verify(entries: &[StoredEntry], head: &(i64, String)) -> Result<(), FirstBad> {
    let mut walker = ChainWalker::new(CHAIN);
    for entry in entries {
        walker.step(entry)?;
    }
    walker.finish(head.0, &head.1)
}

/// `candidate`, or a value surely different from `old` if they happen to be equal.
fn differ(old: &str, candidate: String) -> String {
    if candidate == old {
        format!("{old}x")
    } else {
        candidate
    }
}

/// Changes field `field` (0..9) of `entry` to a different value built from `text` or `number`.
fn change(entry: &mut StoredEntry, field: usize, text: String, number: i64) {
    let other = |old: i64| {
        if number == old {
            old.wrapping_add(1)
        } else {
            number
        }
    };
    match field {
        0 => entry.chain = differ(&entry.chain, text),
        1 => entry.seq = other(entry.seq),
        2 => entry.at_us = other(entry.at_us),
        3 => entry.actor = differ(&entry.actor, text),
        4 => entry.action = differ(&entry.action, text),
        5 => entry.subject_id = differ(&entry.subject_id, text),
        6 => entry.data = differ(&entry.data, text),
        7 => entry.prev_hash = differ(&entry.prev_hash, text),
        _ => entry.hash = differ(&entry.hash, text),
    }
}

/// Text that could pass for a field: random, or hex like a hash.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}",
        "[0-9a-f]{64}",
        Just(String::new()),
        Just(CHAIN.to_string())
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn intact_random_chain_verifies(contents in proptest::collection::vec(content(), 0..16)) {
        let entries = build(&contents);
        prop_assert_eq!(verify(&entries, &head(&entries)), Ok(()));
    }

    #[test]
    fn changing_any_field_of_any_entry_is_detected_at_that_entry_or_earlier(
        contents in proptest::collection::vec(content(), 1..16),
        index in any::<prop::sample::Index>(),
        field in 0usize..9,
        text in text(),
        number in prop_oneof![any::<i64>(), -2i64..20],
    ) {
        let mut entries = build(&contents);
        let head = head(&entries);
        let i = index.index(entries.len());
        let original = entries[i].clone();
        change(&mut entries[i], field, text, number);
        prop_assert_ne!(&entries[i], &original);

        let result = verify(&entries, &head);
        let Err(bad) = result else {
            return Err(TestCaseError::fail(format!("change of field {field} of entry {} went unnoticed", i + 1)));
        };
        prop_assert_eq!(&bad.chain, CHAIN);
        prop_assert!(bad.seq >= 1 && bad.seq <= original.seq, "named seq {} for a change at {}", bad.seq, original.seq);
        // Nothing before the changed entry was touched, so the walk names exactly that entry.
        prop_assert_eq!(bad.seq, original.seq);
        let expected = if field == 1 { ChainBreak::Missing } else { ChainBreak::ContentChanged };
        prop_assert_eq!(bad.problem, expected);
    }

    #[test]
    fn removing_any_entry_is_detected_at_its_seq(
        contents in proptest::collection::vec(content(), 1..16),
        index in any::<prop::sample::Index>(),
    ) {
        let mut entries = build(&contents);
        let head = head(&entries);
        let i = index.index(entries.len());
        let last = i + 1 == entries.len();
        entries.remove(i);
        let bad = verify(&entries, &head).unwrap_err();
        prop_assert_eq!(bad.seq, i64::try_from(i).unwrap() + 1);
        prop_assert_eq!(bad.problem, if last { ChainBreak::HeadMismatch } else { ChainBreak::Missing });
    }

    #[test]
    fn swapping_two_entries_is_detected_at_the_first_of_them_or_earlier(
        contents in proptest::collection::vec(content(), 2..16),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        renumber in any::<bool>(),
    ) {
        let mut entries = build(&contents);
        let head = head(&entries);
        let (i, j) = (a.index(entries.len()), b.index(entries.len()));
        prop_assume!(i != j);
        let (i, j) = (i.min(j), i.max(j));
        entries.swap(i, j);
        if renumber {
            // A careful forger keeps the sequence numbers in order.
            entries[i].seq = i64::try_from(i).unwrap() + 1;
            entries[j].seq = i64::try_from(j).unwrap() + 1;
        }
        let bad = verify(&entries, &head).unwrap_err();
        prop_assert!(bad.seq <= i64::try_from(i).unwrap() + 1, "named {} for a swap at {}", bad.seq, i + 1);
    }
}
