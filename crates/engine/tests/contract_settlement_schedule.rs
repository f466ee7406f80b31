//! Settlement on schedule (issue 16) on both backends: two engines with their own
//! connection pools on ONE database (as two `yuanlu serve` processes would be) each run the
//! scheduler; the simulated clock is moved, and every missed business date is settled
//! exactly once, in date order per merchant, and the next date when its time comes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use serde_json::{Value, json};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::settlement_schedule::{SettleSchedule, run_scheduler};
use yuanlu_engine::{Db, Engine};

use crate::common::Harness;

/// A second pool on the harness's database: its own connections, like another process.
async fn second_pool(db: &Db) -> Db {
    match db {
        Db::Sqlite(pool) => {
            let options = (*pool.connect_options()).clone();
            Db::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .unwrap(),
            )
        }
        Db::Postgres(pool) => {
            let options = (*pool.connect_options()).clone();
            Db::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .unwrap(),
            )
        }
    }
}

async fn rows(h: &Harness, sql: &str) -> Vec<(String, String)> {
    match &h.engine.db {
        Db::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

async fn count(h: &Harness, sql: &str) -> i64 {
    h.fetch_text(&format!("SELECT CAST(({sql}) AS TEXT)"))
        .await
        .parse()
        .unwrap()
}

/// Polls the settled dates until `want` are all there (deadline 60 s); no fixed sleeps.
async fn wait_settled(h: &Harness, want: &[&str]) {
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        let settled: Vec<String> = rows(
            h,
            "SELECT business_date, business_date FROM settlement_runs ORDER BY 1",
        )
        .await
        .into_iter()
        .map(|(d, _)| d)
        .collect();
        if want.iter().all(|d| settled.iter().any(|s| s == d)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dates {want:?} not settled in time; settled: {settled:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

contract!(
    two_schedulers_settle_missed_dates_in_order_exactly_once,
    |h| {
        // Fri 2026-11-20 10:00 Shanghai: sales for two merchants; A carries debts forward.
        let a = h.merchant_with(json!({ "funding": "carry_forward" })).await;
        let b = h.merchant().await;
        let a_id = a.merchant_scope().unwrap().to_string();
        let b_id = b.merchant_scope().unwrap().to_string();
        let sale = h
            .payment(&a, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        h.payment(&b, json!({ "channel": "alipay", "amount": 20_000 }))
            .await;
        // Sat: A refunds half of Friday's sale (a negative day: it is carried), B sells.
        h.clock.advance(Duration::days(1));
        let refund = h
            .refund(
                &a,
                json!({ "payment_id": sale.id, "amount": 5_000, "reason": "customer_cancel",
                    "merchant_refund_no": "A-R1" }),
            )
            .await;
        // Half of the day's only sale is a high refund ratio: the acquirer approves it.
        let refund = if refund.status.id() == "pending_review" {
            h.engine
                .approve_refund(
                    &yuanlu_engine::auth::Principal::Admin,
                    &refund.id,
                    yuanlu_engine::refunds::ReviewNote {
                        note: Some("ok".into()),
                    },
                )
                .await
                .unwrap()
        } else {
            refund
        };
        assert_eq!(refund.status.id(), "queued", "{refund:?}");
        h.payment(&b, json!({ "channel": "wechat", "amount": 5_000 }))
            .await;
        // Sun: A sells; the later payout pays the carried debt.
        h.clock.advance(Duration::days(1));
        h.payment(&a, json!({ "channel": "wechat", "amount": 30_000 }))
            .await;
        // Tue 2026-11-24 10:00: three dates were missed (no server ran), Monday too (empty).
        h.clock.advance(Duration::days(2));

        let clock: Arc<dyn Clock> = h.clock.clone();
        let other = Engine::new(second_pool(&h.engine.db).await, clock);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let schedule = SettleSchedule::default();
        let poll = StdDuration::from_millis(10);
        let first_task = tokio::spawn(run_scheduler(
            h.engine.clone(),
            schedule,
            poll,
            shutdown.clone(),
        ));
        let second_task = tokio::spawn(run_scheduler(other.clone(), schedule, poll, shutdown));
        wait_settled(&h, &["2026-11-20", "2026-11-21", "2026-11-22"]).await;

        // Exactly once: one statement per merchant and date, one audit entry and at most
        // one payout posting per statement.
        let statements = rows(
            &h,
            "SELECT merchant_id, business_date FROM settlement_statements ORDER BY merchant_id, business_date",
        )
        .await;
        let mut expected = vec![
            (a_id.clone(), "2026-11-20".to_string()),
            (a_id.clone(), "2026-11-21".to_string()),
            (a_id.clone(), "2026-11-22".to_string()),
            (b_id.clone(), "2026-11-20".to_string()),
            (b_id.clone(), "2026-11-21".to_string()),
        ];
        expected.sort();
        assert_eq!(statements, expected);
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'settlement.statement'"
            )
            .await,
            5,
            "one audit entry per statement"
        );
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM ledger_postings WHERE event = 'settlement_payout' \
                 GROUP BY reference ORDER BY COUNT(*) DESC LIMIT 1"
            )
            .await,
            1,
            "no statement paid out twice"
        );
        // In date order per merchant: the audit chain's order of statements.
        for merchant in [&a_id, &b_id] {
            let dates: Vec<String> = rows(
                &h,
                &format!(
                    "SELECT data, data FROM audit_log WHERE chain = '{merchant}' \
                     AND action = 'settlement.statement' ORDER BY seq"
                ),
            )
            .await
            .into_iter()
            .map(|(data, _)| {
                let value: Value = serde_json::from_str(&data).unwrap();
                value["business_date"].as_str().unwrap().to_string()
            })
            .collect();
            let mut sorted = dates.clone();
            sorted.sort();
            assert_eq!(dates, sorted, "{merchant} settled out of order");
        }
        // A's Saturday carried the refund; Sunday's payout paid that debt first.
        let sunday = h
            .engine
            .list_statements(
                &yuanlu_engine::auth::Principal::Admin,
                chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
                Some(&a_id),
            )
            .await
            .unwrap();
        assert_eq!(sunday.len(), 1);
        assert!(
            sunday[0].statement.opening_carried_fen < 0,
            "Sunday opens with Saturday's carried debt: {:?}",
            sunday[0].statement
        );
        assert_eq!(sunday[0].closing_carried, 0);
        assert!(h.engine.check_ledger().await.unwrap().balanced);

        // At 02:00 on Wednesday, Tuesday is due and settled.
        h.payment(&b, json!({ "channel": "wechat", "amount": 7_000 }))
            .await;
        let now = h.clock.now();
        let wednesday_2am = chrono::DateTime::parse_from_rfc3339("2026-11-25T02:00:00+08:00")
            .unwrap()
            .with_timezone(&chrono::Utc);
        h.clock.advance(wednesday_2am - now);
        wait_settled(&h, &["2026-11-24"]).await;
        // B's sale, and the payouts of the catch-up (posted on Tuesday, when it ran).
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM settlement_statements WHERE business_date = '2026-11-24'"
            )
            .await,
            2
        );
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'settlement.statement'"
            )
            .await,
            7
        );
        assert_eq!(
            count(
                &h,
                "SELECT COUNT(*) FROM settlement_statements WHERE business_date = '2026-11-23'"
            )
            .await,
            0,
            "an empty Monday has no statements"
        );
        stop.send(true).unwrap();
        first_task.await.unwrap();
        second_task.await.unwrap();
        other.db.close().await;
    }
);
