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
use yuanlu_domain::time::{from_micros, shanghai_date, shanghai_day_bounds, to_micros};
use yuanlu_engine::ids::{hash_key, new_id};
use yuanlu_store::rows_notify::WebhookRow;
use yuanlu_store::{
    ApiKeyRow, AuditHeadRow, Backend, BalanceRow, Db, MerchantRow, PaymentRow, RefundRow, on_conn,
};

use super::driver::micros;
use super::report::Run;
use super::{PAYMENT_FEN, Plan, REFUND_FEN, Scenario, progress};

// The statements the store runs, from the store itself.
use yuanlu_store::sql::{
    API_KEY_BY_HASH, AUDIT_HEAD_INSERT as HEAD_INSERT_SQL, AUDIT_HEAD_UPDATE as HEAD_UPDATE_SQL,
    AUDIT_INSERT as AUDIT_INSERT_SQL, BALANCE_INSERT as BALANCE_INSERT_SQL,
    BALANCE_UPDATE as BALANCE_UPDATE_SQL, DAY_TOTALS, LIVE_REFUND_STATUSES,
    MERCHANT_BY_ID as MERCHANT_SQL, PAYMENT_COLUMNS, POSTING_INSERT as POSTING_INSERT_SQL,
    REFUND_COLUMNS, REFUND_INSERT_COLUMNS, SETTLED_COUNT as SETTLED_SQL,
    UPDATE_PAYMENT_COUNTERS as UPDATE_COUNTERS_SQL, WEBHOOK_BY_MERCHANT as WEBHOOK_SQL,
    entries_insert_sql,
};

/// The SQL texts that differ per backend, built once.
struct Sql {
    lock_payment: Arc<str>,
    find_refund: Arc<str>,
    day_sums: Arc<str>,
    insert_refund: Arc<str>,
    head_select: &'static str,
    balance_select: &'static str,
}

impl Sql {
    fn new(backend: Backend) -> Sql {
        let postgres = backend == Backend::Postgres;
        Sql {
            lock_payment: Arc::from(format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2){}",
                if postgres { " FOR UPDATE" } else { "" }
            )),
            find_refund: Arc::from(format!(
                "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = $1 AND merchant_refund_no = $2"
            )),
            day_sums: Arc::from(DAY_TOTALS.as_str()),
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

/// Deterministic ids of the seeded rows, as long as yuanlu's (`pay_` + 26), so the pgbench
/// script can name them: `<prefix>_<s|h><25 digits>`.
pub fn seeded_id(prefix: &str, scenario: Scenario, n: usize) -> String {
    format!("{prefix}_{}{n:025}", scenario.letter())
}

/// The key hash stored for a seeded merchant: its id left-padded with `0` to 64 characters.
pub fn seeded_key_hash(merchant_id: &str) -> String {
    format!("{merchant_id:0>64}")
}

fn db_error(what: &str) -> impl Fn(sqlx::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn store_error(what: &str) -> impl Fn(yuanlu_store::StoreError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The settings JSON every bench merchant has (the same as through the API).
pub fn settings_json(plan: &Plan) -> Result<(String, i64), String> {
    let _ = plan;
    let settings = MerchantSettings::default()
        .apply(&MerchantSettingsPatch::default())
        .map_err(|e| format!("bench settings: {}: {}", e.field, e.problem))?;
    let channel = settings.channel(Channel::Wechat);
    let fee = payment_fee(PAYMENT_FEN, channel.fee_rate_ppm, channel.fee_cap_fen);
    let text = serde_json::to_string(&settings).map_err(|e| format!("bench settings: {e}"))?;
    Ok((text, fee))
}

/// A fresh SQLite baseline database under `dir`, opened like yuanlu's (WAL,
/// `synchronous=FULL`, same pool) with the same migrations.
pub async fn open_sqlite(dir: &Path) -> Result<Db, String> {
    let db = Db::open_sqlite(dir)
        .await
        .map_err(store_error("open the baseline SQLite database"))?;
    db.migrate()
        .await
        .map_err(store_error("migrate the baseline database"))?;
    Ok(db)
}

/// A fresh PostgreSQL baseline in `schema`, with the same migrations and pool.
pub async fn open_postgres(url: &str, schema: &str) -> Result<Db, String> {
    let db = Db::open_postgres(url, Some(schema))
        .await
        .map_err(store_error("connect the baseline to PostgreSQL"))?;
    db.migrate()
        .await
        .map_err(store_error("migrate the baseline schema"))?;
    Ok(db)
}

/// Rows per seeding transaction.
const SEED_BATCH: usize = 1_000;

/// Inserts the scenario's merchants (with a key and an audit head each) and payments with
/// plain INSERTs (untimed).
pub async fn seed(db: &Db, plan: &Plan, scenario: Scenario) -> Result<Vec<Job>, String> {
    let (settings, fee_fen) = settings_json(plan)?;
    let now_us = to_micros(Utc::now());
    let merchants: Vec<(String, String, String)> = (0..scenario.merchants(plan))
        .map(|k| {
            let id = seeded_id("mch", scenario, k);
            let key_id = seeded_id("key", scenario, k);
            let key_hash = seeded_key_hash(&id);
            (id, key_id, key_hash)
        })
        .collect();
    let count = scenario.payments(plan);
    for (chunk_no, chunk) in merchants.chunks(SEED_BATCH).enumerate() {
        let mut tx = db.begin().await.map_err(store_error("seed: begin"))?;
        let mut conn = tx.conn();
        for (n, (id, key_id, key_hash)) in chunk.iter().enumerate() {
            let k = chunk_no * SEED_BATCH + n;
            on_conn!(&mut conn, |c| sqlx::query(
                "INSERT INTO merchants (id, name, settings, created_at_us) VALUES ($1, $2, $3, $4)"
            )
            .bind(id)
            .bind(format!("bench {} {id}", scenario.name()))
            .bind(&settings)
            .bind(now_us)
            .execute(&mut **c)
            .await
            .map(|_| ()))
            .map_err(db_error("seed merchant"))?;
            on_conn!(&mut conn, |c| sqlx::query(
                "INSERT INTO api_keys (key_hash, id, merchant_id, role, created_at_us) VALUES ($1, $2, $3, 'supervisor', $4)"
            )
            .bind(key_hash)
            .bind(key_id)
            .bind(id)
            .bind(now_us)
            .execute(&mut **c)
            .await
            .map(|_| ()))
            .map_err(db_error("seed api key"))?;
            on_conn!(&mut conn, |c| sqlx::query(HEAD_INSERT_SQL)
                .bind(id)
                .bind(GENESIS_HASH)
                .execute(&mut **c)
                .await
                .map(|_| ()))
            .map_err(db_error("seed audit head"))?;
            // What the payments' `payment_captured` postings leave the merchant.
            let payments_of_merchant =
                count / merchants.len() + usize::from(k < count % merchants.len());
            let unsettled = (PAYMENT_FEN - fee_fen) * payments_of_merchant as i64;
            on_conn!(&mut conn, |c| sqlx::query(
                "INSERT INTO merchant_balances (merchant_id, unsettled_fen, carried_fen) VALUES ($1, $2, 0)"
            )
            .bind(id)
            .bind(unsettled)
            .execute(&mut **c)
            .await
            .map(|_| ()))
            .map_err(db_error("seed balance"))?;
        }
        tx.commit().await.map_err(store_error("seed: commit"))?;
    }
    let mut jobs = Vec::with_capacity(count);
    for start in (0..count).step_by(SEED_BATCH) {
        let mut tx = db.begin().await.map_err(store_error("seed: begin"))?;
        let mut conn = tx.conn();
        for j in start..(start + SEED_BATCH).min(count) {
            let (merchant_id, key_id, key_hash) = &merchants[j % merchants.len()];
            let payment_id = seeded_id("pay", scenario, j);
            on_conn!(&mut conn, |c| sqlx::query(
                "INSERT INTO payments (id, merchant_id, channel, amount_fen, currency, fee_fen, kind, member, \
                 captured_at_us, created_at_us) VALUES ($1, $2, 'wechat', $3, 'CNY', $4, 'sale', $5, $6, $6)"
            )
            .bind(&payment_id)
            .bind(merchant_id)
            .bind(PAYMENT_FEN)
            .bind(fee_fen)
            .bind(false)
            .bind(now_us)
            .execute(&mut **c)
            .await
            .map(|_| ()))
            .map_err(db_error("seed payment"))?;
            jobs.push(Job {
                payment_id,
                merchant_id: merchant_id.clone(),
                key_hash: key_hash.clone(),
                actor: format!("merchant:{merchant_id}:supervisor:{key_id}"),
            });
        }
        tx.commit().await.map_err(store_error("seed: commit"))?;
    }
    Ok(jobs)
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
    let (day_start, day_end) = shanghai_day_bounds(shanghai_date(now));
    let (from_us, to_us) = (to_micros(day_start), to_micros(day_end));
    let _day: (i64, i64) = on_conn!(&mut conn, |c| sqlx::query_as::<_, (i64, i64)>(
        AssertSqlSafe(sql.day_sums.clone())
    )
    .bind(&job.merchant_id)
    .bind(from_us)
    .bind(to_us)
    .fetch_one(&mut **c)
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

/// Seconds each `pgbench` run lasts.
pub const PGBENCH_SECONDS: u64 = 10;

/// The pgbench script equivalent to [`create_one`]: the same statements in the same
/// transaction, on a random seeded payment of the scenario. Run with `-M prepared` (sqlx
/// prepares and caches its statements too); variables are parameters there, and pgbench
/// takes any `:name` as a variable, even inside a literal: no literal here has a colon
/// followed by a letter or digit (hence `": 100"` in the JSON and the split actor).
pub fn pgbench_script(plan: &Plan, scenario: Scenario) -> String {
    let shape = RefundShape::for_plan(plan);
    let letter = scenario.letter();
    let payments = scenario.payments(plan);
    let merchants = scenario.merchants(plan);
    let now = Utc::now();
    let (day_start, day_end) = shanghai_day_bounds(shanghai_date(now));
    let (from_us, to_us) = (to_micros(day_start), to_micros(day_end));
    let capture_date = shanghai_date(now).format("%Y-%m-%d");
    let mid = format!("('mch_{letter}' || lpad(CAST(:m AS text), 25, '0'))");
    let pid = format!("('pay_{letter}' || lpad(CAST(:p AS text), 25, '0'))");
    let kid = format!("('key_{letter}' || lpad(CAST(:m AS text), 25, '0'))");
    let rid = "('rf_' || lpad(CAST(:r AS text), 26, '0'))";
    let no = "('pgb-' || CAST(:r AS text))";
    let now_us = "CAST(extract(epoch from now()) * 1000000 AS BIGINT)";
    let hash = "(md5(CAST(:h_hash AS text) || CAST(:r AS text)) || md5(CAST(:r AS text)))";
    let reviewer = shape
        .required_reviewer
        .map_or("NULL".to_string(), |r| format!("'{r}'"));
    let next_attempt = if shape.queued { now_us } else { "NULL" };
    let status = shape.status;
    let reasons = shape.review_reasons;
    let data = format!(
        "'{{\"amount\": {REFUND_FEN},\"fee_refunded\": 1,\"merchant_refund_no\":\"' || {no} || '\",\"payment_id\":\"' || {pid} || '\",\"requested_by_name\": null,\"requested_by_role\":\"merchant\",\"review_reasons\":\"{reasons}\",\"status\":\"{status}\",\"type\":\"refund\"}}'"
    );
    let posting = if shape.queued {
        queued_posting_sql(&mid, &pid, rid, now_us)
    } else {
        String::new()
    };
    let statements = [
        format!(
            "SELECT key_hash, id, merchant_id, role, created_at_us FROM api_keys WHERE key_hash = lpad({mid}, 64, '0');"
        ),
        "BEGIN;".to_string(),
        format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = {pid} AND ({mid} IS NULL OR merchant_id = {mid}) FOR UPDATE;"
        ),
        format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = {mid} AND merchant_refund_no = {no};"
        ),
        format!("SELECT id, name, settings, created_at_us FROM merchants WHERE id = {mid};"),
        format!(
            "SELECT (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM payments WHERE merchant_id = {mid} AND captured_at_us >= {from_us} AND captured_at_us < {to_us}), (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE merchant_id = {mid} AND created_at_us >= {from_us} AND created_at_us < {to_us} AND status IN {live};",
            live = *LIVE_REFUND_STATUSES
        ),
        format!("SELECT COUNT(*) FROM settlement_runs WHERE business_date = '{capture_date}';"),
        // The baseline's loop has made every balance row: the one-statement lock.
        format!(
            "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = {mid} FOR UPDATE;"
        ),
        format!(
            "INSERT INTO refunds ({REFUND_INSERT_COLUMNS}) VALUES ({rid}, {mid}, {pid}, {no}, 'wechat', 'refund', '{status}', {REFUND_FEN}, 1, 'customer_cancel', NULL, 'merchant', NULL, '{reasons}', {reviewer}, NULL, NULL, NULL, NULL, NULL, {now_us}, {now_us}, {next_attempt});"
        ),
        posting,
        format!(
            "UPDATE payments SET amount_refunded_fen = amount_refunded_fen, amount_in_flight_fen = amount_in_flight_fen + {REFUND_FEN}, fee_returned_fen = LEAST(fee_returned_fen + 1, fee_fen), refund_count = refund_count + 1, voided = voided WHERE id = {pid};"
        ),
        format!(
            "SELECT chain, seq, hash FROM audit_heads WHERE chain = {mid} FOR UPDATE \\gset h_"
        ),
        format!(
            "INSERT INTO audit_log (chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash) VALUES ({mid}, CAST(:h_seq AS BIGINT) + 1, {now_us}, 'merchant:' || {mid} || ':' || 'supervisor:' || {kid}, 'refund.created', {rid}, {data}, CAST(:h_hash AS text), {hash});"
        ),
        format!(
            "UPDATE audit_heads SET seq = CAST(:h_seq AS BIGINT) + 1, hash = {hash} WHERE chain = {mid};"
        ),
        format!(
            "SELECT merchant_id, url, secret, created_at_us, updated_at_us FROM merchant_webhooks WHERE merchant_id = {mid};"
        ),
        "END;".to_string(),
    ];
    let mut script = format!(
        "-- yuanlu bench: one refund as yuanlu creates it (scenario {}).\n\\set p random(0, {})\n\\set m :p % {merchants}\n\\set r random(1, 9000000000000000)\n",
        scenario.name(),
        payments.saturating_sub(1),
    );
    for statement in statements.iter().filter(|s| !s.is_empty()) {
        script.push_str(statement);
        script.push('\n');
    }
    script
}

/// A text as an SQL expression pgbench leaves alone: split after each colon, so no `:name`
/// appears (`'a:b'` becomes `'a:' || 'b'`).
fn pgbench_literal(text: &str) -> String {
    if text.is_empty() {
        return "''".to_string();
    }
    text.split_inclusive(':')
        .map(|part| format!("'{part}'"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The statements of a queued refund's `refund_queued` posting, for the pgbench script (fee
/// refunded: 1 fen).
fn queued_posting_sql(mid: &str, pid: &str, rid: &str, now_us: &str) -> String {
    const MERCHANT: &str = "@merchant@";
    let posting_id = "('pst_' || lpad(CAST(:r AS text), 26, '0'))";
    let mut lines = vec![format!(
        "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us) VALUES ({posting_id}, {mid}, 'refund_queued', {rid}, {pid}, 'wechat', {REFUND_FEN}, 1, to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD'), {now_us});"
    )];
    if let Ok(posting) = refund_queued(MERCHANT, Channel::Wechat, REFUND_FEN, 1) {
        let mut values = Vec::new();
        for (line_no, entry) in posting.entries().iter().enumerate() {
            let account = entry
                .account
                .id()
                .split(MERCHANT)
                .map(pgbench_literal)
                .collect::<Vec<_>>()
                .join(&format!(" || {mid} || "));
            values.push(format!(
                "({posting_id}, {line_no}, {mid}, {account}, {})",
                entry.amount_fen
            ));
        }
        lines.push(format!(
            "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) VALUES {};",
            values.join(", ")
        ));
    }
    lines.push(format!(
        "UPDATE merchant_balances SET unsettled_fen = unsettled_fen - {}, carried_fen = carried_fen WHERE merchant_id = {mid};",
        REFUND_FEN - 1
    ));
    lines.join("\n")
}

/// Runs `pgbench` with [`pgbench_script`] against the baseline schema. `Err` says why it
/// did not run (not installed, failed).
pub async fn pgbench(
    base_url: &str,
    schema: &str,
    plan: &Plan,
    scenario: Scenario,
    dir: &Path,
) -> Result<super::report::Pgbench, String> {
    let path = dir.join(format!("pgbench-{}.sql", scenario.name()));
    std::fs::write(&path, pgbench_script(plan, scenario))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let clients = plan.clients.to_string();
    let threads = plan.clients.min(2).to_string();
    let seconds = PGBENCH_SECONDS.to_string();
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients, "-j", &threads])
        .args(["-T", &seconds, "-f"])
        .arg(&path)
        .arg(base_url)
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "pgbench is not on PATH (Debian: apt-get install postgresql-client)".to_string()
            }
            _ => format!("cannot run pgbench: {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        return Err(format!("pgbench failed ({}): {tail}", output.status));
    }
    parse_pgbench(&stdout).ok_or_else(|| format!("cannot read pgbench's output: {stdout}"))
}

/// `tps = …`, `number of transactions actually processed: …`, `latency average = … ms`.
pub fn parse_pgbench(stdout: &str) -> Option<super::report::Pgbench> {
    let mut result = super::report::Pgbench {
        seconds: PGBENCH_SECONDS,
        ..Default::default()
    };
    let mut tps = None;
    for line in stdout.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("tps = ") {
            tps = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            result.transactions = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            result.latency_avg_ms = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        }
    }
    result.tps = tps?;
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_output() {
        let out = "transaction type: script.sql\nnumber of transactions actually processed: 12345\nnumber of failed transactions: 0 (0.000%)\nlatency average = 2.592 ms\ninitial connection time = 10.1 ms\ntps = 1234.567890 (without initial connection time)\n";
        let parsed = parse_pgbench(out);
        assert_eq!(parsed.as_ref().map(|p| p.transactions), Some(12_345));
        assert_eq!(parsed.as_ref().and_then(|p| p.latency_avg_ms), Some(2.592));
        assert!(parsed.is_some_and(|p| (p.tps - 1234.56789).abs() < 1e-6));
        assert!(parse_pgbench("nothing").is_none());
    }

    #[test]
    fn pgbench_literals_hide_colons() {
        assert_eq!(pgbench_literal(""), "''");
        assert_eq!(pgbench_literal("fee_income"), "'fee_income'");
        assert_eq!(
            pgbench_literal("refunds_in_flight:wechat"),
            "'refunds_in_flight:' || 'wechat'"
        );
    }

    #[test]
    fn seeded_ids_are_as_long_as_real_ones() {
        let real = new_id("pay");
        assert_eq!(seeded_id("pay", Scenario::Spread, 7).len(), real.len());
        assert_eq!(seeded_key_hash("mch_s0000000000000000000000001").len(), 64);
    }
}
