//! Rows carry the domain's enums, parsed once as the store reads them: a refund row's
//! status, type, channel and send state are `RefundStatus`, `RefundType`, `Channel` and
//! `SendState`, and a stored text that names no known value is corrupt data, reported with
//! its column (never guessed, never a panic).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_domain::case::{CaseKind, CaseStatus};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::{RefundStatus, RefundType, SendState};
use yuanlu_engine::cases::OpenCase;
use yuanlu_store::StoreError;

contract!(rows_read_back_as_the_domains_enums, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "alipay", "amount": 10_000 }))
        .await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel",
                    "merchant_refund_no": "typed-1" }),
        )
        .await;
    let mut pooled = h.engine.db.acquire().await.unwrap();
    let row = pooled
        .conn()
        .get_refund(None, &refund.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status, row.refund_type, row.channel, row.send_state),
        (
            RefundStatus::Queued,
            RefundType::Refund,
            Channel::Alipay,
            SendState::NotSent
        )
    );
    let payment_row = pooled
        .conn()
        .get_payment(None, &payment.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payment_row.channel, Channel::Alipay);
    drop(pooled);
    let case = h
        .engine
        .open_case(
            &shop,
            OpenCase {
                refund_id: refund.id.clone(),
                kind: CaseKind::WrongAmount,
                description: "the amount is not what the cashier said".to_string(),
                contact: None,
            },
        )
        .await
        .unwrap();
    let mut pooled = h.engine.db.acquire().await.unwrap();
    let case_row = pooled
        .conn()
        .get_case(None, case.case().id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (case_row.kind, case_row.status),
        (CaseKind::WrongAmount, CaseStatus::Open)
    );
});

contract!(
    an_unknown_stored_text_is_corrupt_data_naming_its_column,
    |h| {
        let shop = h.merchant().await;
        let payment = h
            .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
            .await;
        let refund = h
            .refund(
                &shop,
                json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel",
                    "merchant_refund_no": "typed-2" }),
            )
            .await;
        // No CHECK guards `refunds.status`: a hand-edited row can hold any text.
        h.execute(&format!(
            "UPDATE refunds SET status = 'lost_in_the_post' WHERE id = '{}'",
            refund.id
        ))
        .await;
        let mut pooled = h.engine.db.acquire().await.unwrap();
        match pooled.conn().get_refund(None, &refund.id).await {
            Err(StoreError::Corrupt(message)) => {
                assert_eq!(
                    message,
                    "column status: a stored text that names no known value"
                );
            }
            other => panic!("expected corrupt data, got {other:?}"),
        }
        drop(pooled);
        // The engine answers such a read as its own failure, not as the caller's.
        let error = h.engine.get_refund(&shop, &refund.id).await.unwrap_err();
        assert_eq!(error.code(), "internal_error");
    }
);
