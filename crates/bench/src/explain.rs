//! The query plans of the create path's reads and keyed writes, on the baseline's database
//! after its run (so the tables hold the run's rows and the planner its statistics): each
//! must find its rows through an index, never by scanning a table.
//!
//! SQLite: `EXPLAIN QUERY PLAN`; PostgreSQL: `EXPLAIN` with the run's values bound. Each
//! statement has the `WHERE` clause and locking of the store's query
//! (`crates/store/src/queries*.rs`), which is what chooses the index; select lists are
//! shortened, and the payment's optional-merchant test is written as the create path binds
//! it. The inserts are left out (they have no plan to choose).

use chrono::Utc;
use sqlx::{AssertSqlSafe, Row};
use yuanlu_domain::time::{shanghai_date, shanghai_day_start_us, to_micros};
use yuanlu_store::{Backend, Db, on_conn};

use super::baseline::Job;

/// One statement of the create path, with the values to plan it for.
struct Statement {
    what: &'static str,
    sql: String,
    binds: Vec<Value>,
}

#[derive(Clone)]
enum Value {
    Text(String),
    Int(i64),
}

fn statements(backend: Backend, job: &Job) -> Vec<Statement> {
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let now = Utc::now();
    let day_start_us = shanghai_day_start_us(to_micros(now));
    let today = shanghai_date(now).format("%Y-%m-%d").to_string();
    let text = |v: &str| Value::Text(v.to_string());
    let merchant = text(&job.merchant_id);
    let payment = text(&job.payment_id);
    vec![
        Statement {
            what: "API key",
            sql: "SELECT key_hash, id, merchant_id, role FROM api_keys WHERE key_hash = $1".into(),
            binds: vec![text(&job.key_hash)],
        },
        Statement {
            what: "the payment, locked",
            sql: format!("SELECT id, amount_fen FROM payments WHERE id = $1 AND merchant_id = $2{lock}"),
            binds: vec![payment.clone(), merchant.clone()],
        },
        Statement {
            what: "the refund number",
            sql: "SELECT id FROM refunds WHERE merchant_id = $1 AND merchant_refund_no = $2".into(),
            binds: vec![merchant.clone(), text("bench-1")],
        },
        Statement {
            what: "the merchant",
            sql: "SELECT id, settings FROM merchants WHERE id = $1".into(),
            binds: vec![merchant.clone()],
        },
        Statement {
            what: "the day's sales and refunds counting against it",
            sql: yuanlu_store::sql::MERCHANT_DAY.into(),
            binds: vec![merchant.clone(), Value::Int(day_start_us)],
        },
        Statement {
            what: "the capture day settled?",
            sql: "SELECT COUNT(*) FROM settlement_runs WHERE business_date = $1".into(),
            binds: vec![Value::Text(today)],
        },
        Statement {
            what: "the balance row, locked",
            sql: format!(
                "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = $1{lock}"
            ),
            binds: vec![merchant.clone()],
        },
        Statement {
            what: "the balance update",
            sql: "UPDATE merchant_balances SET unsettled_fen = $2, carried_fen = $3 WHERE merchant_id = $1"
                .into(),
            binds: vec![merchant.clone(), Value::Int(0), Value::Int(0)],
        },
        Statement {
            what: "the day's totals, the refund added",
            sql: yuanlu_store::sql::MERCHANT_DAY_ADD.into(),
            binds: vec![
                merchant.clone(),
                Value::Int(day_start_us),
                Value::Int(0),
                Value::Int(1),
                Value::Int(1),
            ],
        },
        Statement {
            what: "the payment's counters",
            sql: "UPDATE payments SET amount_in_flight_fen = $2 WHERE id = $1".into(),
            binds: vec![payment, Value::Int(0)],
        },
        Statement {
            what: "the audit head, locked",
            sql: format!("SELECT chain, seq, hash FROM audit_heads WHERE chain = $1{lock}"),
            binds: vec![merchant.clone()],
        },
        Statement {
            what: "the audit head update",
            sql: "UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain = $1".into(),
            binds: vec![merchant.clone(), Value::Int(0), text("")],
        },
        Statement {
            what: "the webhook",
            sql: "SELECT url FROM merchant_webhooks WHERE merchant_id = $1".into(),
            binds: vec![merchant],
        },
    ]
}

/// A Markdown section: each statement and its plan. `EXPLAIN` of an `UPDATE` on PostgreSQL
/// only plans it (no `ANALYZE`), so nothing is written.
pub async fn section(db: &Db, job: &Job, heading: &str) -> Result<String, String> {
    let backend = db.backend();
    let mut pooled = db
        .acquire()
        .await
        .map_err(|e| format!("explain: cannot connect: {e}"))?;
    let mut conn = pooled.conn();
    let mut out = format!(
        "### {heading}: query plans of the create path\n\n{}\n\n```text\n",
        match backend {
            Backend::Sqlite => "`EXPLAIN QUERY PLAN` on the baseline's database after its run:",
            Backend::Postgres =>
                "`EXPLAIN` on the baseline's schema after its run (analyzed), with the run's values bound:",
        }
    );
    for statement in statements(backend, job) {
        let explain = match backend {
            Backend::Sqlite => format!("EXPLAIN QUERY PLAN {}", statement.sql),
            Backend::Postgres => format!("EXPLAIN {}", statement.sql),
        };
        let lines: Vec<String> = on_conn!(&mut conn, |c| {
            let mut query = sqlx::query(AssertSqlSafe(explain.clone()));
            for value in &statement.binds {
                query = match value {
                    Value::Text(v) => query.bind(v.clone()),
                    Value::Int(v) => query.bind(*v),
                };
            }
            let rows = query
                .fetch_all(&mut **c)
                .await
                .map_err(|e| format!("explain {}: {e}", statement.what))?;
            // SQLite: (id, parent, notused, detail); PostgreSQL: one text column per line.
            rows.iter()
                .map(|row| match backend {
                    Backend::Sqlite => row.try_get::<String, _>(3),
                    Backend::Postgres => row.try_get::<String, _>(0),
                })
                .collect::<Result<Vec<String>, _>>()
                .map_err(|e| format!("explain {}: {e}", statement.what))
        })?;
        out.push_str(&format!(
            "-- {}\n{}\n",
            statement.what,
            one_line(&statement.sql)
        ));
        for line in lines {
            out.push_str(&format!("    {line}\n"));
        }
        out.push('\n');
    }
    out.push_str("```\n");
    Ok(out)
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
