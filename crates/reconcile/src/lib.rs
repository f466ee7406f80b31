//! Reconciliation (对账): reading a channel's statement for a business date and matching it
//! against yuanlu's records. Pure: no database, no I/O beyond the bytes given.
//!
//! - [`statement`]: what a statement says, whatever its format.
//! - [`wechat`], [`alipay`], [`card`], [`yuanlu_csv`]: one parser (and writer) per file format;
//!   each refuses a malformed file naming its line, and never panics.
//! - [`record`]: what our books say, as the matcher needs it.
//! - [`matching`]: the join and its classes; [`report`]: the outcome.
//! - [`bank_statement`] and [`payouts`]: a merchant's bank statement and the settlement
//!   payouts matched against its credits (核对入户金额).
//! - [`baseline`]: the plain hash join the benchmark compares matching with.
//! - [`mod@generate`]: statements with injected discrepancies for tests and the benchmark.
//!
//! The formats are described in each module and in `docs/statements.md`.

pub mod alipay;
pub mod bank_statement;
pub mod baseline;
pub mod card;
pub mod error;
mod fields;
pub mod generate;
pub mod matching;
pub mod payouts;
mod progress;
pub mod record;
pub mod report;
mod rng;
pub mod statement;
pub mod wechat;
pub mod yuanlu_csv;

pub use baseline::plain_hash_join;
pub use error::ParseError;
pub use generate::{DiscrepancySpec, Generated, Injected, generate, generate_statement};
pub use matching::reconcile;
pub use progress::STEP as PROGRESS_STEP;
pub use record::{OurRecord, OurStatus};
pub use report::{ClassTotal, ReconClass, ReconItem, ReconReport};
pub use statement::{LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals};

/// Reads a statement file in `channel`'s format. `progress` is called with the number of
/// bytes read, about every [`PROGRESS_STEP`] bytes and once at the end.
pub fn parse(
    channel: StatementChannel,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64),
) -> Result<Statement, ParseError> {
    match channel {
        StatementChannel::Wechat => wechat::parse(bytes, progress),
        StatementChannel::Alipay => alipay::parse(bytes, progress),
        StatementChannel::Card => card::parse(bytes, progress),
        StatementChannel::Yuanlu => yuanlu_csv::parse(bytes, progress),
    }
}

/// Writes `statement` in its channel's format (for tests, the generator and demos). Each
/// format's writer documents what it cannot express.
pub fn write(statement: &Statement) -> Vec<u8> {
    match statement.channel {
        StatementChannel::Wechat => wechat::write(statement),
        StatementChannel::Alipay => alipay::write(statement),
        StatementChannel::Card => card::write(statement),
        StatementChannel::Yuanlu => yuanlu_csv::write(statement),
    }
}

/// The line number of the first detail line in a file [`write()`] wrote.
pub fn first_line(channel: StatementChannel) -> u64 {
    match channel {
        StatementChannel::Wechat => wechat::FIRST_LINE,
        StatementChannel::Alipay => alipay::FIRST_LINE,
        StatementChannel::Card => card::FIRST_LINE,
        StatementChannel::Yuanlu => yuanlu_csv::FIRST_LINE,
    }
}
