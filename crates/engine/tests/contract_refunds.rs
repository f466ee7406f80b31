//! The store contract suite for refunds: every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use serde_json::json;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::review::{RequiredReviewer, ReviewReason};
use yuanlu_engine::EngineError;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::refunds::CreateRefund;
use yuanlu_engine::refunds::{CreateOutcome, RecordReturn, RefundQuery, ReviewNote};
use yuanlu_engine::timeline::{EventFacts, MoneyAt, Step};
use yuanlu_web::api::bodies;

fn code(result: Result<impl std::fmt::Debug, EngineError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

fn create(body: serde_json::Value) -> CreateRefund {
    serde_json::from_value::<bodies::CreateRefund>(body)
        .unwrap()
        .into()
}

fn note(text: &str) -> ReviewNote {
    ReviewNote {
        note: Some(text.to_string()),
    }
}

contract!(refund_cap_holds_under_100_concurrent_requests, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 50_000 }))
        .await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (engine, shop) = (h.engine.clone(), shop.clone());
        let input = create(json!({
            "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel",
            "merchant_refund_no": format!("cap-{i}"),
        }));
        tasks.push(tokio::spawn(async move {
            engine.create_refund(&shop, input).await
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(CreateOutcome::Created(_)) => accepted += 1,
            Err(e) if e.code() == "amount_exceeds_refundable" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((accepted, refused), (50, 50));
    let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert_eq!(after.amount_refunded + after.amount_in_flight, 50_000);
    assert_eq!(after.refundable, 0);
    assert_eq!(after.refunds.len(), 50);
});

contract!(
    same_merchant_refund_no_sent_20_times_concurrently_makes_one_refund,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(&shop, json!({ "channel": "alipay", "amount": 10_000 }))
            .await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (engine, shop) = (h.engine.clone(), shop.clone());
            let input = create(json!({
                "payment_id": payment.id, "amount": 2_500, "reason": "customer_cancel",
                "merchant_refund_no": "same-no",
            }));
            tasks.push(tokio::spawn(async move {
                engine.create_refund(&shop, input).await
            }));
        }
        let mut ids = Vec::new();
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(CreateOutcome::Created(r)) => {
                    created += 1;
                    ids.push(r.id);
                }
                Ok(CreateOutcome::Existing(r)) => ids.push(r.id),
                Err(e) => panic!("a repeat must answer with the refund, got {e:?}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(ids.len(), 20);
        assert!(ids.iter().all(|id| *id == ids[0]));
        let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
        assert_eq!(after.amount_in_flight, 2_500);
    }
);

contract!(
    a_repeated_merchant_refund_no_with_other_terms_is_a_conflict,
    |h| {
        let shop = h.merchant().await;
        let first = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let second = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let original = h.refund(&shop, json!({ "payment_id": first.id, "amount": 100, "reason": "other", "note": "n", "merchant_refund_no": "R-1" })).await;
        let repeat = h.try_refund(&shop, json!({ "payment_id": first.id, "amount": 100, "reason": "other", "note": "n", "merchant_refund_no": "R-1" })).await;
        assert!(matches!(repeat, Ok(CreateOutcome::Existing(r)) if r.id == original.id));
        let other_amount = h.try_refund(&shop, json!({ "payment_id": first.id, "amount": 200, "reason": "other", "note": "n", "merchant_refund_no": "R-1" })).await;
        assert_eq!(code(other_amount), "merchant_refund_no_conflict");
        let other_payment = h.try_refund(&shop, json!({ "payment_id": second.id, "amount": 100, "reason": "other", "note": "n", "merchant_refund_no": "R-1" })).await;
        assert_eq!(code(other_payment), "merchant_refund_no_conflict");
    }
);

contract!(partial_wechat_refunds_return_13_12_13_fen_of_fee, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    assert_eq!(payment.fee, 38);
    let mut fees = Vec::new();
    for (i, amount) in [3_333, 3_333, 3_334].into_iter().enumerate() {
        let r = h.refund(&shop, json!({ "payment_id": payment.id, "amount": amount, "reason": "customer_cancel", "merchant_refund_no": format!("p{i}") })).await;
        fees.push(r.fee_refunded);
    }
    assert_eq!(fees, [13, 12, 13]);
    let refund_more = h.try_refund(&shop, json!({ "payment_id": payment.id, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "p4" })).await;
    assert_eq!(code(refund_more), "amount_exceeds_refundable");
});

contract!(a_refund_the_balance_cannot_fund_is_refused, |h| {
    let shop = h
        .merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
        .await;
    let payment = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 20_000 }))
        .await;
    // The merchant's only money is the payment's 198.80 net; card refunds return no fee.
    let short = h.try_refund(&shop, json!({ "payment_id": payment.id, "amount": 19_881, "reason": "customer_cancel", "merchant_refund_no": "f1" })).await;
    assert_eq!(code(short), "insufficient_merchant_balance");
    let within = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 19_880, "reason": "customer_cancel", "merchant_refund_no": "f2" })).await;
    assert_eq!(within.status, RefundStatus::Queued);
    let balance = h
        .engine
        .merchant_balance(shop.merchant_scope().unwrap())
        .await
        .unwrap();
    assert_eq!((balance.unsettled_fen, balance.carried_fen), (0, 0));
    assert!(h.engine.check_ledger().await.unwrap().balanced);
});

contract!(
    a_carry_forward_merchant_may_refund_beyond_its_balance,
    |h| {
        let shop = h
            .merchant_with(
                json!({ "funding": "carry_forward", "review": { "refund_ratio_percent": 100 } }),
            )
            .await;
        let payment = h
            .payment(&shop, json!({ "channel": "credit_card", "amount": 20_000 }))
            .await;
        h.refund(&shop, json!({ "payment_id": payment.id, "amount": 19_900, "reason": "customer_cancel", "merchant_refund_no": "f1" })).await;
        let balance = h
            .engine
            .merchant_balance(shop.merchant_scope().unwrap())
            .await
            .unwrap();
        assert_eq!(balance.unsettled_fen, -20, "the merchant owes 0.20");
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);

contract!(fees_follow_the_spec_table, |h| {
    let shop = h.merchant().await;
    let wechat = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 12_345 }))
        .await;
    assert_eq!(wechat.fee, 47);
    let debit = h
        .payment(
            &shop,
            json!({ "channel": "debit_card", "amount": 1_000_000 }),
        )
        .await;
    assert_eq!(debit.fee, 2_500);
    let custom = h
        .merchant_with(json!({ "channels": { "alipay": { "fee_rate_ppm": 2_000 } } }))
        .await;
    let alipay = h
        .payment(&custom, json!({ "channel": "alipay", "amount": 10_000 }))
        .await;
    assert_eq!(alipay.fee, 20);
});

contract!(
    a_full_same_day_card_refund_is_a_void_that_returns_the_whole_fee,
    |h| {
        let shop = h.merchant().await;
        // Other sales today, so the void stays below the refund-ratio review threshold.
        h.payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
            .await;
        let payment = h.payment(&shop, json!({ "channel": "credit_card", "amount": 20_000, "payer": { "card_last4": "1234" } })).await;
        assert_eq!(payment.fee, 120);
        let void = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "customer_cancel", "merchant_refund_no": "v1" })).await;
        assert_eq!(void.refund_type, RefundType::Void);
        assert_eq!(void.status, RefundStatus::Succeeded);
        assert_eq!(void.fee_refunded, 120);
        assert_eq!(void.amount, 20_000);
        let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
        assert!(after.voided);
        assert_eq!(
            (
                after.amount_refunded,
                after.amount_in_flight,
                after.refundable
            ),
            (20_000, 0, 0)
        );
        let again = h.try_refund(&shop, json!({ "payment_id": payment.id, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "v2" })).await;
        assert_eq!(code(again), "payment_voided");
    }
);

contract!(a_void_that_needs_review_completes_when_approved, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "debit_card", "amount": 30_000 }))
        .await;
    let void = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "duplicate_charge", "merchant_refund_no": "rv" })).await;
    assert_eq!(
        (void.refund_type, void.status),
        (RefundType::Void, RefundStatus::PendingReview)
    );
    assert_eq!(
        void.review.unwrap().reasons,
        vec![ReviewReason::RefundRatio],
        "the day's only sale, refunded in full"
    );
    let during = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert!(
        !during.voided,
        "a void waiting for review does not void the payment yet"
    );
    assert_eq!(during.refundable, 0, "but it holds the whole amount");
    let approved = h
        .engine
        .approve_refund(&Principal::Admin, &void.id, note("duplicate confirmed"))
        .await
        .unwrap();
    assert_eq!(approved.status, RefundStatus::Succeeded);
    let events: Vec<_> = approved.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        ["refund.created", "refund.approved", "refund.void_completed"]
    );
    let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert_eq!((after.amount_refunded, after.amount_in_flight), (30_000, 0));
});

contract!(a_rejected_void_frees_the_payment_again, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 30_000 }))
        .await;
    let void = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "customer_cancel", "merchant_refund_no": "rj" })).await;
    h.engine
        .reject_refund(&Principal::Admin, &void.id, note("customer kept the goods"))
        .await
        .unwrap();
    let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
    assert!(!after.voided);
    assert_eq!(after.refundable, 30_000);
});

contract!(a_card_refund_on_a_later_day_is_a_refund_not_a_void, |h| {
    let shop = h.merchant().await;
    // Other sales fund the refund (its card fee is not returned).
    h.payment(&shop, json!({ "channel": "alipay", "amount": 100_000 }))
        .await;
    let payment = h
        .payment(&shop, json!({ "channel": "unionpay_qr", "amount": 20_000 }))
        .await;
    h.clock.advance(Duration::days(1));
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "customer_cancel", "merchant_refund_no": "late" })).await;
    assert_eq!(refund.refund_type, RefundType::Refund);
    assert_eq!(
        refund.fee_refunded, 0,
        "unionpay_qr returns no fee by default"
    );
});

contract!(a_settled_day_makes_a_same_day_refund_a_refund, |h| {
    let shop = h.merchant().await;
    // Other sales fund the refund (its card fee is not returned).
    h.payment(&shop, json!({ "channel": "alipay", "amount": 100_000 }))
        .await;
    let payment = h
        .payment(&shop, json!({ "channel": "debit_card", "amount": 5_000 }))
        .await;
    h.execute("INSERT INTO settlement_runs (business_date, ran_at_us) VALUES ('2026-11-20', 0)")
        .await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "customer_cancel", "merchant_refund_no": "s" })).await;
    assert_eq!(refund.refund_type, RefundType::Refund);
});

contract!(large_refunds_wait_for_the_acquirer, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 2_000_000 }))
        .await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 500_000, "reason": "quality_issue", "merchant_refund_no": "big" })).await;
    assert_eq!(refund.status, RefundStatus::PendingReview);
    let review = refund.review.clone().unwrap();
    assert_eq!(review.required_by, RequiredReviewer::Acquirer);
    assert!(review.reasons.contains(&ReviewReason::LargeAmount));
    let by_merchant = h.engine.approve_refund(&shop, &refund.id, note("ok")).await;
    assert_eq!(code(by_merchant), "forbidden");
    let approved = h
        .engine
        .approve_refund(&Principal::Admin, &refund.id, note("checked the receipt"))
        .await
        .unwrap();
    assert_eq!(approved.status, RefundStatus::Queued);
    assert_eq!(
        approved.review.unwrap().note.as_deref(),
        Some("checked the receipt")
    );
    let twice = h
        .engine
        .approve_refund(&Principal::Admin, &refund.id, note("again"))
        .await;
    assert_eq!(code(twice), "invalid_transition");
});

contract!(
    member_refunds_can_be_approved_by_a_supervisor_but_not_staff,
    |h| {
        let shop = h.merchant().await;
        let Principal::Merchant { merchant_id, .. } = shop.clone() else {
            unreachable!()
        };
        let staff = Principal::Merchant {
            merchant_id,
            key_id: "key_staff".into(),
            role: MerchantRole::Staff,
        };
        let payment = h
            .payment(
                &shop,
                json!({ "channel": "alipay", "amount": 10_000, "member": true }),
            )
            .await;
        let refund = h.refund(&staff, json!({ "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel", "merchant_refund_no": "m1" })).await;
        assert_eq!(refund.status, RefundStatus::PendingReview);
        assert_eq!(
            refund.review.as_ref().unwrap().required_by,
            RequiredReviewer::Merchant
        );
        assert_eq!(
            code(
                h.engine
                    .approve_refund(&staff, &refund.id, note("me"))
                    .await
            ),
            "forbidden"
        );
        let approved = h
            .engine
            .approve_refund(&shop, &refund.id, note("regular customer"))
            .await
            .unwrap();
        assert_eq!(approved.status, RefundStatus::Queued);
    }
);

contract!(
    rejecting_and_canceling_release_the_held_amount_and_fee,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(
                &shop,
                json!({ "channel": "wechat", "amount": 10_000, "member": true }),
            )
            .await;
        let held = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 4_000, "reason": "customer_cancel", "merchant_refund_no": "a" })).await;
        let during = h.engine.get_payment(&shop, &payment.id).await.unwrap();
        assert_eq!((during.amount_in_flight, during.refundable), (4_000, 6_000));
        assert_eq!(
            code(
                h.engine
                    .reject_refund(&shop, &held.id, ReviewNote::default())
                    .await
            ),
            "validation_error",
            "a rejection needs a note"
        );
        let rejected = h
            .engine
            .reject_refund(&shop, &held.id, note("goods not returned"))
            .await
            .unwrap();
        assert_eq!(rejected.status, RefundStatus::Rejected);
        let after = h.engine.get_payment(&shop, &payment.id).await.unwrap();
        assert_eq!((after.amount_in_flight, after.refundable), (0, 10_000));
        let second = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 10_000, "reason": "customer_cancel", "merchant_refund_no": "b" })).await;
        assert_eq!(
            second.fee_refunded, 38,
            "the released fee share is available again"
        );
        let canceled = h
            .engine
            .cancel_refund(&shop, &second.id, ReviewNote::default())
            .await
            .unwrap();
        assert_eq!(canceled.status, RefundStatus::Canceled);
        assert_eq!(
            code(
                h.engine
                    .cancel_refund(&shop, &second.id, ReviewNote::default())
                    .await
            ),
            "invalid_transition"
        );
        let last = h.engine.get_payment(&shop, &payment.id).await.unwrap();
        assert_eq!((last.amount_in_flight, last.refundable), (0, 10_000));
        // The rejected and the canceled refund both left the merchant's day.
        let check = h.engine.check_ledger().await.unwrap();
        assert!(
            check.balanced && check.mismatched_days.is_empty(),
            "{check:?}"
        );
    }
);

contract!(shipped_goods_come_back_before_the_money, |h| {
    let shop = h.merchant().await;
    h.payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
        .await;
    let payment = h.payment(&shop, json!({ "channel": "wechat", "amount": 8_000, "order": { "merchant_order_no": "O-1", "shipping_status": "shipped" } })).await;
    let refund = h.refund(&shop, json!({ "payment_id": payment.id, "reason": "quality_issue", "merchant_refund_no": "g" })).await;
    assert_eq!(refund.status, RefundStatus::AwaitingReturn);
    let returned = h
        .engine
        .record_return(
            &shop,
            &refund.id,
            RecordReturn {
                tracking_no: "SF1234567890".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(returned.status, RefundStatus::Queued);
    assert_eq!(returned.tracking_no.as_deref(), Some("SF1234567890"));
    let again = h
        .engine
        .record_return(
            &shop,
            &refund.id,
            RecordReturn {
                tracking_no: "SF1".into(),
            },
        )
        .await;
    assert_eq!(code(again), "invalid_transition");
    let unshipped = h.payment(&shop, json!({ "channel": "wechat", "amount": 8_000, "order": { "merchant_order_no": "O-2", "shipping_status": "unshipped" } })).await;
    let direct = h.refund(&shop, json!({ "payment_id": unshipped.id, "reason": "not_shipped", "merchant_refund_no": "u" })).await;
    assert_eq!(direct.status, RefundStatus::Queued);
});

contract!(refund_windows_close_per_channel, |h| {
    let shop = h.merchant().await;
    let card = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 1_000 }))
        .await;
    let wallet = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 1_000 }))
        .await;
    h.clock.advance(Duration::days(181));
    let late_card = h.try_refund(&shop, json!({ "payment_id": card.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "w1" })).await;
    assert_eq!(code(late_card), "refund_window_expired");
    let wallet_refund = h.refund(&shop, json!({ "payment_id": wallet.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "w2" })).await;
    assert!(
        wallet_refund
            .review
            .unwrap()
            .reasons
            .contains(&ReviewReason::LateRefund)
    );
});

contract!(at_most_50_refunds_per_payment, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "alipay", "amount": 100_000 }))
        .await;
    for i in 0..50 {
        h.refund(&shop, json!({ "payment_id": payment.id, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": format!("n{i}") })).await;
    }
    let fifty_first = h.try_refund(&shop, json!({ "payment_id": payment.id, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "n50" })).await;
    assert_eq!(code(fifty_first), "too_many_refunds");
});

contract!(
    a_merchant_never_sees_or_touches_another_merchants_data,
    |h| {
        let a = h.merchant().await;
        let b = h.merchant().await;
        let payment = h
            .payment(&a, json!({ "channel": "wechat", "amount": 1_000 }))
            .await;
        let refund = h.refund(&a, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "x" })).await;
        assert_eq!(
            code(h.engine.get_payment(&b, &payment.id).await),
            "payment_not_found"
        );
        assert_eq!(code(h.engine.get_refund(&b, &refund.id).await), "not_found");
        assert_eq!(
            code(
                h.engine
                    .cancel_refund(&b, &refund.id, ReviewNote::default())
                    .await
            ),
            "not_found"
        );
        let steal = h.try_refund(&b, json!({ "payment_id": payment.id, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "x" })).await;
        assert_eq!(code(steal), "payment_not_found");
        let listed = h
            .engine
            .list_refunds(
                &b,
                RefundQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(listed.data.is_empty());
        let a_id = a.merchant_scope().unwrap().to_string();
        assert_eq!(code(h.engine.get_merchant(&b, &a_id).await), "not_found");
    }
);

contract!(refund_lists_filter_and_paginate, |h| {
    let shop = h.merchant().await;
    let wechat = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 100_000 }))
        .await;
    let alipay = h
        .payment(
            &shop,
            json!({ "channel": "alipay", "amount": 100_000, "member": true }),
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(h.refund(&shop, json!({ "payment_id": wechat.id, "amount": 10, "reason": "customer_cancel", "merchant_refund_no": format!("l{i}") })).await.id);
    }
    h.refund(&shop, json!({ "payment_id": alipay.id, "amount": 10, "reason": "customer_cancel", "merchant_refund_no": "la" })).await;
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .engine
            .list_refunds(
                &shop,
                RefundQuery {
                    payment_id: Some(wechat.id.clone()),
                    limit: 2,
                    starting_after: after.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.data.iter().map(|r| r.id.clone()));
        if !page.has_more {
            break;
        }
        after = page.data.last().map(|r| r.id.clone());
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every refund once");
    let pending = h
        .engine
        .list_refunds(
            &shop,
            RefundQuery {
                status: Some(RefundStatus::PendingReview),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pending.data.len(), 1);
    let by_channel = h
        .engine
        .list_refunds(
            &shop,
            RefundQuery {
                channel: Some("alipay".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_channel.data.len(), 1);
    let future = h
        .engine
        .list_refunds(
            &shop,
            RefundQuery {
                created_from: Some(h.clock_now() + Duration::seconds(1)),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(future.data.is_empty());
    let overdue = h
        .engine
        .list_refunds(
            &shop,
            RefundQuery {
                overdue: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        overdue.data.is_empty(),
        "nothing has an expected arrival before dispatch"
    );
});

contract!(refunds_above_half_of_todays_sales_need_the_acquirer, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    let within = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 5_000, "reason": "customer_cancel", "merchant_refund_no": "r1" })).await;
    assert_eq!(within.status, RefundStatus::Queued);
    let beyond = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "r2" })).await;
    assert_eq!(beyond.status, RefundStatus::PendingReview);
    assert_eq!(
        beyond.review.unwrap().reasons,
        vec![ReviewReason::RefundRatio]
    );
});

contract!(
    the_timeline_tells_who_did_what_and_where_the_money_is,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(
                &shop,
                json!({ "channel": "wechat", "amount": 10_000, "member": true }),
            )
            .await;
        let refund = h.refund(&shop, json!({ "payment_id": payment.id, "amount": 1_000, "reason": "customer_cancel", "merchant_refund_no": "t", "requested_by": { "name": "cashier Li" } })).await;
        let approved = h
            .engine
            .approve_refund(&shop, &refund.id, note("known customer"))
            .await
            .unwrap();
        assert_eq!(approved.timeline.len(), 2);
        assert!(matches!(
            &approved.timeline[0].facts,
            EventFacts::Created { requested_by_name: Some(name), amount: Some(1_000), .. } if name == "cashier Li"
        ));
        assert_eq!(approved.timeline[1].event, "refund.approved");
        assert_eq!(
            approved.timeline[1].facts,
            EventFacts::Approved {
                note: Some("known customer".into())
            }
        );
        assert_eq!(approved.timeline[1].status, Some(RefundStatus::Queued));
        assert_eq!(approved.timeline[1].money_at, Some(MoneyAt::HeldForRefund));
        assert_eq!(
            approved.next_step.unwrap().step,
            Step::Send {
                channel: Channel::Wechat
            }
        );
    }
);

contract!(
    an_approval_is_refused_when_the_balance_no_longer_funds_the_refund,
    |h| {
        let shop = h
            .merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
            .await;
        let member = h
            .payment(
                &shop,
                json!({ "channel": "credit_card", "amount": 10_000, "member": true }),
            )
            .await;
        let other = h
            .payment(&shop, json!({ "channel": "credit_card", "amount": 10_000 }))
            .await;
        // Balance: 2 × 99.40. The member refund waits for review and is not debited yet.
        let waiting = h.refund(&shop, json!({ "payment_id": member.id, "amount": 9_900, "reason": "customer_cancel", "merchant_refund_no": "w" })).await;
        assert_eq!(waiting.status, RefundStatus::PendingReview);
        // Meanwhile another refund takes most of the balance: 198.80 − 99.99 = 98.81 < 99.00.
        h.refund(&shop, json!({ "payment_id": other.id, "amount": 9_999, "reason": "customer_cancel", "merchant_refund_no": "o" })).await;
        let approval = h
            .engine
            .approve_refund(&shop, &waiting.id, note("ok"))
            .await;
        assert_eq!(code(approval), "insufficient_merchant_balance");
        let still = h.engine.get_refund(&shop, &waiting.id).await.unwrap();
        assert_eq!(
            still.status,
            RefundStatus::PendingReview,
            "nothing half-written"
        );
        assert!(h.engine.check_ledger().await.unwrap().balanced);
    }
);

// 限额 counts the refunds held or paid: one canceled leaves the merchant's day (its running
// total, `merchant_days`), so the next refund fits again; the day's totals stay provable.
contract!(
    a_canceled_refund_no_longer_counts_against_the_daily_limit,
    |h| {
        let shop = h
            .merchant_with(json!({ "daily_refund_limit": { "count": 1, "amount_fen": 5_000 } }))
            .await;
        let payment = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let ask = |no: &str, amount: i64| json!({ "payment_id": payment.id, "amount": amount, "reason": "customer_cancel", "merchant_refund_no": no });
        let first = h.refund(&shop, ask("d-1", 5_000)).await;
        assert_eq!(
            code(h.try_refund(&shop, ask("d-2", 1_000)).await),
            "daily_refund_limit_exceeded"
        );
        h.engine
            .cancel_refund(&shop, &first.id, ReviewNote::default())
            .await
            .unwrap();
        let second = h.refund(&shop, ask("d-3", 5_000)).await;
        assert_eq!(second.status, RefundStatus::Queued);
        assert_eq!(
            code(h.try_refund(&shop, ask("d-4", 1)).await),
            "daily_refund_limit_exceeded",
            "the second counts in its place"
        );
        let check = h.engine.check_ledger().await.unwrap();
        assert!(
            check.balanced && check.mismatched_days.is_empty(),
            "{check:?}"
        );
    }
);
