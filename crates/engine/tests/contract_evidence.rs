//! Proof and identity (issue 15 item 1) on both backends: evidence files are checked by
//! content and size, kept outside the database by SHA-256 (the same file twice is one
//! piece of evidence), recorded on the audit chain; an ID check keeps four characters and
//! refuses a whole ID number; only the merchant and the acquirer read evidence; a refund
//! above the merchant's thresholds waits in `pending_review`, cannot be approved, and goes on
//! exactly as it would have once its evidence is complete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_domain::evidence::{EVIDENCE_BYTES_MAX, EvidenceKind};
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::cases::{CaseOutcome, OpenCase};
use yuanlu_engine::evidence::{EvidenceInput, EvidenceStore, IdCheckInput, Subject};
use yuanlu_engine::ids::new_id;
use yuanlu_engine::public::RefundFacts;
use yuanlu_engine::refunds::ReviewNote;
use yuanlu_engine::{Engine, EngineError};

use crate::common::Harness;

const REFERENCE: &str = "998877665544";
/// A JPEG as far as its first bytes go.
const VOUCHER: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00voucher of payment 1";
const RECEIPT: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR receipt";

/// The harness's engine with an evidence directory of its own.
fn with_store(h: &Harness) -> (Engine, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(new_id("yuanlu-evidence"));
    let engine = h
        .engine
        .clone()
        .with_evidence_store(EvidenceStore::open(&dir).unwrap());
    (engine, dir)
}

fn file(kind: EvidenceKind, bytes: &[u8]) -> EvidenceInput {
    EvidenceInput::File {
        kind,
        bytes: bytes.to_vec(),
    }
}

fn id_check(last_digits: &str) -> EvidenceInput {
    EvidenceInput::IdCheck(
        serde_json::from_value::<IdCheckInput>(json!({
            "kind": "id_check", "checked_by": "cashier Li",
            "document_type": "resident_id_card", "last_digits": last_digits
        }))
        .unwrap(),
    )
}

fn code(result: Result<impl std::fmt::Debug, EngineError>) -> &'static str {
    match result {
        Err(error) => error.code(),
        Ok(value) => panic!("expected a refusal, got {value:?}"),
    }
}

/// A merchant requiring the voucher above 100.00 CNY and an ID check above 500.00 CNY, with
/// a day of sales large enough that no refund here trips the refund ratio.
async fn strict_shop(h: &Harness) -> (Principal, String) {
    let shop = h
        .merchant_with(json!({ "evidence": {
            "require_voucher_above": 10_000, "require_id_check_above": 50_000 } }))
        .await;
    h.payment(&shop, json!({ "channel": "alipay", "amount": 5_000_000 }))
        .await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 200_000, "voucher": { "rrn": REFERENCE } }),
        )
        .await;
    (shop, payment.id)
}

contract!(a_held_refund_waits_for_its_evidence_then_goes_on, |h| {
    let (engine, dir) = with_store(&h);
    let (shop, payment_id) = strict_shop(&h).await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment_id, "amount": 60_000, "reason": "quality_issue", "merchant_refund_no": "EV-1" }),
        )
        .await;
    assert_eq!(refund.status, RefundStatus::PendingReview);
    assert!(
        refund.review.is_none(),
        "no review reason: {:?}",
        refund.review
    );
    assert_eq!(
        refund.evidence.required,
        [EvidenceKind::SaleVoucher, EvidenceKind::IdCheck]
    );
    assert_eq!(refund.evidence.missing, refund.evidence.required);

    // Not approvable while held, by the merchant or the acquirer.
    for who in [&shop, &Principal::Admin] {
        let approve = engine
            .approve_refund(who, &refund.id, ReviewNote::default())
            .await;
        assert_eq!(code(approve), "evidence_required");
    }

    let voucher = engine
        .add_evidence(
            &shop,
            Subject::refund(&refund.id),
            file(EvidenceKind::SaleVoucher, VOUCHER),
        )
        .await
        .unwrap();
    assert!(voucher.created);
    assert_eq!(
        voucher.evidence.content_type.map(|t| t.id()),
        Some("image/jpeg")
    );
    let halfway = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(halfway.status, RefundStatus::PendingReview);
    assert_eq!(halfway.evidence.present, [EvidenceKind::SaleVoucher]);
    assert_eq!(halfway.evidence.missing, [EvidenceKind::IdCheck]);

    // A whole ID number is refused and nothing is stored.
    let full = engine
        .add_evidence(
            &shop,
            Subject::refund(&refund.id),
            id_check("11010519491231002X"),
        )
        .await;
    assert_eq!(code(full), "full_id_number_refused");
    let stored = h
        .fetch_text("SELECT COALESCE(MAX(last_digits), '') FROM evidence")
        .await;
    assert_eq!(stored, "");
    assert_eq!(
        h.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE data LIKE '%19491231%'")
            .await,
        "0"
    );

    let check = engine
        .add_evidence(&shop, Subject::refund(&refund.id), id_check("002x"))
        .await
        .unwrap();
    let id = check.evidence.id_check.clone().unwrap();
    assert_eq!(id.last_digits, "002X");
    assert_eq!(id.checked_by, "cashier Li");

    // Complete: released to the queue, as a refund without the hold would have been.
    let released = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(released.status, RefundStatus::Queued);
    assert!(released.evidence.missing.is_empty());
    assert_eq!(
        released.evidence.present,
        [EvidenceKind::SaleVoucher, EvidenceKind::IdCheck]
    );
    let events: Vec<&str> = released.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        ["refund.created", "refund.evidence_complete"],
        "{events:?}"
    );
    // The release debited the merchant like any queued refund, and dispatch can take it.
    assert_eq!(
        h.fetch_text(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM refunds WHERE id = '{}' AND next_attempt_at_us IS NOT NULL",
            refund.id
        ))
        .await,
        "1"
    );
    let ledger = engine.check_ledger().await.unwrap();
    assert!(ledger.balanced, "{ledger:?}");

    // Each piece's SHA-256 is on the merchant's audit chain, and the chain verifies.
    for sha in [&voucher.evidence.sha256, &check.evidence.sha256] {
        let on_chain = h
            .fetch_text(&format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE action = 'evidence.added' AND data LIKE '%{sha}%'"
            ))
            .await;
        assert_eq!(on_chain, "1", "{sha}");
    }
    let verified = engine.verify_audit().await.unwrap();
    assert!(verified.ok, "{:?}", verified.first_bad);
    let _ = std::fs::remove_dir_all(dir);
});

contract!(a_refund_with_review_reasons_stays_for_its_reviewer, |h| {
    let (engine, dir) = with_store(&h);
    let (shop, payment_id) = strict_shop(&h).await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment_id, "amount": 20_000, "reason": "quality_issue",
                    "merchant_refund_no": "EV-2", "requested_by": { "role": "consumer" } }),
        )
        .await;
    assert_eq!(refund.status, RefundStatus::PendingReview);
    assert_eq!(refund.evidence.missing, [EvidenceKind::SaleVoucher]);
    engine
        .add_evidence(
            &shop,
            Subject::refund(&refund.id),
            file(EvidenceKind::SaleVoucher, VOUCHER),
        )
        .await
        .unwrap();
    let waiting = engine.get_refund(&shop, &refund.id).await.unwrap();
    assert_eq!(waiting.status, RefundStatus::PendingReview);
    assert!(waiting.evidence.missing.is_empty());
    // Now the reviewer can approve it.
    let approved = engine
        .approve_refund(&shop, &refund.id, ReviewNote::default())
        .await
        .unwrap();
    assert_eq!(approved.status, RefundStatus::Queued);

    // Below the thresholds nothing is required and nothing waits.
    let small = h
        .refund(
            &shop,
            json!({ "payment_id": payment_id, "amount": 10_000, "reason": "quality_issue", "merchant_refund_no": "EV-3" }),
        )
        .await;
    assert_eq!(small.status, RefundStatus::Queued);
    assert!(small.evidence.required.is_empty());
    let _ = std::fs::remove_dir_all(dir);
});

contract!(files_are_checked_by_content_and_size, |h| {
    let (engine, dir) = with_store(&h);
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 1_000, "reason": "quality_issue", "merchant_refund_no": "EV-4" }),
        )
        .await;
    let subject = Subject::refund(&refund.id);
    let gif = engine
        .add_evidence(
            &shop,
            subject,
            file(EvidenceKind::ReceiptPhoto, b"GIF89a\x01\x00"),
        )
        .await;
    assert_eq!(code(gif), "evidence_unsupported_type");
    // Named like a PDF, but an executable.
    let exe = engine
        .add_evidence(
            &shop,
            subject,
            file(EvidenceKind::SaleVoucher, b"MZ\x90\x00%PDF-"),
        )
        .await;
    assert_eq!(code(exe), "evidence_unsupported_type");
    let mut big = VOUCHER.to_vec();
    big.resize(EVIDENCE_BYTES_MAX + 1, 0);
    let too_large = engine
        .add_evidence(&shop, subject, file(EvidenceKind::SaleVoucher, &big))
        .await;
    assert_eq!(code(too_large), "evidence_too_large");
    big.truncate(EVIDENCE_BYTES_MAX);
    let at_limit = engine
        .add_evidence(&shop, subject, file(EvidenceKind::SaleVoucher, &big))
        .await
        .unwrap();
    assert_eq!(at_limit.evidence.size_bytes, EVIDENCE_BYTES_MAX as i64);
    let empty = engine
        .add_evidence(&shop, subject, file(EvidenceKind::SaleVoucher, b""))
        .await;
    assert_eq!(code(empty), "evidence_empty");
    let wrong_kind = engine
        .add_evidence(&shop, subject, file(EvidenceKind::IdCheck, VOUCHER))
        .await;
    assert_eq!(code(wrong_kind), "validation_error");
    let short = engine.add_evidence(&shop, subject, id_check("12")).await;
    assert_eq!(code(short), "validation_error");
    let listed = engine.list_evidence(&shop, subject).await.unwrap();
    assert_eq!(listed.len(), 1, "only the file at the limit: {listed:?}");

    // Without an evidence directory files are refused; an ID check (no file) is kept.
    let bare = h.engine.clone();
    let refused = bare
        .add_evidence(&shop, subject, file(EvidenceKind::ReceiptPhoto, RECEIPT))
        .await;
    assert_eq!(code(refused), "evidence_storage_not_configured");
    bare.add_evidence(&shop, subject, id_check("1234"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
});

contract!(the_same_file_twice_is_one_piece_of_evidence, |h| {
    let (engine, dir) = with_store(&h);
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "wechat", "amount": 10_000 }))
        .await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 1_000, "reason": "quality_issue", "merchant_refund_no": "EV-5" }),
        )
        .await;
    let subject = Subject::refund(&refund.id);
    let first = engine
        .add_evidence(&shop, subject, file(EvidenceKind::ReceiptPhoto, RECEIPT))
        .await
        .unwrap();
    let again = engine
        .add_evidence(&shop, subject, file(EvidenceKind::ReceiptPhoto, RECEIPT))
        .await
        .unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.evidence, first.evidence);
    let check = engine
        .add_evidence(&shop, subject, id_check("5678"))
        .await
        .unwrap();
    let check_again = engine
        .add_evidence(&shop, subject, id_check("5678"))
        .await
        .unwrap();
    assert!(!check_again.created);
    assert_eq!(check_again.evidence.id, check.evidence.id);
    assert_eq!(engine.list_evidence(&shop, subject).await.unwrap().len(), 2);
    assert_eq!(
        h.fetch_text(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE action = 'evidence.added'"
        )
        .await,
        "2"
    );

    // On disk under its SHA-256, and given back byte for byte.
    let sha = &first.evidence.sha256;
    let on_disk = std::fs::read(dir.join(&sha[..2]).join(sha)).unwrap();
    assert_eq!(on_disk, RECEIPT);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join(&sha[..2]))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let (evidence, bytes) = engine
        .evidence_content(&shop, subject, &first.evidence.id)
        .await
        .unwrap();
    assert_eq!(bytes, RECEIPT);
    assert_eq!(evidence.content_type.map(|t| t.id()), Some("image/png"));
    // An ID check has no file.
    let no_file = engine
        .evidence_content(&shop, subject, &check.evidence.id)
        .await;
    assert_eq!(code(no_file), "not_found");
    // A file changed on disk is not served as evidence.
    std::fs::write(dir.join(&sha[..2]).join(sha), b"\x89PNG\r\n\x1a\nchanged").unwrap();
    let tampered = engine
        .evidence_content(&shop, subject, &first.evidence.id)
        .await;
    assert_eq!(code(tampered), "internal_error");
    let _ = std::fs::remove_dir_all(dir);
});

contract!(only_the_merchant_and_the_acquirer_see_evidence, |h| {
    let (engine, dir) = with_store(&h);
    let shop = h.merchant().await;
    let other = h.merchant().await;
    let payment = h
        .payment(
            &shop,
            json!({ "channel": "wechat", "amount": 10_000, "voucher": { "rrn": REFERENCE } }),
        )
        .await;
    let refund = h
        .refund(
            &shop,
            json!({ "payment_id": payment.id, "amount": 1_000, "reason": "quality_issue", "merchant_refund_no": "EV-6" }),
        )
        .await;
    let subject = Subject::refund(&refund.id);
    let added = engine
        .add_evidence(&shop, subject, file(EvidenceKind::SaleVoucher, VOUCHER))
        .await
        .unwrap();
    engine
        .add_evidence(&shop, subject, id_check("4321"))
        .await
        .unwrap();

    // Another merchant: "not found", never "forbidden"; it cannot add either.
    assert_eq!(
        code(engine.list_evidence(&other, subject).await),
        "not_found"
    );
    assert_eq!(
        code(
            engine
                .evidence_content(&other, subject, &added.evidence.id)
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            engine
                .add_evidence(&other, subject, file(EvidenceKind::ReceiptPhoto, RECEIPT))
                .await
        ),
        "not_found"
    );
    // The acquirer reads it.
    assert_eq!(
        engine
            .list_evidence(&Principal::Admin, subject)
            .await
            .unwrap()
            .len(),
        2
    );
    let (_, bytes) = engine
        .evidence_content(&Principal::Admin, subject, &added.evidence.id)
        .await
        .unwrap();
    assert_eq!(bytes, VOUCHER);
    // The consumer's view of the refund carries nothing of it.
    let consumer = engine
        .public_refund(&RefundFacts::ById {
            refund_id: refund.id.clone(),
            reference: REFERENCE.to_string(),
        })
        .await
        .unwrap();
    let text = serde_json::to_string(&consumer).unwrap();
    for secret in ["evidence", "sha256", "4321", "sale_voucher", "cashier"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // A case carries evidence too, under the same rule.
    let case = match engine
        .open_case(
            &shop,
            OpenCase {
                refund_id: refund.id.clone(),
                kind: yuanlu_engine::cases::CaseKind::Other,
                description: "the consumer sent the receipt".into(),
                contact: None,
            },
        )
        .await
        .unwrap()
    {
        CaseOutcome::Created(case) | CaseOutcome::Existing(case) => case,
    };
    let on_case = engine
        .add_evidence(
            &Principal::Admin,
            Subject::case(&case.id),
            file(EvidenceKind::ReceiptPhoto, RECEIPT),
        )
        .await
        .unwrap();
    assert!(on_case.created);
    assert_eq!(on_case.evidence.merchant_id, refund.merchant_id);
    let listed = engine
        .list_evidence(&shop, Subject::case(&case.id))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        code(engine.list_evidence(&other, Subject::case(&case.id)).await),
        "not_found"
    );
    // Evidence of one subject is not read through another.
    assert_eq!(
        code(
            engine
                .evidence_content(&shop, Subject::case(&case.id), &added.evidence.id)
                .await
        ),
        "not_found"
    );
    let _ = std::fs::remove_dir_all(dir);
});
