//! The baseline's fresh database: the same migrations, merchants, keys and payments as
//! yuanlu's side, written directly.

use super::*;

/// Deterministic ids of the seeded rows, as long as yuanlu's (`pay_` + 26), so the pgbench
/// script can name them: `<prefix>_<s|h><25 digits>`.
pub fn seeded_id(prefix: &str, scenario: Scenario, n: usize) -> String {
    format!("{prefix}_{}{n:025}", scenario.letter())
}

/// The key hash stored for a seeded merchant: its id left-padded with `0` to 64 characters.
pub fn seeded_key_hash(merchant_id: &str) -> String {
    format!("{merchant_id:0>64}")
}

pub(super) fn db_error(what: &str) -> impl Fn(sqlx::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub(super) fn store_error(what: &str) -> impl Fn(yuanlu_store::StoreError) -> String + '_ {
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
pub(super) const SEED_BATCH: usize = 1_000;

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
    // The merchant days' sales, as recording the payments would have added them.
    let mut tx = db.begin().await.map_err(store_error("seed: begin"))?;
    tx.conn()
        .rebuild_merchant_days()
        .await
        .map_err(store_error("seed: merchant days"))?;
    tx.commit().await.map_err(store_error("seed: commit"))?;
    Ok(jobs)
}
