//! Lists for operations staff (issue 16): settlement statements over a date range (a
//! merchant's statement history), one statement by id, reconciliations by channel and date,
//! and one queue of reconciliation exceptions across imports with their age and amount.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use yuanlu_store::{
    DateCursor, ExceptionQueueFilter, QueuedExceptionRow, ReconciliationListFilter,
    StatementListFilter,
};

use crate::Engine;
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::reconciliation::{
    ExceptionStatus, ReconException, ReconciliationView, exception_view, not_found,
    reconciliation_view,
};
use crate::settlement::{StatementView, statement_view};
use crate::views::Page;

/// `GET /v1/settlements` with a date range (and paging).
#[derive(Debug, Clone, Default)]
pub struct StatementListQuery {
    pub merchant_id: Option<String>,
    /// Inclusive.
    pub from: Option<NaiveDate>,
    /// Inclusive.
    pub to: Option<NaiveDate>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// `GET /v1/reconciliations`.
#[derive(Debug, Clone, Default)]
pub struct ReconciliationListQuery {
    pub channel: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// `GET /v1/reconciliation-exceptions`.
#[derive(Debug, Clone, Default)]
pub struct ExceptionQueueQuery {
    pub status: Option<ExceptionStatus>,
    pub channel: Option<String>,
    pub merchant_id: Option<String>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// An exception in the queue: the exception, the import it came from, how long it has
/// waited and the money at stake.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuedException {
    #[serde(flatten)]
    pub exception: ReconException,
    /// The import's channel (`wechat`, `alipay`, `card`, `yuanlu`).
    pub channel: String,
    /// The import's business date, `YYYY-MM-DD`.
    pub business_date: String,
    /// Seconds since the exception was opened (until resolved, for a resolved one), on the
    /// server's clock.
    pub age_seconds: i64,
    /// Whole days of `age_seconds`.
    pub age_days: i64,
    /// The money at stake, in fen: our amount, or the channel's when we have no record.
    pub amount: i64,
    /// Channel amount minus ours, in fen, when both are known.
    pub difference: Option<i64>,
}

fn date_text(date: Option<NaiveDate>) -> Option<String> {
    date.map(|d| d.format("%Y-%m-%d").to_string())
}

fn check_range(from: Option<NaiveDate>, to: Option<NaiveDate>) -> EngineResult<()> {
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(EngineError::validation(
            "from",
            format!("from {from} is after to {to}"),
        ));
    }
    Ok(())
}

fn bad_cursor(id: &str) -> EngineError {
    EngineError::validation(
        "starting_after",
        format!("{id:?} is not an item of this list"),
    )
}

impl Engine {
    /// Statements newest business date first: a merchant's own history, or (admin) every
    /// merchant's or one's. A merchant asking for another merchant gets an empty page.
    pub async fn list_statement_history(
        &self,
        who: &Principal,
        query: StatementListQuery,
    ) -> EngineResult<Page<StatementView>> {
        check_range(query.from, query.to)?;
        let scope = match (who.merchant_scope(), query.merchant_id.as_deref()) {
            (Some(own), Some(asked)) if own != asked => {
                return Ok(Page {
                    data: Vec::new(),
                    has_more: false,
                });
            }
            (Some(own), _) => Some(own.to_string()),
            (None, asked) => asked.map(str::to_string),
        };
        let limit = query.limit.max(1);
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let after = match &query.starting_after {
            None => None,
            Some(id) => {
                let row = conn
                    .get_statement_by_id(id)
                    .await?
                    .filter(|row| scope.as_deref().is_none_or(|own| row.merchant_id == own))
                    .ok_or_else(|| bad_cursor(id))?;
                Some(DateCursor {
                    business_date: row.business_date,
                    id: row.id,
                })
            }
        };
        let rows = conn
            .list_statements_page(&StatementListFilter {
                merchant_id: scope,
                from: date_text(query.from),
                to: date_text(query.to),
                after,
                limit: limit + 1,
            })
            .await?;
        Page::of_rows(rows, limit, |row| statement_view(&row))
    }

    /// One statement; another merchant's is `not_found` to a merchant.
    pub async fn get_statement_by_id(
        &self,
        who: &Principal,
        id: &str,
    ) -> EngineResult<StatementView> {
        let mut pooled = self.db.acquire().await?;
        let row = pooled
            .conn()
            .get_statement_by_id(id)
            .await?
            .filter(|row| {
                who.merchant_scope()
                    .is_none_or(|own| row.merchant_id == own)
            })
            .ok_or_else(|| not_found("settlement statement", id))?;
        statement_view(&row)
    }

    /// Admin: reconciliations newest business date first.
    pub async fn list_reconciliations(
        &self,
        who: &Principal,
        query: ReconciliationListQuery,
    ) -> EngineResult<Page<ReconciliationView>> {
        who.require_admin()?;
        check_range(query.from, query.to)?;
        let limit = query.limit.max(1);
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let after = match &query.starting_after {
            None => None,
            Some(id) => {
                let row = conn
                    .get_reconciliation(id)
                    .await?
                    .ok_or_else(|| bad_cursor(id))?;
                Some(DateCursor {
                    business_date: row.business_date,
                    id: row.id,
                })
            }
        };
        let rows = conn
            .list_reconciliations_page(&ReconciliationListFilter {
                channel: query.channel,
                from: date_text(query.from),
                to: date_text(query.to),
                after,
                limit: limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > limit;
        let mut data = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            // Only an import with exceptions still open needs them counted.
            let open = if row.status == "open" {
                conn.count_open_recon_exceptions(&row.id).await?
            } else {
                0
            };
            data.push(reconciliation_view(row, open, false)?);
        }
        Ok(Page { data, has_more })
    }

    /// Admin: exceptions across every import, oldest first, with age and amount.
    pub async fn exception_queue(
        &self,
        who: &Principal,
        query: ExceptionQueueQuery,
    ) -> EngineResult<Page<QueuedException>> {
        who.require_admin()?;
        let limit = query.limit.max(1);
        let now = self.clock.now();
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_exception_queue(&ExceptionQueueFilter {
                status: query.status.map(|s| s.id().to_string()),
                channel: query.channel,
                merchant_id: query.merchant_id,
                starting_after: query.starting_after,
                limit: limit + 1,
            })
            .await?;
        Page::of_rows(rows, limit, |row| Ok(queued_view(&row, now)))
    }
}

fn queued_view(row: &QueuedExceptionRow, now: DateTime<Utc>) -> QueuedException {
    let exception = exception_view(&row.exception);
    let until = exception.resolved_at.unwrap_or(now);
    let age_seconds = (until - exception.created_at).num_seconds().max(0);
    QueuedException {
        channel: row.channel.clone(),
        business_date: row.business_date.clone(),
        age_seconds,
        age_days: age_seconds / 86_400,
        amount: exception
            .our_amount
            .or(exception.channel_amount)
            .unwrap_or_default(),
        difference: match (exception.our_amount, exception.channel_amount) {
            (Some(ours), Some(theirs)) => Some(theirs - ours),
            _ => None,
        },
        exception,
    }
}
