//! The consumer lookup on both backends: it reads an index, wrong facts lock a refund for
//! everyone (stored, so another engine on the same database sees the lock) until the
//! window ends, and the consumer's view carries no reviewer's note or review reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_engine::Db;
use yuanlu_engine::Engine;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::cases::CaseError;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::public::{
    PUBLIC_LOOKUP_FAILURES_MAX, PUBLIC_LOOKUP_WINDOW_SECONDS, RefundFacts,
};
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_store::queries_notify::PUBLIC_LOOKUP_BY_NO_SQL;
use yuanlu_web::api::bodies;

use crate::common::Harness;

/// The plan of the store's lookup SQL, one line per node.
async fn lookup_plan(h: &Harness) -> String {
    let with_values = PUBLIC_LOOKUP_BY_NO_SQL
        .replace("$1", "'R-1'")
        .replace("$2", "'%0403'")
        .replace("$3", "2");
    match &h.engine.db {
        Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {with_values}");
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
        }
        Db::Postgres(pool) => {
            // With a tiny table the planner rightly prefers a scan; forbid it to see
            // whether the index can serve the query at all.
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut *conn)
                .await
                .unwrap();
            let sql = format!("EXPLAIN {with_values}");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            sqlx::query("RESET enable_seqscan")
                .execute(&mut *conn)
                .await
                .unwrap();
            rows.join("\n")
        }
    }
}

contract!(the_lookup_by_receipt_number_reads_its_index, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "phone": "13812340403" }),
        )
        .await;
    h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "R-1" })).await;
    // More sales than one: with statistics saying `payments` holds a single row, SQLite
    // rightly scans it (a connection opened after ANALYZE reads them, an older one does not).
    // And more refunds than one: over a single refund, PostgreSQL's walk of the primary key
    // in id order (the ORDER BY) costs the same as the index, and either may be chosen.
    for n in 0..40 {
        let sale = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 500 }))
            .await;
        if n < 10 {
            h.refund(&shop, json!({ "payment_id": sale.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": format!("R-other-{n}") })).await;
        }
    }
    h.execute("ANALYZE").await;
    let plan = lookup_plan(&h).await;
    assert!(
        plan.contains("refunds_by_merchant_refund_no"),
        "the lookup does not use refunds_by_merchant_refund_no:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(
        !plan.lines().any(|l| l.trim_start().starts_with("SCAN")),
        "{plan}"
    );
});

/// A shop, a payment with a phone and a reference, and a refund numbered `no`.
async fn refund_with_facts(h: &Harness, no: &str) -> (String, String) {
    let shop = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "debit_card", "amount": 10_000, "phone": "13812340403",
                    "voucher": { "rrn": "123456789012" },
                    "payer": { "bank": "ICBC", "card_last4": "0403" } }),
        )
        .await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": no })).await;
    (refund.id, "123456789012".to_string())
}

fn locked_for(result: Result<String, CaseError>) -> u64 {
    match result {
        Err(CaseError::Locked {
            retry_after_seconds,
        }) => retry_after_seconds,
        other => panic!("expected the lookup to be locked, got {other:?}"),
    }
}

contract!(
    wrong_references_lock_the_refund_for_everyone_until_the_window_ends,
    |h| {
        let (refund_id, reference) = refund_with_facts(&h, "L-1").await;
        let by_id = |reference: &str| RefundFacts::ById {
            refund_id: refund_id.clone(),
            reference: reference.to_string(),
        };
        assert_eq!(
            h.engine
                .public_find_refund(&by_id(&reference))
                .await
                .unwrap(),
            refund_id
        );
        for n in 0..PUBLIC_LOOKUP_FAILURES_MAX {
            let wrong = format!("99999999999{n}");
            let result = h.engine.public_find_refund(&by_id(&wrong)).await;
            assert!(
                matches!(&result, Err(CaseError::Engine(e)) if e.code() == "not_found"),
                "wrong reference {n}: {result:?}"
            );
        }
        // Locked, even for the right reference, with the rest of the hour to wait.
        let wait = locked_for(h.engine.public_find_refund(&by_id(&reference)).await);
        assert!(
            (1..=PUBLIC_LOOKUP_WINDOW_SECONDS as u64).contains(&wait),
            "{wait}"
        );
        // Another server on the same database (a restart, too) sees the same lock.
        let other = Engine::new(h.engine.db.clone(), h.engine.clock.clone());
        locked_for(other.public_find_refund(&by_id(&reference)).await);
        // The lock covers the consumer's other doors to the refund.
        let feedback = serde_json::from_value::<bodies::GiveFeedback>(
            json!({ "rating": 5, "reference": reference }),
        )
        .unwrap()
        .into();
        assert!(matches!(
            h.engine.public_feedback(&refund_id, feedback).await,
            Err(CaseError::Locked { .. })
        ));
        // Once the window has passed, the right facts answer again.
        h.clock
            .advance(chrono::Duration::seconds(PUBLIC_LOOKUP_WINDOW_SECONDS));
        assert_eq!(
            h.engine
                .public_find_refund(&by_id(&reference))
                .await
                .unwrap(),
            refund_id
        );
        // And a new window counts from zero.
        let wrong = h.engine.public_find_refund(&by_id("000000000000")).await;
        assert!(matches!(wrong, Err(CaseError::Engine(_))), "{wrong:?}");
        assert_eq!(
            h.engine
                .public_find_refund(&by_id(&reference))
                .await
                .unwrap(),
            refund_id
        );
    }
);

contract!(
    wrong_phone_digits_lock_the_refund_looked_up_by_number,
    |h| {
        let (refund_id, _) = refund_with_facts(&h, "L-2").await;
        let by_number = |digits: &str| RefundFacts::ByNumber {
            merchant_refund_no: "L-2".to_string(),
            phone_last4: digits.to_string(),
        };
        // Another refund with its own number is not touched by guesses at L-2.
        let (bystander, bystander_reference) = refund_with_facts(&h, "L-3").await;
        for n in 0..PUBLIC_LOOKUP_FAILURES_MAX {
            let result = h
                .engine
                .public_find_refund(&by_number(&format!("111{n}")))
                .await;
            assert!(result.is_err(), "{result:?}");
            assert!(
                !matches!(result, Err(CaseError::Locked { .. })),
                "locked early at {n}"
            );
        }
        locked_for(h.engine.public_find_refund(&by_number("0403")).await);
        let view = h.engine.public_refund(&by_number("0403")).await;
        assert!(matches!(view, Err(CaseError::Locked { .. })), "{view:?}");
        assert_eq!(
            h.engine
                .public_find_refund(&RefundFacts::ById {
                    refund_id: bystander.clone(),
                    reference: bystander_reference,
                })
                .await
                .unwrap(),
            bystander
        );
        h.clock
            .advance(chrono::Duration::seconds(PUBLIC_LOOKUP_WINDOW_SECONDS));
        assert_eq!(
            h.engine
                .public_find_refund(&by_number("0403"))
                .await
                .unwrap(),
            refund_id
        );
    }
);

contract!(
    the_consumer_view_shows_no_review_reason_or_reviewer_note,
    |h| {
        let shop = h.merchant().await;
        // A member payment's refund waits for review (`preauth_or_member`).
        let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "member": true, "phone": "13812340403" }),
        )
        .await;
        let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "RV-1", "note": "REQUEST-NOTE-7731" })).await;
        let note = "REVIEWER-NOTE-4242 customer is a known abuser";
        h.engine
            .approve_refund(
                &Principal::Admin,
                &refund.id,
                ReviewNote {
                    note: Some(note.into()),
                },
            )
            .await
            .unwrap();
        // Staff see both (so the test would notice if they were never written).
        let staff =
            serde_json::to_string(&h.engine.get_refund(&shop, &refund.id).await.unwrap()).unwrap();
        assert!(staff.contains("REVIEWER-NOTE-4242"), "{staff}");
        assert!(staff.contains("preauth_or_member"), "{staff}");

        let facts = RefundFacts::ByNumber {
            merchant_refund_no: "RV-1".into(),
            phone_last4: "0403".into(),
        };
        let public = serde_json::to_string(&h.engine.public_refund(&facts).await.unwrap()).unwrap();
        for secret in [
            "REVIEWER-NOTE-4242",
            "abuser",
            "REQUEST-NOTE-7731",
            "preauth_or_member",
            "large_amount",
            "late_refund",
            "refund_ratio",
            "consumer_request",
            "review_reasons",
            "acquirer:admin",
        ] {
            assert!(
                !public.contains(secret),
                "{secret:?} in the consumer's view: {public}"
            );
        }
        assert!(public.contains("refund.approved"), "{public}");
    }
);
