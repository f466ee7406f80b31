//! Settlement: for a business date (an Asia/Shanghai calendar day, paid out T+1 on the next
//! business day), each merchant's statement from that day's ledger postings, its payout and
//! carried balance posted, once. Re-running a settled date returns the stored statements and
//! moves no money.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::deduction::DeductionKind;
use yuanlu_domain::settlement::{
    DeductionLine, PaymentLine, RefundLine, RefundLineKind, SettlementInput, Statement, VoidLine,
    settle,
};
use yuanlu_domain::time::{from_micros, shanghai_date, to_micros};
use yuanlu_store::{Backend, Conn, PostingRow, StatementRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;
use crate::ledger::{self, LedgerEvent, PostingFacts};

/// Prefix of statement ids.
pub const STATEMENT: &str = "stl";

/// SQLite: a settlement transaction takes merchants until their statements hold this many
/// lines (one per payment, void or refund of the day) …
const BATCH_LINES: usize = 20_000;
/// … or this many merchants.
const BATCH_MERCHANTS: usize = 64;
/// PostgreSQL: merchants settled at the same time, each in its own transaction.
const CONCURRENT_MERCHANTS: usize = 4;

/// A merchant's statement for a business date, as data (the edge explains it in the
/// reader's language: `yuanlu_web::present::statement`).
#[derive(Debug, Clone, Serialize)]
pub struct StatementView {
    pub id: String,
    pub merchant_id: String,
    pub business_date: String,
    pub payout_date: String,
    /// What is credited to the merchant's bank account, in fen (入户金额).
    pub payout: i64,
    /// Debt carried to later payouts, in fen (≤ 0).
    pub closing_carried: i64,
    pub statement: Statement,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_business_date(text: &str) -> EngineResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| EngineError::validation("business_date", "give a date as YYYY-MM-DD"))
}

impl Engine {
    /// Admin: settles every merchant with activity on `business_date`.
    pub async fn run_settlement(
        &self,
        who: &Principal,
        business_date: NaiveDate,
    ) -> EngineResult<Vec<StatementView>> {
        who.require_admin()?;
        self.settle_date(business_date).await
    }

    /// Settles every merchant with activity on `business_date` (a day that has ended), then
    /// records the run; what the admin's run and the scheduler both do.
    pub async fn settle_date(&self, business_date: NaiveDate) -> EngineResult<Vec<StatementView>> {
        let today = shanghai_date(self.clock.now());
        if business_date >= today {
            return Err(EngineError::validation(
                "business_date",
                format!(
                    "{business_date} has not ended yet in Asia/Shanghai (today is {today}); settle a past day"
                ),
            ));
        }
        let date = business_date.format("%Y-%m-%d").to_string();
        let merchants = {
            let mut pooled = self.db.acquire().await?;
            pooled.conn().merchants_active_on(&date).await?
        };
        let views = match self.db.backend() {
            Backend::Sqlite => self.settle_in_batches(&merchants, business_date).await?,
            Backend::Postgres => self.settle_concurrently(&merchants, business_date).await?,
        };
        let mut tx = self.db.begin().await?;
        tx.conn()
            .mark_settled(&date, to_micros(self.clock.now()))
            .await?;
        tx.commit().await?;
        Ok(views)
    }

    /// SQLite has one writer: several merchants per transaction (up to [`BATCH_LINES`]
    /// statement lines or [`BATCH_MERCHANTS`] merchants), so a day of many merchants costs a
    /// few durable commits, not one per merchant. A failed batch commits nothing; a re-run
    /// settles what is left.
    async fn settle_in_batches(
        &self,
        merchants: &[String],
        business_date: NaiveDate,
    ) -> EngineResult<Vec<StatementView>> {
        let mut views = Vec::with_capacity(merchants.len());
        let mut rest = merchants.iter().peekable();
        while rest.peek().is_some() {
            let mut tx = self.db.begin().await?;
            let mut conn = tx.conn();
            let (mut lines, mut count) = (0, 0);
            while lines < BATCH_LINES && count < BATCH_MERCHANTS {
                let Some(merchant_id) = rest.next() else {
                    break;
                };
                let view = settle_merchant_in(self, &mut conn, merchant_id, business_date).await?;
                lines += view.statement.lines.len();
                count += 1;
                views.push(view);
            }
            tx.commit().await?;
        }
        Ok(views)
    }

    /// PostgreSQL: each merchant in its own transaction, [`CONCURRENT_MERCHANTS`] at a time
    /// (their rows are disjoint; the database groups their commits' flushes). The views
    /// come back in the merchants' order.
    async fn settle_concurrently(
        &self,
        merchants: &[String],
        business_date: NaiveDate,
    ) -> EngineResult<Vec<StatementView>> {
        let mut views: Vec<Option<StatementView>> = vec![None; merchants.len()];
        let mut tasks = tokio::task::JoinSet::new();
        let mut first_error = None;
        let mut next = 0;
        loop {
            while first_error.is_none()
                && tasks.len() < CONCURRENT_MERCHANTS
                && next < merchants.len()
            {
                let (engine, merchant_id, k) = (self.clone(), merchants[next].clone(), next);
                tasks.spawn(async move {
                    (k, engine.settle_merchant(&merchant_id, business_date).await)
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok((k, Ok(view))) => views[k] = Some(view),
                Ok((_, Err(error))) => {
                    first_error.get_or_insert(error);
                }
                Err(error) => {
                    first_error.get_or_insert(EngineError::corrupt(format!(
                        "settlement task failed: {error}"
                    )));
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        views
            .into_iter()
            .map(|v| v.ok_or_else(|| EngineError::corrupt("a merchant was not settled")))
            .collect()
    }

    /// One merchant's statement for the date, in one transaction (or the stored one).
    async fn settle_merchant(
        &self,
        merchant_id: &str,
        business_date: NaiveDate,
    ) -> EngineResult<StatementView> {
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let view = settle_merchant_in(self, &mut conn, merchant_id, business_date).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Statements of a business date: the merchant's own, or (admin) all or one merchant's.
    pub async fn list_statements(
        &self,
        who: &Principal,
        business_date: NaiveDate,
        merchant_id: Option<&str>,
    ) -> EngineResult<Vec<StatementView>> {
        let scope = match (who.merchant_scope(), merchant_id) {
            (Some(own), Some(asked)) if own != asked => return Ok(Vec::new()),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .statements_of_day(scope, &business_date.format("%Y-%m-%d").to_string())
            .await?;
        rows.iter().map(statement_view).collect()
    }
}

/// One merchant's statement for the date, written in the caller's transaction (or the
/// stored one, if the merchant's date is settled already).
async fn settle_merchant_in(
    engine: &Engine,
    conn: &mut Conn<'_>,
    merchant_id: &str,
    business_date: NaiveDate,
) -> EngineResult<StatementView> {
    let date = business_date.format("%Y-%m-%d").to_string();
    let now = engine.clock.now();
    let balance = conn.lock_balance(merchant_id).await?;
    if let Some(existing) = conn.get_statement(merchant_id, &date).await? {
        return statement_view(&existing);
    }
    let postings = conn.postings_of_day(merchant_id, &date).await?;
    let mut input = settlement_input(merchant_id, business_date, balance.carried_fen, &postings)?;
    input.deductions = deduction_lines(conn, merchant_id, &postings).await?;
    let statement = settle(&input, &engine.calendar).map_err(|e| {
        EngineError::corrupt(format!("settlement of {merchant_id} for {date}: {e}"))
    })?;
    let id = new_id(STATEMENT);
    post_settlement(conn, merchant_id, &id, &statement, now).await?;
    let row = StatementRow {
        id: id.clone(),
        merchant_id: merchant_id.to_string(),
        business_date: date.clone(),
        payout_date: statement.payout_date.format("%Y-%m-%d").to_string(),
        payout_fen: statement.payout_fen,
        closing_carried_fen: statement.closing_carried_fen,
        statement: serde_json::to_string(&statement)
            .map_err(|e| EngineError::corrupt(e.to_string()))?,
        created_at_us: to_micros(now),
    };
    conn.insert_statement(&row).await?;
    audit::append(conn, AuditEvent {
        chain: merchant_id,
        at_us: to_micros(now),
        actor: "system:settlement",
        action: "settlement.statement",
        subject_id: &id,
        data: json!({ "business_date": date, "payout": statement.payout_fen, "closing_carried": statement.closing_carried_fen, "net": statement.net_fen }),
    })
    .await?;
    // Built from the statement in hand: parsing back the JSON just written (one line per
    // payment of the day) would cost as much as writing it.
    Ok(view_of(&row, statement))
}

/// The payout and carried-balance postings of a statement.
async fn post_settlement(
    conn: &mut Conn<'_>,
    merchant_id: &str,
    statement_id: &str,
    statement: &Statement,
    at: chrono::DateTime<chrono::Utc>,
) -> EngineResult<()> {
    let facts = |event, amount_fen| PostingFacts {
        merchant_id,
        event,
        reference: statement_id,
        payment_id: None,
        channel: None,
        amount_fen,
        fee_fen: 0,
        at,
    };
    let debt_change = statement.opening_carried_fen - statement.closing_carried_fen;
    if debt_change < 0 {
        ledger::post(conn, &facts(LedgerEvent::CarryApplied, -debt_change)).await?;
    }
    if statement.payout_fen > 0 {
        ledger::post(
            conn,
            &facts(LedgerEvent::SettlementPayout, statement.payout_fen),
        )
        .await?;
    }
    if debt_change > 0 {
        ledger::post(conn, &facts(LedgerEvent::CarryForward, debt_change)).await?;
    }
    Ok(())
}

/// The deductions of the day's refund debits and releases (issue 15 item 2): one line per
/// deduction, its kind and reason read from the refund's deduction rows. The postings of a
/// refund's deductions must sum to its rows' (they are written in one transaction).
async fn deduction_lines(
    conn: &mut Conn<'_>,
    merchant_id: &str,
    postings: &[PostingRow],
) -> EngineResult<Vec<DeductionLine>> {
    use std::collections::BTreeMap;
    // (refund, released) → (payment, channel, posted sum)
    let mut posted: BTreeMap<(&str, bool), (&str, Option<&str>, i64)> = BTreeMap::new();
    for posting in postings {
        let released = match posting.event.as_str() {
            "refund_deducted" => false,
            "deduction_released" => true,
            _ => continue,
        };
        let slot = posted
            .entry((posting.reference.as_str(), released))
            .or_insert((
                posting.payment_id.as_deref().unwrap_or_default(),
                posting.channel.as_deref(),
                0,
            ));
        slot.2 += posting.amount_fen;
    }
    if posted.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = posted.keys().map(|(id, _)| (*id).to_string()).collect();
    ids.dedup();
    let rows = conn.deductions_of_refunds(merchant_id, &ids).await?;
    let mut lines = Vec::new();
    for ((refund_id, released), (payment_id, channel, sum)) in posted {
        let channel = channel.and_then(Channel::parse).ok_or_else(|| {
            EngineError::corrupt(format!("deduction postings of {refund_id} have no channel"))
        })?;
        let mine: Vec<_> = rows.iter().filter(|r| r.refund_id == refund_id).collect();
        if mine.iter().map(|r| r.amount_fen).sum::<i64>() != sum {
            return Err(EngineError::corrupt(format!(
                "the deduction postings of refund {refund_id} do not match its deductions"
            )));
        }
        for row in mine {
            lines.push(DeductionLine {
                refund_id: refund_id.to_string(),
                payment_id: payment_id.to_string(),
                channel,
                line_no: row.line_no,
                kind: DeductionKind::parse(&row.kind).ok_or_else(|| {
                    EngineError::corrupt(format!("refund {refund_id}: deduction kind {}", row.kind))
                })?,
                amount_fen: row.amount_fen,
                reason: row.reason.clone(),
                released,
            });
        }
    }
    Ok(lines)
}

/// The day's activity from its ledger postings.
fn settlement_input(
    merchant_id: &str,
    business_date: NaiveDate,
    opening_carried_fen: i64,
    postings: &[PostingRow],
) -> EngineResult<SettlementInput> {
    let mut input = SettlementInput {
        merchant_id: merchant_id.to_string(),
        business_date,
        opening_carried_fen,
        payments: Vec::new(),
        voids: Vec::new(),
        refunds: Vec::new(),
        deductions: Vec::new(),
    };
    for posting in postings {
        let channel = || {
            posting
                .channel
                .as_deref()
                .and_then(Channel::parse)
                .ok_or_else(|| {
                    EngineError::corrupt(format!("posting {} has no channel", posting.id))
                })
        };
        let payment_id = posting.payment_id.clone().unwrap_or_default();
        match posting.event.as_str() {
            "payment_captured" => input.payments.push(PaymentLine {
                payment_id: posting.reference.clone(),
                channel: channel()?,
                amount_fen: posting.amount_fen,
                fee_fen: posting.fee_fen,
                captured_at: from_micros(posting.at_us),
            }),
            "void_completed" => input.voids.push(VoidLine {
                refund_id: posting.reference.clone(),
                payment_id,
                channel: channel()?,
                amount_fen: posting.amount_fen,
                fee_fen: posting.fee_fen,
            }),
            "refund_queued" | "refund_released" => input.refunds.push(RefundLine {
                refund_id: posting.reference.clone(),
                payment_id,
                channel: channel()?,
                amount_fen: posting.amount_fen,
                fee_refunded_fen: posting.fee_fen,
                kind: if posting.event == "refund_queued" {
                    RefundLineKind::Debited
                } else {
                    RefundLineKind::CreditedBack
                },
            }),
            // Money between the acquirer and the channels, or settlement's own postings.
            _ => {}
        }
    }
    Ok(input)
}

pub(crate) fn statement_view(row: &StatementRow) -> EngineResult<StatementView> {
    let statement: Statement = serde_json::from_str(&row.statement)
        .map_err(|e| EngineError::corrupt(format!("statement {}: {e}", row.id)))?;
    Ok(view_of(row, statement))
}

/// The view of a stored statement row whose JSON is `statement`.
fn view_of(row: &StatementRow, statement: Statement) -> StatementView {
    StatementView {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        business_date: row.business_date.clone(),
        payout_date: row.payout_date.clone(),
        payout: row.payout_fen,
        closing_carried: row.closing_carried_fen,
        statement,
    }
}
