//! Checking settlement payouts against the merchant's bank statement (查询银行对账单,
//! 核对入户金额): the merchant (or the acquirer) imports the statement its bank exports, and
//! each payout of the days it covers is found `paid`, `different_amount`, `missing` or
//! `pending`, with every credit nobody explains listed beside them. Each payout carries its
//! settlement statement's explanation, so the merchant sees why the payout is what it is next
//! to what the bank booked. The file format and the rules are in
//! `yuanlu_reconcile::{bank_statement, payouts}` and `docs/bank-statements.md`.
//!
//! An import is stored once per merchant and file (its SHA-256), with the report, and
//! recorded on the merchant's audit chain with the file's SHA-256.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yuanlu_domain::settlement::Statement;
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_reconcile::bank_statement::{self, BankLine};
use yuanlu_reconcile::payouts::{self, Payout, PayoutOutcome, PayoutReport};
use yuanlu_store::queries_bank::BankImportRow;
use yuanlu_store::{StatementRow, StoreError};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::new_id;

/// Prefix of bank statement import ids.
pub const BANK_IMPORT: &str = "bsi";

/// The audit action of an import.
pub const IMPORTED: &str = "bank_statement.imported";

/// The most imports a merchant's list shows.
pub const LIST_MAX: i64 = 100;

/// A bank statement import and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BankStatementView {
    pub id: String,
    pub merchant_id: String,
    pub file_sha256: String,
    /// The first and last booking date on the statement (`YYYY-MM-DD`).
    pub first_date: String,
    pub last_date: String,
    /// Booked lines (credits and debits).
    pub lines: i64,
    /// Debit lines: counted, never matched.
    pub debits: i64,
    pub counts: PayoutCounts,
    /// The payouts of the days the statement covers, by payout date.
    pub payouts: Vec<PayoutCheck>,
    /// Credits no payout explains, in file order.
    pub unexplained_credits: Vec<BankCredit>,
    pub created_by: String,
    pub created_at: String,
}

/// How many payouts ended in each outcome, and the credits nobody explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutCounts {
    pub paid: i64,
    pub different_amount: i64,
    pub missing: i64,
    pub pending: i64,
    pub unexplained_credits: i64,
}

/// One payout, the credit found for it, and why the payout is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutCheck {
    /// The settlement statement (`stl_…`) that made the payout.
    pub settlement_id: String,
    pub business_date: String,
    pub payout_date: String,
    /// What yuanlu paid out, in fen (入户金额).
    pub payout: i64,
    /// `paid`, `different_amount`, `missing` or `pending`.
    pub outcome: String,
    /// The credit found, if any.
    pub credit: Option<BankCredit>,
    /// Credited less paid out, in fen: 0 when paid, `-payout` when nothing was found.
    pub difference: i64,
    /// The statement's sums behind the payout.
    pub breakdown: PayoutBreakdown,
    /// The settlement statement's explanation of the payout, line by line.
    pub explanation: Vec<String>,
}

/// The sums of a settlement statement that make its payout, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutBreakdown {
    pub sales: i64,
    pub fees: i64,
    pub voids: i64,
    pub refunds: i64,
    pub credited_back: i64,
    /// Debt carried in from earlier days (≤ 0).
    pub opening_carried: i64,
}

/// A credit line of the bank statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BankCredit {
    /// The line number in the file (the header is line 1).
    pub line: u64,
    pub date: String,
    /// Fen.
    pub amount: i64,
    pub counterparty: String,
    pub reference: String,
}

/// The answer to an import: the report, and whether this call stored it (a file imported
/// before answers its stored report).
#[derive(Debug)]
pub struct BankImport {
    pub view: BankStatementView,
    pub created: bool,
}

impl Engine {
    // Long on purpose: parse, find the payouts of the covered days, match, store the
    // import and its audit entry in one transaction: the steps share the parsed file.
    /// The merchant or the admin: imports the merchant's bank statement and checks the
    /// payouts of the days it covers. A malformed file is refused naming its line, and
    /// nothing is stored.
    pub async fn import_bank_statement(
        &self,
        who: &Principal,
        merchant_id: &str,
        bytes: &[u8],
    ) -> EngineResult<BankImport> {
        who.authorize_merchant(merchant_id, None)?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        if conn.get_merchant(merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        let file_sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(row) = conn
            .find_bank_import_by_file(merchant_id, &file_sha256)
            .await?
        {
            return Ok(BankImport {
                view: view_of(&row)?,
                created: false,
            });
        }
        let statement = bank_statement::parse(bytes)
            .map_err(|e| EngineError::validation("file", e.to_string()))?;
        let (from, to) = payouts::payout_dates_covered(&statement);
        let rows = conn
            .payouts_between(merchant_id, &date_text(from), &date_text(to))
            .await?;
        drop(pooled);
        let statements = rows
            .iter()
            .map(|row| parse_statement(row).map(|s| (row, s)))
            .collect::<EngineResult<Vec<_>>>()?;
        let payouts: Vec<Payout> = statements
            .iter()
            .map(|(row, s)| Payout {
                statement_id: row.id.clone(),
                payout_date: s.payout_date,
                payout_fen: row.payout_fen,
            })
            .collect();
        let report = payouts::match_payouts(&statement, &payouts);

        let now = self.clock.now();
        let view = report_view(
            ReportFacts {
                id: new_id(BANK_IMPORT),
                merchant_id,
                file_sha256,
                created_by: who.actor(),
                created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            &statement,
            &report,
            &statements,
        );
        let row = import_row(&view, to_micros(now))?;

        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        match conn.insert_bank_import(&row).await {
            Ok(()) => {}
            Err(StoreError::UniqueViolation(_)) => {
                // The same file was imported concurrently: answer with that import.
                drop(tx);
                let mut pooled = self.db.acquire().await?;
                let row = pooled
                    .conn()
                    .find_bank_import_by_file(merchant_id, &view.file_sha256)
                    .await?
                    .ok_or_else(|| EngineError::corrupt("a bank import vanished"))?;
                return Ok(BankImport {
                    view: view_of(&row)?,
                    created: false,
                });
            }
            Err(error) => return Err(error.into()),
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: merchant_id,
                at_us: row.created_at_us,
                actor: &row.created_by,
                action: IMPORTED,
                subject_id: &row.id,
                data: json!({
                    "file_sha256": view.file_sha256,
                    "first_date": view.first_date,
                    "last_date": view.last_date,
                    "lines": view.lines,
                    "counts": view.counts,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(BankImport {
            view,
            created: true,
        })
    }

    /// The merchant (its own) or the admin: one import's report.
    pub async fn get_bank_statement(
        &self,
        who: &Principal,
        id: &str,
    ) -> EngineResult<BankStatementView> {
        let not_found = || EngineError::NotFound {
            what: "bank statement",
            id: id.to_string(),
        };
        let mut pooled = self.db.acquire().await?;
        let row = pooled
            .conn()
            .get_bank_import(id)
            .await?
            .ok_or_else(not_found)?;
        who.authorize_merchant(&row.merchant_id, None)
            .map_err(|_| not_found())?;
        view_of(&row)
    }

    /// The merchant (its own) or the admin: a merchant's imports, newest first.
    pub async fn list_bank_statements(
        &self,
        who: &Principal,
        merchant_id: &str,
    ) -> EngineResult<Vec<BankStatementView>> {
        who.authorize_merchant(merchant_id, None)?;
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_bank_imports(merchant_id, LIST_MAX)
            .await?;
        rows.iter().map(view_of).collect()
    }
}

struct ReportFacts<'a> {
    id: String,
    merchant_id: &'a str,
    file_sha256: String,
    created_by: String,
    created_at: String,
}

fn report_view(
    facts: ReportFacts<'_>,
    statement: &bank_statement::BankStatement,
    report: &PayoutReport,
    statements: &[(&StatementRow, Statement)],
) -> BankStatementView {
    let credit = |i: usize| statement.lines.get(i).map(credit_view);
    let payouts: Vec<PayoutCheck> = report
        .payouts
        .iter()
        .map(|m| {
            let settled = statements
                .iter()
                .find(|(row, _)| row.id == m.payout.statement_id);
            let credit = m.credit.and_then(credit);
            let credited = credit.as_ref().map_or(0, |c| c.amount);
            PayoutCheck {
                settlement_id: m.payout.statement_id.clone(),
                business_date: settled
                    .map_or_else(String::new, |(row, _)| row.business_date.clone()),
                payout_date: date_text(m.payout.payout_date),
                payout: m.payout.payout_fen,
                outcome: m.outcome.id().to_string(),
                difference: credited - m.payout.payout_fen,
                credit,
                breakdown: settled.map_or(EMPTY_BREAKDOWN, |(_, s)| breakdown(s)),
                explanation: settled.map_or_else(Vec::new, |(_, s)| s.explain()),
            }
        })
        .collect();
    let count = |outcome: PayoutOutcome| {
        report
            .payouts
            .iter()
            .filter(|m| m.outcome == outcome)
            .count() as i64
    };
    BankStatementView {
        id: facts.id,
        merchant_id: facts.merchant_id.to_string(),
        file_sha256: facts.file_sha256,
        first_date: date_text(statement.first_date),
        last_date: date_text(statement.last_date),
        lines: statement.lines.len() as i64,
        debits: report.debits as i64,
        counts: PayoutCounts {
            paid: count(PayoutOutcome::Paid),
            different_amount: count(PayoutOutcome::DifferentAmount),
            missing: count(PayoutOutcome::Missing),
            pending: count(PayoutOutcome::Pending),
            unexplained_credits: report.unexplained_credits.len() as i64,
        },
        payouts,
        unexplained_credits: report
            .unexplained_credits
            .iter()
            .filter_map(|i| credit(*i))
            .collect(),
        created_by: facts.created_by,
        created_at: facts.created_at,
    }
}

const EMPTY_BREAKDOWN: PayoutBreakdown = PayoutBreakdown {
    sales: 0,
    fees: 0,
    voids: 0,
    refunds: 0,
    credited_back: 0,
    opening_carried: 0,
};

fn breakdown(s: &Statement) -> PayoutBreakdown {
    PayoutBreakdown {
        sales: s.sales_fen,
        fees: s.fees_fen,
        voids: s.voids_fen,
        refunds: s.refunds_fen,
        credited_back: s.credited_back_fen,
        opening_carried: s.opening_carried_fen,
    }
}

fn credit_view(line: &BankLine) -> BankCredit {
    BankCredit {
        line: line.line,
        date: date_text(line.date),
        amount: line.amount_fen,
        counterparty: line.counterparty.clone(),
        reference: line.reference.clone(),
    }
}

fn import_row(view: &BankStatementView, created_at_us: i64) -> EngineResult<BankImportRow> {
    Ok(BankImportRow {
        id: view.id.clone(),
        merchant_id: view.merchant_id.clone(),
        file_sha256: view.file_sha256.clone(),
        first_date: view.first_date.clone(),
        last_date: view.last_date.clone(),
        lines: view.lines,
        paid: view.counts.paid,
        different_amount: view.counts.different_amount,
        missing: view.counts.missing,
        pending: view.counts.pending,
        unexplained: view.counts.unexplained_credits,
        report: serde_json::to_string(view)
            .map_err(|e| EngineError::corrupt(format!("bank statement report: {e}")))?,
        created_by: view.created_by.clone(),
        created_at_us,
    })
}

fn view_of(row: &BankImportRow) -> EngineResult<BankStatementView> {
    let mut view: BankStatementView = serde_json::from_str(&row.report)
        .map_err(|e| EngineError::corrupt(format!("bank statement {}: {e}", row.id)))?;
    // The row is the record of truth for who and when.
    view.created_at =
        from_micros(row.created_at_us).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(view)
}

fn parse_statement(row: &StatementRow) -> EngineResult<Statement> {
    serde_json::from_str(&row.statement)
        .map_err(|e| EngineError::corrupt(format!("statement {}: {e}", row.id)))
}

fn date_text(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}
