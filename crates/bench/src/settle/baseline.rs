//! The baseline: the bare database settling the day in one transaction.

use super::*;

pub(super) struct BaselineRun {
    pub(super) took: Duration,
    pub(super) net_fen: i64,
    pub(super) statement_bytes: i64,
}

/// A posting's effect on what the merchant is credited, as settlement counts it.
pub(super) const NET_OF_POSTING: &str = "CASE p.event \
     WHEN 'payment_captured' THEN p.amount_fen - p.fee_fen \
     WHEN 'refund_released' THEN p.amount_fen - p.fee_fen \
     WHEN 'void_completed' THEN p.fee_fen - p.amount_fen \
     WHEN 'refund_queued' THEN p.fee_fen - p.amount_fen \
     ELSE 0 END";
pub(super) const SETTLED_EVENTS: &str =
    "p.event IN ('payment_captured', 'void_completed', 'refund_queued', 'refund_released')";

/// The statements of the day in one `INSERT … SELECT`: $1 business date, $2 payout date,
/// $3 now (µs).
pub(super) fn baseline_statements_sql(backend: Backend) -> String {
    let sales = "CASE WHEN p.event = 'payment_captured' THEN 1 ELSE 0 END";
    let sales_fen = "CASE WHEN p.event = 'payment_captured' THEN p.amount_fen ELSE 0 END";
    let fees_fen = "CASE WHEN p.event = 'payment_captured' THEN p.fee_fen ELSE 0 END";
    let net = NET_OF_POSTING;
    let (object, array, greatest, least, doc) = match backend {
        Backend::Sqlite => ("json_object", "json_group_array", "MAX", "MIN", ""),
        Backend::Postgres => (
            "json_build_object",
            "json_agg",
            "GREATEST",
            "LEAST",
            "CAST(",
        ),
    };
    let doc_end = if doc.is_empty() { "" } else { " AS TEXT)" };
    let int = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "CAST(",
    };
    let int_end = if int.is_empty() { "" } else { " AS BIGINT)" };
    format!(
        "INSERT INTO settlement_statements (id, merchant_id, business_date, payout_date, payout_fen, closing_carried_fen, statement, created_at_us) \
         SELECT 'stl_base_' || b.merchant_id, b.merchant_id, CAST($1 AS TEXT), CAST($2 AS TEXT), \
           {int}{greatest}(b.carried_fen + SUM({net}), 0){int_end}, {int}{least}(b.carried_fen + SUM({net}), 0){int_end}, \
           {doc}{object}('merchant_id', b.merchant_id, 'business_date', CAST($1 AS TEXT), 'payout_date', CAST($2 AS TEXT), \
             'opening_carried_fen', b.carried_fen, 'sales_count', SUM({sales}), 'sales_fen', SUM({sales_fen}), \
             'fees_fen', SUM({fees_fen}), 'net_fen', SUM({net}), \
             'lines', {array}({object}('kind', p.event, 'reference', p.reference, 'channel', p.channel, \
               'amount_fen', p.amount_fen, 'fee_fen', p.fee_fen, 'net_fen', {net}))){doc_end}, \
           $3 \
         FROM ledger_postings p JOIN merchant_balances b ON b.merchant_id = p.merchant_id \
         WHERE p.business_date = $1 AND {SETTLED_EVENTS} \
         GROUP BY b.merchant_id"
    )
}

/// Writes the loaded or undone data home before a timed phase, so that neither side pays
/// for the other's writes: SQLite checkpoints its WAL into the database file, PostgreSQL
/// checkpoints (needs a superuser or `pg_checkpoint`; skipped when refused).
pub(super) async fn quiesce(db: &Db) -> Result<(), String> {
    match db.backend() {
        Backend::Sqlite => execute(db, "PRAGMA wal_checkpoint(TRUNCATE)").await,
        Backend::Postgres => {
            let _ = execute(db, "CHECKPOINT").await;
            Ok(())
        }
    }
}

pub(super) async fn execute(db: &Db, sql: &str) -> Result<(), String> {
    let result = match db {
        Db::Sqlite(pool) => sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Postgres(pool) => sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(pool)
            .await
            .map(|_| ()),
    };
    result.map_err(|e| format!("{sql}: {e}"))
}

/// Runs `sql` with text and integer parameters in the caller's transaction.
pub(super) async fn execute_in(
    conn: &mut Conn<'_>,
    sql: &str,
    params: &[Value],
) -> Result<u64, String> {
    macro_rules! run {
        ($c:expr) => {{
            let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
            for value in params {
                query = match value {
                    Value::Text(s) => query.bind(s.as_str()),
                    Value::Null => query.bind(None::<&str>),
                    Value::Int(i) => query.bind(*i),
                    Value::Bool(b) => query.bind(*b),
                };
            }
            query.execute(&mut **$c).await.map(|r| r.rows_affected())
        }};
    }
    let result = match conn {
        Conn::Sqlite(c) => run!(c),
        Conn::Postgres(c) => run!(c),
    };
    result.map_err(|e| format!("baseline: {e}\n{sql}"))
}

/// Statements of the date: count, Σ (payout + closing carried) = Σ (opening + net), bytes.
pub(super) async fn statement_totals(db: &Db, date: NaiveDate) -> Result<(i64, i64, i64), String> {
    let date = date.format("%Y-%m-%d").to_string();
    let result = match db {
        Db::Sqlite(pool) => sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT COUNT(*), CAST(COALESCE(SUM(payout_fen + closing_carried_fen), 0) AS BIGINT), \
             CAST(COALESCE(SUM(LENGTH(CAST(statement AS BLOB))), 0) AS BIGINT) \
             FROM settlement_statements WHERE business_date = $1",
        )
        .bind(&date)
        .fetch_one(pool)
        .await,
        Db::Postgres(pool) => sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT COUNT(*), CAST(COALESCE(SUM(payout_fen + closing_carried_fen), 0) AS BIGINT), \
             CAST(COALESCE(SUM(OCTET_LENGTH(statement)), 0) AS BIGINT) \
             FROM settlement_statements WHERE business_date = $1",
        )
        .bind(&date)
        .fetch_one(pool)
        .await,
    };
    result.map_err(|e| format!("read the statements: {e}"))
}

/// The baseline's settlement of `date` at `now`, timed from BEGIN to COMMIT.
pub(super) async fn baseline(
    db: &Db,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<BaselineRun, String> {
    let day = date.format("%Y-%m-%d").to_string();
    let payout_day = yuanlu_domain::calendar::BusinessCalendar::embedded()
        .map(|c| c.next_business_day(date))
        .map_err(|e| format!("calendar: {e}"))?
        .format("%Y-%m-%d")
        .to_string();
    let today = shanghai_date(now).format("%Y-%m-%d").to_string();
    let now_us = to_micros(now);
    let statements_sql = baseline_statements_sql(db.backend());
    let started = Instant::now();
    let mut tx = db.begin().await.map_err(|e| format!("begin: {e}"))?;
    let mut conn = tx.conn();
    execute_in(
        &mut conn,
        &statements_sql,
        &[text(day.clone()), text(payout_day), Value::Int(now_us)],
    )
    .await?;
    execute_in(
        &mut conn,
        "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us) \
         SELECT 'pst_base_' || merchant_id, merchant_id, 'settlement_payout', id, NULL, NULL, payout_fen, 0, $2, $3 \
         FROM settlement_statements WHERE business_date = $1 AND payout_fen > 0",
        &[text(day.clone()), text(today), Value::Int(now_us)],
    )
    .await?;
    execute_in(
        &mut conn,
        "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) \
         SELECT 'pst_base_' || merchant_id, 0, merchant_id, 'merchant_unsettled:' || merchant_id, payout_fen \
         FROM settlement_statements WHERE business_date = $1 AND payout_fen > 0",
        &[text(day.clone())],
    )
    .await?;
    execute_in(
        &mut conn,
        "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) \
         SELECT 'pst_base_' || merchant_id, 1, merchant_id, 'merchant_payouts', -payout_fen \
         FROM settlement_statements WHERE business_date = $1 AND payout_fen > 0",
        &[text(day.clone())],
    )
    .await?;
    execute_in(
        &mut conn,
        "UPDATE merchant_balances SET unsettled_fen = unsettled_fen - (SELECT s.payout_fen FROM settlement_statements s \
           WHERE s.merchant_id = merchant_balances.merchant_id AND s.business_date = $1) \
         WHERE merchant_id IN (SELECT merchant_id FROM settlement_statements WHERE business_date = $1)",
        &[text(day.clone())],
    )
    .await?;
    execute_in(
        &mut conn,
        "INSERT INTO settlement_runs (business_date, ran_at_us) VALUES ($1, $2)",
        &[text(day), Value::Int(now_us)],
    )
    .await?;
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    let took = started.elapsed();
    let (_, net_fen, statement_bytes) = statement_totals(db, date).await?;
    Ok(BaselineRun {
        took,
        net_fen,
        statement_bytes,
    })
}

/// Removes the baseline's rows (and gives the payouts back), untimed.
pub(super) async fn undo_baseline(db: &Db, date: NaiveDate) -> Result<(), String> {
    let day = date.format("%Y-%m-%d").to_string();
    let mut tx = db.begin().await.map_err(|e| format!("begin: {e}"))?;
    let mut conn = tx.conn();
    let base_postings =
        "SELECT 'pst_base_' || merchant_id FROM settlement_statements WHERE business_date = $1";
    for sql in [
        "UPDATE merchant_balances SET unsettled_fen = unsettled_fen + (SELECT s.payout_fen FROM settlement_statements s \
           WHERE s.merchant_id = merchant_balances.merchant_id AND s.business_date = $1) \
         WHERE merchant_id IN (SELECT merchant_id FROM settlement_statements WHERE business_date = $1)"
            .to_string(),
        format!("DELETE FROM ledger_entries WHERE posting_id IN ({base_postings})"),
        format!("DELETE FROM ledger_postings WHERE id IN ({base_postings})"),
        "DELETE FROM settlement_statements WHERE business_date = $1".to_string(),
        "DELETE FROM settlement_runs WHERE business_date = $1".to_string(),
    ] {
        execute_in(&mut conn, &sql, &[text(day.clone())]).await?;
    }
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    if db.backend() == Backend::Postgres {
        execute(
            db,
            "VACUUM ANALYZE settlement_statements, settlement_runs, ledger_postings, ledger_entries, merchant_balances",
        )
        .await?;
    }
    Ok(())
}
