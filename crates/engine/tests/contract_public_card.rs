//! The consumer lookup by refund number and the card's last four digits, on both backends:
//! it finds the refund, reads the receipt-number index, refuses malformed digits, and wrong
//! card digits count against the refund like wrong phone digits (the same lock, shared by
//! both kinds of lookup).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_engine::Db;
use yuanlu_engine::cases::CaseError;
use yuanlu_engine::public::{PUBLIC_LOOKUP_FAILURES_MAX, RefundFacts};
use yuanlu_store::queries_pages::PUBLIC_LOOKUP_BY_NO_CARD_SQL;

use crate::common::Harness;

/// A card sale (card ending 0403, phone ending 8888) and its refund numbered `no`.
async fn card_refund(h: &Harness, no: &str) -> String {
    let shop = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "debit_card", "amount": 10_000, "phone": "13900008888",
                    "payer": { "bank": "ICBC", "card_last4": "0403" } }),
        )
        .await;
    h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": no }))
        .await
        .id
}

fn by_card(no: &str, last4: &str) -> RefundFacts {
    RefundFacts::ByCard {
        merchant_refund_no: no.into(),
        card_last4: last4.into(),
    }
}

fn by_phone(no: &str, last4: &str) -> RefundFacts {
    RefundFacts::ByNumber {
        merchant_refund_no: no.into(),
        phone_last4: last4.into(),
    }
}

fn code_of(result: Result<String, CaseError>) -> String {
    match result {
        Ok(id) => format!("ok {id}"),
        Err(CaseError::Engine(e)) => e.code().to_string(),
        Err(CaseError::Locked { .. }) => "locked".into(),
        Err(other) => format!("{other:?}"),
    }
}

contract!(the_card_digits_find_the_refund_and_only_them, |h| {
    let id = card_refund(&h, "C-1").await;
    assert_eq!(
        h.engine
            .public_find_refund(&by_card("C-1", "0403"))
            .await
            .unwrap(),
        id
    );
    // The phone digits still work; the card's digits are not the phone's.
    assert_eq!(
        h.engine
            .public_find_refund(&by_phone("C-1", "8888"))
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        code_of(h.engine.public_find_refund(&by_card("C-1", "8888")).await),
        "not_found"
    );
    // Another receipt number with the right digits is no refund at all.
    assert_eq!(
        code_of(h.engine.public_find_refund(&by_card("C-2", "0403")).await),
        "not_found"
    );
    for bad in ["403", "04a3", "04031", ""] {
        assert_eq!(
            code_of(h.engine.public_find_refund(&by_card("C-1", bad)).await),
            "validation_error",
            "{bad:?}"
        );
    }
    // The consumer's view comes back for the card digits too.
    let view = h
        .engine
        .public_refund(&by_card("C-1", "0403"))
        .await
        .unwrap();
    assert_eq!(view.id, id);
    assert_eq!(view.amount, 100);
});

contract!(
    wrong_card_digits_lock_the_refund_like_wrong_phone_digits,
    |h| {
        let id = card_refund(&h, "C-9").await;
        // One wrong phone and the rest wrong cards: they count together.
        assert_eq!(
            code_of(h.engine.public_find_refund(&by_phone("C-9", "0000")).await),
            "not_found"
        );
        for n in 1..PUBLIC_LOOKUP_FAILURES_MAX {
            let wrong = format!("{:04}", 1000 + n);
            assert_eq!(
                code_of(h.engine.public_find_refund(&by_card("C-9", &wrong)).await),
                "not_found",
                "wrong card {n}"
            );
        }
        // Locked for the right card and the right phone alike.
        assert_eq!(
            code_of(h.engine.public_find_refund(&by_card("C-9", "0403")).await),
            "locked"
        );
        assert_eq!(
            code_of(h.engine.public_find_refund(&by_phone("C-9", "8888")).await),
            "locked"
        );
        // Stored: the lock is the refund's row, which every server reads.
        let failures: i64 = match &h.engine.db {
            Db::Sqlite(pool) => sqlx::query_scalar(
                "SELECT failures FROM public_lookup_failures WHERE refund_id = $1",
            )
            .bind(&id)
            .fetch_one(pool)
            .await
            .unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar(
                "SELECT failures FROM public_lookup_failures WHERE refund_id = $1",
            )
            .bind(&id)
            .fetch_one(pool)
            .await
            .unwrap(),
        };
        assert_eq!(failures, PUBLIC_LOOKUP_FAILURES_MAX);
    }
);

contract!(the_lookup_by_card_reads_the_receipt_number_index, |h| {
    card_refund(&h, "R-1").await;
    let shop = h.merchant().await;
    // More refunds than one: over a single refund, PostgreSQL's walk of the primary key in
    // id order (the ORDER BY) costs the same as the index, and either may be chosen.
    for n in 0..40 {
        let sale = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 500 }))
            .await;
        if n < 10 {
            h.refund(&shop, json!({ "payment_id": sale.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": format!("R-other-{n}") })).await;
        }
    }
    h.execute("ANALYZE").await;
    let sql = PUBLIC_LOOKUP_BY_NO_CARD_SQL
        .replace("$1", "'R-1'")
        .replace("$2", "'%0403'")
        .replace("$3", "2");
    let plan = match &h.engine.db {
        Db::Sqlite(pool) => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut *conn)
                .await
                .unwrap();
            let rows: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            sqlx::query("RESET enable_seqscan")
                .execute(&mut *conn)
                .await
                .unwrap();
            rows.join("\n")
        }
    };
    assert!(plan.contains("refunds_by_merchant_refund_no"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(
        !plan.lines().any(|l| l.trim_start().starts_with("SCAN")),
        "{plan}"
    );
});

contract!(the_console_lists_merchants_to_the_admin_only, |h| {
    let a = h.merchant().await;
    let b = h.merchant().await;
    let listed = h
        .engine
        .list_merchants(&yuanlu_engine::auth::Principal::Admin, None, 50)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    let id_of = |p: &yuanlu_engine::auth::Principal| p.merchant_scope().unwrap().to_string();
    assert!(ids.contains(&id_of(&a).as_str()) && ids.contains(&id_of(&b).as_str()));
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "oldest first, by id");
    let after = h
        .engine
        .list_merchants(&yuanlu_engine::auth::Principal::Admin, Some(ids[0]), 50)
        .await
        .unwrap();
    assert_eq!(after.len(), ids.len() - 1);
    let refused = h.engine.list_merchants(&a, None, 50).await;
    assert!(matches!(refused, Err(e) if e.code() == "forbidden"));
});
