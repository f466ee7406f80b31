//! A PostgreSQL deadlock reaches the engine as `StoreError::Conflict`, which the refund
//! writer runs again (two servers sharing one database). Runs when
//! `YUANLU_TEST_DATABASE_URL` names a database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use yuanlu_store::{Db, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_deadlock_is_a_conflict_to_run_again() {
    let Some(url) =
        yuanlu_testkit::postgres_url("a_postgresql_deadlock_is_a_conflict_to_run_again")
    else {
        return;
    };
    let db = Db::open_postgres(&url, None).await.unwrap();
    let Db::Postgres(pool) = &db else {
        panic!("a PostgreSQL URL opens PostgreSQL")
    };
    // Two transactions each hold one advisory lock and then ask for the other's.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let mut tasks = Vec::new();
    for (first, second) in [(771_001_i64, 771_002_i64), (771_002, 771_001)] {
        let (pool, barrier) = (pool.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(first)
                .execute(&mut *tx)
                .await
                .unwrap();
            barrier.wait().await;
            match sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(second)
                .execute(&mut *tx)
                .await
            {
                Ok(_) => {
                    tx.commit().await.unwrap();
                    Ok(())
                }
                Err(error) => {
                    // Releases this side's lock so the other one goes on.
                    tx.rollback().await.unwrap();
                    Err(StoreError::from(error))
                }
            }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::Conflict(_))))
        .count();
    let done = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!((conflicts, done), (1, 1), "{outcomes:?}");
    db.close().await;
}
