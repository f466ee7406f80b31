//! Appending to the audit chain inside a use case's transaction, and verifying it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use yuanlu_domain::audit::{
    AuditContent, ChainBreak, ChainWalker, FirstBad, GENESIS_HASH, SYSTEM_CHAIN, StoredEntry,
    entry_hash,
};
use yuanlu_domain::time::to_micros;
use yuanlu_store::{AuditHeadRow, AuditRow, Conn};

use crate::Engine;
use crate::auth::Principal;
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
    let row = entry_after(head, event);
    conn.append_audit(&row).await?;
    Ok(row)
}

/// The entry [`append_after`] writes after `head`, without writing it (the batched create
/// path writes many at once, each chain's in order).
pub fn entry_after(head: AuditHeadRow, event: AuditEvent<'_>) -> AuditRow {
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
    AuditRow {
        chain: event.chain.to_string(),
        seq,
        at_us: event.at_us,
        actor: event.actor.to_string(),
        action: event.action.to_string(),
        subject_id: event.subject_id.to_string(),
        data,
        prev_hash: head.hash,
        hash,
    }
}

/// The audit action of a move of the simulated clock (on the `system` chain).
pub const CLOCK_ADVANCED_ACTION: &str = "clock.advanced";

/// A chain's head: its last entry's `seq` and `hash`. Kept by an auditor, it proves later
/// that the chain still holds that entry (a cut tail or a rewrite no longer matches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainHead {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

/// The answer of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// Entries checked (up to the first bad one).
    pub entries: i64,
    pub chains: i64,
    pub first_bad: Option<FirstBad>,
    /// The head of every chain verified intact, to keep and give back later as the
    /// expected heads.
    pub heads: Vec<ChainHead>,
}

impl Engine {
    /// Walks every chain from its first entry and stops at the first break.
    ///
    /// Writers keep appending while this runs, so each chain is walked up to the head read
    /// before the walk; afterwards, any stored entry beyond the head read again is a forgery
    /// (an honest append moves the head in the same transaction).
    pub async fn verify_audit(&self) -> EngineResult<AuditVerification> {
        self.verify_audit_against(&[]).await
    }

    /// [`Engine::verify_audit`], and then each chain must still hold the `kept` heads: be
    /// at least that long, with that hash at that `seq` (a chain that grew since is fine).
    pub async fn verify_audit_against(
        &self,
        kept: &[ChainHead],
    ) -> EngineResult<AuditVerification> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let chains = conn.audit_chains().await?;
        let mut entries = 0;
        let mut heads = Vec::with_capacity(chains.len());
        for chain in &chains {
            let broken = |bad, entries, heads| AuditVerification {
                ok: false,
                entries,
                chains: chains.len() as i64,
                first_bad: Some(bad),
                heads,
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
                        return Ok(broken(bad, entries, heads));
                    }
                    entries += 1;
                }
                match page.last() {
                    Some(last) if page.len() as i64 == VERIFY_PAGE_ENTRIES => after_seq = last.seq,
                    _ => break,
                }
            }
            if let Err(bad) = walker.finish(head_seq, &head_hash) {
                return Ok(broken(bad, entries, heads));
            }
            let stored_max = conn.audit_max_seq(chain).await?;
            let (head_now, _) = head_of(&mut conn, chain).await?;
            if stored_max > head_now {
                let bad = FirstBad {
                    chain: chain.clone(),
                    seq: head_now + 1,
                    problem: ChainBreak::HeadMismatch,
                };
                return Ok(broken(bad, entries, heads));
            }
            heads.push(ChainHead {
                chain: chain.clone(),
                seq: head_seq,
                hash: head_hash,
            });
        }
        for expected in kept {
            if let Some(bad) = departs_from(&mut conn, &heads, expected).await? {
                return Ok(broken_by_kept(bad, entries, chains.len() as i64, heads));
            }
        }
        Ok(AuditVerification {
            ok: true,
            entries,
            chains: chains.len() as i64,
            first_bad: None,
            heads,
        })
    }

    /// Moves the simulated clock forward by `seconds` and records who did it, from when to
    /// when, on the `system` chain. `None` when the clock is not simulated.
    pub async fn advance_clock_audited(
        &self,
        who: &Principal,
        seconds: i64,
    ) -> EngineResult<Option<DateTime<Utc>>> {
        let from = self.clock.now();
        let Some(to) = self.clock.advance(chrono::Duration::seconds(seconds)) else {
            return Ok(None);
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        append(
            &mut conn,
            AuditEvent {
                chain: SYSTEM_CHAIN,
                at_us: to_micros(to),
                actor: &who.actor(),
                action: CLOCK_ADVANCED_ACTION,
                subject_id: "clock",
                data: json!({ "seconds": seconds, "from": from, "to": to }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(to))
    }
}

fn broken_by_kept(
    bad: FirstBad,
    entries: i64,
    chains: i64,
    heads: Vec<ChainHead>,
) -> AuditVerification {
    AuditVerification {
        ok: false,
        entries,
        chains,
        first_bad: Some(bad),
        heads,
    }
}

/// Where an intact chain departs from a head kept earlier, if it does. `heads` are the
/// chains' verified heads now.
async fn departs_from(
    conn: &mut Conn<'_>,
    heads: &[ChainHead],
    kept: &ChainHead,
) -> EngineResult<Option<FirstBad>> {
    if kept.seq <= 0 {
        return Ok(None);
    }
    let now_seq = heads
        .iter()
        .find(|h| h.chain == kept.chain)
        .map_or(0, |h| h.seq);
    let bad = |seq, problem| {
        Some(FirstBad {
            chain: kept.chain.clone(),
            seq,
            problem,
        })
    };
    if now_seq < kept.seq {
        return Ok(bad(now_seq + 1, ChainBreak::ShorterThanKeptHead));
    }
    let entry = conn
        .audit_page(&kept.chain, kept.seq - 1, kept.seq, 1)
        .await?;
    match entry.first() {
        Some(row) if row.seq == kept.seq && row.hash == kept.hash => Ok(None),
        _ => Ok(bad(kept.seq, ChainBreak::DiffersFromKeptHead)),
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
