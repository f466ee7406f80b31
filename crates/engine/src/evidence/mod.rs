//! Proof and identity (证明材料, 身份核实), issue 15 item 1: the evidence a refund or a case
//! carries — the sale voucher, a receipt photo (files), an ID check result (who checked,
//! which document, its last four characters) — and the hold on a refund whose merchant
//! requires evidence above an amount.
//!
//! - Files are checked by their content (JPEG, PNG, PDF; `yuanlu_domain::evidence::sniff`),
//!   at most `EVIDENCE_BYTES_MAX`, and kept outside the database in the evidence directory
//!   ([`EvidenceStore`]), named by their SHA-256 and written atomically (temporary file,
//!   fsync, rename, fsync of the directory). The file is written before the row that names
//!   it is committed: a failed transaction can leave a file nobody names, never a row
//!   without its file.
//! - Every piece of evidence is recorded on the merchant's audit chain with its SHA-256.
//! - Only the merchant (its own keys) and the acquirer (admin) read evidence, through the one
//!   per-merchant check [`Principal::authorize_merchant`]; the consumer's views carry none.
//! - The hold: a refund created above `settings.evidence.require_*_above` waits in
//!   `pending_review` (its `evidence.missing` says for what) and cannot be approved
//!   (`evidence_required`). The evidence that completes it releases it in the same
//!   transaction: to `queued` if it has no review reasons (funding rule included), else it
//!   stays for its reviewer, now approvable. See docs/decisions.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yuanlu_domain::evidence::{
    self as rules, DocumentType, EvidenceKind, FileType, IdCheck, check_file, split_kinds,
};
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::queries_evidence::{EvidenceHoldRow, EvidenceRow};
use yuanlu_store::{Conn, PaymentRow, RefundRow, StoreError};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use crate::notify;
use crate::timeline::action;
use crate::transition::{Change, apply_transition, complete_void, void_or_refund};
use crate::views;

mod files;
pub use files::EvidenceStore;

/// Prefix of evidence ids.
pub const EVIDENCE: &str = "ev";
/// The audit action of added evidence (its subject is the evidence's id).
pub const ADDED: &str = "evidence.added";

/// What evidence is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    Refund,
    Case,
}

impl SubjectType {
    pub fn id(self) -> &'static str {
        match self {
            SubjectType::Refund => "refund",
            SubjectType::Case => "case",
        }
    }

    fn parse(id: &str) -> Option<Self> {
        match id {
            "refund" => Some(SubjectType::Refund),
            "case" => Some(SubjectType::Case),
            _ => None,
        }
    }
}

/// A refund or a case, by id.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub kind: SubjectType,
    pub id: &'a str,
}

impl<'a> Subject<'a> {
    pub fn refund(id: &'a str) -> Self {
        Subject {
            kind: SubjectType::Refund,
            id,
        }
    }

    pub fn case(id: &'a str) -> Self {
        Subject {
            kind: SubjectType::Case,
            id,
        }
    }

    fn not_found(&self) -> EngineError {
        EngineError::NotFound {
            what: self.kind.id(),
            id: self.id.to_string(),
        }
    }
}

/// An ID check as sent (`POST …/evidence` with a JSON body).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdCheckInput {
    /// Always `id_check`.
    pub kind: EvidenceKind,
    /// Who looked at the document, e.g. "cashier Li".
    pub checked_by: String,
    pub document_type: DocumentType,
    /// The document number's last 4 characters only (digits; the last may be `X`). A whole
    /// ID number is refused (`full_id_number_refused`) and never stored.
    pub last_digits: String,
}

/// Evidence to add: a file of a kind, or an ID check.
#[derive(Debug, Clone)]
pub enum EvidenceInput {
    File { kind: EvidenceKind, bytes: Vec<u8> },
    IdCheck(IdCheckInput),
}

/// One piece of evidence as the merchant and the acquirer see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// `ev_…`.
    pub id: String,
    pub merchant_id: String,
    pub subject_type: SubjectType,
    /// The refund (`rf_…`) or case (`case_…`) it is about.
    pub subject_id: String,
    pub kind: EvidenceKind,
    /// SHA-256 (hex) of the file, or of the ID check's canonical text; also on the audit
    /// chain.
    pub sha256: String,
    /// The type the file's content showed; absent for an ID check.
    pub content_type: Option<FileType>,
    pub size_bytes: i64,
    /// The ID check's result; absent for a file.
    pub id_check: Option<IdCheck>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What evidence a refund needs and has (证明材料).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundEvidence {
    /// What the merchant's settings required when the refund was asked for.
    pub required: Vec<EvidenceKind>,
    /// The kinds of evidence the refund carries (each once).
    pub present: Vec<EvidenceKind>,
    /// Required and not yet there: while this is not empty the refund waits in
    /// `pending_review` and cannot be approved (`evidence_required`).
    pub missing: Vec<EvidenceKind>,
}

/// The answer to an upload: the evidence, and whether this call stored it (the same file or
/// check of the same kind on the same subject answers the stored one).
#[derive(Debug)]
pub struct EvidenceAdded {
    pub evidence: Evidence,
    pub created: bool,
}

/// The checked evidence of an upload, ready to store.
struct Checked {
    kind: EvidenceKind,
    sha256: String,
    file: Option<(FileType, Vec<u8>)>,
    id_check: Option<IdCheck>,
    size_bytes: i64,
}

fn check_input(input: EvidenceInput) -> EngineResult<Checked> {
    match input {
        EvidenceInput::File { kind, bytes } => {
            if !kind.is_file() {
                return Err(EngineError::BadEvidence {
                    code: "validation_error",
                    field: "kind",
                    message: "an id_check is sent as JSON, not as a file".into(),
                });
            }
            let file_type = check_file(&bytes).map_err(|refusal| EngineError::BadEvidence {
                code: refusal.code(),
                field: "file",
                message: refusal.to_string(),
            })?;
            Ok(Checked {
                kind,
                sha256: hex::encode(Sha256::digest(&bytes)),
                size_bytes: bytes.len() as i64,
                file: Some((file_type, bytes)),
                id_check: None,
            })
        }
        EvidenceInput::IdCheck(input) => {
            if input.kind != EvidenceKind::IdCheck {
                return Err(EngineError::BadEvidence {
                    code: "validation_error",
                    field: "kind",
                    message: "a sale_voucher or receipt_photo is sent as the file itself \
                              (Content-Type image/jpeg, image/png or application/pdf)"
                        .into(),
                });
            }
            let check = IdCheck::new(&input.checked_by, input.document_type, &input.last_digits)
                .map_err(|refusal| EngineError::BadEvidence {
                    code: refusal.code(),
                    field: refusal.field(),
                    message: refusal.to_string(),
                })?;
            let canonical = check.canonical();
            Ok(Checked {
                kind: EvidenceKind::IdCheck,
                sha256: hex::encode(Sha256::digest(canonical.as_bytes())),
                size_bytes: canonical.len() as i64,
                file: None,
                id_check: Some(check),
            })
        }
    }
}

impl Engine {
    /// The merchant (its own) or the admin: adds evidence to a refund or a case. A refund
    /// waiting for it is released in the same transaction when nothing required is missing.
    pub async fn add_evidence(
        &self,
        who: &Principal,
        subject: Subject<'_>,
        input: EvidenceInput,
    ) -> EngineResult<EvidenceAdded> {
        let checked = check_input(input)?;
        // Who may add is checked before a byte is written to disk.
        {
            let mut pooled = self.db.acquire().await?;
            subject_merchant(&mut pooled.conn(), who, subject).await?;
        }
        if let Some((_, bytes)) = &checked.file {
            let store = self
                .evidence_store
                .clone()
                .ok_or(EngineError::EvidenceStorageNotConfigured)?;
            let sha256 = checked.sha256.clone();
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || store.put(&sha256, &bytes))
                .await
                .map_err(|e| EngineError::corrupt(format!("evidence writer: {e}")))?
                .map_err(|e| EngineError::corrupt(format!("cannot keep the evidence file: {e}")))?;
        }
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let merchant_id = subject_merchant(&mut conn, who, subject).await?;
        // A refund's payment is locked first (the order every refund change takes), so a
        // release cannot race an approval or a cancel.
        let locked = match subject.kind {
            SubjectType::Refund => Some(lock_refund(&mut conn, who, subject).await?),
            SubjectType::Case => None,
        };
        if let Some(row) = conn
            .find_evidence(subject.id, checked.kind.id(), &checked.sha256)
            .await?
        {
            return Ok(EvidenceAdded {
                evidence: evidence_view(&row)?,
                created: false,
            });
        }
        let row = EvidenceRow {
            id: new_id(EVIDENCE),
            merchant_id: merchant_id.clone(),
            subject_type: subject.kind.id().to_string(),
            subject_id: subject.id.to_string(),
            kind: checked.kind.id().to_string(),
            sha256: checked.sha256.clone(),
            content_type: checked.file.as_ref().map(|(t, _)| t.id().to_string()),
            size_bytes: checked.size_bytes,
            checked_by: checked.id_check.as_ref().map(|c| c.checked_by.clone()),
            document_type: checked
                .id_check
                .as_ref()
                .map(|c| c.document_type.id().to_string()),
            last_digits: checked.id_check.as_ref().map(|c| c.last_digits.clone()),
            created_by: who.actor(),
            created_at_us: now_us,
        };
        match conn.insert_evidence(&row).await {
            Ok(()) => {}
            Err(StoreError::UniqueViolation(_)) => {
                // The same evidence was added concurrently: answer with that one.
                drop(tx);
                let mut pooled = self.db.acquire().await?;
                let row = pooled
                    .conn()
                    .find_evidence(subject.id, checked.kind.id(), &checked.sha256)
                    .await?
                    .ok_or_else(|| EngineError::corrupt("evidence vanished"))?;
                return Ok(EvidenceAdded {
                    evidence: evidence_view(&row)?,
                    created: false,
                });
            }
            Err(error) => return Err(error.into()),
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &merchant_id,
                at_us: now_us,
                actor: &row.created_by,
                action: ADDED,
                subject_id: &row.id,
                data: json!({
                    "subject_type": row.subject_type,
                    "subject_id": row.subject_id,
                    "kind": row.kind,
                    "sha256": row.sha256,
                    "content_type": row.content_type,
                    "size_bytes": row.size_bytes,
                    "document_type": row.document_type,
                }),
            },
        )
        .await?;
        if let Some((mut refund, payment)) = locked {
            release_if_complete(&mut conn, &mut refund, &payment, &who.actor(), self).await?;
        }
        tx.commit().await?;
        Ok(EvidenceAdded {
            evidence: evidence_view(&row)?,
            created: true,
        })
    }

    /// Whether `who` may add to and read the evidence of `subject` (the merchant it belongs
    /// to, or the admin); another merchant's subject is `not_found`.
    pub async fn authorize_evidence(
        &self,
        who: &Principal,
        subject: Subject<'_>,
    ) -> EngineResult<()> {
        let mut pooled = self.db.acquire().await?;
        subject_merchant(&mut pooled.conn(), who, subject)
            .await
            .map(|_| ())
    }

    /// The merchant (its own) or the admin: a refund's or a case's evidence, oldest first.
    pub async fn list_evidence(
        &self,
        who: &Principal,
        subject: Subject<'_>,
    ) -> EngineResult<Vec<Evidence>> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        subject_merchant(&mut conn, who, subject).await?;
        let rows = conn.list_evidence(subject.id).await?;
        rows.iter().map(evidence_view).collect()
    }

    /// The merchant (its own) or the admin: one file's evidence and its bytes (checked
    /// against its SHA-256). An ID check has no file: `not_found`.
    pub async fn evidence_content(
        &self,
        who: &Principal,
        subject: Subject<'_>,
        evidence_id: &str,
    ) -> EngineResult<(Evidence, Vec<u8>)> {
        let not_found = || EngineError::NotFound {
            what: "evidence file",
            id: evidence_id.to_string(),
        };
        let row = {
            let mut pooled = self.db.acquire().await?;
            let mut conn = pooled.conn();
            subject_merchant(&mut conn, who, subject).await?;
            conn.get_evidence(evidence_id)
                .await?
                .filter(|row| row.subject_id == subject.id && row.content_type.is_some())
                .ok_or_else(not_found)?
        };
        let store = self
            .evidence_store
            .clone()
            .ok_or(EngineError::EvidenceStorageNotConfigured)?;
        let sha256 = row.sha256.clone();
        let bytes = tokio::task::spawn_blocking(move || store.get(&sha256))
            .await
            .map_err(|e| EngineError::corrupt(format!("evidence reader: {e}")))?
            .map_err(|e| EngineError::corrupt(format!("evidence file {}: {e}", row.id)))?;
        Ok((evidence_view(&row)?, bytes))
    }
}

/// The merchant a subject belongs to, after the one per-merchant check (another merchant's
/// refund or case is "not found").
async fn subject_merchant(
    conn: &mut Conn<'_>,
    who: &Principal,
    subject: Subject<'_>,
) -> EngineResult<String> {
    let merchant_id = match subject.kind {
        SubjectType::Refund => conn
            .get_refund(None, subject.id)
            .await?
            .map(|row| row.merchant_id),
        SubjectType::Case => conn
            .get_case(None, subject.id)
            .await?
            .map(|row| row.merchant_id),
    }
    .ok_or_else(|| subject.not_found())?;
    who.authorize_merchant(&merchant_id, None)
        .map_err(|_| subject.not_found())?;
    Ok(merchant_id)
}

/// The refund and its payment, the payment locked and the refund read under the lock.
async fn lock_refund(
    conn: &mut Conn<'_>,
    who: &Principal,
    subject: Subject<'_>,
) -> EngineResult<(RefundRow, PaymentRow)> {
    let scope = who.merchant_scope();
    let first = conn
        .get_refund(scope, subject.id)
        .await?
        .ok_or_else(|| subject.not_found())?;
    let payment = conn
        .lock_payment(&first.merchant_id, &first.payment_id)
        .await?
        .ok_or_else(|| {
            EngineError::corrupt(format!("refund {} names a missing payment", first.id))
        })?;
    let row = conn
        .get_refund(scope, subject.id)
        .await?
        .ok_or_else(|| subject.not_found())?;
    Ok((row, payment))
}

/// What the refund's hold requires and what is missing, from its stored hold and evidence.
pub(crate) async fn refund_evidence(
    conn: &mut Conn<'_>,
    refund_id: &str,
) -> EngineResult<(Option<EvidenceHoldRow>, RefundEvidence)> {
    let hold = conn.get_evidence_hold(refund_id).await?;
    let required = match &hold {
        Some(hold) => split_kinds(&hold.required).ok_or_else(|| {
            EngineError::corrupt(format!(
                "evidence hold of {refund_id} requires {:?}",
                hold.required
            ))
        })?,
        None => Vec::new(),
    };
    let mut present = Vec::new();
    for row in conn.list_evidence(refund_id).await? {
        let kind = EvidenceKind::parse(&row.kind).ok_or_else(|| {
            EngineError::corrupt(format!("evidence {} kind {}", row.id, row.kind))
        })?;
        if !present.contains(&kind) {
            present.push(kind);
        }
    }
    present.sort();
    let missing = rules::missing(&required, &present);
    Ok((
        hold,
        RefundEvidence {
            required,
            present,
            missing,
        },
    ))
}

/// Writes a new refund's hold (in its creation's transaction).
pub(crate) async fn hold_new_refund(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    required: &[EvidenceKind],
) -> EngineResult<()> {
    if required.is_empty() {
        return Ok(());
    }
    conn.insert_evidence_hold(&EvidenceHoldRow {
        refund_id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        required: rules::join_kinds(required),
        created_at_us: row.created_at_us,
        released_at_us: None,
    })
    .await?;
    Ok(())
}

/// Releases the refund's hold when nothing required is missing. A refund waiting only for
/// the evidence goes on exactly as it would have without the hold: to `queued` (the funding
/// rule is checked now; a merchant who cannot fund it leaves it in `pending_review` for the
/// acquirer), a void completes. One with review reasons stays for its reviewer. Audited on
/// the refund (`refund.evidence_complete`).
async fn release_if_complete(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    payment: &PaymentRow,
    actor: &str,
    engine: &Engine,
) -> EngineResult<()> {
    let (hold, evidence) = refund_evidence(conn, &row.id).await?;
    let Some(hold) = hold else { return Ok(()) };
    if hold.released_at_us.is_some() || !evidence.missing.is_empty() {
        return Ok(());
    }
    let now = engine.clock.now();
    let now_us = to_micros(now);
    conn.release_evidence_hold(&row.id, now_us).await?;
    let reasons = views::review_reasons(&row.review_reasons)?;
    let goes_on = row.status == RefundStatus::PendingReview && reasons.is_empty();
    let funded = goes_on && row.refund_type == RefundType::Refund && {
        let merchant = conn.get_merchant(&row.merchant_id).await?.ok_or_else(|| {
            EngineError::corrupt(format!("refund {} names a missing merchant", row.id))
        })?;
        let policy = views::merchant(&merchant)?.settings.funding;
        match crate::ledger::ensure_funded(
            conn,
            &row.merchant_id,
            policy,
            row.amount_fen - row.fee_refunded_fen,
        )
        .await
        {
            Ok(_) => true,
            Err(EngineError::InsufficientBalance { .. }) => false,
            Err(error) => return Err(error),
        }
    };
    if !(goes_on && (funded || row.refund_type == RefundType::Void)) {
        audit::append(
            conn,
            AuditEvent {
                chain: &row.merchant_id,
                at_us: now_us,
                actor,
                action: action::EVIDENCE_COMPLETE,
                subject_id: &row.id,
                data: json!({
                    "status": row.status.id(),
                    "evidence": rules::join_kinds(&evidence.present),
                    "waits_for": match row.status {
                        RefundStatus::PendingReview if goes_on => "funding",
                        RefundStatus::PendingReview => "review",
                        RefundStatus::AwaitingReturn => "return",
                        _ => "nothing",
                    },
                }),
            },
        )
        .await?;
        return Ok(());
    }
    let mut counters = payment.counters();
    if row.refund_type == RefundType::Void {
        // Decide again: the void window may have passed while it waited.
        void_or_refund(conn, row, payment, &mut counters, now).await?;
    }
    let from = row.status;
    apply_transition(
        conn,
        row,
        &mut counters,
        from,
        &Change {
            to: RefundStatus::Queued,
            action: action::EVIDENCE_COMPLETE,
            review_note: None,
            reviewed_by: None,
            tracking_no: None,
        },
        actor,
        now_us,
    )
    .await?;
    if row.refund_type == RefundType::Void {
        complete_void(conn, row, &mut counters, "system", now_us).await?;
        notify::enqueue_refund_sms(conn, row, payment, notify::SmsKind::Arrived, now_us).await?;
    } else {
        row.next_attempt_at_us = Some(now_us);
        conn.queue_refund_for_dispatch(&row.merchant_id, &row.id, now_us)
            .await?;
    }
    Ok(())
}

fn evidence_view(row: &EvidenceRow) -> EngineResult<Evidence> {
    let corrupt = |what: &str| EngineError::corrupt(format!("evidence {}: {what}", row.id));
    let kind = EvidenceKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?;
    let content_type = row
        .content_type
        .as_deref()
        .map(|t| FileType::parse(t).ok_or_else(|| corrupt("content type")))
        .transpose()?;
    let id_check = match (&row.checked_by, &row.document_type, &row.last_digits) {
        (Some(checked_by), Some(document_type), Some(last_digits)) => Some(IdCheck {
            checked_by: checked_by.clone(),
            document_type: DocumentType::parse(document_type)
                .ok_or_else(|| corrupt("document type"))?,
            last_digits: last_digits.clone(),
        }),
        _ => None,
    };
    Ok(Evidence {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        subject_type: SubjectType::parse(&row.subject_type).ok_or_else(|| corrupt("subject"))?,
        subject_id: row.subject_id.clone(),
        kind,
        sha256: row.sha256.clone(),
        content_type,
        size_bytes: row.size_bytes,
        id_check,
        created_by: row.created_by.clone(),
        created_at: from_micros(row.created_at_us),
    })
}
