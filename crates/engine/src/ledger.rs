//! Writing the double-entry ledger inside a use case's transaction, the funding rule, and the
//! check that proves the books balance.
//!
//! Every money event posts balanced entries (built by `domain::ledger`) and moves the
//! merchant's balance row in the same transaction. Lock order, shared with every writer:
//! payment row, then merchant balance, then the merchant's audit head.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::ledger::{
    self, FundingPolicy, MerchantBalance, Posting, can_fund, merchant_balance,
};
use yuanlu_domain::time::{from_micros, shanghai_date, to_micros};
use yuanlu_store::{BalanceRow, Conn, EntryRow, PostingRow};

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;

/// Prefix of posting ids.
pub const POSTING: &str = "pst";
/// At most this many unbalanced postings are named by a ledger check.
pub const CHECK_NAMED_MAX: i64 = 20;

pub use yuanlu_domain::ledger::LedgerEvent;

/// What a posting is about.
pub struct PostingFacts<'a> {
    pub merchant_id: &'a str,
    pub event: LedgerEvent,
    pub reference: &'a str,
    pub payment_id: Option<&'a str>,
    pub channel: Option<Channel>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub at: DateTime<Utc>,
}

fn invalid(error: impl std::fmt::Display) -> EngineError {
    EngineError::corrupt(format!("refused to post: {error}"))
}

/// The posting a money event makes.
pub fn posting_for(facts: &PostingFacts<'_>) -> EngineResult<Posting> {
    let merchant = facts.merchant_id;
    let (amount, fee) = (facts.amount_fen, facts.fee_fen);
    let channel = || {
        facts
            .channel
            .ok_or_else(|| EngineError::corrupt("a payment or refund posting needs its channel"))
    };
    let posting = match facts.event {
        LedgerEvent::PaymentCaptured => ledger::payment_captured(merchant, channel()?, amount, fee),
        LedgerEvent::VoidCompleted => ledger::void_completed(merchant, channel()?, amount, fee),
        LedgerEvent::RefundQueued => ledger::refund_queued(merchant, channel()?, amount, fee),
        LedgerEvent::RefundReleased => ledger::refund_released(merchant, channel()?, amount, fee),
        LedgerEvent::RefundSucceeded => ledger::refund_succeeded(channel()?, amount),
        LedgerEvent::SettlementPayout => ledger::settlement_payout(merchant, amount),
        LedgerEvent::CarryForward => ledger::carry_forward(merchant, amount),
        LedgerEvent::CarryApplied => ledger::carry_applied(merchant, amount),
        LedgerEvent::RefundDeducted => ledger::refund_deducted(merchant, channel()?, amount),
        LedgerEvent::DeductionReleased => ledger::deduction_released(merchant, channel()?, amount),
    };
    posting.map_err(invalid)
}

/// Writes a posting and moves the merchant's balance, in the caller's transaction. The
/// merchant's balance row is locked first (creating it if new).
pub async fn post(conn: &mut Conn<'_>, facts: &PostingFacts<'_>) -> EngineResult<()> {
    let posting = posting_for(facts)?;
    write_posting(conn, facts, &posting).await
}

/// Writes an already built posting (settlement makes its own).
pub async fn write_posting(
    conn: &mut Conn<'_>,
    facts: &PostingFacts<'_>,
    posting: &Posting,
) -> EngineResult<()> {
    posting.check().map_err(invalid)?;
    if posting.is_empty() {
        return Ok(());
    }
    let before = conn.lock_balance(facts.merchant_id).await?;
    write_posting_locked(conn, facts, posting, before)
        .await
        .map(|_| ())
}

/// Posts with the merchant's balance row already locked in this transaction and read as
/// `before` (the funding rule just did); returns the balance after.
pub async fn post_locked(
    conn: &mut Conn<'_>,
    facts: &PostingFacts<'_>,
    before: BalanceRow,
) -> EngineResult<BalanceRow> {
    let posting = posting_for(facts)?;
    posting.check().map_err(invalid)?;
    if posting.is_empty() {
        return Ok(before);
    }
    write_posting_locked(conn, facts, &posting, before).await
}

async fn write_posting_locked(
    conn: &mut Conn<'_>,
    facts: &PostingFacts<'_>,
    posting: &Posting,
    before: BalanceRow,
) -> EngineResult<BalanceRow> {
    let (row, entries, after) = posting_rows(facts, posting, before);
    conn.insert_posting(&row, &entries).await?;
    conn.set_balance(facts.merchant_id, after).await?;
    Ok(after)
}

/// What [`post_locked`] writes, without writing it: the posting row, its entries and the
/// balance after (`None` when the event posts nothing). The batched create path writes the
/// rows of many postings at once.
pub(crate) fn prepare_posting_locked(
    facts: &PostingFacts<'_>,
    before: BalanceRow,
) -> EngineResult<Option<(PostingRow, Vec<EntryRow>, BalanceRow)>> {
    let posting = posting_for(facts)?;
    posting.check().map_err(invalid)?;
    if posting.is_empty() {
        return Ok(None);
    }
    Ok(Some(posting_rows(facts, &posting, before)))
}

fn posting_rows(
    facts: &PostingFacts<'_>,
    posting: &Posting,
    before: BalanceRow,
) -> (PostingRow, Vec<EntryRow>, BalanceRow) {
    let id = new_id(POSTING);
    let row = PostingRow {
        id: id.clone(),
        merchant_id: facts.merchant_id.to_string(),
        event: facts.event.id().to_string(),
        reference: facts.reference.to_string(),
        payment_id: facts.payment_id.map(str::to_string),
        channel: facts.channel.map(|c| c.id().to_string()),
        amount_fen: facts.amount_fen,
        fee_fen: facts.fee_fen,
        business_date: shanghai_date(facts.at).format("%Y-%m-%d").to_string(),
        at_us: to_micros(facts.at),
    };
    let entries: Vec<EntryRow> = posting
        .entries()
        .iter()
        .enumerate()
        .map(|(n, entry)| EntryRow {
            posting_id: id.clone(),
            line_no: n as i64,
            merchant_id: facts.merchant_id.to_string(),
            account: entry.account.id(),
            amount_fen: entry.amount_fen,
        })
        .collect();
    let delta = merchant_balance(&ledger::balances([posting]), facts.merchant_id);
    let after = BalanceRow {
        unsettled_fen: before.unsettled_fen + delta.unsettled_fen,
        carried_fen: before.carried_fen + delta.carried_fen,
    };
    (row, entries, after)
}

/// The funding rule, read under the merchant's balance lock: refused when the unsettled plus
/// carried balance cannot cover the refund's net debit, unless the policy carries debt.
pub async fn ensure_funded(
    conn: &mut Conn<'_>,
    merchant_id: &str,
    policy: FundingPolicy,
    net_debit_fen: i64,
) -> EngineResult<BalanceRow> {
    let row = conn.lock_balance(merchant_id).await?;
    check_funded(row, policy, net_debit_fen)?;
    Ok(row)
}

/// The funding rule on a balance row already locked and read.
pub fn check_funded(
    row: BalanceRow,
    policy: FundingPolicy,
    net_debit_fen: i64,
) -> EngineResult<()> {
    let balance = MerchantBalance {
        unsettled_fen: row.unsettled_fen,
        carried_fen: row.carried_fen,
    };
    can_fund(balance, net_debit_fen, policy).map_err(|short| EngineError::InsufficientBalance {
        available_fen: short.available_fen,
        needed_fen: short.needed_fen,
    })
}

/// The answer of `GET /v1/ledger/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LedgerCheck {
    /// Every posting balances, the sum over all accounts is zero, and every merchant's
    /// balance row equals what its postings imply.
    pub balanced: bool,
    pub postings: i64,
    pub entries: i64,
    /// Sum of every entry (must be 0).
    pub sum_fen: i64,
    /// Postings whose entries do not sum to zero (at most 20 named).
    pub unbalanced_postings: Vec<String>,
    /// Postings whose entries are not the ones their event, merchant, channel, amount and
    /// fee make (an entry removed, changed or moved to another account, even when the
    /// posting still sums to zero; at most 20 named).
    pub mismatched_postings: Vec<String>,
    /// Merchants whose balance row disagrees with their postings, or who have postings and
    /// no balance row.
    pub mismatched_merchants: Vec<String>,
    pub merchants_checked: i64,
    /// Merchant days whose running totals (`merchant_days`: sales, refunds counting
    /// against the day), which the refund rules read, differ from what the payments and
    /// refunds make (at most 20 named, as `merchant_id@day_start_us`).
    pub mismatched_days: Vec<String>,
}

impl Engine {
    /// Proves the ledger: per posting, in total, and per merchant against its balance row;
    /// and every merchant day's running totals against its payments and refunds.
    pub async fn check_ledger(&self) -> EngineResult<LedgerCheck> {
        // One snapshot: a posting committed between two of the reads would look like a
        // merchant's row out of step with its entries.
        let mut snapshot = self.db.begin_snapshot().await?;
        let mut conn = snapshot.conn();
        let totals = conn.ledger_totals().await?;
        let unbalanced = conn.unbalanced_postings(CHECK_NAMED_MAX).await?;
        let sums = conn.account_sums().await?;
        let balances = conn.all_balances().await?;
        let mismatched_postings = postings_not_as_made(&mut conn).await?;
        let mismatched_days: Vec<String> = conn
            .merchant_days_differing(CHECK_NAMED_MAX)
            .await?
            .into_iter()
            .map(|day| format!("{}@{}", day.merchant_id, day.day_start_us))
            .collect();
        // Every merchant with a balance row or a merchant account: a row deleted is a
        // mismatch too (zero balance read, non-zero implied).
        let mut rows: BTreeMap<&str, MerchantBalance> = balances
            .iter()
            .map(|(merchant_id, unsettled_fen, carried_fen)| {
                (
                    merchant_id.as_str(),
                    MerchantBalance {
                        unsettled_fen: *unsettled_fen,
                        carried_fen: *carried_fen,
                    },
                )
            })
            .collect();
        let parsed: Vec<Option<ledger::Account>> = sums
            .iter()
            .map(|(account, _)| ledger::Account::parse(account))
            .collect();
        let merchants: BTreeSet<&str> = parsed
            .iter()
            .flatten()
            .filter_map(ledger::Account::merchant_id)
            .chain(rows.keys().copied())
            .collect();
        let mut mismatched = Vec::new();
        for merchant_id in merchants {
            let row = rows.remove(merchant_id).unwrap_or_default();
            if implied_balance(&sums, merchant_id) != row {
                mismatched.push(merchant_id.to_string());
            }
        }
        // An account id nothing writes: its entries belong to no balance.
        let unknown_accounts = parsed.iter().any(Option::is_none);
        Ok(LedgerCheck {
            balanced: totals.sum_fen == 0
                && unbalanced.is_empty()
                && mismatched_postings.is_empty()
                && mismatched.is_empty()
                && mismatched_days.is_empty()
                && !unknown_accounts,
            postings: totals.postings,
            entries: totals.entries,
            sum_fen: totals.sum_fen,
            unbalanced_postings: unbalanced,
            mismatched_postings,
            mismatched_merchants: mismatched,
            merchants_checked: balances.len() as i64,
            mismatched_days,
        })
    }

    /// A merchant's balance (zero before its first money event).
    pub async fn merchant_balance(&self, merchant_id: &str) -> EngineResult<MerchantBalance> {
        let mut pooled = self.db.acquire().await?;
        let row = pooled.conn().get_balance(merchant_id).await?;
        Ok(MerchantBalance {
            unsettled_fen: row.unsettled_fen,
            carried_fen: row.carried_fen,
        })
    }
}

/// Postings are read back this many at a time by the check.
const CHECK_PAGE: i64 = 2_000;

/// Postings whose stored entries differ from what [`posting_for`] makes of their stored facts
/// (at most [`CHECK_NAMED_MAX`]): every posting is written by it, so any other entries were
/// changed after the fact.
async fn postings_not_as_made(conn: &mut Conn<'_>) -> EngineResult<Vec<String>> {
    let mut named = Vec::new();
    let mut after = String::new();
    loop {
        let postings = conn.postings_after(&after, CHECK_PAGE).await?;
        let (Some(first), Some(last)) = (postings.first(), postings.last()) else {
            return Ok(named);
        };
        let entries = conn.entries_of_postings(&first.id, &last.id).await?;
        let mut by_posting: BTreeMap<&str, Vec<&EntryRow>> = BTreeMap::new();
        for entry in &entries {
            by_posting
                .entry(entry.posting_id.as_str())
                .or_default()
                .push(entry);
        }
        for posting in &postings {
            let stored = by_posting.remove(posting.id.as_str()).unwrap_or_default();
            if !made_as_stored(posting, &stored) {
                named.push(posting.id.clone());
                if named.len() as i64 >= CHECK_NAMED_MAX {
                    return Ok(named);
                }
            }
        }
        after = last.id.clone();
    }
}

/// Whether the entries stored for a posting are exactly the ones its facts make, in order.
fn made_as_stored(posting: &PostingRow, stored: &[&EntryRow]) -> bool {
    let Some(event) = LedgerEvent::parse(&posting.event) else {
        return false;
    };
    let channel = match posting.channel.as_deref().map(Channel::parse) {
        Some(None) => return false,
        Some(Some(channel)) => Some(channel),
        None => None,
    };
    let facts = PostingFacts {
        merchant_id: &posting.merchant_id,
        event,
        reference: &posting.reference,
        payment_id: posting.payment_id.as_deref(),
        channel,
        amount_fen: posting.amount_fen,
        fee_fen: posting.fee_fen,
        at: from_micros(posting.at_us),
    };
    let Ok(made) = posting_for(&facts) else {
        return false;
    };
    // Empty postings are never written, so a posting without entries lost them.
    !made.is_empty()
        && made.entries().len() == stored.len()
        && made
            .entries()
            .iter()
            .zip(stored)
            .enumerate()
            .all(|(n, (entry, row))| {
                row.line_no == n as i64
                    && row.merchant_id == posting.merchant_id
                    && row.account == entry.account.id()
                    && row.amount_fen == entry.amount_fen
            })
}

/// The balance the ledger implies for a merchant, from per-account sums.
fn implied_balance(sums: &[(String, i64)], merchant_id: &str) -> MerchantBalance {
    let map = sums
        .iter()
        .filter_map(|(account, sum)| ledger::Account::parse(account).map(|a| (a, *sum)))
        .collect();
    merchant_balance(&map, merchant_id)
}
