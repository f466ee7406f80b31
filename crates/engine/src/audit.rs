//! Appending to the audit chain inside a use case's transaction, and verifying it.

use serde::Serialize;
use yuanlu_domain::audit::{
    AuditContent, ChainBreak, ChainWalker, FirstBad, GENESIS_HASH, StoredEntry, entry_hash,
};
use yuanlu_store::{AuditHeadRow, AuditRow, Conn};

use crate::Engine;
use crate::error::EngineResult;

/// Entries read per query while verifying.
pub const VERIFY_PAGE_ENTRIES: i64 = 1_000;

/// One thing that happened, about to be appended.
pub struct AuditEvent<'a> {
    pub chain: &'a str,
    pub at_us: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject_id: &'a str,
    pub data: serde_json::Value,
}

/// Appends `event` to its chain, in the caller's transaction.
pub async fn append(conn: &mut Conn<'_>, event: AuditEvent<'_>) -> EngineResult<()> {
    let head = conn.lock_audit_head(event.chain, GENESIS_HASH).await?;
    append_after(conn, head, event).await.map(|_| ())
}

/// Appends `event` after `head`, which this transaction has locked (and maybe moved since:
/// the caller passes the head as it is now). Returns the entry written, whose `seq` and
/// `hash` are the chain's new head.
pub async fn append_after(
    conn: &mut Conn<'_>,
    head: AuditHeadRow,
    event: AuditEvent<'_>,
) -> EngineResult<AuditRow> {
    let data = event.data.to_string();
    let seq = head.seq + 1;
    let content = AuditContent {
        chain: event.chain,
        seq,
        at_us: event.at_us,
        actor: event.actor,
        action: event.action,
        subject_id: event.subject_id,
        data: &data,
    };
    let hash = entry_hash(&head.hash, &content);
    let row = AuditRow {
        chain: event.chain.to_string(),
        seq,
        at_us: event.at_us,
        actor: event.actor.to_string(),
        action: event.action.to_string(),
        subject_id: event.subject_id.to_string(),
        data,
        prev_hash: head.hash,
        hash,
    };
    conn.append_audit(&row).await?;
    Ok(row)
}

/// The answer of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// Entries checked (up to the first bad one).
    pub entries: i64,
    pub chains: i64,
    pub first_bad: Option<FirstBad>,
}

impl Engine {
    /// Walks every chain from its first entry and stops at the first break.
    ///
    /// Writers keep appending while this runs, so each chain is walked up to the head read
    /// before the walk; afterwards, any stored entry beyond the head read again is a forgery
    /// (an honest append moves the head in the same transaction).
    pub async fn verify_audit(&self) -> EngineResult<AuditVerification> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let chains = conn.audit_chains().await?;
        let mut entries = 0;
        for chain in &chains {
            let broken = |bad, entries| AuditVerification {
                ok: false,
                entries,
                chains: chains.len() as i64,
                first_bad: Some(bad),
            };
            let (head_seq, head_hash) = head_of(&mut conn, chain).await?;
            let mut walker = ChainWalker::new(chain);
            let mut after_seq = 0;
            loop {
                let page = conn
                    .audit_page(chain, after_seq, head_seq, VERIFY_PAGE_ENTRIES)
                    .await?;
                for row in &page {
                    if let Err(bad) = walker.step(&stored(row)) {
                        return Ok(broken(bad, entries));
                    }
                    entries += 1;
                }
                match page.last() {
                    Some(last) if page.len() as i64 == VERIFY_PAGE_ENTRIES => after_seq = last.seq,
                    _ => break,
                }
            }
            if let Err(bad) = walker.finish(head_seq, &head_hash) {
                return Ok(broken(bad, entries));
            }
            let stored_max = conn.audit_max_seq(chain).await?;
            let (head_now, _) = head_of(&mut conn, chain).await?;
            if stored_max > head_now {
                let bad = FirstBad {
                    chain: chain.clone(),
                    seq: head_now + 1,
                    problem: ChainBreak::HeadMismatch,
                };
                return Ok(broken(bad, entries));
            }
        }
        Ok(AuditVerification {
            ok: true,
            entries,
            chains: chains.len() as i64,
            first_bad: None,
        })
    }
}

/// A chain's recorded head, or the genesis when it has none.
async fn head_of(conn: &mut Conn<'_>, chain: &str) -> EngineResult<(i64, String)> {
    Ok(conn
        .audit_head(chain)
        .await?
        .map_or((0, GENESIS_HASH.to_string()), |h| (h.seq, h.hash)))
}

fn stored(row: &AuditRow) -> StoredEntry {
    StoredEntry {
        chain: row.chain.clone(),
        seq: row.seq,
        at_us: row.at_us,
        actor: row.actor.clone(),
        action: row.action.clone(),
        subject_id: row.subject_id.clone(),
        data: row.data.clone(),
        prev_hash: row.prev_hash.clone(),
        hash: row.hash.clone(),
    }
}
