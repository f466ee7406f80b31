//! What can be wrong with a frame or a field.

/// A frame or message that does not follow the dialect. The host answers 30 (format error)
/// or closes the connection; it never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the frame ends early: {0}")]
    Truncated(&'static str),
    #[error("frame of {0} bytes is longer than the limit")]
    TooLong(usize),
    #[error("MTI is not four BCD digits")]
    BadMti,
    #[error("field {0} is not defined in this dialect")]
    UnknownField(u8),
    #[error("field {field}: {problem}")]
    BadField { field: u8, problem: &'static str },
    #[error("{0} bytes left over after the last field")]
    TrailingBytes(usize),
}

impl CodecError {
    pub(crate) fn field(field: u8, problem: &'static str) -> Self {
        CodecError::BadField { field, problem }
    }
}
