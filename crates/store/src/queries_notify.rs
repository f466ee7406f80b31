//! The store's operations for notifications: the webhook and SMS outboxes. Each is one SQL
//! text run on either backend by [`on_conn!`]; the claims lock differently per backend and
//! say why. Cases and the overdue monitor are in [`crate::queries_cases`], feedback and the
//! consumer lookup in [`crate::queries_public`], reports in [`crate::queries_reports`].

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::list::{ListQuery, bind_all};
use crate::on_conn;
use crate::rows_notify::*;

// Where they were, for callers that name them here.
pub use crate::queries_cases::CaseFilter;
pub use crate::queries_public::PUBLIC_LOOKUP_BY_NO_SQL;
pub use crate::queries_reports::ReportRange;

pub(crate) const WEBHOOK_OUTBOX_COLUMNS: &str = "id, merchant_id, event_type, refund_id, payload, status, attempts, \
    next_attempt_at_us, lease_owner, last_error, created_at_us, delivered_at_us";

const SMS_OUTBOX_COLUMNS: &str = "id, merchant_id, refund_id, phone_masked, phone, text, kind, status, attempts, \
    next_attempt_at_us, lease_owner, last_error, created_at_us, sent_at_us";

/// Filters of an outbox list (`GET /v1/notifications/webhooks|sms`).
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub merchant_id: Option<String>,
    pub refund_id: Option<String>,
    pub status: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// The filters of an outbox list.
fn outbox_filters(filter: &OutboxFilter) -> ListQuery {
    let mut filters = ListQuery::default();
    filters.push_text("merchant_id = ?", &filter.merchant_id);
    filters.push_text("refund_id = ?", &filter.refund_id);
    filters.push_text("status = ?", &filter.status);
    filters.push_text("id < ?", &filter.starting_after);
    filters
}

/// The two outboxes share their delivery bookkeeping.
#[derive(Debug, Clone, Copy)]
enum Outbox {
    Webhook,
    Sms,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Webhook => "webhook_outbox",
            Outbox::Sms => "sms_outbox",
        }
    }

    fn done_column(self) -> &'static str {
        match self {
            Outbox::Webhook => "delivered_at_us",
            Outbox::Sms => "sent_at_us",
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Outbox::Webhook => WEBHOOK_OUTBOX_COLUMNS,
            Outbox::Sms => SMS_OUTBOX_COLUMNS,
        }
    }

    /// Leases up to `limit` due pending rows: moves their `next_attempt_at_us` to the end of
    /// the lease and names the owner. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers in
    /// any number of processes take disjoint rows without waiting for each other. SQLite:
    /// the write transaction already holds the database's lock.
    fn claim_sql(self, postgres: bool) -> String {
        let skip_locked = if postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let (table, columns) = (self.table(), self.columns());
        format!(
            "UPDATE {table} SET lease_owner = $1, next_attempt_at_us = $2 WHERE id IN (\
             SELECT id FROM {table} WHERE status = 'pending' AND next_attempt_at_us <= $3 \
             ORDER BY next_attempt_at_us LIMIT $4{skip_locked}) RETURNING {columns}"
        )
    }

    fn finish_sql(self) -> String {
        format!(
            "UPDATE {} SET status = $3, attempts = $4, next_attempt_at_us = $5, last_error = $6, \
             {} = $7, lease_owner = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
            self.table(),
            self.done_column()
        )
    }
}

impl Conn<'_> {
    // --- webhooks -----------------------------------------------------------------------

    /// Sets a merchant's endpoint and secret (replacing any earlier ones).
    pub async fn upsert_webhook(&mut self, row: &WebhookRow) -> StoreResult<()> {
        let sql = "INSERT INTO merchant_webhooks (merchant_id, url, secret, created_at_us, updated_at_us) \
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id) DO UPDATE SET url = excluded.url, \
            secret = excluded.secret, updated_at_us = excluded.updated_at_us";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.merchant_id)
            .bind(&row.url)
            .bind(&row.secret)
            .bind(row.created_at_us)
            .bind(row.updated_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn get_webhook(&mut self, merchant_id: &str) -> StoreResult<Option<WebhookRow>> {
        let sql = crate::sql::WEBHOOK_BY_MERCHANT;
        Ok(on_conn!(self, |c| sqlx::query_as::<_, WebhookRow>(sql)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    pub async fn insert_webhook_event(&mut self, row: &WebhookOutboxRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO webhook_outbox ({WEBHOOK_OUTBOX_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.event_type)
            .bind(&row.refund_id)
            .bind(&row.payload)
            .bind(&row.status)
            .bind(row.attempts)
            .bind(row.next_attempt_at_us)
            .bind(&row.lease_owner)
            .bind(&row.last_error)
            .bind(row.created_at_us)
            .bind(row.delivered_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Leases due webhook events (see [`Outbox::claim_sql`]) until `lease_until_us`.
    pub async fn claim_due_webhooks(
        &mut self,
        owner: &str,
        lease_until_us: i64,
        now_us: i64,
        limit: i64,
    ) -> StoreResult<Vec<WebhookOutboxRow>> {
        let lease = (owner, lease_until_us, now_us, limit);
        self.claim_due(Outbox::Webhook, lease).await
    }

    /// Leases up to `limit` due rows of `outbox` to `owner` until `lease_until_us`.
    async fn claim_due<R>(
        &mut self,
        outbox: Outbox,
        (owner, lease_until_us, now_us, limit): (&str, i64, i64, i64),
    ) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let sql = outbox.claim_sql(matches!(self, Conn::Postgres(_)));
        Ok(on_conn!(self, |c| sqlx::query_as::<_, R>(AssertSqlSafe(
            sql.clone()
        ))
        .bind(owner)
        .bind(lease_until_us)
        .bind(now_us)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Records a delivery attempt. Returns false if the row is no longer leased by
    /// `attempt.lease_owner` (another worker took it over after the lease ran out).
    pub async fn finish_webhook_attempt(
        &mut self,
        attempt: &OutboxAttempt<'_>,
    ) -> StoreResult<bool> {
        self.finish_attempt(Outbox::Webhook, attempt).await
    }

    pub async fn list_webhook_events(
        &mut self,
        filter: &OutboxFilter,
    ) -> StoreResult<Vec<WebhookOutboxRow>> {
        let filters = outbox_filters(filter);
        let sql = filters.sql(WEBHOOK_OUTBOX_COLUMNS, "webhook_outbox", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, WebhookOutboxRow>(AssertSqlSafe(sql.clone())),
            &filters.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// The earliest due time of a pending webhook event, for a worker deciding how long to wait.
    pub async fn next_webhook_due_at(&mut self) -> StoreResult<Option<i64>> {
        let sql = "SELECT MIN(next_attempt_at_us) FROM webhook_outbox WHERE status = 'pending'";
        Ok(on_conn!(self, |c| sqlx::query_scalar::<_, Option<i64>>(
            sql
        )
        .fetch_one(&mut **c)
        .await)?)
    }

    async fn finish_attempt(
        &mut self,
        outbox: Outbox,
        attempt: &OutboxAttempt<'_>,
    ) -> StoreResult<bool> {
        let sql = outbox.finish_sql();
        let affected = on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(attempt.id)
            .bind(attempt.lease_owner)
            .bind(attempt.status)
            .bind(attempt.attempts)
            .bind(attempt.next_attempt_at_us)
            .bind(attempt.last_error)
            .bind(attempt.done_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    // --- SMS ----------------------------------------------------------------------------

    /// Records an SMS unless one of its kind was already recorded for the refund (an
    /// outcome applied twice sends one message). Returns whether it was recorded.
    pub async fn insert_sms(&mut self, row: &SmsOutboxRow) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO sms_outbox ({SMS_OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14) ON CONFLICT (refund_id, kind, merchant_id) DO NOTHING"
        );
        let affected = on_conn!(self, |c| sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.refund_id)
            .bind(&row.phone_masked)
            .bind(&row.phone)
            .bind(&row.text)
            .bind(&row.kind)
            .bind(&row.status)
            .bind(row.attempts)
            .bind(row.next_attempt_at_us)
            .bind(&row.lease_owner)
            .bind(&row.last_error)
            .bind(row.created_at_us)
            .bind(row.sent_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// Leases due SMS (see [`Outbox::claim_sql`]) until `lease_until_us`.
    pub async fn claim_due_sms(
        &mut self,
        owner: &str,
        lease_until_us: i64,
        now_us: i64,
        limit: i64,
    ) -> StoreResult<Vec<SmsOutboxRow>> {
        let lease = (owner, lease_until_us, now_us, limit);
        self.claim_due(Outbox::Sms, lease).await
    }

    /// Records a hand-over attempt to the SMS gateway (see [`Conn::finish_webhook_attempt`]).
    pub async fn finish_sms_attempt(&mut self, attempt: &OutboxAttempt<'_>) -> StoreResult<bool> {
        self.finish_attempt(Outbox::Sms, attempt).await
    }

    pub async fn list_sms(&mut self, filter: &OutboxFilter) -> StoreResult<Vec<SmsOutboxRow>> {
        let filters = outbox_filters(filter);
        let sql = filters.sql(SMS_OUTBOX_COLUMNS, "sms_outbox", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, SmsOutboxRow>(AssertSqlSafe(sql.clone())),
            &filters.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }
}
