//! Cases (工单): complaints about a refund — it has not arrived, the amount is wrong, or
//! something else — opened by the merchant, the acquirer, the consumer (through the public
//! lookup) or the overdue monitor. A case has an owner, a resolution and a timeline; every
//! action is appended to the merchant's audit chain with the case id as subject, and the
//! case's timeline is read back from there.
//!
//! At most one case per refund and kind is open at a time (a unique index on open cases):
//! opening a second answers with the open one.

use chrono::{DateTime, Utc};
use serde_json::json;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::queries_cases::CaseRow;
use yuanlu_store::queries_notify::CaseFilter;
use yuanlu_store::{AuditRow, Conn, StoreError};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use crate::payments::optional_text;
use crate::views::Page;

/// Prefix of case ids.
pub const CASE_ID_PREFIX: &str = "case";
/// Bounds of the texts of a case.
pub const DESCRIPTION_CHARS_MAX: usize = 1_000;
pub const CONTACT_CHARS_MAX: usize = 100;
pub const RESOLUTION_CHARS_MAX: usize = 1_000;
pub const OWNER_CHARS_MAX: usize = 100;
/// How often an open is retried when a concurrent open of the same refund and kind won
/// the race for the unique index (PostgreSQL; SQLite serialises writers).
const OPEN_ATTEMPTS_MAX: usize = 2;

/// Audit actions about cases, which are also the case timeline's event names.
pub mod case_action {
    pub const OPENED: &str = "case.opened";
    pub const ASSIGNED: &str = "case.assigned";
    pub const RESOLVED: &str = "case.resolved";
}

/// The errors of cases and of the consumer's use cases: the engine's, plus the answers
/// [`EngineError`] has no variant for.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// 409 `conflict`: the request clashes with what exists (feedback already given, a
    /// lookup that matches several refunds).
    #[error("{0}")]
    Conflict(String),
    /// 409 `invalid_transition`: the case is not in a state that allows the action.
    #[error("{0}")]
    InvalidTransition(String),
    /// 429 `rate_limited`: too many wrong facts were given for this refund in the public
    /// lookup; it is locked for everyone until the window ends.
    #[error(
        "too many wrong facts were given for this refund; try again in {retry_after_seconds} s"
    )]
    Locked { retry_after_seconds: u64 },
}

impl CaseError {
    /// The stable error code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::Engine(error) => error.code(),
            CaseError::Conflict(_) => "conflict",
            CaseError::InvalidTransition(_) => "invalid_transition",
            CaseError::Locked { .. } => "rate_limited",
        }
    }
}

impl From<StoreError> for CaseError {
    fn from(error: StoreError) -> Self {
        CaseError::Engine(EngineError::Store(error))
    }
}

pub use yuanlu_domain::case::{CaseKind, CaseOpener, CaseStatus};

/// `POST /v1/cases`.
#[derive(Debug, Clone)]
pub struct OpenCase {
    pub refund_id: String,
    pub kind: CaseKind,
    /// What is wrong, 1–1000 characters.
    pub description: String,
    /// How to reach the complainant (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

/// `POST /v1/cases/{id}/resolve`.
#[derive(Debug, Clone)]
pub struct ResolveCase {
    /// What was done, 1–1000 characters.
    pub resolution: String,
}

/// `POST /v1/cases/{id}/assign`.
#[derive(Debug, Clone)]
pub struct AssignCase {
    /// Who handles the case, e.g. "ops: Wang", up to 100 characters.
    pub owner: String,
}

/// One thing that happened to a case, as data: the web layer words it
/// (`yuanlu_web::present::case`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEvent {
    pub at: DateTime<Utc>,
    /// `case.opened`, `case.assigned` or `case.resolved`.
    pub event: String,
    pub actor: String,
    pub facts: CaseEventFacts,
}

/// What a case event recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEventFacts {
    /// `opened_by` as recorded (`merchant`, `consumer`, `acquirer`, `system`); `kind` when
    /// it is one this version knows.
    Opened {
        opened_by: String,
        kind: Option<CaseKind>,
    },
    Assigned {
        owner: String,
    },
    Resolved {
        resolution: String,
    },
    /// An action this version does not know: its name (`event`) is all there is.
    Other,
}

/// A case as the engine answers it; the web layer's view adds the words.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    pub kind: CaseKind,
    pub description: String,
    pub contact: Option<String>,
    pub status: CaseStatus,
    pub owner: Option<String>,
    pub resolution: Option<String>,
    pub opened_by: CaseOpener,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The case's history, oldest first, from the audit log.
    pub timeline: Vec<CaseEvent>,
}

/// Whether an open made a new case or found the open one of the same refund and kind.
#[derive(Debug, Clone)]
pub enum CaseOutcome {
    Created(Box<Case>),
    Existing(Box<Case>),
}

impl CaseOutcome {
    pub fn case(&self) -> &Case {
        match self {
            CaseOutcome::Created(case) | CaseOutcome::Existing(case) => case,
        }
    }
}

/// Filters of `GET /v1/cases`.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub status: Option<CaseStatus>,
    pub refund_id: Option<String>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// A case about to be opened: checked texts, who opens it.
pub(crate) struct NewCase {
    pub(crate) refund_id: String,
    pub(crate) kind: CaseKind,
    pub(crate) description: String,
    pub(crate) contact: Option<String>,
    pub(crate) opened_by: CaseOpener,
    pub(crate) actor: String,
}

/// A required text of 1 to `max` characters (see [`optional_text`]).
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> EngineResult<String> {
    optional_text(field, Some(value), max)?
        .ok_or_else(|| EngineError::validation(field, format!("give 1 to {max} characters")))
}

pub(crate) fn case_texts(
    description: &str,
    contact: Option<&str>,
) -> EngineResult<(String, Option<String>)> {
    Ok((
        required_text("description", description, DESCRIPTION_CHARS_MAX)?,
        optional_text("contact", contact, CONTACT_CHARS_MAX)?,
    ))
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound {
        what: "case",
        id: id.to_string(),
    }
}

impl Engine {
    /// A merchant opens a case on one of its refunds; the admin on any refund. A second
    /// open of the same refund and kind answers with the open case.
    pub async fn open_case(&self, who: &Principal, input: OpenCase) -> EngineResult<CaseOutcome> {
        let (description, contact) = case_texts(&input.description, input.contact.as_deref())?;
        let opened_by = match who {
            Principal::Admin => CaseOpener::Acquirer,
            Principal::Merchant { .. } => CaseOpener::Merchant,
        };
        let new = NewCase {
            refund_id: input.refund_id,
            kind: input.kind,
            description,
            contact,
            opened_by,
            actor: who.actor(),
        };
        self.open_case_scoped(who.merchant_scope(), &new).await
    }

    /// Opens `new` on a refund of `scope` (any merchant's when `None`).
    pub(crate) async fn open_case_scoped(
        &self,
        scope: Option<&str>,
        new: &NewCase,
    ) -> EngineResult<CaseOutcome> {
        for _ in 0..OPEN_ATTEMPTS_MAX {
            match self.try_open_case(scope, new).await {
                // A concurrent open of the same refund and kind won: look again, which
                // now finds the open case.
                Err(EngineError::Store(StoreError::UniqueViolation(_))) => continue,
                other => return other,
            }
        }
        Err(EngineError::corrupt(format!(
            "opening a {} case on refund {} kept colliding",
            new.kind.id(),
            new.refund_id
        )))
    }

    async fn try_open_case(&self, scope: Option<&str>, new: &NewCase) -> EngineResult<CaseOutcome> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let refund = conn
            .get_refund(scope, &new.refund_id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "refund",
                id: new.refund_id.clone(),
            })?;
        if let Some(open) = conn.find_open_case(&refund.id, new.kind).await? {
            let view = case_view(&mut conn, &open).await?;
            return Ok(CaseOutcome::Existing(Box::new(view)));
        }
        let row = CaseRow {
            id: new_id(CASE_ID_PREFIX),
            merchant_id: refund.merchant_id.clone(),
            refund_id: refund.id.clone(),
            kind: new.kind,
            description: new.description.clone(),
            contact: new.contact.clone(),
            status: CaseStatus::Open,
            owner: None,
            resolution: None,
            opened_by: new.opened_by,
            created_at_us: now_us,
            resolved_at_us: None,
        };
        insert_case(&mut conn, &row, &new.actor).await?;
        let view = case_view(&mut conn, &row).await?;
        tx.commit().await?;
        Ok(CaseOutcome::Created(Box::new(view)))
    }

    /// A case with its timeline (admin: any; a merchant: its own).
    pub async fn get_case(&self, who: &Principal, id: &str) -> EngineResult<Case> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn
            .get_case(who.merchant_scope(), id)
            .await?
            .ok_or_else(|| not_found(id))?;
        case_view(&mut conn, &row).await
    }

    /// Cases, newest first.
    pub async fn list_cases(&self, who: &Principal, query: CaseQuery) -> EngineResult<Page<Case>> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let rows = conn
            .list_cases(&CaseFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                refund_id: query.refund_id,
                status: query.status,
                starting_after: query.starting_after,
                limit: query.limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > query.limit;
        let mut data = Vec::with_capacity(rows.len());
        for row in rows.iter().take(usize::try_from(query.limit).unwrap_or(0)) {
            data.push(case_view(&mut conn, row).await?);
        }
        Ok(Page { data, has_more })
    }

    /// Resolves an open case (the merchant of its refund, or the admin).
    pub async fn resolve_case(
        &self,
        who: &Principal,
        id: &str,
        input: ResolveCase,
    ) -> Result<Case, CaseError> {
        let resolution = required_text("resolution", &input.resolution, RESOLUTION_CHARS_MAX)?;
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let row = conn
            .get_case(who.merchant_scope(), id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !conn.resolve_case(id, &resolution, now_us).await? {
            return Err(CaseError::InvalidTransition(format!(
                "case {id} is {}; only an open case can be resolved",
                row.status
            )));
        }
        let actor = who.actor();
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &row.merchant_id,
                at_us: now_us,
                actor: &actor,
                action: case_action::RESOLVED,
                subject_id: id,
                data: json!({ "status": CaseStatus::Resolved.id(), "resolution": resolution }),
            },
        )
        .await?;
        let row = conn
            .get_case(None, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let view = case_view(&mut conn, &row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Admin: gives an open case an owner.
    pub async fn assign_case(
        &self,
        who: &Principal,
        id: &str,
        input: AssignCase,
    ) -> Result<Case, CaseError> {
        who.require_admin()?;
        let owner = required_text("owner", &input.owner, OWNER_CHARS_MAX)?;
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let row = conn
            .get_case(None, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if row.status != CaseStatus::Open {
            return Err(CaseError::InvalidTransition(format!(
                "case {id} is {}; only an open case can be assigned",
                row.status
            )));
        }
        conn.assign_case(id, &owner).await?;
        let actor = who.actor();
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &row.merchant_id,
                at_us: now_us,
                actor: &actor,
                action: case_action::ASSIGNED,
                subject_id: id,
                data: json!({ "owner": owner }),
            },
        )
        .await?;
        let row = conn
            .get_case(None, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let view = case_view(&mut conn, &row).await?;
        tx.commit().await?;
        Ok(view)
    }
}

/// Inserts a case and appends its opening to the merchant's chain, in the caller's
/// transaction. The contact is not written to the (append-only) audit log.
pub(crate) async fn insert_case(
    conn: &mut Conn<'_>,
    row: &CaseRow,
    actor: &str,
) -> EngineResult<()> {
    conn.insert_case(row).await?;
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: row.created_at_us,
            actor,
            action: case_action::OPENED,
            subject_id: &row.id,
            data: json!({
                "status": row.status,
                "refund_id": row.refund_id,
                "kind": row.kind,
                "opened_by": row.opened_by,
                "description": row.description,
                "has_contact": row.contact.is_some(),
            }),
        },
    )
    .await
}

/// The case with its timeline read from the audit log.
pub(crate) async fn case_view(conn: &mut Conn<'_>, row: &CaseRow) -> EngineResult<Case> {
    let entries = conn.audit_of_subject(&row.id).await?;
    Ok(Case {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        refund_id: row.refund_id.clone(),
        kind: row.kind,
        description: row.description.clone(),
        contact: row.contact.clone(),
        status: row.status,
        owner: row.owner.clone(),
        resolution: row.resolution.clone(),
        opened_by: row.opened_by,
        created_at: from_micros(row.created_at_us),
        resolved_at: row.resolved_at_us.map(from_micros),
        timeline: entries.iter().map(case_event).collect(),
    })
}

fn case_event(entry: &AuditRow) -> CaseEvent {
    let data: serde_json::Value = serde_json::from_str(&entry.data).unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let facts = match entry.action.as_str() {
        case_action::OPENED => CaseEventFacts::Opened {
            opened_by: text("opened_by"),
            kind: CaseKind::parse(&text("kind")),
        },
        case_action::ASSIGNED => CaseEventFacts::Assigned {
            owner: text("owner"),
        },
        case_action::RESOLVED => CaseEventFacts::Resolved {
            resolution: text("resolution"),
        },
        _ => CaseEventFacts::Other,
    };
    CaseEvent {
        at: from_micros(entry.at_us),
        event: entry.action.clone(),
        actor: entry.actor.clone(),
        facts,
    }
}
