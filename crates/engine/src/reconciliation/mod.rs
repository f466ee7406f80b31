//! Reconciliation (对账): importing a channel's statement for a business date, matching it
//! against yuanlu's payments and refunds of that date (`yuanlu-reconcile`), and the
//! exceptions an operator resolves with a note.
//!
//! An import is all or nothing: the file is parsed completely first (a malformed file is
//! refused naming its line, and nothing is stored), then the reconciliation, one exception
//! per line or record not `matched`, and the audit entry are written in one transaction.
//! Importing the same file again (same channel, and so the same business date, and the same
//! SHA-256) returns the stored reconciliation and writes nothing.
//!
//! Which of our records a statement is matched against (see `docs/statements.md`):
//!
//! - Payments captured on the business date (Asia/Shanghai) on the channels the statement
//!   covers ([`StatementChannel::covers`]) — only when the statement lists at least one
//!   payment. A statement without payment lines is taken to be a refunds-only export (the
//!   simulators' is), so payments are not reconciled and none is `missing_in_channel`.
//!   Refunds are always reconciled: a statement without refund lines still finds every
//!   refund we say succeeded that day `missing_in_channel`.
//! - Refunds that reached the channel that day: `succeeded_at` on the date, or, for a refund
//!   not (yet) succeeded, `dispatched_at` on the date.
//! - A payment's `settled_to_merchant_fen`: `None` unless its merchant has a settlement
//!   statement for the capture date; then what settlement has credited for it so far, from
//!   the ledger postings on settled dates — sale net of fee, minus voids and refunds debited
//!   net of the fee they return, plus refunds credited back. Postings of dates not yet
//!   settled are not counted, so a payment refunded in full after its capture date was
//!   settled is `credited_after_refund` until the refund's date is settled too.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yuanlu_domain::audit::SYSTEM_CHAIN;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::{from_micros, shanghai_day_bounds, to_micros};
use yuanlu_store::{
    ReconExceptionFilter, ReconExceptionRow, ReconPaymentRow, ReconRefundRow, ReconciliationRow,
    StoreError,
};

pub use yuanlu_reconcile::{
    LineKind, OurRecord, OurStatus, ParseError, ReconClass, ReconItem, ReconReport, Statement,
    StatementChannel,
};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use crate::views::Page;

mod exceptions;
#[cfg(test)]
mod tests;

pub(crate) use exceptions::{exception_view, reconciliation_view};

/// Prefix of reconciliation ids.
pub const RECONCILIATION: &str = "recon";
/// Prefix of reconciliation exception ids.
pub const EXCEPTION: &str = "rex";
/// The longest resolution note, in characters.
pub const NOTE_CHARS_MAX: usize = 2_000;

/// Audit actions.
pub mod action {
    pub const IMPORTED: &str = "reconciliation.imported";
    pub const EXCEPTION_RESOLVED: &str = "reconciliation.exception_resolved";
}

/// One class's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClassSummary {
    /// `matched`, `amount_mismatch`, `missing_in_channel`, `unexpected_in_channel`,
    /// `duplicate_in_channel`, `status_mismatch` or `credited_after_refund`.
    pub class: String,
    /// Lines or records in the class.
    pub count: u64,
    /// Sum of the statement lines' amounts, in fen (0 for `missing_in_channel`).
    pub channel_amount: i64,
    /// Sum of our records' amounts, in fen (0 for `unexpected_in_channel`).
    pub our_amount: i64,
}

/// The report of an import: counts and amounts per class (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconSummary {
    /// Statement lines read.
    pub lines: u64,
    /// Our records matched against.
    pub records: u64,
    /// Whether payments were reconciled: false when the statement lists no payment (a
    /// refunds-only export), so that no payment is reported missing from it.
    pub payments_reconciled: bool,
    /// Our records neither on the statement nor succeeded (in flight, failed): the channel
    /// need not list them, so they are in no class.
    pub unlisted_not_succeeded: u64,
    /// Every class, `matched` first.
    pub classes: Vec<ClassSummary>,
}

impl ReconSummary {
    /// The totals of one class (zero if absent).
    pub fn class(&self, class: ReconClass) -> ClassSummary {
        self.classes
            .iter()
            .find(|c| c.class == class.id())
            .cloned()
            .unwrap_or(ClassSummary {
                class: class.id().to_string(),
                count: 0,
                channel_amount: 0,
                our_amount: 0,
            })
    }
}

/// A statement import, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReconciliationView {
    pub id: String,
    /// The statement's format and channel: `wechat`, `alipay`, `card` or `yuanlu`.
    pub channel: String,
    /// `YYYY-MM-DD` (Asia/Shanghai), as the statement says.
    pub business_date: String,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
    pub lines: i64,
    pub records: i64,
    /// `clean` (no exceptions), `open` (exceptions to resolve) or `resolved`.
    pub status: String,
    /// Exceptions opened: one per line or record not `matched`.
    pub exceptions: i64,
    pub open_exceptions: i64,
    pub report: ReconSummary,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// True on the answer to an import of a file imported before: this is the stored
    /// reconciliation, and nothing new was written.
    pub already_imported: bool,
}

/// A discrepancy an operator resolves with a note.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReconException {
    pub id: String,
    pub reconciliation_id: String,
    /// The merchant of the payment or refund; `null` for a statement line yuanlu has no
    /// record of.
    pub merchant_id: Option<String>,
    /// A class other than `matched`.
    pub class: String,
    /// `payment` or `refund`.
    pub kind: String,
    /// The statement line, if the statement lists it.
    pub line_no: Option<i64>,
    /// Our payment or refund id.
    pub our_ref: Option<String>,
    pub channel_txn_id: Option<String>,
    /// In fen.
    pub our_amount: Option<i64>,
    /// In fen.
    pub channel_amount: Option<i64>,
    pub detail: String,
    /// `open` or `resolved`.
    pub status: String,
    pub resolution_note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// An exception's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    Open,
    Resolved,
}

impl ExceptionStatus {
    pub fn id(self) -> &'static str {
        match self {
            ExceptionStatus::Open => "open",
            ExceptionStatus::Resolved => "resolved",
        }
    }

    pub fn parse(id: &str) -> Option<ExceptionStatus> {
        [ExceptionStatus::Open, ExceptionStatus::Resolved]
            .into_iter()
            .find(|s| s.id() == id)
    }
}

/// Filters and page of an exception list (by id ascending: file order).
#[derive(Debug, Clone, Default)]
pub struct ExceptionQuery {
    pub status: Option<ExceptionStatus>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// What resolving an exception can end with.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// 409 `invalid_transition`: the exception was resolved before.
    #[error("{0}")]
    AlreadyResolved(String),
}

impl ReconError {
    /// The stable error code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            ReconError::Engine(error) => error.code(),
            ReconError::AlreadyResolved(_) => "invalid_transition",
        }
    }
}

impl From<StoreError> for ReconError {
    fn from(error: StoreError) -> Self {
        ReconError::Engine(EngineError::Store(error))
    }
}

/// Our records of a statement's channel and date, and whose each one is.
struct Loaded {
    records: Vec<OurRecord>,
    /// The merchant of each record, by position.
    merchants: Vec<String>,
}

impl Loaded {
    /// The merchant of each item's record (`''` for a line without one), found in one pass
    /// over the records for the few refs that need it.
    fn merchants_of(&self, items: &[ReconItem]) -> Vec<String> {
        let mut wanted: HashMap<(LineKind, &str), &str> = items
            .iter()
            .filter_map(|item| Some(((item.kind, item.our_ref.as_deref()?), "")))
            .collect();
        if !wanted.is_empty() {
            for (record, merchant) in self.records.iter().zip(&self.merchants) {
                if let Some(slot) = wanted.get_mut(&(record.kind, record.our_ref.as_str()))
                    && slot.is_empty()
                {
                    *slot = merchant;
                }
            }
        }
        items
            .iter()
            .map(|item| {
                item.our_ref
                    .as_deref()
                    .and_then(|our_ref| wanted.get(&(item.kind, our_ref)))
                    .map_or_else(String::new, |m| (*m).to_string())
            })
            .collect()
    }
}

impl Engine {
    /// Admin: imports a statement file. See the module documentation. `progress` is called
    /// with the number of bytes parsed (about once per MiB and at the end); it is `Send` so
    /// that the import can run in a request handler or a spawned task.
    pub async fn import_statement(
        &self,
        who: &Principal,
        channel: StatementChannel,
        bytes: &[u8],
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> EngineResult<ReconciliationView> {
        who.require_admin()?;
        let file_sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(existing) = self.find_import(channel, &file_sha256).await? {
            progress(bytes.len() as u64);
            return Ok(existing);
        }
        let statement = yuanlu_reconcile::parse(channel, bytes, progress)
            .map_err(|error| EngineError::validation("file", error.to_string()))?;
        let payments_reconciled = statement
            .lines
            .iter()
            .any(|line| line.kind == LineKind::Payment);
        let loaded = self
            .load_records(channel, statement.business_date, payments_reconciled)
            .await?;
        let report = yuanlu_reconcile::reconcile(&statement, &loaded.records);
        let business_date = date_text(statement.business_date);
        drop(statement);

        let now_us = to_micros(self.clock.now());
        let id = new_id(RECONCILIATION);
        let summary = summarize(&report, payments_reconciled);
        let merchants = loaded.merchants_of(&report.items);
        let exceptions = exception_rows(&id, &report.items, merchants, now_us);
        drop(loaded);
        let row = ReconciliationRow {
            id: id.clone(),
            merchant_id: String::new(),
            channel: channel.id().to_string(),
            business_date,
            file_sha256: file_sha256.clone(),
            lines: report.lines as i64,
            records: report.records as i64,
            exceptions: exceptions.len() as i64,
            status: if exceptions.is_empty() {
                "clean"
            } else {
                "open"
            }
            .to_string(),
            report: serde_json::to_string(&summary)
                .map_err(|e| EngineError::corrupt(format!("reconciliation report: {e}")))?,
            created_by: who.actor(),
            created_at_us: now_us,
        };

        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        match conn.insert_reconciliation(&row).await {
            Ok(()) => {}
            Err(StoreError::UniqueViolation(_)) => {
                // The same file was imported concurrently: answer with that import.
                drop(tx);
                return self
                    .find_import(channel, &file_sha256)
                    .await?
                    .ok_or_else(|| {
                        EngineError::corrupt("a reconciliation vanished after a unique violation")
                    });
            }
            Err(error) => return Err(error.into()),
        }
        conn.insert_recon_exceptions(&exceptions).await?;
        let counts: serde_json::Map<String, serde_json::Value> = summary
            .classes
            .iter()
            .map(|c| (c.class.clone(), json!(c.count)))
            .collect();
        let actor = who.actor();
        audit::append(
            &mut conn,
            AuditEvent {
                chain: SYSTEM_CHAIN,
                at_us: now_us,
                actor: &actor,
                action: action::IMPORTED,
                subject_id: &id,
                data: json!({
                    "channel": row.channel,
                    "business_date": row.business_date,
                    "file_sha256": row.file_sha256,
                    "lines": row.lines,
                    "records": row.records,
                    "exceptions": row.exceptions,
                    "classes": counts,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let open = row.exceptions;
        reconciliation_view(&row, open, false)
    }

    /// The stored import of this file, if any, marked `already_imported`.
    async fn find_import(
        &self,
        channel: StatementChannel,
        file_sha256: &str,
    ) -> EngineResult<Option<ReconciliationView>> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let Some(row) = conn
            .find_reconciliation_by_file(channel.id(), file_sha256)
            .await?
        else {
            return Ok(None);
        };
        let open = conn.count_open_recon_exceptions(&row.id).await?;
        reconciliation_view(&row, open, true).map(Some)
    }

    /// Our records for a statement of `channel` on `date` (see the module documentation).
    async fn load_records(
        &self,
        channel: StatementChannel,
        date: NaiveDate,
        with_payments: bool,
    ) -> EngineResult<Loaded> {
        let channels: Vec<&str> = Channel::ALL
            .into_iter()
            .filter(|c| channel.covers(*c))
            .map(Channel::id)
            .collect();
        let (start, end) = shanghai_day_bounds(date);
        let (from_us, to_us) = (to_micros(start), to_micros(end));
        let day = date_text(date);
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let (payments, nets, settled) = if with_payments {
            let payments = conn
                .recon_payments_of_day(&channels, from_us, to_us)
                .await?;
            let nets: HashMap<String, i64> = conn
                .recon_settled_nets(&channels, from_us, to_us, &day)
                .await?
                .into_iter()
                .collect();
            let settled: HashSet<String> =
                conn.merchants_settled_on(&day).await?.into_iter().collect();
            (payments, nets, settled)
        } else {
            (Vec::new(), HashMap::new(), HashSet::new())
        };
        let refunds = conn.recon_refunds_of_day(&channels, from_us, to_us).await?;
        let mut loaded = Loaded {
            records: Vec::with_capacity(payments.len() + refunds.len()),
            merchants: Vec::with_capacity(payments.len() + refunds.len()),
        };
        for mut payment in payments {
            let merchant_id = std::mem::take(&mut payment.merchant_id);
            let settled_net = settled
                .contains(&merchant_id)
                .then(|| nets.get(&payment.id).copied().unwrap_or(0));
            loaded.merchants.push(merchant_id);
            loaded.records.push(payment_record(payment, settled_net));
        }
        for mut refund in refunds {
            loaded
                .merchants
                .push(std::mem::take(&mut refund.merchant_id));
            loaded.records.push(refund_record(refund)?);
        }
        Ok(loaded)
    }
}

/// `settled_net`: what settlement credited for it, if its capture date is settled.
fn payment_record(row: ReconPaymentRow, settled_net: Option<i64>) -> OurRecord {
    OurRecord {
        kind: LineKind::Payment,
        our_ref: row.id,
        channel_txn_id: row.rrn,
        amount_fen: row.amount_fen,
        status: if row.voided {
            OurStatus::Other
        } else {
            OurStatus::Succeeded
        },
        payment_ref: None,
        settled_to_merchant_fen: settled_net,
        refunded_fen: row.amount_refunded_fen,
    }
}

fn refund_record(row: ReconRefundRow) -> EngineResult<OurRecord> {
    let status = row.status;
    Ok(OurRecord {
        kind: LineKind::Refund,
        our_ref: row.id,
        channel_txn_id: row.channel_refund_id,
        amount_fen: row.amount_fen,
        status: channel_side_status(status, row.received_account.as_deref()),
        payment_ref: Some(row.payment_id),
        settled_to_merchant_fen: None,
        refunded_fen: 0,
    })
}

/// Where a refund is as the channel should see it: a refund the merchant paid the consumer
/// directly succeeded for us, but the channel paid nothing (its route was closed).
pub fn channel_side_status(status: RefundStatus, received_account: Option<&str>) -> OurStatus {
    if received_account == Some(crate::dispatch::PAID_BY_MERCHANT) {
        return OurStatus::Failed;
    }
    our_status(status)
}

/// Where a refund is, in the matcher's words.
pub fn our_status(status: RefundStatus) -> OurStatus {
    match status {
        RefundStatus::Succeeded => OurStatus::Succeeded,
        RefundStatus::Processing | RefundStatus::Abnormal => OurStatus::Processing,
        RefundStatus::Failed | RefundStatus::Rejected | RefundStatus::Canceled => OurStatus::Failed,
        RefundStatus::AwaitingReturn | RefundStatus::PendingReview | RefundStatus::Queued => {
            OurStatus::Other
        }
    }
}

fn summarize(report: &ReconReport, payments_reconciled: bool) -> ReconSummary {
    ReconSummary {
        lines: report.lines,
        records: report.records,
        payments_reconciled,
        unlisted_not_succeeded: report.unlisted_not_succeeded,
        classes: ReconClass::ALL
            .into_iter()
            .map(|class| {
                let total = report.total(class);
                ClassSummary {
                    class: class.id().to_string(),
                    count: total.count,
                    channel_amount: total.channel_fen,
                    our_amount: total.our_fen,
                }
            })
            .collect(),
    }
}

fn exception_rows(
    reconciliation_id: &str,
    items: &[ReconItem],
    merchants: Vec<String>,
    now_us: i64,
) -> Vec<ReconExceptionRow> {
    items
        .iter()
        .zip(merchants)
        .map(|(item, merchant_id)| ReconExceptionRow {
            id: new_id(EXCEPTION),
            reconciliation_id: reconciliation_id.to_string(),
            merchant_id,
            class: item.class.id().to_string(),
            kind: item.kind.id().to_string(),
            line_no: item.line_no.map(|n| n as i64),
            our_ref: item.our_ref.clone(),
            channel_txn_id: item.channel_txn_id.clone(),
            our_amount_fen: item.our_amount_fen,
            channel_amount_fen: item.channel_amount_fen,
            detail: item.detail.clone(),
            status: ExceptionStatus::Open.id().to_string(),
            resolution_note: None,
            resolved_by: None,
            resolved_at_us: None,
            created_at_us: now_us,
        })
        .collect()
}

pub(crate) fn not_found(what: &'static str, id: &str) -> EngineError {
    EngineError::NotFound {
        what,
        id: id.to_string(),
    }
}

fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}
