//! The baseline: the bare database doing, per refund, the statements yuanlu's create path
//! runs for a refund alone in its transaction (`refunds::create_in` over the store's
//! queries), with the same durability, from a minimal loop: no HTTP, no rules, no views,
//! and no group commit: one transaction and one commit per refund.
//!
//! The SQL texts are the store's own (`yuanlu_store::sql`), so the baseline cannot drift from
//! the create path's statements. Per refund:
//!
//! 0. the API key lookup of `Engine::authenticate` (its own statement, outside the
//!    transaction);
//! 1. `BEGIN IMMEDIATE` (SQLite) / `BEGIN` (PostgreSQL), through the store's `Db::begin`;
//! 2. the payment, `FOR UPDATE` on PostgreSQL; 3. the refund with this
//!    `merchant_refund_no`; 4. the merchant; 5. the merchant's sales and live refunds
//!    today (two `SUM`s in one statement); 6. whether the capture day is settled; 7. the
//!    funding rule: the merchant's balance row (`FOR UPDATE` on PostgreSQL; inserted first
//!    if new: two more statements once per merchant); 8. `INSERT` the refund; a queued
//!    refund also posts to the ledger here, on the balance row already locked: `INSERT` the
//!    posting, its three entries in one `INSERT`, `UPDATE` the balance; 9. `UPDATE` the
//!    payment's counters; 10. the audit head (`FOR UPDATE` on PostgreSQL); 11. `INSERT` the
//!    audit entry; 12. `UPDATE` the head; 13. the merchant's webhook (none here, so no
//!    outbox row); `COMMIT`. The answer's timeline is built from the entry just written.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use sqlx::AssertSqlSafe;
use yuanlu_domain::audit::GENESIS_HASH;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::{payment_fee, proportional_fee_refund};
use yuanlu_domain::ledger::refund_queued;
use yuanlu_domain::settings::{MerchantSettings, MerchantSettingsPatch};
use yuanlu_domain::time::{from_micros, shanghai_date, shanghai_day_start_us, to_micros};
use yuanlu_engine::ids::{hash_key, new_id};
use yuanlu_store::rows_notify::WebhookRow;
use yuanlu_store::{
    ApiKeyRow, AuditHeadRow, Backend, BalanceRow, Db, MerchantRow, PaymentRow, RefundRow, on_conn,
};

mod pgbench;
mod seed;

pub use pgbench::*;
pub use seed::*;

use super::driver::micros;
use super::report::Run;
use super::{PAYMENT_FEN, Plan, REFUND_FEN, Scenario, progress};

// The statements the store runs, from the store itself.
use yuanlu_store::sql::{
    API_KEY_BY_HASH, AUDIT_HEAD_INSERT as HEAD_INSERT_SQL, AUDIT_HEAD_UPDATE as HEAD_UPDATE_SQL,
    AUDIT_INSERT as AUDIT_INSERT_SQL, BALANCE_INSERT as BALANCE_INSERT_SQL,
    BALANCE_UPDATE as BALANCE_UPDATE_SQL, MERCHANT_BY_ID as MERCHANT_SQL, MERCHANT_DAY,
    MERCHANT_DAY_ADD, PAYMENT_COLUMNS, POSTING_INSERT as POSTING_INSERT_SQL, REFUND_COLUMNS,
    REFUND_INSERT_COLUMNS, SETTLED_COUNT as SETTLED_SQL,
    UPDATE_PAYMENT_COUNTERS as UPDATE_COUNTERS_SQL, WEBHOOK_BY_MERCHANT as WEBHOOK_SQL,
    entries_insert_sql,
};

/// The SQL texts that differ per backend, built once.
struct Sql {
    lock_payment: Arc<str>,
    find_refund: Arc<str>,
    insert_refund: Arc<str>,
    head_select: &'static str,
    balance_select: &'static str,
}

impl Sql {
    fn new(backend: Backend) -> Sql {
        let postgres = backend == Backend::Postgres;
        Sql {
            lock_payment: Arc::from(format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND merchant_id = $2{}",
                if postgres { " FOR UPDATE" } else { "" }
            )),
            find_refund: Arc::from(format!(
                "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = $1 AND merchant_refund_no = $2"
            )),
            insert_refund: Arc::from(format!(
                "INSERT INTO refunds ({REFUND_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
            )),
            head_select: if postgres {
                "SELECT chain, seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE"
            } else {
                "SELECT chain, seq, hash FROM audit_heads WHERE chain = $1"
            },
            balance_select: if postgres {
                "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE"
            } else {
                "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1"
            },
        }
    }
}

/// The refund row's status fields: queued for dispatch, as yuanlu's are (its server runs
/// API-only unless `--with-dispatch`).
#[derive(Debug, Clone, Copy)]
pub struct RefundShape {
    pub status: &'static str,
    pub review_reasons: &'static str,
    pub required_reviewer: Option<&'static str>,
    pub queued: bool,
}

impl RefundShape {
    pub fn for_plan(_plan: &Plan) -> RefundShape {
        RefundShape {
            status: "queued",
            review_reasons: "",
            required_reviewer: None,
            queued: true,
        }
    }
}

/// One payment the loop refunds, with what its merchant's key resolves to.
#[derive(Debug, Clone)]
pub struct Job {
    pub payment_id: String,
    pub merchant_id: String,
    pub key_hash: String,
    pub actor: String,
}

/// Runs `plan.refunds` refund creations from `plan.clients` concurrent tasks on the pool.
/// Returns the run and the statements executed (for statements per refund).
pub async fn drive(
    db: &Db,
    jobs: &[Job],
    plan: &Plan,
    label: &str,
) -> Result<(Run, usize), String> {
    if jobs.is_empty() {
        return Err("the baseline has no payments".to_string());
    }
    let refunds = plan.refunds;
    let jobs = Arc::new(jobs.to_vec());
    let sql = Arc::new(Sql::new(db.backend()));
    let shape = RefundShape::for_plan(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(label, refunds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..plan.clients {
        let (db, jobs, sql, next, bar) = (
            db.clone(),
            jobs.clone(),
            sql.clone(),
            next.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut statements = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= refunds {
                    return (run, statements);
                }
                let job = &jobs[i % jobs.len()];
                let t0 = Instant::now();
                let outcome = create_one(&db, &sql, job, &format!("bench-{i}"), shape).await;
                run.latencies_us.push(micros(t0.elapsed()));
                match outcome {
                    Ok(n) => {
                        run.ok += 1;
                        statements += n;
                    }
                    Err(why) => run.error(why),
                }
                bar.inc(1);
            }
        }));
    }
    let mut total = Run::default();
    let mut statements = 0;
    for task in tasks {
        let (run, n) = task.await.map_err(|e| format!("baseline task: {e}"))?;
        total.merge(run, 5);
        statements += n;
    }
    total.elapsed = started.elapsed();
    bar.finish_and_clear();
    total.finish();
    Ok((total, statements))
}

/// One refund: the statements of yuanlu's create path, in its transaction. Returns the
/// statements executed.
// Long on purpose: the create path's statements in their order, one after another, as the store runs them; the order is the point.
async fn create_one(
    db: &Db,
    sql: &Sql,
    job: &Job,
    merchant_refund_no: &str,
    shape: RefundShape,
) -> Result<usize, String> {
    let mut statements = 0;
    {
        let mut pooled = db.acquire().await.map_err(store_error("acquire"))?;
        let mut conn = pooled.conn();
        let key = on_conn!(&mut conn, |c| sqlx::query_as::<_, ApiKeyRow>(
            API_KEY_BY_HASH.as_str()
        )
        .bind(&job.key_hash)
        .fetch_optional(&mut **c)
        .await)
        .map_err(db_error("api key"))?;
        statements += 1;
        if key.is_none() {
            return Err(format!("no api key {}", job.key_hash));
        }
    }
    let now = Utc::now();
    let mut tx = db.begin().await.map_err(store_error("begin"))?;
    let mut conn = tx.conn();
    let payment = on_conn!(&mut conn, |c| sqlx::query_as::<_, PaymentRow>(
        AssertSqlSafe(sql.lock_payment.clone())
    )
    .bind(&job.payment_id)
    .bind(Some(job.merchant_id.clone()))
    .fetch_optional(&mut **c)
    .await)
    .map_err(db_error("lock payment"))?
    .ok_or_else(|| format!("no payment {}", job.payment_id))?;
    statements += 1;
    let existing = on_conn!(&mut conn, |c| sqlx::query_as::<_, RefundRow>(
        AssertSqlSafe(sql.find_refund.clone())
    )
    .bind(&job.merchant_id)
    .bind(merchant_refund_no)
    .fetch_optional(&mut **c)
    .await)
    .map_err(db_error("find refund"))?;
    statements += 1;
    if existing.is_some() {
        return Err(format!("merchant_refund_no {merchant_refund_no} exists"));
    }
    let merchant = on_conn!(&mut conn, |c| sqlx::query_as::<_, MerchantRow>(
        MERCHANT_SQL
    )
    .bind(&job.merchant_id)
    .fetch_optional(&mut **c)
    .await)
    .map_err(db_error("merchant"))?;
    statements += 1;
    if merchant.is_none() {
        return Err(format!("no merchant {}", job.merchant_id));
    }
    let day_start_us = shanghai_day_start_us(to_micros(now));
    let _day: Option<(i64, i64, i64)> =
        on_conn!(&mut conn, |c| sqlx::query_as::<_, (i64, i64, i64)>(
            MERCHANT_DAY
        )
        .bind(&job.merchant_id)
        .bind(day_start_us)
        .fetch_optional(&mut **c)
        .await)
        .map_err(db_error("day sums"))?;
    statements += 1;
    let capture_date = shanghai_date(from_micros(payment.captured_at_us))
        .format("%Y-%m-%d")
        .to_string();
    let _settled: i64 = on_conn!(&mut conn, |c| sqlx::query_scalar::<_, i64>(SETTLED_SQL)
        .bind(&capture_date)
        .fetch_one(&mut **c)
        .await)
    .map_err(db_error("settled"))?;
    statements += 1;
    let (balance, locking) = lock_balance(&mut conn, sql, &job.merchant_id).await?;
    statements += locking;
    let _funded = balance.unsettled_fen + balance.carried_fen;

    let now_us = to_micros(now);
    let refund_id = new_id("rf");
    let fee_refunded = proportional_fee_refund(
        payment.amount_fen,
        payment.fee_fen,
        payment.amount_refunded_fen + payment.amount_in_flight_fen + REFUND_FEN,
        payment.fee_returned_fen,
    );
    on_conn!(&mut conn, |c| sqlx::query(AssertSqlSafe(
        sql.insert_refund.clone()
    ))
    .bind(&refund_id)
    .bind(&job.merchant_id)
    .bind(&job.payment_id)
    .bind(merchant_refund_no)
    .bind("wechat")
    .bind("refund")
    .bind(shape.status)
    .bind(REFUND_FEN)
    .bind(fee_refunded)
    .bind("customer_cancel")
    .bind(None::<String>)
    .bind("merchant")
    .bind(None::<String>)
    .bind(shape.review_reasons)
    .bind(shape.required_reviewer)
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(None::<i64>)
    .bind(now_us)
    .bind(now_us)
    .bind(shape.queued.then_some(now_us))
    .execute(&mut **c)
    .await
    .map(|_| ()))
    .map_err(db_error("insert refund"))?;
    statements += 1;
    on_conn!(&mut conn, |c| sqlx::query(MERCHANT_DAY_ADD)
        .bind(&job.merchant_id)
        .bind(day_start_us)
        .bind(0_i64)
        .bind(REFUND_FEN)
        .bind(1_i64)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(db_error("merchant day"))?;
    statements += 1;
    if shape.queued {
        statements +=
            post_refund_queued(&mut conn, job, balance, &refund_id, fee_refunded, now).await?;
    }
    let updated = on_conn!(&mut conn, |c| sqlx::query(UPDATE_COUNTERS_SQL)
        .bind(&job.payment_id)
        .bind(payment.amount_refunded_fen)
        .bind(payment.amount_in_flight_fen + REFUND_FEN)
        .bind(payment.fee_returned_fen + fee_refunded)
        .bind(payment.refund_count + 1)
        .bind(payment.voided)
        .bind(&job.merchant_id)
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))
    .map_err(db_error("update payment"))?;
    statements += 1;
    if updated != 1 {
        return Err(format!("payment {} not updated", job.payment_id));
    }
    // The seeded chains have their heads (as every merchant's chain does after its first
    // event), so this is the one-statement path of `Conn::lock_audit_head`.
    let head = on_conn!(&mut conn, |c| sqlx::query_as::<_, AuditHeadRow>(
        sql.head_select
    )
    .bind(&job.merchant_id)
    .fetch_optional(&mut **c)
    .await)
    .map_err(db_error("audit head"))?
    .ok_or_else(|| format!("no audit head for {}", job.merchant_id))?;
    statements += 1;
    let data = json!({
        "status": shape.status,
        "type": "refund",
        "amount": REFUND_FEN,
        "fee_refunded": fee_refunded,
        "payment_id": job.payment_id,
        "merchant_refund_no": merchant_refund_no,
        "requested_by_role": "merchant",
        "requested_by_name": None::<String>,
        "review_reasons": shape.review_reasons,
    })
    .to_string();
    let seq = head.seq + 1;
    let hash = hash_key(&format!("{}\n{seq}\n{data}", head.hash));
    on_conn!(&mut conn, |c| sqlx::query(AUDIT_INSERT_SQL)
        .bind(&job.merchant_id)
        .bind(seq)
        .bind(now_us)
        .bind(&job.actor)
        .bind("refund.created")
        .bind(&refund_id)
        .bind(&data)
        .bind(&head.hash)
        .bind(&hash)
        .execute(&mut **c)
        .await
        .map(|_| ()))
    .map_err(db_error("audit insert"))?;
    on_conn!(&mut conn, |c| sqlx::query(HEAD_UPDATE_SQL)
        .bind(&job.merchant_id)
        .bind(seq)
        .bind(&hash)
        .execute(&mut **c)
        .await
        .map(|_| ()))
    .map_err(db_error("audit head update"))?;
    statements += 2;
    let webhook = on_conn!(&mut conn, |c| sqlx::query_as::<_, WebhookRow>(WEBHOOK_SQL)
        .bind(&job.merchant_id)
        .fetch_optional(&mut **c)
        .await)
    .map_err(db_error("webhook"))?;
    statements += 1;
    if webhook.is_some() {
        return Err(format!("merchant {} has a webhook", job.merchant_id));
    }
    tx.commit().await.map_err(store_error("commit"))?;
    Ok(statements)
}

/// The merchant's balance row read under its lock, inserted first if new (as
/// `Conn::lock_balance`); with the statements it took.
async fn lock_balance(
    conn: &mut yuanlu_store::Conn<'_>,
    sql: &Sql,
    merchant_id: &str,
) -> Result<(BalanceRow, usize), String> {
    if let Some(row) = select_balance(conn, sql, merchant_id).await? {
        return Ok((row, 1));
    }
    on_conn!(conn, |c| sqlx::query(BALANCE_INSERT_SQL)
        .bind(merchant_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))
    .map_err(db_error("balance insert"))?;
    let row = select_balance(conn, sql, merchant_id)
        .await?
        .ok_or_else(|| format!("no balance row for {merchant_id}"))?;
    Ok((row, 3))
}

async fn select_balance(
    conn: &mut yuanlu_store::Conn<'_>,
    sql: &Sql,
    merchant_id: &str,
) -> Result<Option<BalanceRow>, String> {
    on_conn!(conn, |c| sqlx::query_as::<_, BalanceRow>(
        sql.balance_select
    )
    .bind(merchant_id)
    .fetch_optional(&mut **c)
    .await)
    .map_err(db_error("balance"))
}

/// The `refund_queued` posting of a queued refund (as `ledger::post_locked`, on the balance
/// row the funding rule locked): the posting, its entries in one statement, the new balance.
/// Returns the statements run.
async fn post_refund_queued(
    conn: &mut yuanlu_store::Conn<'_>,
    job: &Job,
    before: BalanceRow,
    refund_id: &str,
    fee_refunded: i64,
    now: chrono::DateTime<Utc>,
) -> Result<usize, String> {
    let posting = refund_queued(&job.merchant_id, Channel::Wechat, REFUND_FEN, fee_refunded)
        .map_err(|e| format!("posting: {e:?}"))?;
    let mut statements = 0;
    let posting_id = new_id("pst");
    on_conn!(conn, |c| sqlx::query(POSTING_INSERT_SQL)
        .bind(&posting_id)
        .bind(&job.merchant_id)
        .bind("refund_queued")
        .bind(refund_id)
        .bind(&job.payment_id)
        .bind("wechat")
        .bind(REFUND_FEN)
        .bind(fee_refunded)
        .bind(shanghai_date(now).format("%Y-%m-%d").to_string())
        .bind(to_micros(now))
        .execute(&mut **c)
        .await
        .map(|_| ()))
    .map_err(db_error("posting insert"))?;
    statements += 1;
    let entries = posting.entries();
    let entries_sql = entries_insert_sql(entries.len());
    on_conn!(conn, |c| {
        let mut query = sqlx::query(AssertSqlSafe(entries_sql.clone()));
        for (line_no, entry) in entries.iter().enumerate() {
            query = query
                .bind(&posting_id)
                .bind(line_no as i64)
                .bind(&job.merchant_id)
                .bind(entry.account.id())
                .bind(entry.amount_fen);
        }
        query.execute(&mut **c).await.map(|_| ())
    })
    .map_err(db_error("entries insert"))?;
    statements += 1;
    on_conn!(conn, |c| sqlx::query(BALANCE_UPDATE_SQL)
        .bind(&job.merchant_id)
        .bind(before.unsettled_fen - (REFUND_FEN - fee_refunded))
        .bind(before.carried_fen)
        .execute(&mut **c)
        .await
        .map(|_| ()))
    .map_err(db_error("balance update"))?;
    Ok(statements + 1)
}

#[cfg(test)]
mod tests;
