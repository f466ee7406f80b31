//! The benchmark's baseline for [`crate::reconcile`]: the least work that joins the same two
//! sides.

use std::collections::HashMap;

use crate::record::OurRecord;
use crate::statement::StatementLine;

/// The benchmark's baseline: a plain in-memory hash join of the same two sides — one
/// `HashMap<&str, &OurRecord>` by `our_ref`, one probe per line — counting the lines whose
/// record has the same amount.
pub fn plain_hash_join(lines: &[StatementLine], records: &[OurRecord]) -> usize {
    let mut by_ref: HashMap<&str, &OurRecord> = HashMap::with_capacity(records.len());
    for record in records {
        by_ref.insert(&record.our_ref, record);
    }
    lines
        .iter()
        .filter(|line| {
            by_ref
                .get(line.our_ref.as_str())
                .is_some_and(|record| record.amount_fen == line.amount_fen)
        })
        .count()
}
