//! Packed BCD: two digits a byte. Numeric fields are `0-9`; track data (`z`) also carries
//! the separator `=` as nibble `D`. An odd number of digits gets one pad nibble `0`, on the
//! left (right-aligned, the default for fixed numeric fields) or on the right (left-aligned,
//! variable fields and field 22).

/// Where the pad nibble goes when the digit count is odd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Pad on the left: `123` → `01 23`.
    Right,
    /// Pad on the right: `021` → `02 10`.
    Left,
}

fn nibble(c: u8, track: bool) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'=' if track => Some(0x0D),
        b'D' | b'd' if track => Some(0x0D),
        _ => None,
    }
}

fn digit(n: u8, track: bool) -> Option<u8> {
    match n {
        0..=9 => Some(b'0' + n),
        0x0D if track => Some(b'='),
        _ => None,
    }
}

/// Packs `digits` (ASCII); `None` when a character is not allowed.
pub fn pack(digits: &[u8], align: Align, track: bool) -> Option<Vec<u8>> {
    let mut nibbles = Vec::with_capacity(digits.len() + 1);
    if digits.len() % 2 == 1 && align == Align::Right {
        nibbles.push(0);
    }
    for &c in digits {
        nibbles.push(nibble(c, track)?);
    }
    if nibbles.len() % 2 == 1 {
        nibbles.push(0);
    }
    Some(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Unpacks `count` digits from `bytes` (which hold exactly `count.div_ceil(2)` bytes).
/// `None` when a nibble is not a digit (or `D` in track data), or a pad nibble is not
/// `0` (track data may also pad with `F`).
pub fn unpack(bytes: &[u8], count: usize, align: Align, track: bool) -> Option<Vec<u8>> {
    let mut nibbles = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        nibbles.push(b >> 4);
        nibbles.push(b & 0x0F);
    }
    let pad_ok = |n: u8| n == 0 || (track && n == 0x0F);
    // A caller asking for more digits than the bytes hold gets `None`, not an underflow.
    let digits = match (nibbles.len().checked_sub(count)?, align) {
        (0, _) => &nibbles[..],
        (1, Align::Right) if pad_ok(nibbles[0]) => &nibbles[1..],
        (1, Align::Left) if pad_ok(nibbles[count]) => &nibbles[..count],
        _ => return None,
    };
    digits.iter().map(|&n| digit(n, track)).collect()
}

/// A length prefix of `bytes` BCD bytes (1 for LL, 2 for LLL), or `None` when not BCD.
pub fn length(prefix: &[u8]) -> Option<usize> {
    let digits = unpack(prefix, prefix.len() * 2, Align::Right, false)?;
    let mut value = 0usize;
    for d in digits {
        value = value * 10 + usize::from(d - b'0');
    }
    Some(value)
}

/// The BCD length prefix of `width` bytes for `value`.
pub fn length_prefix(value: usize, width: usize) -> Vec<u8> {
    let text = format!("{value:0digits$}", digits = width * 2);
    pack(text.as_bytes(), Align::Right, false).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignments_pad_on_the_side_they_name() {
        assert_eq!(pack(b"021", Align::Left, false), Some(vec![0x02, 0x10]));
        assert_eq!(pack(b"123", Align::Right, false), Some(vec![0x01, 0x23]));
        assert_eq!(pack(b"000000", Align::Right, false), Some(vec![0, 0, 0]));
        assert_eq!(
            unpack(&[0x02, 0x10], 3, Align::Left, false),
            Some(b"021".to_vec())
        );
        assert_eq!(
            unpack(&[0x01, 0x23], 3, Align::Right, false),
            Some(b"123".to_vec())
        );
    }

    #[test]
    fn track_two_separator_is_nibble_d() {
        let packed = pack(b"6222=2512", Align::Left, true);
        assert_eq!(packed, Some(vec![0x62, 0x22, 0xD2, 0x51, 0x20]));
        assert_eq!(
            unpack(&[0x62, 0x22, 0xD2, 0x51, 0x2F], 9, Align::Left, true),
            Some(b"6222=2512".to_vec())
        );
        assert_eq!(pack(b"12=4", Align::Left, false), None);
    }

    #[test]
    fn more_digits_than_the_bytes_hold_is_refused() {
        assert_eq!(unpack(&[0x12], 3, Align::Left, false), None);
        assert_eq!(unpack(&[], 1, Align::Right, false), None);
    }

    #[test]
    fn bad_nibbles_and_pads_are_refused() {
        assert_eq!(unpack(&[0x1A], 2, Align::Right, false), None);
        assert_eq!(unpack(&[0x11, 0x23], 3, Align::Right, false), None);
        assert_eq!(length(&[0x01, 0x9A]), None);
        assert_eq!(length(&[0x01, 0x23]), Some(123));
        assert_eq!(length_prefix(37, 1), vec![0x37]);
    }
}
