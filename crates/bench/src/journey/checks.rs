//! What the database says after a dispatch run (the journey's and the two processes'
//! checks).

use super::*;

/// What the database says after a run: every created refund once, the sum, the sends,
/// the ledger and the audit chains.
#[derive(Debug, Default, Clone)]
pub(crate) struct Checked {
    pub statuses: BTreeMap<String, i64>,
    /// `refund.sent` audit entries per refund, over the refunds (1.0: each sent once).
    pub sends: i64,
    /// Refunds with more than one `refund.sent` entry.
    pub sent_twice: i64,
    pub succeeded_twice: i64,
    pub ledger_balanced: bool,
    pub audit_ok: bool,
    pub audit_entries: i64,
    pub errors: Vec<String>,
}

/// Checks the database against the refunds the bench was answered `201` for (`ids`).
pub(crate) async fn check(db: &Db, ids: &[String], dispatched: bool) -> Result<Checked, String> {
    let mut checked = Checked {
        statuses: statuses(db).await?,
        ..Checked::default()
    };
    let stored: i64 = checked.statuses.values().sum();
    if stored != ids.len() as i64 {
        checked.errors.push(format!(
            "{} refunds answered 201, {stored} stored",
            ids.len()
        ));
    }
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() != ids.len() {
        checked
            .errors
            .push(format!("{} ids answered twice", ids.len() - unique.len()));
    }
    let sum_sql = "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT), CAST(COUNT(DISTINCT id) AS BIGINT) FROM refunds";
    let per_subject = |action: &str| {
        format!(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM (SELECT subject_id, COUNT(*) AS n FROM audit_log WHERE action = '{action}' GROUP BY subject_id) AS per"
        )
    };
    let (sent_sql, succeeded_sql) = (per_subject("refund.sent"), per_subject("refund.succeeded"));
    let ((sum, distinct), (sends, sent_twice), (_, succeeded_twice)): (
        (i64, i64),
        (i64, i64),
        (i64, i64),
    ) = match db {
        Db::Sqlite(pool) => (
            sqlx::query_as(sum_sql).fetch_one(pool).await,
            sqlx::query_as(sqlx::AssertSqlSafe(sent_sql))
                .fetch_one(pool)
                .await,
            sqlx::query_as(sqlx::AssertSqlSafe(succeeded_sql))
                .fetch_one(pool)
                .await,
        ),
        Db::Postgres(pool) => (
            sqlx::query_as(sum_sql).fetch_one(pool).await,
            sqlx::query_as(sqlx::AssertSqlSafe(sent_sql))
                .fetch_one(pool)
                .await,
            sqlx::query_as(sqlx::AssertSqlSafe(succeeded_sql))
                .fetch_one(pool)
                .await,
        ),
    }
    .pipe3()
    .map_err(|e| format!("check the refunds: {e}"))?;
    if sum != ids.len() as i64 * REFUND_FEN || distinct != ids.len() as i64 {
        checked.errors.push(format!(
            "refunds sum {sum} fen over {distinct} ids; expected {} over {}",
            ids.len() as i64 * REFUND_FEN,
            ids.len()
        ));
    }
    checked.sends = sends;
    checked.sent_twice = sent_twice;
    checked.succeeded_twice = succeeded_twice;
    if dispatched {
        if sent_twice > 0 || succeeded_twice > 0 {
            checked.errors.push(format!(
                "{sent_twice} refunds sent twice, {succeeded_twice} succeeded twice"
            ));
        }
        if in_flight(&checked.statuses) > 0 {
            checked
                .errors
                .push(format!("refunds left in dispatch: {:?}", checked.statuses));
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::new(db.clone(), clock);
    let ledger = engine
        .check_ledger()
        .await
        .map_err(|e| format!("ledger check: {e}"))?;
    checked.ledger_balanced = ledger.balanced;
    if !ledger.balanced {
        checked
            .errors
            .push(format!("the ledger does not balance: {ledger:?}"));
    }
    let audit = engine
        .verify_audit()
        .await
        .map_err(|e| format!("audit verification: {e}"))?;
    checked.audit_ok = audit.ok;
    checked.audit_entries = audit.entries;
    if !audit.ok {
        checked.errors.push(format!(
            "the audit chain is broken at {:?}",
            audit.first_bad
        ));
    }
    Ok(checked)
}

/// Three results into one.
trait Pipe3<A, B, C, E> {
    fn pipe3(self) -> Result<(A, B, C), E>;
}

impl<A, B, C, E> Pipe3<A, B, C, E> for (Result<A, E>, Result<B, E>, Result<C, E>) {
    fn pipe3(self) -> Result<(A, B, C), E> {
        Ok((self.0?, self.1?, self.2?))
    }
}

/// The statuses as `succeeded 9990, abnormal 10`.
pub(crate) fn describe(statuses: &BTreeMap<String, i64>) -> String {
    let mut parts: Vec<(i64, &String)> = statuses.iter().map(|(s, n)| (*n, s)).collect();
    parts.sort_by(|a, b| b.cmp(a));
    parts
        .iter()
        .map(|(n, s)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
