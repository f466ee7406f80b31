//! yuanlu's storage. One interface, two backends:
//!
//! - [`db`]: [`Db`] (a pool), [`Tx`] (a write transaction) and [`Conn`] (a connection),
//!   each an enum over SQLite and PostgreSQL. Every query is written once, as SQL that both
//!   backends accept, and run on whichever backend the enum holds; only locking differs
//!   (`BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on PostgreSQL).
//! - The store's operations, methods on [`Conn`], one file per table group with its rows
//!   beside its queries: [`queries_merchants`] (merchants, API keys), [`queries_payments`], [`queries_merchant_days`] (each merchant day's running totals),
//!   [`queries_refunds`] (refunds, their status changes, lists), [`queries_dispatch`] (the
//!   lease and one update per intent), [`queries_audit`], [`queries_ledger`],
//!   [`queries_notify`] (webhook and SMS outboxes), [`queries_cases`] (cases, overdue),
//!   [`queries_public`] (feedback, consumer lookup), [`queries_reports`], [`queries_recon`],
//!   [`queries_pos`], [`queries_staff`], [`queries_search`], [`queries_metrics`]. Rows carry
//!   the domain's enums, parsed once as they are read; an unknown text is corrupt data.
//! - [`list`]: the optional-filter lists every `list_*` builds.
//! - [`rows`]: the core rows under their older paths, re-exported; [`rows_notify`]: the
//!   webhook and SMS outbox rows.
//! - [`sql`]: SQL fragments generated from the domain's rules (status lists, overdue).
//! - [`error`]: [`StoreError`], which tells unique violations and deadlock/serialization conflicts apart.
//!
//! Why enums and not a trait: a transaction has to outlive several awaited calls and be
//! handed between engine functions; trait objects with async methods need boxing on every
//! call, and generics over the backend spread into every crate above. The enum keeps one
//! SQL text per operation, which is what the contract suite checks on both backends.

pub mod backup;
pub mod db;
pub mod distribution;
pub mod error;
pub mod list;
pub mod multi_row;
pub mod queries_arrival;
pub mod queries_audit;
pub mod queries_bank;
pub mod queries_cases;
pub mod queries_deductions;
pub mod queries_dispatch;
pub mod queries_evidence;
pub mod queries_ledger;
pub mod queries_merchant_days;
pub mod queries_merchants;
pub mod queries_metrics;
pub mod queries_notify;
pub mod queries_ops;
pub mod queries_pages;
pub mod queries_payments;
pub mod queries_pos;
pub mod queries_public;
pub mod queries_recon;
pub mod queries_refund_batch;
pub mod queries_refunds;
pub mod queries_reports;
pub mod queries_search;
pub mod queries_settlement_list;
pub mod queries_staff;
pub mod rows;
pub mod rows_notify;
pub mod sql;

pub use db::{Backend, Conn, Db, PooledConn, Tx};
pub use error::StoreError;
pub use queries_deductions::DeductionRow;
pub use queries_ledger::{BalanceRow, EntryRow, LedgerTotals, PostingRow, StatementRow};
pub use queries_merchant_days::{DayKey, DaySums};
pub use queries_ops::{OpsDurationRow, SettingsVersionRow};
pub use queries_payments::PaymentFilter;
pub use queries_pos::{BatchTotals, PosJournalRow, TerminalRow};
pub use queries_recon::{
    ReconExceptionFilter, ReconExceptionRow, ReconPaymentRow, ReconRefundRow, ReconciliationRow,
};
pub use queries_refunds::RefundFilter;
pub use queries_settlement_list::{
    DateCursor, ExceptionQueueFilter, QueuedExceptionRow, ReconciliationListFilter,
    StatementListFilter,
};
pub use queries_staff::{StaffSessionRow, StaffUserRow};
pub use rows::*;
