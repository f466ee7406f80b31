//! The audit chain on both backends: every change is recorded, and editing, deleting or
//! reordering rows directly in the database is caught and named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_domain::audit::ChainBreak;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_web::api::bodies;

use crate::common::Harness;

/// A merchant with a payment and two refunds (one approved): 7 entries on its chain
/// (merchant.created, api_key.created, payment.recorded, 2 × refund.created,
/// refund.approved, refund.canceled).
async fn history(h: &Harness) -> String {
    let shop = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "member": true }),
        )
        .await;
    let first = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "a1" })).await;
    h.engine
        .approve_refund(
            &shop,
            &first.id,
            ReviewNote {
                note: Some("ok".into()),
            },
        )
        .await
        .unwrap();
    let second = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "a2" })).await;
    h.engine
        .cancel_refund(&Principal::Admin, &second.id, ReviewNote::default())
        .await
        .unwrap();
    shop.merchant_scope().unwrap().to_string()
}

contract!(an_untouched_chain_verifies, |h| {
    let chain = history(&h).await;
    let report = h.engine.verify_audit().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, 7);
    assert_eq!(report.first_bad, None);
    let _ = chain;
});

contract!(an_edited_entry_is_named, |h| {
    let chain = history(&h).await;
    let changed = h
        .execute(&format!(
            "UPDATE audit_log SET data = '{{\"amount\":1}}' WHERE chain = '{chain}' AND seq = 4"
        ))
        .await;
    assert_eq!(changed, 1);
    let report = h.engine.verify_audit().await.unwrap();
    assert!(!report.ok);
    let bad = report.first_bad.unwrap();
    assert_eq!(
        (bad.chain.as_str(), bad.seq, bad.problem),
        (chain.as_str(), 4, ChainBreak::ContentChanged)
    );
});

contract!(an_edited_actor_is_named, |h| {
    let chain = history(&h).await;
    h.execute(&format!(
        "UPDATE audit_log SET actor = 'acquirer:admin' WHERE chain = '{chain}' AND seq = 6"
    ))
    .await;
    let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
    assert_eq!((bad.seq, bad.problem), (6, ChainBreak::ContentChanged));
});

contract!(a_deleted_entry_is_named, |h| {
    let chain = history(&h).await;
    h.execute(&format!(
        "DELETE FROM audit_log WHERE chain = '{chain}' AND seq = 3"
    ))
    .await;
    let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
    assert_eq!((bad.seq, bad.problem), (3, ChainBreak::Missing));
});

contract!(a_deleted_last_entry_is_caught_by_the_head, |h| {
    let chain = history(&h).await;
    h.execute(&format!(
        "DELETE FROM audit_log WHERE chain = '{chain}' AND seq = 7"
    ))
    .await;
    let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
    assert_eq!((bad.seq, bad.problem), (7, ChainBreak::HeadMismatch));
});

contract!(reordered_entries_are_named, |h| {
    let chain = history(&h).await;
    // Swap entries 4 and 5 by renumbering them through a free number.
    h.execute(&format!(
        "UPDATE audit_log SET seq = 1000 WHERE chain = '{chain}' AND seq = 4"
    ))
    .await;
    h.execute(&format!(
        "UPDATE audit_log SET seq = 4 WHERE chain = '{chain}' AND seq = 5"
    ))
    .await;
    h.execute(&format!(
        "UPDATE audit_log SET seq = 5 WHERE chain = '{chain}' AND seq = 1000"
    ))
    .await;
    let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 4);
    assert!(
        matches!(
            bad.problem,
            ChainBreak::ContentChanged | ChainBreak::LinkBroken
        ),
        "{bad:?}"
    );
});

contract!(
    a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link,
    |h| {
        let chain = history(&h).await;
        // A forger who recomputes the edited entry's own hash still breaks the next entry's link.
        let entry = yuanlu_domain::audit::AuditContent {
            chain: &chain,
            seq: 2,
            at_us: 0,
            actor: "forger",
            action: "api_key.created",
            subject_id: "key_x",
            data: "{}",
        };
        let prev = h
            .fetch_text(&format!(
                "SELECT prev_hash FROM audit_log WHERE chain = '{chain}' AND seq = 2"
            ))
            .await;
        let hash = yuanlu_domain::audit::entry_hash(&prev, &entry);
        h.execute(&format!(
        "UPDATE audit_log SET at_us = 0, actor = 'forger', subject_id = 'key_x', data = '{{}}', hash = '{hash}' WHERE chain = '{chain}' AND seq = 2"
    ))
    .await;
        let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
        assert_eq!((bad.seq, bad.problem), (3, ChainBreak::LinkBroken));
    }
);

contract!(
    concurrent_refunds_keep_one_unbroken_chain_per_merchant,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(&shop, json!({ "channel": "alipay", "amount": 100_000 }))
            .await;
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (engine, shop) = (h.engine.clone(), shop.clone());
            let input = serde_json::from_value::<bodies::CreateRefund>(json!({
            "payment_id": payment.id, "amount": 10, "reason": "customer_cancel", "merchant_refund_no": format!("c{i}"),
        }))
        .unwrap().into();
            tasks.push(tokio::spawn(async move {
                engine.create_refund(&shop, input).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let report = h.engine.verify_audit().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 3 + 30);
    }
);

contract!(an_entry_appended_past_the_head_is_caught, |h| {
    let chain = history(&h).await;
    h.execute(&format!(
        "INSERT INTO audit_log (chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash) \
         SELECT chain, 8, at_us, actor, action, subject_id, data, hash, hash FROM audit_log WHERE chain = '{chain}' AND seq = 7"
    ))
    .await;
    let bad = h.engine.verify_audit().await.unwrap().first_bad.unwrap();
    assert_eq!((bad.seq, bad.problem), (8, ChainBreak::HeadMismatch));
});

contract!(verification_under_concurrent_appends_stays_ok, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "alipay", "amount": 1_000_000 }))
        .await;
    let writer = {
        let (engine, shop, payment_id) = (h.engine.clone(), shop.clone(), payment.id.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let input = serde_json::from_value::<bodies::CreateRefund>(json!({
                    "payment_id": payment_id, "amount": 10, "reason": "customer_cancel", "merchant_refund_no": format!("v{i}"),
                }))
                .unwrap().into();
                engine.create_refund(&shop, input).await.unwrap();
            }
        })
    };
    let mut verifications = 0;
    while !writer.is_finished() {
        let report = h.engine.verify_audit().await.unwrap();
        assert!(report.ok, "{report:?}");
        verifications += 1;
    }
    writer.await.unwrap();
    assert!(verifications > 0);
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

/// Cuts the last `n` entries of `chain` and moves its head back onto the entry before:
/// what someone with write access to the database would do to hide the latest actions.
async fn cut_tail(h: &Harness, chain: &str, n: i64) {
    let last: i64 = h
        .fetch_text(&format!(
            "SELECT CAST(seq AS TEXT) FROM audit_heads WHERE chain = '{chain}'"
        ))
        .await
        .parse()
        .unwrap();
    let keep = last - n;
    h.execute(&format!(
        "DELETE FROM audit_log WHERE chain = '{chain}' AND seq > {keep}"
    ))
    .await;
    let hash = h
        .fetch_text(&format!(
            "SELECT hash FROM audit_log WHERE chain = '{chain}' AND seq = {keep}"
        ))
        .await;
    h.execute(&format!(
        "UPDATE audit_heads SET seq = {keep}, hash = '{hash}' WHERE chain = '{chain}'"
    ))
    .await;
}

contract!(
    a_cut_tail_passes_alone_but_not_against_the_kept_heads,
    |h| {
        let chain = history(&h).await;
        let earlier = h.engine.verify_audit().await.unwrap();
        assert!(earlier.ok, "{earlier:?}");
        let kept = earlier.heads.clone();
        let head = kept.iter().find(|k| k.chain == chain).unwrap();
        assert_eq!(head.seq, 7);
        assert_eq!(head.hash.len(), 64);

        cut_tail(&h, &chain, 2).await;
        let alone = h.engine.verify_audit().await.unwrap();
        assert!(
            alone.ok,
            "the cut chain is consistent on its own: {alone:?}"
        );
        let against = h.engine.verify_audit_against(&kept).await.unwrap();
        assert!(!against.ok, "{against:?}");
        let bad = against.first_bad.unwrap();
        assert_eq!(
            (bad.chain.as_str(), bad.seq, bad.problem),
            (chain.as_str(), 6, ChainBreak::ShorterThanKeptHead)
        );
    }
);

contract!(
    a_chain_that_grew_since_passes_unless_the_kept_entry_differs,
    |h| {
        let chain = history(&h).await;
        let kept = h.engine.verify_audit().await.unwrap().heads;
        // More happens after the heads were kept.
        let shop = Principal::Merchant {
            merchant_id: chain.clone(),
            key_id: "key_test".into(),
            role: yuanlu_engine::auth::MerchantRole::Supervisor,
        };
        h.payment(&shop, json!({ "channel": "wechat", "amount": 500 }))
            .await;
        let grown = h.engine.verify_audit_against(&kept).await.unwrap();
        assert!(grown.ok, "{grown:?}");
        let now = grown.heads.iter().find(|k| k.chain == chain).unwrap();
        assert_eq!(now.seq, 8);

        // A kept head the chain no longer holds at that seq (rewritten history).
        let mut forged = kept.clone();
        for head in &mut forged {
            if head.chain == chain {
                head.hash = "f".repeat(64);
            }
        }
        let bad = h
            .engine
            .verify_audit_against(&forged)
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!(
            (bad.chain.as_str(), bad.seq, bad.problem),
            (chain.as_str(), 7, ChainBreak::DiffersFromKeptHead)
        );
        // A whole chain gone is shorter than its kept head too.
        let mut vanished = kept.clone();
        vanished.push(yuanlu_engine::audit::ChainHead {
            chain: "mch_gone".into(),
            seq: 3,
            hash: "0".repeat(64),
        });
        let bad = h
            .engine
            .verify_audit_against(&vanished)
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!(
            (bad.chain.as_str(), bad.seq, bad.problem),
            ("mch_gone", 1, ChainBreak::ShorterThanKeptHead)
        );
    }
);

contract!(advancing_the_clock_is_audited_on_the_system_chain, |h| {
    let from = h.clock_now();
    let to = h
        .engine
        .advance_clock_audited(&Principal::Admin, 3_600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(to - from, chrono::Duration::seconds(3_600));
    let row = h
        .fetch_text(
            "SELECT actor || '|' || action || '|' || data FROM audit_log \
             WHERE chain = 'system' ORDER BY seq DESC LIMIT 1",
        )
        .await;
    let (actor_action, data) = row.rsplit_once('|').unwrap();
    assert_eq!(actor_action, "acquirer:admin|clock.advanced");
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["seconds"], json!(3_600));
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(data[key].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    assert_eq!((at("from"), at("to")), (from, to));
    let report = h.engine.verify_audit().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(
        report
            .heads
            .iter()
            .any(|k| k.chain == "system" && k.seq >= 1)
    );
});
