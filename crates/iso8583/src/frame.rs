//! A frame on the TCP stream: 2-byte big-endian length, TPDU (5 bytes), header (6 bytes),
//! then the message (MTI, bitmap, fields).

use crate::error::CodecError;
use crate::message::Message;

/// The longest frame body (after the length prefix) accepted. CUP POS messages stay far
/// below 1 KiB; a larger announced length is refused before it is read.
pub const FRAME_BYTES_MAX: usize = 2048;
/// TPDU + header.
const PREAMBLE_BYTES: usize = 11;

/// The TPDU a terminal sends: ID `60`, destination `0003`, source `0000`.
pub const DEFAULT_TPDU: [u8; 5] = [0x60, 0x00, 0x03, 0x00, 0x00];
/// The header: application `60`, version `31`, status 0, processing 0, software `311003`.
pub const DEFAULT_HEADER: [u8; 6] = [0x60, 0x31, 0x00, 0x31, 0x10, 0x03];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tpdu: [u8; 5],
    pub header: [u8; 6],
    pub message: Message,
}

impl Frame {
    /// A frame with the default TPDU and header.
    pub fn new(message: Message) -> Self {
        Self {
            tpdu: DEFAULT_TPDU,
            header: DEFAULT_HEADER,
            message,
        }
    }

    /// The preamble of an answer to this frame: TPDU addresses swapped, same header.
    pub fn answer(&self, message: Message) -> Frame {
        let t = self.tpdu;
        Frame {
            tpdu: [t[0], t[3], t[4], t[1], t[2]],
            header: self.header,
            message,
        }
    }

    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let body = self.message.encode()?;
        let length = PREAMBLE_BYTES + body.len();
        if length > FRAME_BYTES_MAX {
            return Err(CodecError::TooLong(length));
        }
        let mut out = Vec::with_capacity(2 + length);
        out.extend_from_slice(&u16::try_from(length).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&self.tpdu);
        out.extend_from_slice(&self.header);
        out.extend(body);
        Ok(out)
    }

    /// Decodes a frame body (after the length prefix).
    pub fn decode_body(body: &[u8]) -> Result<Frame, CodecError> {
        let tpdu = body.get(..5).ok_or(CodecError::Truncated("TPDU"))?;
        let header = body
            .get(5..PREAMBLE_BYTES)
            .ok_or(CodecError::Truncated("header"))?;
        let mut t = [0u8; 5];
        t.copy_from_slice(tpdu);
        let mut h = [0u8; 6];
        h.copy_from_slice(header);
        Ok(Frame {
            tpdu: t,
            header: h,
            message: Message::decode(&body[PREAMBLE_BYTES..])?,
        })
    }
}

/// How long the next frame's body is, once two bytes have arrived: `Ok(None)` when fewer
/// have, `Err` when it announces more than [`FRAME_BYTES_MAX`].
pub fn body_length(buffer: &[u8]) -> Result<Option<usize>, CodecError> {
    let Some(prefix) = buffer.get(..2) else {
        return Ok(None);
    };
    let length = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    if length > FRAME_BYTES_MAX {
        return Err(CodecError::TooLong(length));
    }
    Ok(Some(length))
}

/// Splits one whole frame body off the front of `buffer`: `Ok(None)` until it has all
/// arrived, then the body and how many bytes it used (prefix included).
pub fn split_frame(buffer: &[u8]) -> Result<Option<(&[u8], usize)>, CodecError> {
    let Some(length) = body_length(buffer)? else {
        return Ok(None);
    };
    Ok(buffer.get(2..2 + length).map(|body| (body, 2 + length)))
}
