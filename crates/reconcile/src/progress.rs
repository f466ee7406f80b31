//! Throttled progress reports: parsers call the caller's callback with the number of bytes
//! read, about once per [`STEP`] bytes and once at the end.

/// Bytes between two reports.
pub const STEP: u64 = 1 << 20;

pub(crate) struct Progress<'a> {
    report: &'a mut dyn FnMut(u64),
    next: u64,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(report: &'a mut dyn FnMut(u64)) -> Progress<'a> {
        Progress { report, next: STEP }
    }

    /// `bytes` have been read.
    pub(crate) fn at(&mut self, bytes: u64) {
        if bytes >= self.next {
            (self.report)(bytes);
            self.next = bytes.saturating_add(STEP);
        }
    }

    /// The whole file (`total` bytes) has been read.
    pub(crate) fn done(&mut self, total: u64) {
        (self.report)(total);
    }
}
