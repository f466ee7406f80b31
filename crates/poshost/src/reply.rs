//! Building answers: the response MTI, echoed fields, host date and time, RRN.

use sha2::{Digest, Sha256};
use yuanlu_iso8583::{Frame, Message};

/// Fields a response repeats from its request.
const ECHOED: [u8; 10] = [3, 4, 11, 22, 25, 41, 42, 49, 60, 61];

/// `0200` → `0210`, `0800` → `0810`, …
pub fn response_mti(mti: &str) -> String {
    let mut digits: Vec<u8> = mti.bytes().collect();
    if let Some(d) = digits.get_mut(2) {
        *d = if *d == b'9' { b'0' } else { *d + 1 };
    }
    String::from_utf8(digits).unwrap_or_else(|_| "0000".to_string())
}

/// An answer to `request` with response code `code`, echoing what it should.
pub fn answer(request: &Message, code: &str, now: chrono::DateTime<chrono::Utc>) -> Message {
    let mti = response_mti(request.mti());
    let mut m = Message::new(&mti).unwrap_or_else(|_| request.clone());
    for f in ECHOED {
        if let Some(v) = request.get(f) {
            let _ = m.set(f, v.to_vec());
        }
    }
    let local = now.with_timezone(&yuanlu_domain::time::shanghai());
    let _ = m.set(12, local.format("%H%M%S").to_string());
    let _ = m.set(13, local.format("%m%d").to_string());
    let _ = m.set(39, code);
    m
}

/// The frame that answers with only a response code, for requests that cannot be read
/// whole (30) but whose MTI can: `None` when not even the MTI can be read.
pub fn format_error(body: &[u8]) -> Option<Vec<u8>> {
    let tpdu: [u8; 5] = body.get(..5)?.try_into().ok()?;
    let header: [u8; 6] = body.get(5..11)?.try_into().ok()?;
    let mti = yuanlu_iso8583::bcd::unpack(
        body.get(11..13)?,
        4,
        yuanlu_iso8583::bcd::Align::Right,
        false,
    )?;
    let mti = String::from_utf8(mti).ok()?;
    let mut m = Message::new(&response_mti(&mti)).ok()?;
    m.set(39, crate::codes::FORMAT_ERROR).ok()?;
    let request = Frame {
        tpdu,
        header,
        message: Message::new(&mti).ok()?,
    };
    request.answer(m).encode().ok()
}

/// Twelve digits derived from `parts`: the reference number (RRN) of a request, the same
/// for its repeats.
pub fn digits_of(parts: &[&str], count: usize) -> String {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut value = 0u64;
    for b in &digest[..8] {
        value = (value << 8) | u64::from(*b);
    }
    let modulus = 10u64.pow(u32::try_from(count).unwrap_or(12));
    format!("{:0count$}", value % modulus)
}

/// `6222021234567890` → `622202******7890`; `None` when shorter than 10 digits.
pub fn mask_pan(pan: &str) -> Option<String> {
    let n = pan.len();
    (n >= 10 && pan.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}{}{}", &pan[..6], "*".repeat(n - 10), &pan[n - 4..]))
}

/// The card number of a request: field 2, else track 2 up to its separator.
pub fn pan_of(message: &Message) -> Option<String> {
    if let Some(pan) = message.get_str(2) {
        return Some(pan.to_string());
    }
    let track = message.get_str(35)?;
    Some(track.split('=').next().unwrap_or_default().to_string())
}
