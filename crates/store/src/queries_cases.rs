//! Cases (a refund that needs a person) and the overdue monitor that opens them.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::list::{ListQuery, bind_all};
use crate::on_conn;
use yuanlu_domain::case::{CaseKind, CaseOpener, CaseStatus};

/// A case (工单) about a refund.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub merchant_id: String,
    pub refund_id: String,
    #[sqlx(try_from = "String")]
    pub kind: CaseKind,
    pub description: String,
    pub contact: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: CaseStatus,
    pub owner: Option<String>,
    pub resolution: Option<String>,
    #[sqlx(try_from = "String")]
    pub opened_by: CaseOpener,
    pub created_at_us: i64,
    pub resolved_at_us: Option<i64>,
}

const CASE_COLUMNS: &str = "id, merchant_id, refund_id, kind, description, contact, status, owner, resolution, \
    opened_by, created_at_us, resolved_at_us";

/// A refund `r` the overdue monitor has not raised yet: no open `not_arrived` case (by
/// anyone), and none ever opened by the monitor (once an operator resolves the monitor's
/// case, the refund stays on the overdue list but is not raised again every pass).
const NO_MONITOR_CASE_CONDITION: &str = "NOT EXISTS (SELECT 1 FROM cases c WHERE c.refund_id = r.id AND c.merchant_id = r.merchant_id \
    AND c.kind = 'not_arrived' AND (c.status = 'open' OR c.opened_by = 'system'))";

/// The overdue rule on `refunds` aliased `r` (see [`crate::sql::overdue_condition`]).
pub(crate) fn overdue_condition(now: &str, before: &str) -> String {
    crate::sql::overdue_condition("r.", now, before)
}

/// Filters of `GET /v1/cases`.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub merchant_id: Option<String>,
    pub refund_id: Option<String>,
    pub status: Option<CaseStatus>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

impl Conn<'_> {
    // --- cases --------------------------------------------------------------------------

    /// Inserts a case. A second open case of the same refund and kind is refused by the
    /// unique index (`StoreError::UniqueViolation`).
    pub async fn insert_case(&mut self, row: &CaseRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.refund_id)
            .bind(row.kind.id())
            .bind(&row.description)
            .bind(&row.contact)
            .bind(row.status.id())
            .bind(&row.owner)
            .bind(&row.resolution)
            .bind(row.opened_by.id())
            .bind(row.created_at_us)
            .bind(row.resolved_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A case of `merchant_id` (any merchant's when `None`).
    pub async fn get_case(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<Option<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2)"
        );
        let merchant_id = merchant_id.map(str::to_string);
        Ok(on_conn!(self, |c| sqlx::query_as::<_, CaseRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .bind(merchant_id)
        .fetch_optional(&mut **c)
        .await)?)
    }

    /// The open case of a refund and kind, if any.
    pub async fn find_open_case(
        &mut self,
        refund_id: &str,
        kind: CaseKind,
    ) -> StoreResult<Option<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE refund_id = $1 AND kind = $2 AND status = 'open'"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, CaseRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(refund_id)
        .bind(kind.id())
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn list_cases(&mut self, filter: &CaseFilter) -> StoreResult<Vec<CaseRow>> {
        let mut filters = ListQuery::default();
        filters.push_text("merchant_id = ?", &filter.merchant_id);
        filters.push_text("refund_id = ?", &filter.refund_id);
        filters.push_text("status = ?", &filter.status.map(|s| s.id().to_string()));
        filters.push_text("id < ?", &filter.starting_after);
        let sql = filters.sql(CASE_COLUMNS, "cases", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, CaseRow>(AssertSqlSafe(sql.clone())),
            &filters.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Resolves an open case. Returns false if it was not open.
    pub async fn resolve_case(
        &mut self,
        id: &str,
        resolution: &str,
        at_us: i64,
    ) -> StoreResult<bool> {
        let sql = "UPDATE cases SET status = 'resolved', resolution = $2, resolved_at_us = $3 \
            WHERE id = $1 AND status = 'open'";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(resolution)
            .bind(at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// Gives a case an owner. Returns false if there is no such case.
    pub async fn assign_case(&mut self, id: &str, owner: &str) -> StoreResult<bool> {
        let sql = "UPDATE cases SET owner = $2 WHERE id = $1";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(owner)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    // --- the overdue monitor ------------------------------------------------------------

    /// Ids of up to `limit` overdue refunds (see [`crate::sql::overdue_condition`]) that need a case
    /// from the monitor (see [`NO_MONITOR_CASE_CONDITION`]).
    pub async fn overdue_refunds_without_case(
        &mut self,
        now_us: i64,
        unconfirmed_before_us: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let sql = format!(
            "SELECT r.id FROM refunds r WHERE {} AND {NO_MONITOR_CASE_CONDITION} ORDER BY r.id LIMIT $3",
            overdue_condition("$1", "$2")
        );
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, String>(
            AssertSqlSafe(sql.clone())
        )
        .bind(now_us)
        .bind(unconfirmed_before_us)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Whether one refund still needs a case from the monitor (re-checked under its
    /// payment's lock).
    pub async fn refund_needs_overdue_case(
        &mut self,
        id: &str,
        now_us: i64,
        unconfirmed_before_us: i64,
    ) -> StoreResult<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM refunds r WHERE r.id = $3 AND {} AND {NO_MONITOR_CASE_CONDITION}",
            overdue_condition("$1", "$2")
        );
        let count: i64 = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(AssertSqlSafe(
            sql.clone()
        ))
        .bind(now_us)
        .bind(unconfirmed_before_us)
        .bind(id)
        .fetch_one(&mut **c)
        .await)?;
        Ok(count > 0)
    }

    /// Asks the dispatch workers to query a `processing` refund now, if nothing is
    /// scheduled for it. Returns whether it was scheduled.
    pub async fn schedule_refund_query(&mut self, id: &str, now_us: i64) -> StoreResult<bool> {
        let sql = "UPDATE refunds SET next_attempt_at_us = $2 WHERE id = $1 \
            AND next_attempt_at_us IS NULL AND status = 'processing'";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(now_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }
}
