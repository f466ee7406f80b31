//! The one error a statement import can end with: the file is refused, naming its line.

use serde::Serialize;

/// A statement file was refused. `line` is the 1-based line of the file at fault; for a
/// file that ends too early it is the line after the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub message: String,
}

impl ParseError {
    pub fn new(line: u64, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}
