//! Field 64 of a message: the MAC over everything from the MTI to the end of field 63.

use crate::crypto::{Key16, cup_ecb_mac, mac_equal};
use crate::error::CodecError;
use crate::message::Message;

/// The bytes the MAC covers: the message encoded with field 64 present (its bit set in the
/// bitmap), less field 64's own 8 bytes.
fn covered(message: &Message) -> Result<Vec<u8>, CodecError> {
    let mut with_slot = message.clone();
    with_slot.set(64, [0u8; 8].to_vec())?;
    let mut bytes = with_slot.encode()?;
    bytes.truncate(bytes.len().saturating_sub(8));
    Ok(bytes)
}

/// Sets field 64 to the MAC of the message under `mak`.
pub fn sign(message: &mut Message, mak: &Key16) -> Result<(), CodecError> {
    let mac = cup_ecb_mac(mak, &covered(message)?);
    message.set(64, mac.to_vec())
}

/// Whether field 64 is present and is the MAC of the message under `mak`.
pub fn verify(message: &Message, mak: &Key16) -> bool {
    let Some(given) = message.get(64) else {
        return false;
    };
    match covered(message) {
        Ok(bytes) => mac_equal(given, &cup_ecb_mac(mak, &bytes)),
        Err(_) => false,
    }
}
