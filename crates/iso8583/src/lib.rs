//! The China UnionPay dialect of ISO 8583 spoken by POS terminals, as
//! `docs/pos.md` and the shared `ISO8583-CUP.md` describe it.
//!
//! - [`bcd`]: packed BCD with left/right alignment and the track-2 `=` nibble.
//! - [`spec`]: each field's kind (numeric, track, ASCII, binary) and length (fixed, LL, LLL).
//! - [`message`]: [`Message`], typed get/set, MTI + bitmap + fields on the wire.
//! - [`frame`]: [`Frame`], the 2-byte length, TPDU and header around a message.
//! - [`crypto`]: working keys under the TMK (3DES), check values, and the CUP ECB MAC.
//! - [`mac`]: computing and checking field 64 of a message.
//!
//! Pure code: no I/O, no panics on any input (the fuzz tests hold it to that).

pub mod bcd;
pub mod crypto;
pub mod error;
pub mod frame;
pub mod mac;
pub mod message;
pub mod spec;

pub use error::CodecError;
pub use frame::Frame;
pub use message::Message;
