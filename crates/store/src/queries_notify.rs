//! The store's operations for notifications (webhook and SMS outboxes), cases, feedback,
//! the consumer lookup, the overdue monitor and reports. Each is one SQL text run on either
//! backend by [`on_conn!`]; the claims lock differently per backend and say why.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::rows_notify::*;

const WEBHOOK_OUTBOX_COLUMNS: &str = "id, merchant_id, event_type, refund_id, payload, status, attempts, \
    next_attempt_at_us, lease_owner, last_error, created_at_us, delivered_at_us";

const SMS_OUTBOX_COLUMNS: &str = "id, merchant_id, refund_id, phone_masked, phone, text, kind, status, attempts, \
    next_attempt_at_us, lease_owner, last_error, created_at_us, sent_at_us";

const CASE_COLUMNS: &str = "id, merchant_id, refund_id, kind, description, contact, status, owner, resolution, \
    opened_by, created_at_us, resolved_at_us";

/// The condition of an overdue refund, on `refunds` aliased `r`: under way past its
/// expected arrival at `$now`, or sent before `$unconfirmed_before` and still not accepted
/// by the channel. The same rule as `GET /v1/refunds?overdue=true`.
const OVERDUE_CONDITION: &str = "r.status IN ('processing','abnormal') AND (r.expected_arrival_by_us < {now} \
    OR (r.send_state <> 'accepted' AND r.dispatched_at_us < {before}))";

/// A refund `r` the overdue monitor has not raised yet: no open `not_arrived` case (by
/// anyone), and none ever opened by the monitor (once an operator resolves the monitor's
/// case, the refund stays on the overdue list but is not raised again every pass).
const NO_MONITOR_CASE_CONDITION: &str = "NOT EXISTS (SELECT 1 FROM cases c WHERE c.refund_id = r.id \
    AND c.kind = 'not_arrived' AND (c.status = 'open' OR c.opened_by = 'system'))";

pub(crate) fn overdue_condition(now: &str, before: &str) -> String {
    OVERDUE_CONDITION
        .replace("{now}", now)
        .replace("{before}", before)
}

/// Filters of an outbox list (`GET /v1/notifications/webhooks|sms`).
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub merchant_id: Option<String>,
    pub refund_id: Option<String>,
    pub status: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// Filters of `GET /v1/cases`.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub merchant_id: Option<String>,
    pub refund_id: Option<String>,
    pub status: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// The scope of a report: refunds (or cases, or ratings) created in `[from_us, to_us)`,
/// of one merchant or of all.
#[derive(Debug, Clone, Default)]
pub struct ReportRange {
    pub merchant_id: Option<String>,
    pub from_us: i64,
    pub to_us: i64,
}

/// `WHERE a = $1 AND b = $2 … ORDER BY id DESC LIMIT n` over text filters, valid on both
/// backends.
#[derive(Debug, Default)]
struct TextFilters {
    conditions: Vec<String>,
    binds: Vec<String>,
}

impl TextFilters {
    fn push(&mut self, column_condition: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.binds.push(value.clone());
            let n = self.binds.len();
            self.conditions
                .push(column_condition.replace('?', &format!("${n}")));
        }
    }

    fn sql(&self, columns: &str, table: &str, limit: i64) -> String {
        let filter = if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        };
        format!("SELECT {columns} FROM {table}{filter} ORDER BY id DESC LIMIT {limit}")
    }

    fn outbox(filter: &OutboxFilter) -> Self {
        let mut filters = TextFilters::default();
        filters.push("merchant_id = ?", &filter.merchant_id);
        filters.push("refund_id = ?", &filter.refund_id);
        filters.push("status = ?", &filter.status);
        filters.push("id < ?", &filter.starting_after);
        filters
    }
}

macro_rules! bind_texts {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = query.bind(bind.clone());
        }
        query
    }};
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

/// The consumer lookup by receipt number and phone (see
/// [`Conn::public_lookup_by_no`]); public so a test can read its query plan.
pub const PUBLIC_LOOKUP_BY_NO_SQL: &str = "SELECT r.id, (p.phone IS NOT NULL AND p.phone LIKE $2) AS phone_matches \
    FROM refunds r JOIN payments p ON p.id = r.payment_id \
    WHERE r.merchant_refund_no = $1 ORDER BY r.id LIMIT $3";

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
        let sql = "SELECT merchant_id, url, secret, created_at_us, updated_at_us FROM merchant_webhooks \
            WHERE merchant_id = $1";
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
        let sql = Outbox::Webhook.claim_sql(matches!(self, Conn::Postgres(_)));
        Ok(on_conn!(self, |c| sqlx::query_as::<_, WebhookOutboxRow>(
            AssertSqlSafe(sql.clone())
        )
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
        let filters = TextFilters::outbox(filter);
        let sql = filters.sql(WEBHOOK_OUTBOX_COLUMNS, "webhook_outbox", filter.limit);
        Ok(on_conn!(self, |c| bind_texts!(
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
             $11, $12, $13, $14) ON CONFLICT (refund_id, kind) DO NOTHING"
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
        let sql = Outbox::Sms.claim_sql(matches!(self, Conn::Postgres(_)));
        Ok(on_conn!(self, |c| sqlx::query_as::<_, SmsOutboxRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(owner)
        .bind(lease_until_us)
        .bind(now_us)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Records a hand-over attempt to the SMS gateway (see [`Conn::finish_webhook_attempt`]).
    pub async fn finish_sms_attempt(&mut self, attempt: &OutboxAttempt<'_>) -> StoreResult<bool> {
        self.finish_attempt(Outbox::Sms, attempt).await
    }

    pub async fn list_sms(&mut self, filter: &OutboxFilter) -> StoreResult<Vec<SmsOutboxRow>> {
        let filters = TextFilters::outbox(filter);
        let sql = filters.sql(SMS_OUTBOX_COLUMNS, "sms_outbox", filter.limit);
        Ok(on_conn!(self, |c| bind_texts!(
            sqlx::query_as::<_, SmsOutboxRow>(AssertSqlSafe(sql.clone())),
            &filters.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

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
            .bind(&row.kind)
            .bind(&row.description)
            .bind(&row.contact)
            .bind(&row.status)
            .bind(&row.owner)
            .bind(&row.resolution)
            .bind(&row.opened_by)
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
        kind: &str,
    ) -> StoreResult<Option<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE refund_id = $1 AND kind = $2 AND status = 'open'"
        );
        Ok(on_conn!(self, |c| sqlx::query_as::<_, CaseRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(refund_id)
        .bind(kind)
        .fetch_optional(&mut **c)
        .await)?)
    }

    pub async fn list_cases(&mut self, filter: &CaseFilter) -> StoreResult<Vec<CaseRow>> {
        let mut filters = TextFilters::default();
        filters.push("merchant_id = ?", &filter.merchant_id);
        filters.push("refund_id = ?", &filter.refund_id);
        filters.push("status = ?", &filter.status);
        filters.push("id < ?", &filter.starting_after);
        let sql = filters.sql(CASE_COLUMNS, "cases", filter.limit);
        Ok(on_conn!(self, |c| bind_texts!(
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

    // --- feedback and the consumer lookup -----------------------------------------------

    /// Records a rating unless the refund already has one. Returns whether it was recorded.
    pub async fn insert_feedback(&mut self, row: &FeedbackRow) -> StoreResult<bool> {
        let sql = "INSERT INTO feedback (refund_id, merchant_id, rating, comment, created_at_us) \
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_id) DO NOTHING";
        let affected = on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.refund_id)
            .bind(&row.merchant_id)
            .bind(row.rating)
            .bind(&row.comment)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    pub async fn get_feedback(&mut self, refund_id: &str) -> StoreResult<Option<FeedbackRow>> {
        let sql = "SELECT refund_id, merchant_id, rating, comment, created_at_us FROM feedback \
            WHERE refund_id = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, FeedbackRow>(sql)
            .bind(refund_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Up to `limit` refunds (of any merchant) with this `merchant_refund_no`, in id order,
    /// each with whether its payment's phone ends with `phone_last4` (4 digits, checked by
    /// the caller). Reads the index `refunds_by_merchant_refund_no` (see
    /// [`PUBLIC_LOOKUP_BY_NO_SQL`]).
    pub async fn public_lookup_by_no(
        &mut self,
        merchant_refund_no: &str,
        phone_last4: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, bool)>> {
        let pattern = format!("%{phone_last4}");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (String, bool)>(
            PUBLIC_LOOKUP_BY_NO_SQL
        )
        .bind(merchant_refund_no)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// A refund's wrong-facts count of the public lookup: `(window_start_us, failures)`.
    pub async fn public_lookup_failures(
        &mut self,
        refund_id: &str,
    ) -> StoreResult<Option<(i64, i64)>> {
        let sql =
            "SELECT window_start_us, failures FROM public_lookup_failures WHERE refund_id = $1";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(refund_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Counts one wrong-facts lookup of a refund in one statement (so concurrent failures on
    /// any server all count): within the window that began after `window_from_us` the
    /// count goes up, otherwise a new window starts at `now_us`. Returns
    /// `(window_start_us, failures)` after the count.
    pub async fn record_public_lookup_failure(
        &mut self,
        refund_id: &str,
        now_us: i64,
        window_from_us: i64,
    ) -> StoreResult<(i64, i64)> {
        let sql = "INSERT INTO public_lookup_failures (refund_id, window_start_us, failures) \
            VALUES ($1, $2, 1) ON CONFLICT (refund_id) DO UPDATE SET \
            failures = CASE WHEN public_lookup_failures.window_start_us > $3 \
                THEN public_lookup_failures.failures + 1 ELSE 1 END, \
            window_start_us = CASE WHEN public_lookup_failures.window_start_us > $3 \
                THEN public_lookup_failures.window_start_us ELSE $2 END \
            RETURNING window_start_us, failures";
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (i64, i64)>(sql)
            .bind(refund_id)
            .bind(now_us)
            .bind(window_from_us)
            .fetch_one(&mut **c)
            .await)?)
    }

    // --- the overdue monitor ------------------------------------------------------------

    /// Ids of up to `limit` overdue refunds (see [`OVERDUE_CONDITION`]) that need a case
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

    // --- reports ------------------------------------------------------------------------
    // (PostgreSQL sums BIGINT as NUMERIC; the casts keep both backends decoding `i64`.)

    /// Refunds created in the range: count and amount per merchant, channel and status.
    pub async fn report_refund_statuses(
        &mut self,
        range: &ReportRange,
    ) -> StoreResult<Vec<ReportStatusRow>> {
        let sql = "SELECT merchant_id, channel, status, COUNT(*) AS count, \
            CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount_fen FROM refunds \
            WHERE created_at_us >= $1 AND created_at_us < $2 AND ($3 IS NULL OR merchant_id = $3) \
            GROUP BY merchant_id, channel, status ORDER BY merchant_id, channel, status";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportStatusRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Creation-to-success durations of up to `limit` succeeded refunds created in the range.
    pub async fn report_arrival_durations(
        &mut self,
        range: &ReportRange,
        limit: i64,
    ) -> StoreResult<Vec<ReportDurationRow>> {
        let sql = "SELECT merchant_id, channel, succeeded_at_us - created_at_us AS duration_us FROM refunds \
            WHERE status = 'succeeded' AND succeeded_at_us IS NOT NULL \
            AND created_at_us >= $1 AND created_at_us < $2 AND ($3 IS NULL OR merchant_id = $3) \
            ORDER BY id LIMIT $4";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportDurationRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Refunds created in the range that are overdue now, per merchant and channel
    /// (`key` is `overdue`).
    pub async fn report_overdue(
        &mut self,
        range: &ReportRange,
        now_us: i64,
        unconfirmed_before_us: i64,
    ) -> StoreResult<Vec<ReportCountRow>> {
        let sql = format!(
            "SELECT r.merchant_id, r.channel, 'overdue' AS key, COUNT(*) AS count FROM refunds r \
             WHERE r.created_at_us >= $1 AND r.created_at_us < $2 AND ($3 IS NULL OR r.merchant_id = $3) \
             AND {} GROUP BY r.merchant_id, r.channel ORDER BY r.merchant_id, r.channel",
            overdue_condition("$4", "$5")
        );
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportCountRow>(
            AssertSqlSafe(sql.clone())
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .bind(now_us)
        .bind(unconfirmed_before_us)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Cases opened in the range per merchant, channel of their refund and status (`key`).
    pub async fn report_cases(&mut self, range: &ReportRange) -> StoreResult<Vec<ReportCountRow>> {
        let sql = "SELECT c.merchant_id, r.channel, c.status AS key, COUNT(*) AS count \
            FROM cases c JOIN refunds r ON r.id = c.refund_id \
            WHERE c.created_at_us >= $1 AND c.created_at_us < $2 AND ($3 IS NULL OR c.merchant_id = $3) \
            GROUP BY c.merchant_id, r.channel, c.status ORDER BY c.merchant_id, r.channel, c.status";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportCountRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Ratings given in the range per merchant, channel of the refund and rating.
    pub async fn report_ratings(
        &mut self,
        range: &ReportRange,
    ) -> StoreResult<Vec<ReportRatingRow>> {
        let sql = "SELECT f.merchant_id, r.channel, f.rating, COUNT(*) AS count \
            FROM feedback f JOIN refunds r ON r.id = f.refund_id \
            WHERE f.created_at_us >= $1 AND f.created_at_us < $2 AND ($3 IS NULL OR f.merchant_id = $3) \
            GROUP BY f.merchant_id, r.channel, f.rating ORDER BY f.merchant_id, r.channel, f.rating";
        let merchant_id = range.merchant_id.clone();
        Ok(on_conn!(self, |c| sqlx::query_as::<_, ReportRatingRow>(
            sql
        )
        .bind(range.from_us)
        .bind(range.to_us)
        .bind(merchant_id)
        .fetch_all(&mut **c)
        .await)?)
    }
}
