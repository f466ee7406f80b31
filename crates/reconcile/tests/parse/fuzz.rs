//! Fuzz-style properties: no input panics a parser, and a refused file names a line that
//! exists (or the one after the last).

use proptest::prelude::*;
use yuanlu_reconcile::{DiscrepancySpec, StatementChannel, Totals};

fn lines_in(bytes: &[u8]) -> u64 {
    let breaks = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    breaks + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// Parses without panicking; a refusal names a line in the file (or the one after it); an
/// accepted file's declared totals agree with its lines.
fn check(channel: StatementChannel, bytes: &[u8]) -> Result<(), TestCaseError> {
    match yuanlu_reconcile::parse(channel, bytes, &mut |_| {}) {
        Ok(statement) => {
            if let Some(declared) = statement.declared_totals {
                prop_assert_eq!(Some(declared), Totals::of(&statement.lines));
            }
            for line in &statement.lines {
                prop_assert!(line.line_no >= 1 && line.line_no <= lines_in(bytes));
                prop_assert!(line.amount_fen >= 0);
            }
        }
        Err(error) => {
            prop_assert!(
                error.line >= 1 && error.line <= lines_in(bytes) + 1,
                "{} for a file of {} lines",
                error,
                lines_in(bytes)
            );
            prop_assert!(!error.message.is_empty());
        }
    }
    Ok(())
}

fn channel() -> impl Strategy<Value = StatementChannel> {
    prop::sample::select(StatementChannel::ALL.to_vec())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    DropLine(usize),
    RepeatLine(usize),
    Digit(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop::sample::select(b"0123456789.,-|`#\t \r\n\"x\xff\x81\xe4".to_vec());
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::RepeatLine),
        (any::<usize>(), byte).prop_map(|(p, b)| Mutation::Digit(p, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len().max(1);
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    match *mutation {
        Mutation::Flip(p, b) if !bytes.is_empty() => bytes[p % len] ^= b | 1,
        Mutation::Insert(p, b) => bytes.insert(p % (bytes.len() + 1), b),
        Mutation::Delete(p) if !bytes.is_empty() => {
            bytes.remove(p % len);
        }
        Mutation::Truncate(p) => bytes.truncate(p % len),
        Mutation::DropLine(i) => {
            lines.remove(i % lines.len());
            *bytes = lines.join(&b'\n');
        }
        Mutation::RepeatLine(i) => {
            let line = lines[i % lines.len()].clone();
            lines.insert(i % lines.len(), line);
            *bytes = lines.join(&b'\n');
        }
        Mutation::Digit(p, b) => {
            // Replace the first ASCII digit at or after p: amounts, counts, dates.
            let start = p % len;
            if let Some(at) = bytes.iter().skip(start).position(u8::is_ascii_digit) {
                bytes[start + at] = b;
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        for channel in StatementChannel::ALL {
            check(channel, &bytes)?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[0-9a-zA-Z|`#,.\\-\"\t \r\n：笔元总交易单数]{0,400}") {
        for channel in StatementChannel::ALL {
            check(channel, text.as_bytes())?;
        }
    }

    #[test]
    fn mutated_valid_files_parse_or_name_a_line(
        channel in channel(),
        seed in any::<u64>(),
        n in 1usize..25,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let generated = yuanlu_reconcile::generate(n, seed, &DiscrepancySpec::each(channel, 1));
        let mut bytes = generated.bytes;
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check(channel, &bytes)?;
    }

    #[test]
    fn prefixes_of_valid_files_never_panic(channel in channel(), seed in any::<u64>(), cut in any::<prop::sample::Index>()) {
        let generated = yuanlu_reconcile::generate(8, seed, &DiscrepancySpec::none(channel));
        let bytes = &generated.bytes[..cut.index(generated.bytes.len() + 1)];
        check(channel, bytes)?;
    }
}
