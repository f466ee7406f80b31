//! Finding the original sale (`Engine::search_payments`, `GET /v1/payments` filters) on
//! both backends: each filter finds what it should and nothing else, a merchant only its
//! own, bad filters are refused with the field named, and every filter reads an index
//! (migrations 0015), never a full scan of the payments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::NaiveDate;
use serde_json::json;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::payment_search::{PaymentFilters, search_of};
use yuanlu_engine::{Db, EngineError};

use crate::common::{Harness, start_instant};

fn filters() -> PaymentFilters {
    PaymentFilters {
        limit: 100,
        ..PaymentFilters::default()
    }
}

/// Two shops' sales: a card sale, a wallet sale, one with an order, on two days.
async fn sales(h: &Harness) -> (Principal, Principal, Vec<String>) {
    let shop = h.merchant().await;
    sales_of(h, shop).await
}

async fn sales_of(h: &Harness, shop: Principal) -> (Principal, Principal, Vec<String>) {
    let other = h.merchant().await;
    let card = h
        .payment(
            &shop,
            json!({ "channel": "debit_card", "amount": 12_345, "terminal_id": "T01",
                "payer": { "card_last4": "0403", "bank": "ICBC" },
                "voucher": { "batch_no": "000001", "trace_no": "000123", "rrn": "612345678901" } }),
        )
        .await;
    let wallet = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 2_800, "terminal_id": "T02",
                "payer": { "wallet_account": "13800001111" }, "phone": "13912345678" }),
        )
        .await;
    h.clock.advance(chrono::Duration::days(1));
    let order = h
        .payment(
            &shop,
            json!({ "channel": "credit_card", "amount": 12_345, "terminal_id": "T01",
                "order": { "merchant_order_no": "SO-2026-77", "shipping_status": "unshipped" } }),
        )
        .await;
    // The other shop: the same card's last four, the same reference, the same terminal name.
    h.payment(
        &other,
        json!({ "channel": "debit_card", "amount": 12_345, "terminal_id": "T01",
            "payer": { "card_last4": "0403" }, "voucher": { "trace_no": "000123", "rrn": "612345678901" } }),
    )
    .await;
    (shop, other, vec![card.id, wallet.id, order.id])
}

async fn ids(h: &Harness, who: &Principal, f: PaymentFilters) -> Vec<String> {
    let page = h.engine.search_payments(who, &f).await.unwrap();
    page.data.into_iter().map(|p| p.id).collect()
}

contract!(each_filter_finds_the_sale_and_only_the_merchants_own, |h| {
    let (shop, _other, p) = sales(&h).await;
    let (card, wallet, order) = (p[0].clone(), p[1].clone(), p[2].clone());
    let day = |d: u32| Some(NaiveDate::from_ymd_opt(2026, 11, d).unwrap());
    let cases: Vec<(PaymentFilters, Vec<String>)> = vec![
        (filters(), vec![order.clone(), wallet.clone(), card.clone()]),
        (
            PaymentFilters {
                business_date: day(20),
                ..filters()
            },
            vec![wallet.clone(), card.clone()],
        ),
        (
            PaymentFilters {
                business_date: day(21),
                ..filters()
            },
            vec![order.clone()],
        ),
        (
            PaymentFilters {
                business_date: day(22),
                ..filters()
            },
            vec![],
        ),
        (
            PaymentFilters {
                captured_from: Some(start_instant() + chrono::Duration::hours(1)),
                ..filters()
            },
            vec![order.clone()],
        ),
        (
            PaymentFilters {
                captured_to: Some(start_instant() + chrono::Duration::hours(1)),
                ..filters()
            },
            vec![wallet.clone(), card.clone()],
        ),
        (
            PaymentFilters {
                amount: Some(12_345),
                ..filters()
            },
            vec![order.clone(), card.clone()],
        ),
        (
            PaymentFilters {
                amount: Some(2_800),
                ..filters()
            },
            vec![wallet.clone()],
        ),
        (
            PaymentFilters {
                last4: Some("0403".into()),
                ..filters()
            },
            vec![card.clone()],
        ),
        // A wallet's masked account and the consumer's phone both end with their digits.
        (
            PaymentFilters {
                last4: Some("1111".into()),
                ..filters()
            },
            vec![wallet.clone()],
        ),
        (
            PaymentFilters {
                last4: Some("5678".into()),
                ..filters()
            },
            vec![wallet.clone()],
        ),
        (
            PaymentFilters {
                last4: Some("9999".into()),
                ..filters()
            },
            vec![],
        ),
        (
            PaymentFilters {
                rrn: Some("612345678901".into()),
                ..filters()
            },
            vec![card.clone()],
        ),
        (
            PaymentFilters {
                trace_no: Some("000123".into()),
                ..filters()
            },
            vec![card.clone()],
        ),
        (
            PaymentFilters {
                terminal_id: Some("T01".into()),
                ..filters()
            },
            vec![order.clone(), card.clone()],
        ),
        (
            PaymentFilters {
                terminal_id: Some("T02".into()),
                ..filters()
            },
            vec![wallet.clone()],
        ),
        (
            PaymentFilters {
                order_no: Some("SO-2026-77".into()),
                ..filters()
            },
            vec![order.clone()],
        ),
        (
            PaymentFilters {
                amount: Some(12_345),
                business_date: day(20),
                terminal_id: Some("T01".into()),
                ..filters()
            },
            vec![card.clone()],
        ),
    ];
    for (f, expected) in cases {
        assert_eq!(ids(&h, &shop, f.clone()).await, expected, "{f:?}");
    }
    // The acquirer sees both shops' sales with the shared reference.
    let by_rrn = PaymentFilters {
        rrn: Some("612345678901".into()),
        ..filters()
    };
    assert_eq!(ids(&h, &Principal::Admin, by_rrn).await.len(), 2);
    // Pages follow one another.
    let first = h
        .engine
        .search_payments(
            &shop,
            &PaymentFilters {
                limit: 2,
                ..filters()
            },
        )
        .await
        .unwrap();
    assert!(first.has_more);
    let rest = PaymentFilters {
        starting_after: Some(first.data[1].id.clone()),
        limit: 2,
        ..filters()
    };
    assert_eq!(ids(&h, &shop, rest).await, vec![card.clone()]);
});

contract!(bad_filters_name_their_field, |h| {
    let shop = h.merchant().await;
    let date = NaiveDate::from_ymd_opt(2026, 11, 20);
    for (f, field) in [
        (
            PaymentFilters {
                last4: Some("12a4".into()),
                ..filters()
            },
            "last4",
        ),
        (
            PaymentFilters {
                last4: Some("12345".into()),
                ..filters()
            },
            "last4",
        ),
        (
            PaymentFilters {
                amount: Some(0),
                ..filters()
            },
            "amount",
        ),
        (
            PaymentFilters {
                business_date: date,
                captured_from: Some(start_instant()),
                ..filters()
            },
            "business_date",
        ),
        (
            PaymentFilters {
                captured_from: Some(start_instant()),
                captured_to: Some(start_instant()),
                ..filters()
            },
            "captured_to",
        ),
        (
            PaymentFilters {
                rrn: Some("x".repeat(65)),
                ..filters()
            },
            "rrn",
        ),
        (
            PaymentFilters {
                order_no: Some("a\u{7}b".into()),
                ..filters()
            },
            "order_no",
        ),
    ] {
        match h.engine.search_payments(&shop, &f).await {
            Err(EngineError::Validation { field: got, .. }) => assert_eq!(got, field, "{f:?}"),
            other => panic!("{f:?}: expected a validation error on {field}, got {other:?}"),
        }
    }
});

/// The plan of `sql` on the harness's backend, one line per node (PostgreSQL with
/// sequential scans forbidden: with tiny tables it would rightly prefer one).
async fn plan(h: &Harness, sql: &str) -> String {
    match &h.engine.db {
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
    }
}

/// Earlier sales of the shop, every one different, two hours apart: enough rows that the
/// planner's statistics see each filter as selective, as in a real shop's table.
async fn history(h: &Harness, shop: &Principal) {
    for i in 0..200 {
        h.payment(
            shop,
            json!({ "channel": "debit_card", "amount": 100 + i, "terminal_id": format!("H{i:03}"),
                "payer": { "card_last4": format!("{:04}", 5000 + i) }, "phone": format!("139000{:05}", i),
                "voucher": { "trace_no": format!("9{i:05}"), "rrn": format!("7000000{i:05}") },
                "order": { "merchant_order_no": format!("HO-{i}"), "shipping_status": "unshipped" } }),
        )
        .await;
        h.clock.advance(chrono::Duration::hours(2));
    }
}

contract!(every_filter_reads_its_index, |h| {
    let shop = h.merchant().await;
    history(&h, &shop).await;
    let (shop, _, _) = sales_of(&h, shop).await;
    h.execute("ANALYZE").await;
    let day = Some(yuanlu_domain::time::shanghai_date(h.clock.now()));
    let cases = [
        (
            PaymentFilters {
                business_date: day,
                ..filters()
            },
            // Either capture index: the merchant's, or all payments' then the merchant.
            "_capture",
        ),
        (
            PaymentFilters {
                amount: Some(12_345),
                ..filters()
            },
            "payments_by_amount",
        ),
        (
            PaymentFilters {
                last4: Some("0403".into()),
                ..filters()
            },
            "payments_by_account_last4",
        ),
        (
            PaymentFilters {
                last4: Some("0403".into()),
                ..filters()
            },
            "payments_by_phone_last4",
        ),
        (
            PaymentFilters {
                rrn: Some("612345678901".into()),
                ..filters()
            },
            "payments_by_rrn",
        ),
        (
            PaymentFilters {
                trace_no: Some("000123".into()),
                ..filters()
            },
            "payments_by_trace_no",
        ),
        (
            PaymentFilters {
                terminal_id: Some("T01".into()),
                ..filters()
            },
            "payments_by_terminal",
        ),
        (
            PaymentFilters {
                order_no: Some("SO-2026-77".into()),
                ..filters()
            },
            "payments_by_order_no",
        ),
    ];
    for who in [shop, Principal::Admin] {
        let merchant = who.merchant_scope().is_some();
        for (f, index) in &cases {
            let sql = search_of(&who, f).unwrap().sql_with_literals();
            let plan = plan(&h, &sql).await;
            // The acquirer's search can only be served by the filter's own index. A
            // merchant's may also be served by the merchant's own payments in id order
            // (payments_by_merchant, no sort needed), which the planners choose when a
            // shop's rows are few, as in this test; never by a scan.
            assert!(
                plan.contains(index) || (merchant && plan.contains("payments_by_merchant")),
                "{f:?} does not read {index}:\n{sql}\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{f:?}:\n{plan}");
            assert!(
                !plan.lines().any(|l| l.trim_start().starts_with("SCAN")),
                "{f:?} scans:\n{plan}"
            );
        }
    }
});
