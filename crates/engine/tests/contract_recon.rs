//! The contract suite for reconciliation (对账): every test runs on SQLite and on PostgreSQL.
//!
//! Statements are written with `yuanlu-reconcile`'s writers from real payments and refunds
//! created through the engine. The harness engine has no channels, so no refund is ever
//! dispatched: the tests put refunds where a channel would have (succeeded or processing,
//! with their dispatch columns and the payment's counters) by writing those columns
//! directly with `h.execute("UPDATE …")`, and say so where they do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use yuanlu_engine::EngineError;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::reconciliation::{
    ExceptionQuery, ExceptionStatus, ReconError, ReconException, ReconciliationView,
};
use yuanlu_engine::views::{Payment, Refund};
use yuanlu_reconcile::{
    DiscrepancySpec, LineKind, LineStatus, ReconClass, Statement, StatementChannel, StatementLine,
};

use common::Harness;

/// The business date of the scenarios: the harness clock starts on it, 10:00 in Shanghai.
fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn shanghai(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn merchant_id(who: &Principal) -> String {
    who.merchant_scope().unwrap().to_string()
}

async fn count(h: &Harness, sql: &str) -> i64 {
    h.fetch_text(&format!("SELECT CAST(({sql}) AS TEXT)"))
        .await
        .parse()
        .unwrap()
}

/// Rows that an import writes, for "nothing was stored" checks.
async fn stored_rows(h: &Harness) -> (i64, i64, i64) {
    (
        count(h, "SELECT COUNT(*) FROM reconciliations").await,
        count(h, "SELECT COUNT(*) FROM recon_exceptions").await,
        count(h, "SELECT COUNT(*) FROM audit_log").await,
    )
}

/// Direct write: the refund was sent at `at` and the channel confirmed it then, as the
/// dispatcher would have recorded it (the harness has no channels); the payment's counters
/// move the amount from in flight to refunded, as the engine does on success.
async fn force_succeeded(h: &Harness, refund: &Refund, at: DateTime<Utc>) {
    let us = at.timestamp_micros();
    h.execute(&format!(
        "UPDATE refunds SET status = 'succeeded', send_state = 'accepted', dispatched_at_us = {us}, \
         succeeded_at_us = {us}, channel_refund_id = 'CH{}', next_attempt_at_us = NULL WHERE id = '{}'",
        refund.id, refund.id
    ))
    .await;
    h.execute(&format!(
        "UPDATE payments SET amount_refunded_fen = amount_refunded_fen + {0}, \
         amount_in_flight_fen = amount_in_flight_fen - {0} WHERE id = '{1}'",
        refund.amount, refund.payment_id
    ))
    .await;
}

/// Direct write: the refund was sent at `at` and the channel has not confirmed it.
async fn force_processing(h: &Harness, refund: &Refund, at: DateTime<Utc>) {
    let us = at.timestamp_micros();
    h.execute(&format!(
        "UPDATE refunds SET status = 'processing', send_state = 'accepted', dispatched_at_us = {us}, \
         channel_refund_id = 'CH{0}', next_attempt_at_us = NULL WHERE id = '{0}'",
        refund.id
    ))
    .await;
}

async fn refund_of(h: &Harness, shop: &Principal, payment: &Payment, amount: i64) -> Refund {
    h.refund(
        shop,
        json!({
            "payment_id": payment.id, "amount": amount, "reason": "customer_cancel",
            "merchant_refund_no": format!("no-{}", payment.id),
        }),
    )
    .await
}

fn payment_line(payment: &Payment, n: usize) -> StatementLine {
    StatementLine {
        line_no: 0,
        kind: LineKind::Payment,
        channel_txn_id: Some(format!("T{n:08}")),
        our_ref: payment.id.clone(),
        payment_ref: None,
        amount_fen: payment.amount,
        status: LineStatus::Succeeded,
        occurred_at: payment.captured_at,
        account: Some("622848******1234".into()),
    }
}

fn refund_line(refund: &Refund, amount_fen: i64, at: DateTime<Utc>) -> StatementLine {
    StatementLine {
        line_no: 0,
        kind: LineKind::Refund,
        channel_txn_id: Some(format!("CH{}", refund.id)),
        our_ref: refund.id.clone(),
        payment_ref: Some(refund.payment_id.clone()),
        amount_fen,
        status: LineStatus::Succeeded,
        occurred_at: at,
        account: Some("622848******1234".into()),
    }
}

/// A day of business with one of every discrepancy, and the statement that shows them.
struct Scenario {
    shop: Principal,
    /// The statement of `day()`: payments first, then refunds, then an unknown refund.
    statement: Statement,
    /// What matching must find, in report order.
    expected: Vec<(ReconClass, String)>,
    /// Refs that must open no exception.
    matched: Vec<String>,
}

/// On `day()`: payments P0–P5 on `channel`; refunds R1–R5 of P0–P4 (R1 matched, R2 listed
/// one fen more, R3 not listed, R4 listed twice, R5 processing with us but listed as
/// succeeded), and an unknown refund listed. The next day, after `day()` is settled, P5 is
/// refunded in full (R6): P5 was credited to the merchant and is fully refunded.
async fn scenario(h: &Harness, format: StatementChannel, channel: &str) -> Scenario {
    let shop = h.merchant().await;
    let mut payments = Vec::new();
    for i in 0..6 {
        let amount = if i == 5 { 8_000 } else { 10_000 + 100 * i };
        payments.push(
            h.payment(&shop, json!({ "channel": channel, "amount": amount }))
                .await,
        );
    }
    let mut refunds = Vec::new();
    for payment in &payments[..5] {
        refunds.push(refund_of(h, &shop, payment, 1_000).await);
    }
    let paid_at = shanghai("2026-11-20T12:00:00+08:00");
    for refund in &refunds[..4] {
        force_succeeded(h, refund, paid_at).await;
    }
    force_processing(h, &refunds[4], paid_at).await;

    // The next day: settle the day, then refund P5 in full (funded by a new sale).
    h.clock.advance(Duration::days(1));
    h.engine
        .run_settlement(&Principal::Admin, day())
        .await
        .unwrap();
    h.payment(&shop, json!({ "channel": channel, "amount": 50_000 }))
        .await;
    let full = refund_of(h, &shop, &payments[5], 8_000).await;
    force_succeeded(h, &full, shanghai("2026-11-21T11:00:00+08:00")).await;

    let mut lines: Vec<StatementLine> = payments
        .iter()
        .enumerate()
        .map(|(n, p)| payment_line(p, n))
        .collect();
    lines.push(refund_line(&refunds[0], 1_000, paid_at));
    lines.push(refund_line(&refunds[1], 1_001, paid_at));
    lines.push(refund_line(&refunds[3], 1_000, paid_at));
    lines.push(refund_line(
        &refunds[3],
        1_000,
        paid_at + Duration::minutes(5),
    ));
    lines.push(refund_line(&refunds[4], 1_000, paid_at));
    let unknown = "rf_01unknown0000000000000000".to_string();
    lines.push(StatementLine {
        our_ref: unknown.clone(),
        channel_txn_id: Some("CHunknown".into()),
        amount_fen: 777,
        ..refund_line(&refunds[0], 777, paid_at)
    });
    for (i, line) in lines.iter_mut().enumerate() {
        line.line_no = yuanlu_reconcile::first_line(format) + i as u64;
    }
    let statement = Statement {
        channel: format,
        business_date: day(),
        lines,
        declared_totals: None,
    };
    Scenario {
        shop,
        statement,
        expected: vec![
            (ReconClass::CreditedAfterRefund, payments[5].id.clone()),
            (ReconClass::AmountMismatch, refunds[1].id.clone()),
            (ReconClass::DuplicateInChannel, refunds[3].id.clone()),
            (ReconClass::StatusMismatch, refunds[4].id.clone()),
            (ReconClass::UnexpectedInChannel, unknown),
            (ReconClass::MissingInChannel, refunds[2].id.clone()),
        ],
        matched: payments[..5]
            .iter()
            .map(|p| p.id.clone())
            .chain([refunds[0].id.clone()])
            .collect(),
    }
}

async fn import(
    h: &Harness,
    format: StatementChannel,
    bytes: &[u8],
) -> Result<ReconciliationView, EngineError> {
    h.engine
        .import_statement(&Principal::Admin, format, bytes, &mut |_| {})
        .await
}

async fn all_exceptions(h: &Harness, reconciliation_id: &str) -> Vec<ReconException> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .engine
            .list_exceptions(
                &Principal::Admin,
                reconciliation_id,
                ExceptionQuery {
                    status: None,
                    limit: 100,
                    starting_after: after.take(),
                },
            )
            .await
            .unwrap();
        all.extend(page.data);
        if !page.has_more {
            return all;
        }
        after = all.last().map(|e| e.id.clone());
    }
}

/// Imports the scenario's statement in `format` and checks every class and exception.
async fn every_class_is_found(h: &Harness, format: StatementChannel, channel: &str) {
    let s = scenario(h, format, channel).await;
    let bytes = yuanlu_reconcile::write(&s.statement);
    let mut reported = Vec::new();
    let view = h
        .engine
        .import_statement(&Principal::Admin, format, &bytes, &mut |n| reported.push(n))
        .await
        .unwrap();
    assert_eq!(
        reported.last(),
        Some(&(bytes.len() as u64)),
        "progress ends at the file's size"
    );
    assert!(!view.already_imported);
    assert_eq!(view.channel, format.id());
    assert_eq!(view.business_date, "2026-11-20");
    assert_eq!(view.lines, 12);
    assert_eq!(view.records, 11, "P0–P5 and R1–R5");
    assert!(view.report.payments_reconciled);
    assert_eq!(
        (view.status.as_str(), view.exceptions, view.open_exceptions),
        ("open", 6, 6)
    );
    let class_count = |class| view.report.class(class).count;
    assert_eq!(
        class_count(ReconClass::Matched),
        7,
        "P0–P4, R1, R4's first line"
    );
    for class in [
        ReconClass::AmountMismatch,
        ReconClass::MissingInChannel,
        ReconClass::UnexpectedInChannel,
        ReconClass::DuplicateInChannel,
        ReconClass::StatusMismatch,
        ReconClass::CreditedAfterRefund,
    ] {
        assert_eq!(class_count(class), 1, "{format:?}: {}", class.id());
    }
    let amounts = view.report.class(ReconClass::AmountMismatch);
    assert_eq!((amounts.channel_amount, amounts.our_amount), (1_001, 1_000));

    let exceptions = all_exceptions(h, &view.id).await;
    let found: Vec<(ReconClass, String)> = exceptions
        .iter()
        .map(|e| {
            let class = ReconClass::ALL
                .into_iter()
                .find(|c| c.id() == e.class)
                .unwrap();
            (class, e.our_ref.clone().unwrap())
        })
        .collect();
    assert_eq!(found, s.expected, "{format:?}");
    for exception in &exceptions {
        assert_eq!(exception.status, "open");
        let expected_merchant =
            (exception.class != "unexpected_in_channel").then(|| merchant_id(&s.shop));
        assert_eq!(
            exception.merchant_id, expected_merchant,
            "{}",
            exception.class
        );
        assert!(!exception.detail.is_empty());
        assert_eq!(
            exception.line_no.is_none(),
            exception.class == "missing_in_channel"
        );
    }
    for our_ref in &s.matched {
        assert!(
            exceptions
                .iter()
                .all(|e| e.our_ref.as_ref() != Some(our_ref)),
            "{our_ref} matched and must open no exception"
        );
    }
    assert_eq!(
        count(h, "SELECT COUNT(*) FROM audit_log WHERE chain = 'system' AND action = 'reconciliation.imported'").await,
        1
    );
    assert!(h.engine.verify_audit().await.unwrap().ok);
    let again = h
        .engine
        .get_reconciliation(&Principal::Admin, &view.id)
        .await
        .unwrap();
    assert_eq!(again.report, view.report);
}

contract!(wechat_bill_finds_every_class, |h| {
    every_class_is_found(&h, StatementChannel::Wechat, "wechat").await;
});

contract!(alipay_bill_finds_every_class, |h| {
    every_class_is_found(&h, StatementChannel::Alipay, "alipay").await;
});

contract!(card_file_finds_every_class, |h| {
    every_class_is_found(&h, StatementChannel::Card, "credit_card").await;
});

contract!(yuanlu_csv_finds_every_class, |h| {
    every_class_is_found(&h, StatementChannel::Yuanlu, "unionpay_qr").await;
});

contract!(a_refunds_only_statement_reports_no_payment_missing, |h| {
    let s = scenario(&h, StatementChannel::Wechat, "wechat").await;
    let mut statement = s.statement.clone();
    statement.lines.retain(|l| l.kind == LineKind::Refund);
    let view = import(
        &h,
        StatementChannel::Wechat,
        &yuanlu_reconcile::write(&statement),
    )
    .await
    .unwrap();
    assert!(!view.report.payments_reconciled);
    assert_eq!(view.records, 5, "refunds only");
    let exceptions = all_exceptions(&h, &view.id).await;
    let classes: Vec<&str> = exceptions.iter().map(|e| e.class.as_str()).collect();
    assert_eq!(
        classes,
        [
            "amount_mismatch",
            "duplicate_in_channel",
            "status_mismatch",
            "unexpected_in_channel",
            "missing_in_channel"
        ]
    );
    assert!(exceptions.iter().all(|e| e.kind == "refund"));
});

/// `bytes` with field `field` (0-based) of line `line` (1-based) replaced by `value`.
fn corrupt(bytes: &[u8], separator: char, line: usize, field: usize, value: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut fields: Vec<&str> = lines[line - 1].split(separator).collect();
    fields[field] = value;
    lines[line - 1] = fields.join(&separator.to_string());
    lines.join("\n").into_bytes()
}

contract!(
    a_malformed_file_is_refused_naming_its_line_and_nothing_is_stored,
    |h| {
        let s = scenario(&h, StatementChannel::Card, "credit_card").await;
        let good = yuanlu_reconcile::write(&s.statement);
        // Something stored before, so "nothing stored" is not "nothing at all".
        import(&h, StatementChannel::Card, &good).await.unwrap();
        let before = stored_rows(&h).await;

        // Card file: line 1 is the header, line 7 the sixth detail line; field 5 the amount.
        let card = corrupt(&good, '|', 7, 5, "12x");
        let error = import(&h, StatementChannel::Card, &card).await.unwrap_err();
        assert_eq!(error.code(), "validation_error");
        match &error {
            EngineError::Validation { field, message } => {
                assert_eq!(field, "file");
                assert!(message.starts_with("line 7: "), "{message}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert_eq!(stored_rows(&h).await, before, "nothing stored");

        // yuanlu CSV: line 1 the date, line 2 the header, line 7 the fifth line; field 3.
        let mut csv_statement = s.statement.clone();
        csv_statement.channel = StatementChannel::Yuanlu;
        let csv = corrupt(&yuanlu_reconcile::write(&csv_statement), ',', 7, 3, "1.5");
        let error = import(&h, StatementChannel::Yuanlu, &csv)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("line 7: "), "{error}");
        assert_eq!(stored_rows(&h).await, before, "nothing stored");

        // A file of another format is refused on its first line.
        let error = import(&h, StatementChannel::Wechat, &good)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("line 1: "), "{error}");
        assert_eq!(stored_rows(&h).await, before, "nothing stored");
        assert!(h.engine.verify_audit().await.unwrap().ok);
    }
);

contract!(
    reimporting_the_same_file_returns_the_same_reconciliation,
    |h| {
        let s = scenario(&h, StatementChannel::Alipay, "alipay").await;
        let bytes = yuanlu_reconcile::write(&s.statement);
        let first = import(&h, StatementChannel::Alipay, &bytes).await.unwrap();
        let stored = stored_rows(&h).await;
        let mut reported = 0;
        let second = h
            .engine
            .import_statement(
                &Principal::Admin,
                StatementChannel::Alipay,
                &bytes,
                &mut |n| reported = n,
            )
            .await
            .unwrap();
        assert!(second.already_imported);
        assert_eq!(reported, bytes.len() as u64, "the progress bar still ends");
        assert_eq!(second.id, first.id);
        assert_eq!(second.report, first.report);
        assert_eq!(stored_rows(&h).await, stored, "nothing new written");

        // Another file for the same date is another reconciliation.
        let mut other = s.statement.clone();
        other.lines.pop();
        let third = import(
            &h,
            StatementChannel::Alipay,
            &yuanlu_reconcile::write(&other),
        )
        .await
        .unwrap();
        assert_ne!(third.id, first.id);
        assert_eq!(third.exceptions, first.exceptions - 1, "no unknown refund");
    }
);

contract!(exceptions_are_resolved_by_the_admin_with_a_note, |h| {
    let s = scenario(&h, StatementChannel::Wechat, "wechat").await;
    let bytes = yuanlu_reconcile::write(&s.statement);

    // Merchant keys see and change nothing of reconciliation.
    for role in [MerchantRole::Supervisor, MerchantRole::Staff] {
        let merchant = Principal::Merchant {
            merchant_id: merchant_id(&s.shop),
            key_id: "key_test".into(),
            role,
        };
        let error = h
            .engine
            .import_statement(&merchant, StatementChannel::Wechat, &bytes, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(error.code(), "forbidden");
    }
    assert_eq!(stored_rows(&h).await.0, 0);
    let view = import(&h, StatementChannel::Wechat, &bytes).await.unwrap();
    let exceptions = all_exceptions(&h, &view.id).await;
    let first = &exceptions[0];
    assert_eq!(
        h.engine
            .get_reconciliation(&s.shop, &view.id)
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    let query = ExceptionQuery {
        status: None,
        limit: 20,
        starting_after: None,
    };
    assert_eq!(
        h.engine
            .list_exceptions(&s.shop, &view.id, query.clone())
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        h.engine
            .resolve_exception(&s.shop, &first.id, "mine")
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );

    // A note is required.
    for note in ["", "   "] {
        let error = h
            .engine
            .resolve_exception(&Principal::Admin, &first.id, note)
            .await
            .unwrap_err();
        match error {
            ReconError::Engine(EngineError::Validation { field, .. }) => assert_eq!(field, "note"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
    let too_long = "x".repeat(2_001);
    assert_eq!(
        h.engine
            .resolve_exception(&Principal::Admin, &first.id, &too_long)
            .await
            .unwrap_err()
            .code(),
        "validation_error"
    );
    let audit_before = count(&h, "SELECT COUNT(*) FROM audit_log").await;
    let resolved = h
        .engine
        .resolve_exception(
            &Principal::Admin,
            &first.id,
            "  settlement debits the refund tomorrow ",
        )
        .await
        .unwrap();
    assert_eq!(resolved.status, "resolved");
    assert_eq!(
        resolved.resolution_note.as_deref(),
        Some("settlement debits the refund tomorrow")
    );
    assert_eq!(resolved.resolved_by.as_deref(), Some("acquirer:admin"));
    assert!(resolved.resolved_at.is_some());
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM audit_log").await,
        audit_before + 1
    );
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE chain = 'system' AND subject_id = '{}' \
                 AND action = 'reconciliation.exception_resolved'",
                first.id
            )
        )
        .await,
        1
    );
    let again = h
        .engine
        .resolve_exception(&Principal::Admin, &first.id, "again")
        .await
        .unwrap_err();
    assert_eq!(again.code(), "invalid_transition");
    assert_eq!(
        h.engine
            .resolve_exception(&Principal::Admin, "rex_nope", "note")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );

    // Filters by status; the reconciliation is resolved with its last exception.
    let open = h
        .engine
        .list_exceptions(
            &Principal::Admin,
            &view.id,
            ExceptionQuery {
                status: Some(ExceptionStatus::Open),
                ..query.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(open.data.len(), 5);
    let view_now = h
        .engine
        .get_reconciliation(&Principal::Admin, &view.id)
        .await
        .unwrap();
    assert_eq!(
        (view_now.status.as_str(), view_now.open_exceptions),
        ("open", 5)
    );
    for exception in &open.data {
        h.engine
            .resolve_exception(&Principal::Admin, &exception.id, "checked with the channel")
            .await
            .unwrap();
    }
    let done = h
        .engine
        .get_reconciliation(&Principal::Admin, &view.id)
        .await
        .unwrap();
    assert_eq!(
        (done.status.as_str(), done.open_exceptions),
        ("resolved", 0)
    );
    let resolved_page = h
        .engine
        .list_exceptions(
            &Principal::Admin,
            &view.id,
            ExceptionQuery {
                status: Some(ExceptionStatus::Resolved),
                ..query
            },
        )
        .await
        .unwrap();
    assert_eq!(resolved_page.data.len(), 6);
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

contract!(unknown_ids_are_not_found, |h| {
    let admin = Principal::Admin;
    assert_eq!(
        h.engine
            .get_reconciliation(&admin, "recon_nope")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    let query = ExceptionQuery {
        status: None,
        limit: 20,
        starting_after: None,
    };
    assert_eq!(
        h.engine
            .list_exceptions(&admin, "recon_nope", query)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        h.engine
            .get_exception(&admin, "rex_nope")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
});

contract!(
    a_large_statement_is_stored_in_batches_and_paged_in_file_order,
    |h| {
        // 1,234 generated lines against an empty database: every line is unexpected, so the
        // exceptions span full insert batches and a partial one on either backend.
        let generated =
            yuanlu_reconcile::generate(1_234, 7, &DiscrepancySpec::none(StatementChannel::Yuanlu));
        let view = import(&h, StatementChannel::Yuanlu, &generated.bytes)
            .await
            .unwrap();
        assert_eq!(
            (view.lines, view.records, view.exceptions),
            (1_234, 0, 1_234)
        );
        assert_eq!(
            view.report.class(ReconClass::UnexpectedInChannel).count,
            1_234
        );
        let exceptions = all_exceptions(&h, &view.id).await;
        assert_eq!(exceptions.len(), 1_234);
        let lines: Vec<i64> = exceptions.iter().map(|e| e.line_no.unwrap()).collect();
        let first = yuanlu_reconcile::first_line(StatementChannel::Yuanlu) as i64;
        assert_eq!(
            lines,
            (first..first + 1_234).collect::<Vec<_>>(),
            "file order"
        );
        assert!(exceptions.iter().all(|e| e.merchant_id.is_none()));
        assert_eq!(
            count(&h, "SELECT COUNT(*) FROM recon_exceptions").await,
            1_234
        );
    }
);

contract!(the_same_file_imported_concurrently_is_stored_once, |h| {
    let s = scenario(&h, StatementChannel::Card, "debit_card").await;
    let bytes = yuanlu_reconcile::write(&s.statement);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (engine, bytes) = (h.engine.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            engine
                .import_statement(
                    &Principal::Admin,
                    StatementChannel::Card,
                    &bytes,
                    &mut |_| {},
                )
                .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one reconciliation: {ids:?}");
    assert_eq!(stored_rows(&h).await.0, 1);
    assert_eq!(count(&h, "SELECT COUNT(*) FROM recon_exceptions").await, 6);
});
