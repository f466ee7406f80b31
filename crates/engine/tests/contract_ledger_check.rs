//! The ledger check fails, and names what is wrong, when the books are tampered with behind
//! the engine's back (raw SQL on the store), on both backends: an entry removed, an amount
//! changed, a posting that does not sum to zero, a balance row out of step or deleted, and
//! changes that still sum to zero (a balanced pair of amounts, an entry moved to another
//! account) that only a comparison with the posting's own facts can see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_engine::ledger::LedgerCheck;

use crate::common::Harness;

/// A merchant with a WeChat payment of 100 yuan and a queued refund of 30 yuan: two postings
/// of three entries. Returns `(merchant_id, id of the payment's posting)`, the books checked
/// balanced first so the tampering is what breaks them.
async fn books(h: &Harness) -> (String, String) {
    let shop = h.merchant().await;
    let merchant_id = shop.merchant_scope().unwrap().to_string();
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    h.refund(
        &shop,
        json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel", "merchant_refund_no": "LC-1" }),
    )
    .await;
    let check = check(h).await;
    assert!(check.balanced, "untampered books: {check:?}");
    assert_eq!((check.postings, check.entries), (2, 6), "{check:?}");
    let posting = h
        .fetch_text("SELECT id FROM ledger_postings WHERE event = 'payment_captured'")
        .await;
    (merchant_id, posting)
}

async fn check(h: &Harness) -> LedgerCheck {
    h.engine.check_ledger().await.unwrap()
}

/// Runs one tampering statement, which must touch exactly one row.
async fn tamper(h: &Harness, sql: &str) {
    assert_eq!(h.execute(sql).await, 1, "{sql}");
}

contract!(an_entry_removed_is_named_by_its_posting, |h| {
    let (merchant_id, posting) = books(&h).await;
    tamper(
        &h,
        &format!(
            "DELETE FROM ledger_entries WHERE posting_id = '{posting}' AND account = 'merchant_unsettled:{merchant_id}'"
        ),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!(check.entries, 5);
    assert_ne!(check.sum_fen, 0, "{check:?}");
    assert_eq!(check.unbalanced_postings, vec![posting.clone()]);
    assert_eq!(check.mismatched_postings, vec![posting]);
    assert_eq!(check.mismatched_merchants, vec![merchant_id]);
});

contract!(an_amount_changed_is_named_by_posting_and_merchant, |h| {
    let (merchant_id, posting) = books(&h).await;
    tamper(
        &h,
        &format!(
            "UPDATE ledger_entries SET amount_fen = amount_fen - 1 WHERE posting_id = '{posting}' AND account = 'merchant_unsettled:{merchant_id}'"
        ),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!(check.sum_fen, -1, "{check:?}");
    assert_eq!(check.unbalanced_postings, vec![posting.clone()]);
    assert_eq!(check.mismatched_postings, vec![posting]);
    assert_eq!(check.mismatched_merchants, vec![merchant_id]);
});

contract!(a_posting_that_does_not_sum_to_zero_is_named, |h| {
    let (merchant_id, _) = books(&h).await;
    // A posting written outside the engine: 5 fen to the channel, 4 fen to the fee income.
    let forged = "pst_forged";
    tamper(
        &h,
        &format!(
            "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us) \
             VALUES ('{forged}', '{merchant_id}', 'refund_succeeded', 'ref_forged', NULL, 'wechat', 5, 0, '2026-11-20', 0)"
        ),
    )
    .await;
    assert_eq!(
        h.execute(&format!(
            "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) VALUES \
             ('{forged}', 0, '{merchant_id}', 'refunds_in_flight:wechat', 5), \
             ('{forged}', 1, '{merchant_id}', 'fee_income', -4)"
        ))
        .await,
        2
    );
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!((check.postings, check.entries, check.sum_fen), (3, 8, 1));
    assert_eq!(check.unbalanced_postings, vec![forged.to_string()]);
    assert_eq!(check.mismatched_postings, vec![forged.to_string()]);
    // The merchant accounts were not touched.
    assert!(check.mismatched_merchants.is_empty(), "{check:?}");
});

contract!(a_balance_row_out_of_step_names_its_merchant, |h| {
    let (merchant_id, _) = books(&h).await;
    tamper(
        &h,
        &format!(
            "UPDATE merchant_balances SET unsettled_fen = unsettled_fen + 100 WHERE merchant_id = '{merchant_id}'"
        ),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!(check.sum_fen, 0);
    assert!(check.unbalanced_postings.is_empty(), "{check:?}");
    assert!(check.mismatched_postings.is_empty(), "{check:?}");
    assert_eq!(check.mismatched_merchants, vec![merchant_id]);
});

contract!(a_carried_balance_out_of_step_names_its_merchant, |h| {
    let (merchant_id, _) = books(&h).await;
    tamper(
        &h,
        &format!(
            "UPDATE merchant_balances SET carried_fen = -1 WHERE merchant_id = '{merchant_id}'"
        ),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!(check.mismatched_merchants, vec![merchant_id]);
});

// Old check: walked the balance rows only, so a merchant whose row was gone went unchecked.
contract!(a_balance_row_deleted_names_its_merchant, |h| {
    let (merchant_id, _) = books(&h).await;
    tamper(
        &h,
        &format!("DELETE FROM merchant_balances WHERE merchant_id = '{merchant_id}'"),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!(check.merchants_checked, 0);
    assert_eq!(check.mismatched_merchants, vec![merchant_id]);
});

// Old check: the posting still sums to zero and no merchant account moved, so it passed.
contract!(
    a_balanced_pair_of_changed_amounts_is_named_by_its_posting,
    |h| {
        let (_, posting) = books(&h).await;
        // One fen more owed by the channel, one fen more fee earned: still sums to zero.
        tamper(
        &h,
        &format!(
            "UPDATE ledger_entries SET amount_fen = amount_fen + 1 WHERE posting_id = '{posting}' AND account = 'channel_clearing:wechat'"
        ),
    )
    .await;
        tamper(
        &h,
        &format!(
            "UPDATE ledger_entries SET amount_fen = amount_fen - 1 WHERE posting_id = '{posting}' AND account = 'fee_income'"
        ),
    )
    .await;
        let check = check(&h).await;
        assert!(!check.balanced, "{check:?}");
        assert_eq!(check.sum_fen, 0);
        assert!(check.unbalanced_postings.is_empty(), "{check:?}");
        assert!(check.mismatched_merchants.is_empty(), "{check:?}");
        assert_eq!(check.mismatched_postings, vec![posting]);
    }
);

// Old check: the same amounts on another channel's account sum the same, so it passed.
contract!(
    an_entry_moved_to_another_account_is_named_by_its_posting,
    |h| {
        let (_, posting) = books(&h).await;
        tamper(
        &h,
        &format!(
            "UPDATE ledger_entries SET account = 'channel_clearing:alipay' WHERE posting_id = '{posting}' AND account = 'channel_clearing:wechat'"
        ),
    )
    .await;
        let check = check(&h).await;
        assert!(!check.balanced, "{check:?}");
        assert_eq!(check.sum_fen, 0);
        assert!(check.unbalanced_postings.is_empty(), "{check:?}");
        assert!(check.mismatched_merchants.is_empty(), "{check:?}");
        assert_eq!(check.mismatched_postings, vec![posting]);
    }
);

// Old check: a posting with no entries sums to nothing, so it passed.
contract!(a_posting_stripped_of_its_entries_is_named, |h| {
    let (merchant_id, _) = books(&h).await;
    let queued = h
        .fetch_text("SELECT id FROM ledger_postings WHERE event = 'refund_queued'")
        .await;
    assert_eq!(
        h.execute(&format!(
            "DELETE FROM ledger_entries WHERE posting_id = '{queued}'"
        ))
        .await,
        3
    );
    // And the balance row made to agree, so only the posting itself tells.
    tamper(
        &h,
        &format!(
            "UPDATE merchant_balances SET unsettled_fen = (SELECT -SUM(amount_fen) FROM ledger_entries WHERE account = 'merchant_unsettled:{merchant_id}') WHERE merchant_id = '{merchant_id}'"
        ),
    )
    .await;
    let check = check(&h).await;
    assert!(!check.balanced, "{check:?}");
    assert_eq!((check.entries, check.sum_fen), (3, 0));
    assert!(check.unbalanced_postings.is_empty(), "{check:?}");
    assert!(check.mismatched_merchants.is_empty(), "{check:?}");
    assert_eq!(check.mismatched_postings, vec![queued]);
});

// The refund rules read each merchant day's running totals; the check proves them against
// the payments and refunds, so a total out of step (or gone) is named by its day.
contract!(a_merchant_day_out_of_step_is_named_by_its_day, |h| {
    let (merchant_id, _) = books(&h).await;
    let day: i64 = h
        .fetch_text(&format!(
            "SELECT CAST(day_start_us AS TEXT) FROM merchant_days WHERE merchant_id = '{merchant_id}'"
        ))
        .await
        .parse()
        .unwrap();
    let named = vec![format!("{merchant_id}@{day}")];
    tamper(
        &h,
        &format!(
            "UPDATE merchant_days SET refunds_fen = refunds_fen - 3000, refunds_count = 0 WHERE merchant_id = '{merchant_id}'"
        ),
    )
    .await;
    let out_of_step = check(&h).await;
    assert!(!out_of_step.balanced, "{out_of_step:?}");
    assert!(
        out_of_step.mismatched_merchants.is_empty(),
        "{out_of_step:?}"
    );
    assert_eq!(out_of_step.mismatched_days, named);
    tamper(
        &h,
        &format!("DELETE FROM merchant_days WHERE merchant_id = '{merchant_id}'"),
    )
    .await;
    let gone = check(&h).await;
    assert_eq!(gone.mismatched_days, named, "a day's row deleted");
});
