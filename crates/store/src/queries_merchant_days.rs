//! Each merchant's day as running totals (`merchant_days`, issue 13): the sales captured and
//! the refunds that count against the day (held or paid), so that the refund rules read one
//! row per merchant day instead of summing all its payments and refunds so far.
//!
//! The totals are written in the transaction of every event that moves them (a payment
//! recorded, a refund created, a refund leaving the statuses that count), and always while
//! that transaction holds the merchant's balance lock: the lock serializes every writer of
//! a merchant's day rows, so on PostgreSQL two transactions never wait for each other's day
//! rows in a cycle. `Engine::check_ledger` proves them against the payments and refunds.

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;
use yuanlu_domain::time::shanghai_day_start_us;

use crate::db::Conn;
use crate::error::StoreResult;
use crate::multi_row::{Col, insert_rows, sqlite_chunk, sqlite_values};
use crate::on_conn;
use crate::sql::{LIVE_REFUND_STATUSES, MERCHANT_DAY, MERCHANT_DAY_ADD};

/// A merchant's Asia/Shanghai day, by its first microsecond.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayKey {
    pub merchant_id: String,
    pub day_start_us: i64,
}

impl DayKey {
    /// The merchant's day on which the stored instant `at_us` falls.
    pub fn containing(merchant_id: &str, at_us: i64) -> DayKey {
        DayKey {
            merchant_id: merchant_id.to_string(),
            day_start_us: shanghai_day_start_us(at_us),
        }
    }
}

/// A merchant day's totals, or a change to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySums {
    /// Sales captured on the day.
    pub sales_fen: i64,
    /// Refunds created on the day that count against it: their sum and their count.
    pub refunds_fen: i64,
    pub refunds_count: i64,
}

impl DaySums {
    pub fn sale(amount_fen: i64) -> DaySums {
        DaySums {
            sales_fen: amount_fen,
            ..DaySums::default()
        }
    }

    /// A refund starting to count against its day (`sign` 1), or ceasing to (`sign` −1).
    pub fn refund(amount_fen: i64, sign: i64) -> DaySums {
        DaySums {
            sales_fen: 0,
            refunds_fen: sign * amount_fen,
            refunds_count: sign,
        }
    }

    pub fn add(&mut self, other: DaySums) {
        self.sales_fen += other.sales_fen;
        self.refunds_fen += other.refunds_fen;
        self.refunds_count += other.refunds_count;
    }
}

const COLUMNS: &str = "merchant_id, day_start_us, sales_fen, refunds_fen, refunds_count";

/// The totals as the payments and refunds make them, one row per merchant day with any
/// (the same arithmetic as [`shanghai_day_start_us`], on non-negative instants).
fn computed() -> String {
    let day = |column: &str| {
        format!("(({column} + 28800000000) / 86400000000) * 86400000000 - 28800000000")
    };
    format!(
        "SELECT merchant_id, day_start_us, CAST(SUM(sales_fen) AS BIGINT) AS sales_fen, \
         CAST(SUM(refunds_fen) AS BIGINT) AS refunds_fen, \
         CAST(SUM(refunds_count) AS BIGINT) AS refunds_count FROM ( \
         SELECT merchant_id, {} AS day_start_us, amount_fen AS sales_fen, 0 AS refunds_fen, \
         0 AS refunds_count FROM payments \
         UNION ALL SELECT merchant_id, {}, 0, amount_fen, 1 FROM refunds WHERE status IN {live} \
         ) AS events GROUP BY merchant_id, day_start_us",
        day("captured_at_us"),
        day("created_at_us"),
        live = *LIVE_REFUND_STATUSES
    )
}

/// The statements of [`Conn::rebuild_merchant_days`], for a loader on a connection of its own.
pub fn rebuild_statements() -> [String; 2] {
    [
        "DELETE FROM merchant_days".to_string(),
        format!("INSERT INTO merchant_days ({COLUMNS}) {}", computed()),
    ]
}

type DayRow = (String, i64, i64, i64, i64);

fn from_row(
    (merchant_id, day_start_us, sales_fen, refunds_fen, refunds_count): DayRow,
) -> (DayKey, DaySums) {
    (
        DayKey {
            merchant_id,
            day_start_us,
        },
        DaySums {
            sales_fen,
            refunds_fen,
            refunds_count,
        },
    )
}

impl Conn<'_> {
    /// The totals of these merchant days; a day with nothing yet is absent.
    pub async fn merchant_days(
        &mut self,
        keys: &[DayKey],
    ) -> StoreResult<HashMap<DayKey, DaySums>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let select =
            format!("SELECT {COLUMNS} FROM merchant_days WHERE (merchant_id, day_start_us) IN");
        let rows: Vec<DayRow> = match self {
            Conn::Postgres(c) => {
                let sql = format!("{select} (SELECT * FROM UNNEST($1::text[], $2::bigint[]))");
                sqlx::query_as::<_, DayRow>(AssertSqlSafe(sql))
                    .bind(
                        keys.iter()
                            .map(|k| k.merchant_id.clone())
                            .collect::<Vec<_>>(),
                    )
                    .bind(keys.iter().map(|k| k.day_start_us).collect::<Vec<_>>())
                    .fetch_all(&mut **c)
                    .await?
            }
            Conn::Sqlite(c) => {
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(sqlite_chunk(2)) {
                    let sql = format!("{select} (VALUES {})", sqlite_values(chunk.len(), 2));
                    let mut query = sqlx::query_as::<_, DayRow>(AssertSqlSafe(sql));
                    for k in chunk {
                        query = query.bind(k.merchant_id.clone()).bind(k.day_start_us);
                    }
                    out.extend(query.fetch_all(&mut **c).await?);
                }
                out
            }
        };
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// One merchant day's totals (zero before its first event).
    pub async fn merchant_day(&mut self, key: &DayKey) -> StoreResult<DaySums> {
        let found: Option<(i64, i64, i64)> = on_conn!(self, |c| sqlx::query_as(MERCHANT_DAY)
            .bind(&key.merchant_id)
            .bind(key.day_start_us)
            .fetch_optional(&mut **c)
            .await)?;
        Ok(found.map_or_else(
            DaySums::default,
            |(sales_fen, refunds_fen, refunds_count)| DaySums {
                sales_fen,
                refunds_fen,
                refunds_count,
            },
        ))
    }

    /// Adds these changes to the merchant days' totals, one multi-row upsert (the keys in
    /// order). Call it holding the balance lock of every merchant named.
    pub async fn add_to_merchant_days(
        &mut self,
        changes: &BTreeMap<DayKey, DaySums>,
    ) -> StoreResult<()> {
        let changes: Vec<(&DayKey, &DaySums)> = changes
            .iter()
            .filter(|(_, sums)| **sums != DaySums::default())
            .collect();
        if let [(key, sums)] = changes[..] {
            on_conn!(self, |c| sqlx::query(MERCHANT_DAY_ADD)
                .bind(&key.merchant_id)
                .bind(key.day_start_us)
                .bind(sums.sales_fen)
                .bind(sums.refunds_fen)
                .bind(sums.refunds_count)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))?;
            return Ok(());
        }
        if changes.is_empty() {
            return Ok(());
        }
        let cols = [
            Col::Text(changes.iter().map(|(k, _)| k.merchant_id.clone()).collect()),
            Col::Int(changes.iter().map(|(k, _)| k.day_start_us).collect()),
            Col::Int(changes.iter().map(|(_, s)| s.sales_fen).collect()),
            Col::Int(changes.iter().map(|(_, s)| s.refunds_fen).collect()),
            Col::Int(changes.iter().map(|(_, s)| s.refunds_count).collect()),
        ];
        let names: Vec<&str> = COLUMNS.split(", ").collect();
        insert_rows(
            self,
            &format!("INSERT INTO merchant_days ({COLUMNS})"),
            &names,
            &cols,
            " ON CONFLICT (merchant_id, day_start_us) DO UPDATE SET \
             sales_fen = merchant_days.sales_fen + excluded.sales_fen, \
             refunds_fen = merchant_days.refunds_fen + excluded.refunds_fen, \
             refunds_count = merchant_days.refunds_count + excluded.refunds_count",
        )
        .await?;
        Ok(())
    }

    /// Writes every merchant day's totals afresh from the payments and refunds: for loaders
    /// that insert rows in bulk without the engine (the benchmark's).
    pub async fn rebuild_merchant_days(&mut self) -> StoreResult<()> {
        for statement in rebuild_statements() {
            on_conn!(self, |c| sqlx::query(AssertSqlSafe(statement.clone()))
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// The merchant days whose stored totals differ from what the payments and refunds make
    /// (a day missing on either side counts), at most `limit`, in order.
    pub async fn merchant_days_differing(&mut self, limit: i64) -> StoreResult<Vec<DayKey>> {
        let sql = format!(
            "SELECT merchant_id, day_start_us FROM ( \
             SELECT COALESCE(s.merchant_id, c.merchant_id) AS merchant_id, \
             COALESCE(s.day_start_us, c.day_start_us) AS day_start_us FROM merchant_days s \
             FULL OUTER JOIN ({}) c ON c.merchant_id = s.merchant_id AND c.day_start_us = s.day_start_us \
             WHERE s.merchant_id IS NULL AND (c.sales_fen <> 0 OR c.refunds_count <> 0) \
             OR c.merchant_id IS NULL AND (s.sales_fen <> 0 OR s.refunds_fen <> 0 OR s.refunds_count <> 0) \
             OR s.sales_fen <> c.sales_fen OR s.refunds_fen <> c.refunds_fen \
             OR s.refunds_count <> c.refunds_count \
             ) AS differing ORDER BY merchant_id, day_start_us LIMIT $1",
            computed()
        );
        let rows: Vec<(String, i64)> = on_conn!(self, |c| sqlx::query_as::<_, (String, i64)>(
            AssertSqlSafe(sql.clone())
        )
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(merchant_id, day_start_us)| DayKey {
                merchant_id,
                day_start_us,
            })
            .collect())
    }
}
