//! Group commit of refund creation: creates written in one transaction obey every rule as if
//! each ran alone, a refused create does not disturb the others, and a batch the database
//! breaks is rolled back whole and replayed one create at a time. Both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_engine::EngineResult;
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund};
use yuanlu_store::Backend;
use yuanlu_web::api::bodies;

fn create(payment_id: &str, amount: i64, no: &str) -> CreateRefund {
    serde_json::from_value::<bodies::CreateRefund>(json!({
        "payment_id": payment_id, "amount": amount, "reason": "customer_cancel",
        "merchant_refund_no": no,
    }))
    .unwrap()
    .into()
}

/// The creates `(payment id, amount, merchant_refund_no)` written as one batch.
async fn together(
    h: &common::Harness,
    shop: &yuanlu_engine::auth::Principal,
    creates: &[(&str, i64, &str)],
) -> Vec<EngineResult<CreateOutcome>> {
    let inputs = creates
        .iter()
        .map(|(payment_id, amount, no)| create(payment_id, *amount, no))
        .collect();
    h.engine.create_refunds_together(shop, inputs).await
}

/// `created`, `existing <no>` or the error code, per answer.
fn outcomes(answers: &[EngineResult<CreateOutcome>]) -> Vec<String> {
    answers
        .iter()
        .map(|answer| match answer {
            Ok(CreateOutcome::Created(r)) => format!("created {}", r.merchant_refund_no),
            Ok(CreateOutcome::Existing(r)) => format!("existing {}", r.merchant_refund_no),
            Err(error) => error.code().to_string(),
        })
        .collect()
}

/// Batches committed whole, and none replayed one by one: the batch's own path did the work.
fn committed_together(h: &common::Harness) -> u64 {
    let counts = h.engine.group_commit_counts();
    assert_eq!(
        counts.batches_replayed, 0,
        "no batch may have been replayed"
    );
    counts.batches_committed
}

contract!(creates_in_one_batch_see_each_other, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 5_000 }))
        .await;
    let id = payment.id.as_str();
    let answers = together(
        &h,
        &shop,
        &[
            (id, 1_000, "a"),
            (id, 1_000, "a"),
            (id, 4_500, "too-much"),
            (id, 1_000, "b"),
            (id, 1_000, "bad number!"),
            (id, 3_000, "c"),
            (id, 1, "d"),
            ("pay_missing", 1, "e"),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&answers),
        [
            "created a",
            "existing a",
            "amount_exceeds_refundable",
            "created b",
            "validation_error",
            "created c",
            "amount_exceeds_refundable",
            "payment_not_found",
        ]
    );
    let after = h.engine.get_payment(&shop, id).await.unwrap();
    assert_eq!(after.amount_in_flight, 5_000);
    assert_eq!(after.refundable, 0);
    assert_eq!(after.refunds.len(), 3);
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
    assert_eq!(committed_together(&h), 1);
});

contract!(a_batch_the_database_breaks_is_replayed_one_by_one, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "alipay", "amount": 10_000 }))
        .await;
    // The database refuses to store the refund numbered BOOM, after the batch has written
    // the refunds before it.
    match h.engine.db.backend() {
        Backend::Sqlite => {
            h.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON refunds WHEN NEW.merchant_refund_no = 'BOOM' \
                 BEGIN SELECT RAISE(ABORT, 'boom'); END",
            )
            .await;
        }
        Backend::Postgres => {
            h.execute(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.merchant_refund_no = 'BOOM' THEN RAISE EXCEPTION 'boom'; END IF; \
                 RETURN NEW; END $$",
            )
            .await;
            h.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON refunds FOR EACH ROW EXECUTE FUNCTION boom()",
            )
            .await;
        }
    }
    let id = payment.id.as_str();
    let answers = together(
        &h,
        &shop,
        &[
            (id, 1_000, "first"),
            (id, 2_000, "BOOM"),
            (id, 3_000, "last"),
        ],
    )
    .await;
    let codes = outcomes(&answers);
    assert_eq!(codes[0], "created first");
    assert_ne!(codes[1], "created BOOM");
    assert!(answers[1].is_err());
    assert_eq!(codes[2], "created last");
    let counts = h.engine.group_commit_counts();
    assert_eq!((counts.batches_committed, counts.batches_replayed), (0, 1));
    // Nothing of the broken attempt survived: one row, posting and audit entry per refund.
    let after = h.engine.get_payment(&shop, id).await.unwrap();
    assert_eq!(after.amount_in_flight, 4_000);
    assert_eq!(after.refunds.len(), 2);
    assert_eq!(
        h.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refunds")
            .await,
        "2"
    );
    assert_eq!(
        h.fetch_text(
            "SELECT CAST(COUNT(*) AS TEXT) FROM ledger_postings WHERE event = 'refund_queued'"
        )
        .await,
        "2"
    );
    assert_eq!(
        h.fetch_text(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE action = 'refund.created'"
        )
        .await,
        "2"
    );
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
});

contract!(concurrent_creates_over_many_merchants_all_land_once, |h| {
    let mut shops = Vec::new();
    for _ in 0..8 {
        let shop = h.merchant().await;
        let payment = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
            .await;
        shops.push((shop, payment.id));
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (shop, payment_id) = shops[i % shops.len()].clone();
        let engine = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .create_refund(&shop, create(&payment_id, 100, &format!("n-{i}")))
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(CreateOutcome::Created(_))));
    }
    for (shop, payment_id) in &shops {
        let after = h.engine.get_payment(shop, payment_id).await.unwrap();
        assert_eq!(after.amount_in_flight, 25 * 100);
        assert_eq!(after.refunds.len(), 25);
    }
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
});

contract!(
    the_funding_rule_counts_the_creates_before_it_in_the_batch,
    |h| {
        let shop = h
            .merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
            .await;
        let payment = h
            .payment(&shop, json!({ "channel": "credit_card", "amount": 20_000 }))
            .await;
        // The merchant's only money is the payment's 198.80 net; card refunds return no fee.
        let id = payment.id.as_str();
        let answers = together(
            &h,
            &shop,
            &[
                (id, 10_000, "f1"),
                (id, 9_000, "f2"),
                (id, 1_000, "f3"),
                (id, 880, "f4"),
                (id, 1, "f5"),
            ],
        )
        .await;
        assert_eq!(
            outcomes(&answers),
            [
                "created f1",
                "created f2",
                "insufficient_merchant_balance",
                "created f4",
                "insufficient_merchant_balance",
            ]
        );
        let balance = h
            .engine
            .merchant_balance(shop.merchant_scope().unwrap())
            .await
            .unwrap();
        assert_eq!((balance.unsettled_fen, balance.carried_fen), (0, 0));
        assert!(h.engine.check_ledger().await.unwrap().balanced);
        assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
        assert_eq!(committed_together(&h), 1);
    }
);

contract!(a_void_in_a_batch_leaves_the_chain_and_ledger_whole, |h| {
    let shop = h
        .merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
        .await;
    let first = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 8_000 }))
        .await;
    let second = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 8_000 }))
        .await;
    // The whole card payment on its own day is a void, completed in the batch's transaction
    // between two refunds of the same merchant.
    let answers = together(
        &h,
        &shop,
        &[
            (&second.id, 1_000, "r1"),
            (&first.id, 8_000, "v1"),
            (&second.id, 1_000, "r2"),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&answers),
        ["created r1", "created v1", "created r2"]
    );
    match &answers[1] {
        Ok(CreateOutcome::Created(void)) => {
            assert_eq!(void.refund_type, yuanlu_domain::refund::RefundType::Void);
            assert_eq!(void.status, yuanlu_domain::refund::RefundStatus::Succeeded);
        }
        other => panic!("expected the void, got {other:?}"),
    }
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
    assert_eq!(committed_together(&h), 1);
});

contract!(
    the_day_ratio_counts_the_creates_before_it_in_the_batch,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let id = payment.id.as_str();
        let answers = together(
            &h,
            &shop,
            &[(id, 3_000, "r1"), (id, 2_000, "r2"), (id, 1, "r3")],
        )
        .await;
        let statuses: Vec<_> = answers
            .iter()
            .map(|answer| match answer {
                Ok(CreateOutcome::Created(r)) => r.status,
                other => panic!("expected a new refund, got {other:?}"),
            })
            .collect();
        // Half of today's 100.00 of sales may be refunded without the acquirer: the third
        // refund goes beyond it, counting the two before it in the same transaction.
        use yuanlu_domain::refund::RefundStatus::{PendingReview, Queued};
        assert_eq!(statuses, [Queued, Queued, PendingReview]);
        assert_eq!(committed_together(&h), 1);
    }
);

/// Makes PostgreSQL abort the first `failures` refund inserts of the schema with SQLSTATE
/// 40001 (serialization_failure), as it does to one of two conflicting transactions. A
/// sequence counts the attempts: unlike a table, its `nextval` survives the rollback.
async fn fail_refund_inserts(h: &common::Harness, failures: i64) {
    h.execute("CREATE SEQUENCE refund_insert_attempts").await;
    h.execute(&format!(
        "CREATE FUNCTION abort_refund_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('refund_insert_attempts') <= {failures} THEN
             RAISE EXCEPTION 'forced serialization failure' USING ERRCODE = '40001';
           END IF;
           RETURN NEW;
         END $$"
    ))
    .await;
    h.execute(
        "CREATE TRIGGER abort_refund_insert BEFORE INSERT ON refunds
         FOR EACH ROW EXECUTE FUNCTION abort_refund_insert()",
    )
    .await;
}

/// A create the database aborts with a conflict (40001) runs again and lands exactly once.
/// PostgreSQL only: SQLite has one writer and no such abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_aborted_by_a_conflict_runs_again_and_lands_once() {
    let Some(h) = common::Harness::postgres(
        "contract_group_commit::a_create_aborted_by_a_conflict_runs_again_and_lands_once",
    )
    .await
    else {
        return;
    };
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 5_000 }))
        .await;
    fail_refund_inserts(&h, 1).await;
    let before = h.engine.group_commit_counts();
    assert_eq!(before.conflict_retries, 0);
    // Through the refund writer, as the API does: a batch of one, created alone.
    let answer = h
        .engine
        .create_refund(&shop, create(&payment.id, 1_000, "R-conflict"))
        .await;
    assert!(
        matches!(answer, Ok(CreateOutcome::Created(_))),
        "{answer:?}"
    );
    assert_eq!(h.engine.group_commit_counts().conflict_retries, 1);
    assert_eq!(
        h.fetch_text("SELECT CAST(last_value AS TEXT) FROM refund_insert_attempts")
            .await,
        "2",
        "the first insert was aborted, the second one landed"
    );
    let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert_eq!(after.amount_in_flight, 1_000);
    assert_eq!(after.refunds.len(), 1);
    for (sql, count) in [
        ("SELECT CAST(COUNT(*) AS TEXT) FROM refunds", "1"),
        (
            "SELECT CAST(COUNT(*) AS TEXT) FROM ledger_postings WHERE event = 'refund_queued'",
            "1",
        ),
        (
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE action = 'refund.created'",
            "1",
        ),
    ] {
        assert_eq!(h.fetch_text(sql).await, count, "{sql}");
    }
    // Asking again is an idempotent repeat, not a second refund.
    let again = h
        .engine
        .create_refund(&shop, create(&payment.id, 1_000, "R-conflict"))
        .await;
    assert!(matches!(again, Ok(CreateOutcome::Existing(_))), "{again:?}");
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
    h.finish().await;
}

/// The retries are bounded: a create that conflicts every time gives up after five retries
/// with a store error and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_that_always_conflicts_gives_up_after_five_retries() {
    let Some(h) = common::Harness::postgres(
        "contract_group_commit::a_create_that_always_conflicts_gives_up_after_five_retries",
    )
    .await
    else {
        return;
    };
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 5_000 }))
        .await;
    fail_refund_inserts(&h, i64::MAX).await;
    let answer = h
        .engine
        .create_refund(&shop, create(&payment.id, 1_000, "R-always"))
        .await;
    assert!(
        matches!(
            answer,
            Err(yuanlu_engine::EngineError::Store(
                yuanlu_store::StoreError::Conflict(_)
            ))
        ),
        "{answer:?}"
    );
    assert_eq!(h.engine.group_commit_counts().conflict_retries, 5);
    assert_eq!(
        h.fetch_text("SELECT CAST(last_value AS TEXT) FROM refund_insert_attempts")
            .await,
        "6"
    );
    let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert_eq!(after.amount_in_flight, 0);
    assert!(after.refunds.is_empty());
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    h.finish().await;
}

// Issue 15 in a batch: a create with deductions or one held for evidence has more to write
// than the batch's own statements, so its batch runs create by create; a repeat without the
// deductions is another request, whichever path answers it.
contract!(
    a_batch_with_deductions_and_an_evidence_hold_writes_them,
    |h| {
        use yuanlu_domain::evidence::EvidenceKind;
        use yuanlu_domain::refund::RefundStatus;
        let shop = h
            .merchant_with(json!({ "evidence": { "require_voucher_above": 2_000 } }))
            .await;
        let payment = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let id = payment.id.as_str();
        let body = |no: &str, amount: i64, deductions: serde_json::Value| -> CreateRefund {
            serde_json::from_value::<bodies::CreateRefund>(json!({
                "payment_id": id, "amount": amount, "reason": "customer_cancel",
                "merchant_refund_no": no, "deductions": deductions,
            }))
            .unwrap()
            .into()
        };
        let handling_fee =
            json!([{ "kind": "handling_fee", "amount": 200, "reason": "opened box" }]);
        let first = h
            .engine
            .create_refunds_together(
                &shop,
                vec![
                    body("plain", 1_000, json!([])),
                    body("deducted", 1_500, handling_fee.clone()),
                    body("held", 3_000, json!([])),
                ],
            )
            .await;
        assert_eq!(
            outcomes(&first),
            ["created plain", "created deducted", "created held"]
        );
        let created = |answer: &EngineResult<CreateOutcome>| match answer {
            Ok(CreateOutcome::Created(refund)) => refund.clone(),
            other => panic!("not created: {other:?}"),
        };
        let (plain, deducted, held) = (created(&first[0]), created(&first[1]), created(&first[2]));
        assert_eq!(plain.status, RefundStatus::Queued);
        assert!(plain.evidence.missing.is_empty());
        assert_eq!(deducted.consumer_amount, 1_300);
        assert_eq!(deducted.deductions.len(), 1);
        assert_eq!(held.status, RefundStatus::PendingReview);
        assert_eq!(held.evidence.missing, [EvidenceKind::SaleVoucher]);
        // A batch of plain creates runs on the batch's own path.
        let second = h
            .engine
            .create_refunds_together(
                &shop,
                vec![
                    body("deducted", 1_500, json!([])),
                    body("plain", 1_000, json!([])),
                ],
            )
            .await;
        assert_eq!(
            outcomes(&second),
            ["merchant_refund_no_conflict", "existing plain"]
        );
        let third = h
            .engine
            .create_refunds_together(&shop, vec![body("deducted", 1_500, handling_fee)])
            .await;
        assert_eq!(outcomes(&third), ["existing deducted"]);
        assert!(h.engine.check_ledger().await.unwrap().balanced);
        assert!(h.engine.verify_audit().await.unwrap().first_bad.is_none());
    }
);
