//! Writing the double-entry ledger inside a use case's transaction, the funding rule, and the
//! check that proves the books balance.
//!
//! Every money event posts balanced entries (built by `domain::ledger`) and moves the
//! merchant's balance row in the same transaction. Lock order, shared with every writer:
//! payment row, then merchant balance, then the merchant's audit head.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::ledger::{
    self, FundingPolicy, MerchantBalance, Posting, can_fund, merchant_balance,
};
use yuanlu_domain::time::{shanghai_date, to_micros};
use yuanlu_store::{BalanceRow, Conn, EntryRow, PostingRow};

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;

/// Prefix of posting ids.
pub const POSTING: &str = "pst";
/// At most this many unbalanced postings are named by a ledger check.
pub const CHECK_NAMED_MAX: i64 = 20;

/// The money event a posting records (its `event` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEvent {
    PaymentCaptured,
    VoidCompleted,
    RefundQueued,
    RefundReleased,
    RefundSucceeded,
    SettlementPayout,
    CarryForward,
    CarryApplied,
}

impl LedgerEvent {
    pub fn id(self) -> &'static str {
        match self {
            LedgerEvent::PaymentCaptured => "payment_captured",
            LedgerEvent::VoidCompleted => "void_completed",
            LedgerEvent::RefundQueued => "refund_queued",
            LedgerEvent::RefundReleased => "refund_released",
            LedgerEvent::RefundSucceeded => "refund_succeeded",
            LedgerEvent::SettlementPayout => "settlement_payout",
            LedgerEvent::CarryForward => "carry_forward",
            LedgerEvent::CarryApplied => "carry_applied",
        }
    }
}

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
    conn.insert_posting(&row, &entries).await?;
    let delta = merchant_balance(&ledger::balances([posting]), facts.merchant_id);
    let after = BalanceRow {
        unsettled_fen: before.unsettled_fen + delta.unsettled_fen,
        carried_fen: before.carried_fen + delta.carried_fen,
    };
    conn.set_balance(facts.merchant_id, after).await?;
    Ok(after)
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
    /// Merchants whose balance row disagrees with their postings.
    pub mismatched_merchants: Vec<String>,
    pub merchants_checked: i64,
}

impl Engine {
    /// Proves the ledger: per posting, in total, and per merchant against its balance row.
    pub async fn check_ledger(&self) -> EngineResult<LedgerCheck> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let totals = conn.ledger_totals().await?;
        let unbalanced = conn.unbalanced_postings(CHECK_NAMED_MAX).await?;
        let sums = conn.account_sums().await?;
        let balances = conn.all_balances().await?;
        let mut mismatched = Vec::new();
        for (merchant_id, unsettled_fen, carried_fen) in &balances {
            let implied = implied_balance(&sums, merchant_id);
            if implied
                != (MerchantBalance {
                    unsettled_fen: *unsettled_fen,
                    carried_fen: *carried_fen,
                })
            {
                mismatched.push(merchant_id.clone());
            }
        }
        Ok(LedgerCheck {
            balanced: totals.sum_fen == 0 && unbalanced.is_empty() && mismatched.is_empty(),
            postings: totals.postings,
            entries: totals.entries,
            sum_fen: totals.sum_fen,
            unbalanced_postings: unbalanced,
            mismatched_merchants: mismatched,
            merchants_checked: balances.len() as i64,
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

/// The balance the ledger implies for a merchant, from per-account sums.
fn implied_balance(sums: &[(String, i64)], merchant_id: &str) -> MerchantBalance {
    let map = sums
        .iter()
        .filter_map(|(account, sum)| ledger::Account::parse(account).map(|a| (a, *sum)))
        .collect();
    merchant_balance(&map, merchant_id)
}
