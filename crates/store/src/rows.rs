//! The rows of the core tables, each defined beside its queries (`queries_merchants`,
//! `queries_payments`, `queries_refunds`, `queries_audit`) and named here too, as before.
//! Enums are stored as their stable text ids and parsed as the row is read
//! (`#[sqlx(try_from = "String")]`): a text that names no known value is corrupt data
//! ([`crate::StoreError::Corrupt`], naming its column), never guessed.

pub use crate::queries_audit::{AuditHeadRow, AuditRow};
pub use crate::queries_merchants::{ApiKeyRow, MerchantRow};
pub use crate::queries_payments::{PaymentCounters, PaymentRow};
pub use crate::queries_refunds::{RefundRow, RefundStatusUpdate};
