//! A message: its MTI and its fields, typed get/set, and the wire form of MTI, bitmap and
//! fields (everything after the TPDU and header).

use crate::bcd::{self, Align};
use crate::error::CodecError;
use crate::spec::{FieldSpec, Kind, Length, field_spec, wire_bytes};

/// The highest field number: the dialect uses the primary bitmap only.
pub const FIELD_MAX: u8 = 64;

/// One ISO 8583 message. Field values are kept as their logical content: ASCII digits for
/// numeric and track fields (`=` as the track separator), the characters of ASCII fields,
/// and the bytes of binary fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    mti: [u8; 4],
    fields: Vec<Option<Vec<u8>>>,
}

impl Message {
    /// A message of type `mti` (four digits, e.g. `"0200"`) with no fields.
    pub fn new(mti: &str) -> Result<Self, CodecError> {
        let bytes: [u8; 4] = mti.as_bytes().try_into().map_err(|_| CodecError::BadMti)?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(CodecError::BadMti);
        }
        Ok(Self {
            mti: bytes,
            fields: vec![None; usize::from(FIELD_MAX) + 1],
        })
    }

    pub fn mti(&self) -> &str {
        std::str::from_utf8(&self.mti).unwrap_or("0000")
    }

    /// Field numbers present, ascending.
    pub fn present(&self) -> impl Iterator<Item = u8> + '_ {
        (2..=FIELD_MAX).filter(|&f| self.fields[usize::from(f)].is_some())
    }

    /// The raw value of a field.
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        self.fields.get(usize::from(field))?.as_deref()
    }

    /// A numeric, track or ASCII field as text.
    pub fn get_str(&self, field: u8) -> Option<&str> {
        std::str::from_utf8(self.get(field)?).ok()
    }

    /// Sets a field after checking the value fits its specification.
    pub fn set(&mut self, field: u8, value: impl Into<Vec<u8>>) -> Result<(), CodecError> {
        let value = value.into();
        let spec = field_spec(field).ok_or(CodecError::UnknownField(field))?;
        check_value(field, spec, &value)?;
        self.fields[usize::from(field)] = Some(value);
        Ok(())
    }

    pub fn remove(&mut self, field: u8) -> Option<Vec<u8>> {
        self.fields.get_mut(usize::from(field))?.take()
    }

    /// MTI, bitmap and fields as they go on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = bcd::pack(&self.mti, Align::Right, false).ok_or(CodecError::BadMti)?;
        let mut bitmap = [0u8; 8];
        for f in self.present() {
            let bit = usize::from(f - 1);
            bitmap[bit / 8] |= 0x80 >> (bit % 8);
        }
        out.extend_from_slice(&bitmap);
        for f in self.present() {
            let spec = field_spec(f).ok_or(CodecError::UnknownField(f))?;
            let value = self.get(f).unwrap_or_default();
            encode_field(f, spec, value, &mut out)?;
        }
        Ok(out)
    }

    /// Decodes MTI, bitmap and fields; every byte must be used.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut cursor = Cursor { bytes, at: 0 };
        let mti = cursor.take(2, "MTI")?;
        let mti = bcd::unpack(mti, 4, Align::Right, false).ok_or(CodecError::BadMti)?;
        let mut message = Message::new(std::str::from_utf8(&mti).map_err(|_| CodecError::BadMti)?)?;
        let bitmap = cursor.take(8, "bitmap")?.to_vec();
        if bitmap[0] & 0x80 != 0 {
            return Err(CodecError::field(
                1,
                "secondary bitmap is not used by this dialect",
            ));
        }
        for f in 2..=FIELD_MAX {
            let bit = usize::from(f - 1);
            if bitmap[bit / 8] & (0x80 >> (bit % 8)) == 0 {
                continue;
            }
            let spec = field_spec(f).ok_or(CodecError::UnknownField(f))?;
            let value = decode_field(f, spec, &mut cursor)?;
            message.fields[usize::from(f)] = Some(value);
        }
        if cursor.at != bytes.len() {
            return Err(CodecError::TrailingBytes(bytes.len() - cursor.at));
        }
        Ok(message)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(count)
            .ok_or(CodecError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(CodecError::Truncated(what))?;
        self.at = end;
        Ok(slice)
    }
}

fn check_value(field: u8, spec: FieldSpec, value: &[u8]) -> Result<(), CodecError> {
    let units = value.len();
    let fits = match spec.length {
        Length::Fixed(n) => units == n,
        Length::Ll(max) | Length::Lll(max) => units <= max,
    };
    if !fits {
        return Err(CodecError::field(field, "wrong length"));
    }
    let ok = match spec.kind {
        Kind::Numeric(_) => value.iter().all(u8::is_ascii_digit),
        Kind::Track => value.iter().all(|&c| c.is_ascii_digit() || c == b'='),
        Kind::Ascii => value.iter().all(|&c| (0x20..0x7F).contains(&c)),
        Kind::Binary => true,
    };
    if ok {
        Ok(())
    } else {
        Err(CodecError::field(field, "character not allowed"))
    }
}

fn encode_field(
    field: u8,
    spec: FieldSpec,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    check_value(field, spec, value)?;
    match spec.length {
        Length::Fixed(_) => {}
        Length::Ll(_) => out.extend(bcd::length_prefix(value.len(), 1)),
        Length::Lll(_) => out.extend(bcd::length_prefix(value.len(), 2)),
    }
    match spec.kind {
        Kind::Numeric(align) => out
            .extend(bcd::pack(value, align, false).ok_or(CodecError::field(field, "not digits"))?),
        Kind::Track => out.extend(
            bcd::pack(value, Align::Left, true)
                .ok_or(CodecError::field(field, "not track data"))?,
        ),
        Kind::Ascii | Kind::Binary => out.extend_from_slice(value),
    }
    Ok(())
}

fn decode_field(
    field: u8,
    spec: FieldSpec,
    cursor: &mut Cursor<'_>,
) -> Result<Vec<u8>, CodecError> {
    let units = match spec.length {
        Length::Fixed(n) => n,
        Length::Ll(max) | Length::Lll(max) => {
            let width = if matches!(spec.length, Length::Ll(_)) {
                1
            } else {
                2
            };
            let prefix = cursor.take(width, "length prefix")?;
            let units = bcd::length(prefix).ok_or(CodecError::field(field, "length is not BCD"))?;
            if units > max {
                return Err(CodecError::field(field, "longer than its maximum"));
            }
            units
        }
    };
    let raw = cursor.take(wire_bytes(spec.kind, units), "field")?;
    let value = match spec.kind {
        Kind::Numeric(align) => bcd::unpack(raw, units, align, false),
        Kind::Track => bcd::unpack(raw, units, Align::Left, true),
        Kind::Ascii | Kind::Binary => Some(raw.to_vec()),
    }
    .ok_or(CodecError::field(field, "not BCD"))?;
    check_value(field, spec, &value)?;
    Ok(value)
}
