//! The fields of the CUP POS dialect: how each is encoded on the wire.

use crate::bcd::Align;

/// How a field's length is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Always this many units (digits, characters or bytes).
    Fixed(usize),
    /// One BCD byte of length, then at most this many units.
    Ll(usize),
    /// Two BCD bytes of length, then at most this many units.
    Lll(usize),
}

/// What a field's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Digits, packed BCD, padded on the side `Align` leaves free.
    Numeric(Align),
    /// Track data: digits and `=` (nibble `D`), packed BCD, left-aligned.
    Track,
    /// ASCII characters, one a byte (printable, space included).
    Ascii,
    /// Bytes as they are.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub kind: Kind,
    pub length: Length,
}

const fn n(digits: usize) -> Option<FieldSpec> {
    Some(FieldSpec {
        kind: Kind::Numeric(Align::Right),
        length: Length::Fixed(digits),
    })
}

const fn spec(kind: Kind, length: Length) -> Option<FieldSpec> {
    Some(FieldSpec { kind, length })
}

const LEFT: Kind = Kind::Numeric(Align::Left);

/// The specification of field `number` (2–64), or `None` when the dialect does not use it.
pub fn field_spec(number: u8) -> Option<FieldSpec> {
    use Kind::{Ascii, Binary, Track};
    use Length::{Fixed, Ll, Lll};
    match number {
        2 => spec(LEFT, Ll(19)),
        3 => n(6),
        4 => n(12),
        11 => n(6),
        12 => n(6),
        13 => n(4),
        14 => n(4),
        15 => n(4),
        22 => spec(LEFT, Fixed(3)),
        23 => n(3),
        25 => n(2),
        26 => n(2),
        32 => spec(LEFT, Ll(11)),
        35 => spec(Track, Ll(37)),
        36 => spec(Track, Lll(104)),
        37 => spec(Ascii, Fixed(12)),
        38 => spec(Ascii, Fixed(6)),
        39 => spec(Ascii, Fixed(2)),
        41 => spec(Ascii, Fixed(8)),
        42 => spec(Ascii, Fixed(15)),
        44 => spec(Ascii, Ll(25)),
        48 => spec(LEFT, Lll(322)),
        49 => spec(Ascii, Fixed(3)),
        52 => spec(Binary, Fixed(8)),
        53 => n(16),
        54 => spec(Ascii, Lll(20)),
        55 => spec(Binary, Lll(255)),
        60 => spec(LEFT, Lll(17)),
        61 => spec(LEFT, Lll(29)),
        62 => spec(Binary, Lll(512)),
        63 => spec(Ascii, Lll(163)),
        64 => spec(Binary, Fixed(8)),
        _ => None,
    }
}

/// Bytes a value of `units` units takes on the wire (without the length prefix).
pub fn wire_bytes(kind: Kind, units: usize) -> usize {
    match kind {
        Kind::Numeric(_) | Kind::Track => units.div_ceil(2),
        Kind::Ascii | Kind::Binary => units,
    }
}
