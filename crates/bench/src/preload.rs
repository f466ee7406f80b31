//! `--preload-payments N`: history already in the database. Before a scenario's timed
//! phase, N captured payments are bulk-loaded into yuanlu's database (while its server
//! idles) and into the baseline's, over the scenario's merchants, captured on the 30 days
//! before today (Asia/Shanghai): today's day sums, and so the review and funding rules,
//! see the same totals as without them.
//!
//! Only `payments` rows are written, as `Engine::record_payment` writes them (ids of the
//! same shape, ULIDs of their capture time; channels, amounts and the fees of the default
//! fee table; masked payers). Their ledger postings, audit entries and settlement runs are
//! not: the create path reads none of those for another payment. SQLite: multi-row INSERTs
//! with anonymous parameters in transactions of [`SQLITE_TX_ROWS`] rows on a connection of
//! its own; PostgreSQL: `COPY … FROM STDIN`, then `VACUUM (ANALYZE)` and `CHECKPOINT` so that
//! neither autovacuum nor the load's dirty pages land in the timed phase.

use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::payment_fee;
use yuanlu_domain::money::CURRENCY;
use yuanlu_domain::payment::PaymentKind;
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_domain::time::{shanghai_date, shanghai_day_bounds, to_micros};

use super::settle::{channel_and_amount, mix};
use super::{Scenario, Storage, progress};
use yuanlu_store::queries_merchant_days::rebuild_statements;

/// Days before today the preloaded payments are captured on.
pub const DAYS: i64 = 30;
/// Columns written; the others keep their defaults (NULL, 0, false), as `record_payment`
/// leaves them for a payment without card or order details.
const COLUMNS: &str = "id, merchant_id, terminal_id, channel, amount_fen, currency, fee_fen, kind, member, \
    payer_account, captured_at_us, created_at_us";
const WIDTH: usize = 12;
/// Bound parameters per SQLite statement (its limit is 32,766).
const SQLITE_BINDS_MAX: usize = 30_000;
/// Rows per SQLite transaction.
const SQLITE_TX_ROWS: usize = 500_000;
/// Rows per PostgreSQL `COPY` (one transaction each) and per buffer sent.
const PG_COPY_ROWS: usize = 1_000_000;
const PG_SEND_ROWS: usize = 20_000;
/// Page cache of the loading SQLite connection, in KiB.
const SQLITE_CACHE_KIB: u32 = 256 * 1024;

/// One preloaded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub merchant: usize,
    pub terminal_id: String,
    pub channel: Channel,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub payer_account: Option<String>,
    pub at_us: i64,
}

/// A lowercase ULID (Crockford base32) of a millisecond timestamp and 80 random bits, as
/// `ids::new_id` makes them.
pub fn ulid(ms: u64, random: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let value = (u128::from(ms & 0xffff_ffff_ffff) << 80) | (random & ((1u128 << 80) - 1));
    (0..26)
        .map(|k| char::from(ALPHABET[((value >> (125 - 5 * k)) & 31) as usize]))
        .collect()
}

/// The generator of one scenario's preloaded payments.
pub struct Generator {
    seed: u64,
    n: usize,
    merchants: usize,
    /// The first microsecond of the window (today's start minus [`DAYS`]) and its length.
    from_us: i64,
    span_us: i64,
    settings: MerchantSettings,
}

impl Generator {
    /// `n` payments over `merchants` merchants, captured before today's start; `scenario`
    /// changes the ids, so two scenarios' payments can share a database.
    pub fn new(scenario: Scenario, n: usize, merchants: usize) -> Generator {
        let (today, _) = shanghai_day_bounds(shanghai_date(Utc::now()));
        let span_us = DAYS * 86_400_000_000;
        Generator {
            seed: 0x0070_7265_6c6f_6164 ^ u64::from(scenario.letter()),
            n,
            merchants: merchants.max(1),
            from_us: to_micros(today) - span_us,
            span_us,
            settings: MerchantSettings::default(),
        }
    }

    /// Payment `i`: in capture-time order over the window, on a pseudo-random merchant.
    pub fn row(&self, i: usize) -> Row {
        let offset = (i as u128 * self.span_us as u128 / self.n.max(1) as u128) as i64;
        let at_us = self.from_us + offset;
        let r = mix(self.seed ^ i as u64);
        let r2 = mix(r);
        let (channel, amount_fen) = channel_and_amount(r, r2);
        let settings = self.settings.channel(channel);
        let payer_account = match channel {
            Channel::CreditCard | Channel::DebitCard => {
                Some(format!("**** {:04}", (r2 >> 20) % 10_000))
            }
            Channel::Wechat | Channel::Alipay => {
                let digits = (r2 >> 16) % 10_000;
                Some(format!("138****{digits:04}"))
            }
            Channel::UnionpayQr => None,
        };
        let random = (u128::from(mix(r2)) << 16) ^ u128::from(r);
        Row {
            id: format!("pay_{}", ulid((at_us / 1_000) as u64, random)),
            merchant: (r % self.merchants as u64) as usize,
            terminal_id: format!("T{:03}", (r >> 50) % 4),
            channel,
            amount_fen,
            fee_fen: payment_fee(amount_fen, settings.fee_rate_ppm, settings.fee_cap_fen),
            payer_account,
            at_us,
        }
    }
}

/// Loads `n` payments over `merchants` (their ids) into the database of `storage`; returns
/// how long it took.
pub async fn load(
    storage: &Storage,
    scenario: Scenario,
    merchants: &[String],
    n: usize,
    label: &str,
) -> Result<Duration, String> {
    if merchants.is_empty() {
        return Err("no merchants to preload payments for".to_string());
    }
    let generator = Generator::new(scenario, n, merchants.len());
    let bar = progress(label, n);
    let started = Instant::now();
    let result = match storage {
        Storage::Sqlite(path) => load_sqlite(path, &generator, merchants, &bar).await,
        Storage::Postgres { url, schema } => {
            load_postgres(url, schema, &generator, merchants, &bar).await
        }
    };
    bar.finish_and_clear();
    result.map(|()| started.elapsed())
}

async fn load_sqlite(
    path: &Path,
    generator: &Generator,
    merchants: &[String],
    bar: &indicatif::ProgressBar,
) -> Result<(), String> {
    // A connection of its own: no fsync per commit (a crash loses only the bench's
    // temporary database) and a page cache the size of the load's working set.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(60))
        .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
        .disable_statement_logging();
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let rows_per_statement = SQLITE_BINDS_MAX / WIDTH;
    let full_sql = sqlite_insert(rows_per_statement);
    let n = generator.n;
    let mut start = 0;
    while start < n {
        let tx_end = (start + SQLITE_TX_ROWS).min(n);
        let mut tx = conn.begin().await.map_err(|e| format!("begin: {e}"))?;
        while start < tx_end {
            let end = (start + rows_per_statement).min(tx_end);
            let rows: Vec<Row> = (start..end).map(|i| generator.row(i)).collect();
            let partial;
            let sql = if rows.len() == rows_per_statement {
                &full_sql
            } else {
                partial = sqlite_insert(rows.len());
                &partial
            };
            let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
            for row in &rows {
                let merchant = merchants
                    .get(row.merchant)
                    .ok_or("a payment of no merchant")?;
                query = query
                    .bind(row.id.as_str())
                    .bind(merchant.as_str())
                    .bind(row.terminal_id.as_str())
                    .bind(row.channel.id())
                    .bind(row.amount_fen)
                    .bind(CURRENCY)
                    .bind(row.fee_fen)
                    .bind(PaymentKind::Sale.id())
                    .bind(false)
                    .bind(row.payer_account.as_deref())
                    .bind(row.at_us)
                    .bind(row.at_us);
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(|e| format!("preload payments: {e}"))?;
            bar.inc((end - start) as u64);
            start = end;
        }
        tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    }
    // The merchant days' sales, as recording the payments one by one would have added them.
    for statement in rebuild_statements() {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("merchant days: {e}"))?;
    }
    // Write the load home, so the timed phase neither checkpoints it nor reads a long WAL.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
    let _ = conn.close().await;
    Ok(())
}

/// `INSERT INTO payments (…) VALUES (?, …), …` for `rows` rows: anonymous parameters, as
/// SQLite looks numbered ones up linearly (quadratic in a statement this long).
fn sqlite_insert(rows: usize) -> String {
    let row = format!("({})", ["?"; WIDTH].join(", "));
    let mut sql = format!("INSERT INTO payments ({COLUMNS}) VALUES ");
    sql.push_str(&vec![row.as_str(); rows].join(", "));
    sql
}

async fn load_postgres(
    url: &str,
    schema: &str,
    generator: &Generator,
    merchants: &[String],
    bar: &indicatif::ProgressBar,
) -> Result<(), String> {
    let mut conn = pg_connect_quiet(url, schema).await?;
    let n = generator.n;
    let mut start = 0;
    while start < n {
        let copy_end = (start + PG_COPY_ROWS).min(n);
        let mut copy = conn
            .copy_in_raw(&format!("COPY payments ({COLUMNS}) FROM STDIN"))
            .await
            .map_err(|e| format!("COPY payments: {e}"))?;
        while start < copy_end {
            let end = (start + PG_SEND_ROWS).min(copy_end);
            let mut buffer = String::with_capacity((end - start) * 128);
            for i in start..end {
                let row = generator.row(i);
                let merchant = merchants
                    .get(row.merchant)
                    .ok_or("a payment of no merchant")?;
                // Text format: tab-separated, `\N` for NULL; no value holds a tab, a
                // newline or a backslash.
                let _ = writeln!(
                    buffer,
                    "{}\t{merchant}\t{}\t{}\t{}\t{CURRENCY}\t{}\t{}\tf\t{}\t{}\t{}",
                    row.id,
                    row.terminal_id,
                    row.channel.id(),
                    row.amount_fen,
                    row.fee_fen,
                    PaymentKind::Sale.id(),
                    row.payer_account.as_deref().unwrap_or("\\N"),
                    row.at_us,
                    row.at_us,
                );
            }
            copy.send(buffer.into_bytes())
                .await
                .map_err(|e| format!("COPY payments: {e}"))?;
            bar.inc((end - start) as u64);
            start = end;
        }
        copy.finish()
            .await
            .map_err(|e| format!("COPY payments: {e}"))?;
    }
    for statement in rebuild_statements() {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("merchant days: {e}"))?;
    }
    bar.set_prefix(format!("{}: VACUUM, CHECKPOINT", bar.prefix()));
    sqlx::raw_sql("VACUUM (ANALYZE) payments, merchant_days")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("VACUUM payments: {e}"))?;
    // CHECKPOINT needs superuser or pg_checkpoint; without it the load's pages are written
    // home by the next regular checkpoint, maybe during the timed phase.
    if let Err(why) = sqlx::raw_sql("CHECKPOINT").execute(&mut conn).await {
        eprintln!("yuanlu bench: CHECKPOINT after the preload failed: {why}");
    }
    let _ = conn.close().await;
    Ok(())
}

/// A connection to `schema` that logs no statements: the load's long ones are expected.
pub async fn pg_connect_quiet(url: &str, schema: &str) -> Result<PgConnection, String> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("bad PostgreSQL URL: {e}"))?
        .options([("search_path", schema)])
        .disable_statement_logging();
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_real_ones_and_follow_capture_time() {
        let generator = Generator::new(Scenario::Spread, 1_000, 7);
        let real = yuanlu_engine::ids::new_id(yuanlu_engine::ids::PAYMENT);
        let rows: Vec<Row> = (0..1_000).map(|i| generator.row(i)).collect();
        for pair in rows.windows(2) {
            assert_eq!(pair[0].id.len(), real.len());
            assert!(pair[0].id < pair[1].id, "{} < {}", pair[0].id, pair[1].id);
            assert!(pair[0].at_us <= pair[1].at_us);
            assert!(pair[0].merchant < 7);
        }
        // Captured before today, after the window's start: today's sums are unchanged.
        let (today, _) = shanghai_day_bounds(shanghai_date(Utc::now()));
        assert!(rows.iter().all(|r| r.at_us < to_micros(today)));
        assert!(
            rows.iter()
                .all(|r| r.at_us >= to_micros(today) - DAYS * 86_400_000_000)
        );
        // A real id sorts after every preloaded one (it is made now).
        assert!(rows.iter().all(|r| r.id < real));
        // Another scenario's ids differ.
        let hot = Generator::new(Scenario::Hot, 1_000, 1);
        assert_ne!(hot.row(5).id, generator.row(5).id);
    }

    #[test]
    fn ulids_encode_time_first() {
        assert_eq!(ulid(0, 0), "00000000000000000000000000");
        assert_eq!(ulid(1, 0), "00000000010000000000000000");
        assert_eq!(ulid(0, 1), "00000000000000000000000001");
        assert_eq!(
            ulid(0xffff_ffff_ffff, u128::MAX),
            "7zzzzzzzzzzzzzzzzzzzzzzzzz"
        );
    }

    #[test]
    fn fees_follow_the_default_fee_table() {
        let generator = Generator::new(Scenario::Spread, 10_000, 100);
        let defaults = MerchantSettings::default();
        let mut channels = std::collections::BTreeSet::new();
        for i in 0..10_000 {
            let row = generator.row(i);
            let c = defaults.channel(row.channel);
            assert_eq!(
                row.fee_fen,
                payment_fee(row.amount_fen, c.fee_rate_ppm, c.fee_cap_fen)
            );
            assert!(row.amount_fen > 0);
            channels.insert(row.channel.id());
        }
        assert_eq!(channels.len(), 5);
    }
}
