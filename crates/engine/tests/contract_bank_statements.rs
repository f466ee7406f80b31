//! Payouts checked against the merchant's bank statement (issue 15 item 4) on both backends:
//! every outcome from one week of settlements, a re-import that stores nothing, GBK files,
//! a refused file that leaves nothing behind, and another merchant's import out of reach.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{Duration, NaiveDate};
use serde_json::json;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::bank_statements::BankStatementView;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::error::EngineError;

use crate::common::Harness;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// A card sale on each business day from Fri 2026-11-20 to Thu 2026-11-26 (fee 0.6 %), each
/// day settled: five payouts of 994.00, 497.00, 198.80, 298.20 and 397.60 yuan, paid on
/// 11-23, 11-24, 11-25, 11-26 and 11-27. Returns the statement ids by payout date.
async fn a_week_of_payouts(h: &Harness, shop: &Principal) -> Vec<String> {
    let days = [
        ("2026-11-20", 100_000, 3),
        ("2026-11-23", 50_000, 1),
        ("2026-11-24", 20_000, 1),
        ("2026-11-25", 30_000, 1),
        ("2026-11-26", 40_000, 1),
    ];
    for (_, amount, days_to_next) in days {
        h.payment(shop, json!({ "channel": "credit_card", "amount": amount }))
            .await;
        h.clock.advance(Duration::days(days_to_next));
    }
    let mut ids = Vec::new();
    for (day, _, _) in days {
        let statements = h
            .engine
            .run_settlement(&Principal::Admin, date(day))
            .await
            .unwrap();
        assert_eq!(statements.len(), 1, "{day}");
        ids.push(statements[0].id.clone());
    }
    ids
}

fn outcomes(view: &BankStatementView) -> Vec<(&str, &str, i64, i64)> {
    view.payouts
        .iter()
        .map(|p| {
            (
                p.payout_date.as_str(),
                p.outcome.as_str(),
                p.payout,
                p.difference,
            )
        })
        .collect()
}

contract!(each_payout_is_found_paid_short_missing_or_pending, |h| {
    let shop = h.merchant().await;
    let merchant_id = shop.merchant_scope().unwrap().to_string();
    let ids = a_week_of_payouts(&h, &shop).await;
    let file = format!(
        "date,amount,counterparty,reference\n\
         2026-11-23,994.00,收单机构结算户,yuanlu {}\n\
         2026-11-24,496.00,收单机构结算户,{} 结算\n\
         2026-11-26,198.80,收单机构结算户,结算款\n\
         2026-11-27,88.88,张三,转账\n\
         2026-11-29,-30.00,电费,\n",
        ids[0], ids[1]
    );
    let import = h
        .engine
        .import_bank_statement(&shop, &merchant_id, file.as_bytes())
        .await
        .unwrap();
    assert!(import.created);
    let view = &import.view;
    assert_eq!(
        outcomes(view),
        vec![
            ("2026-11-23", "paid", 99_400, 0),
            ("2026-11-24", "different_amount", 49_700, -100),
            ("2026-11-25", "paid", 19_880, 0),
            ("2026-11-26", "missing", 29_820, -29_820),
            ("2026-11-27", "pending", 39_760, -39_760),
        ]
    );
    assert_eq!(
        (
            view.counts.paid,
            view.counts.different_amount,
            view.counts.missing,
            view.counts.pending,
            view.counts.unexplained_credits
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!((view.lines, view.debits), (5, 1));
    assert_eq!(
        (view.first_date.as_str(), view.last_date.as_str()),
        ("2026-11-23", "2026-11-29")
    );
    // The payout by amount took the credit a day late; the short one shows its credit.
    assert_eq!(view.payouts[2].credit.as_ref().unwrap().date, "2026-11-26");
    assert_eq!(view.payouts[1].credit.as_ref().unwrap().line, 3);
    assert_eq!(view.payouts[0].settlement_id, ids[0]);
    assert_eq!(view.payouts[0].business_date, "2026-11-20");
    // Each payout carries its statement's explanation.
    assert_eq!(view.payouts[0].breakdown.sales, 100_000);
    assert_eq!(view.payouts[0].breakdown.fees, 600);
    assert!(
        view.payouts[0]
            .explanation
            .iter()
            .any(|l| l.contains("994.00")),
        "{:?}",
        view.payouts[0].explanation
    );
    let stray = &view.unexplained_credits;
    assert_eq!(stray.len(), 1);
    assert_eq!(
        (stray[0].amount, stray[0].counterparty.as_str()),
        (8_888, "张三")
    );

    // The same file again: the stored report, nothing new.
    let again = h
        .engine
        .import_bank_statement(&shop, &merchant_id, file.as_bytes())
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.view, import.view);
    let list = h
        .engine
        .list_bank_statements(&shop, &merchant_id)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        h.engine
            .get_bank_statement(&Principal::Admin, &view.id)
            .await
            .unwrap(),
        import.view
    );
    // The import is on the merchant's audit chain, with the file's SHA-256.
    let audit = h.engine.verify_audit().await.unwrap();
    assert!(audit.ok);
    let logged = h
        .fetch_text(&format!(
            "SELECT data FROM audit_log WHERE action = 'bank_statement.imported' AND subject_id = '{}'",
            view.id
        ))
        .await;
    assert!(logged.contains(&view.file_sha256), "{logged}");
});

contract!(a_gbk_statement_with_the_chinese_header_is_read, |h| {
    let shop = h.merchant().await;
    let merchant_id = shop.merchant_scope().unwrap().to_string();
    let ids = a_week_of_payouts(&h, &shop).await;
    let text = format!(
        "日期,金额,对方户名,摘要\n2026/11/23,994.00,收单机构,结算 {}\n",
        ids[0]
    );
    let (gbk, _, lossy) = encoding_rs::GBK.encode(&text);
    assert!(!lossy);
    let import = h
        .engine
        .import_bank_statement(&Principal::Admin, &merchant_id, &gbk)
        .await
        .unwrap();
    assert_eq!(
        outcomes(&import.view),
        vec![("2026-11-23", "paid", 99_400, 0)],
        "a one-day statement covers only that day's payout"
    );
    assert_eq!(
        import.view.payouts[0].credit.as_ref().unwrap().counterparty,
        "收单机构"
    );
});

contract!(
    a_bad_file_is_refused_naming_its_line_and_nothing_is_stored,
    |h| {
        let shop = h.merchant().await;
        let merchant_id = shop.merchant_scope().unwrap().to_string();
        let file =
            "date,amount,counterparty,reference\n2026-11-23,994.00,a,b\n2026-11-24,12.345,a,b\n";
        let error = h
            .engine
            .import_bank_statement(&shop, &merchant_id, file.as_bytes())
            .await
            .unwrap_err();
        match &error {
            EngineError::Validation { field, message } => {
                assert_eq!(field, "file");
                assert!(message.contains("line 3"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            h.engine
                .list_bank_statements(&shop, &merchant_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            h.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM bank_statement_imports")
                .await,
            "0"
        );
    }
);

contract!(another_merchants_import_is_out_of_reach, |h| {
    let shop = h.merchant().await;
    let other = h.merchant().await;
    let shop_id = shop.merchant_scope().unwrap().to_string();
    let other_id = other.merchant_scope().unwrap().to_string();
    a_week_of_payouts(&h, &shop).await;
    let file = "date,amount,counterparty,reference\n2026-11-23,994.00,a,b\n";
    // The other merchant cannot import for the shop, nor read its imports.
    let refused = h
        .engine
        .import_bank_statement(&other, &shop_id, file.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EngineError::NotFound { .. }),
        "{refused:?}"
    );
    let import = h
        .engine
        .import_bank_statement(&shop, &shop_id, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(import.view.counts.paid, 1);
    let hidden = h
        .engine
        .get_bank_statement(&other, &import.view.id)
        .await
        .unwrap_err();
    assert!(matches!(hidden, EngineError::NotFound { .. }), "{hidden:?}");
    assert!(
        h.engine
            .list_bank_statements(&other, &shop_id)
            .await
            .is_err()
    );
    // The same file from the other merchant is its own import: no payouts, a stray credit.
    let theirs = h
        .engine
        .import_bank_statement(&other, &other_id, file.as_bytes())
        .await
        .unwrap();
    assert!(theirs.created);
    assert_ne!(theirs.view.id, import.view.id);
    assert_eq!(theirs.view.counts.unexplained_credits, 1);
    assert!(theirs.view.payouts.is_empty());
});
