//! The low layer every flow writes a refund's status change through: check it against the
//! state machine, apply the money effects the domain decides (`yuanlu_domain::transition`:
//! payment counters, ledger posting, funding rule), write the audit entry and enqueue the
//! webhook. `refunds`, `dispatch` and the operators' reroute all call this module; it calls
//! none of them, which breaks the refunds ↔ dispatch import cycle.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use yuanlu_domain::decide::void_becomes_refund;
use yuanlu_domain::deduction::{Deduction, DeductionKind};
use yuanlu_domain::ledger::LedgerEvent;
use yuanlu_domain::refund::{RefundStatus, RefundType};
use yuanlu_domain::time::{shanghai_date, to_micros};
use yuanlu_domain::transition::{self, RefundMoney};
use yuanlu_store::{
    Conn, DayKey, DaySums, DeductionRow, PaymentCounters, PaymentRow, RefundRow, RefundStatusUpdate,
};

use crate::audit::{self, AuditEvent};
use crate::error::{EngineError, EngineResult};
use crate::ledger::{self, PostingFacts};
use crate::notify;
use crate::timeline::action;
use crate::views;

/// The `received_account` of a refund the merchant paid the consumer directly.
pub const PAID_BY_MERCHANT: &str = "paid by the merchant directly";

/// A status change chosen by a use case.
pub(crate) struct Change {
    pub(crate) to: RefundStatus,
    pub(crate) action: &'static str,
    pub(crate) review_note: Option<String>,
    pub(crate) reviewed_by: Option<String>,
    pub(crate) tracking_no: Option<String>,
}

pub(crate) fn invalid(row: &RefundRow, status: RefundStatus, action: &'static str) -> EngineError {
    EngineError::InvalidTransition {
        refund_id: row.id.clone(),
        status: status.id().to_string(),
        action,
    }
}

/// Writes one transition: the refund's status, the payment's counters, the audit entry.
pub(crate) async fn apply_transition(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut PaymentCounters,
    from: RefundStatus,
    change: &Change,
    actor: &str,
    now_us: i64,
) -> EngineResult<()> {
    let effects = transition::transition(from, change.to, &refund_money(row))
        .map_err(|_| invalid(row, from, change.action))?;
    let moved = conn
        .update_refund_status(&RefundStatusUpdate {
            refund_id: &row.id,
            merchant_id: &row.merchant_id,
            from_status: from,
            to_status: change.to,
            review_note: change.review_note.as_deref(),
            reviewed_by: change.reviewed_by.as_deref(),
            tracking_no: change.tracking_no.as_deref(),
            failure_reason: None,
            at_us: now_us,
        })
        .await?;
    if !moved {
        return Err(EngineError::corrupt(format!(
            "refund {} moved while its payment was locked",
            row.id
        )));
    }
    apply_ledger_effect(conn, row, &effects, now_us).await?;
    update_merchant_day(conn, row, from, change.to).await?;
    counters.apply(&effects.counters);
    conn.update_payment_counters(&row.merchant_id, &row.payment_id, counters)
        .await?;
    row.status = change.to;
    row.updated_at_us = now_us;
    if let Some(note) = &change.review_note {
        row.review_note = Some(note.clone());
    }
    if let Some(by) = &change.reviewed_by {
        row.reviewed_by = Some(by.clone());
    }
    if let Some(tracking) = &change.tracking_no {
        row.tracking_no = Some(tracking.clone());
    }
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: now_us,
            actor,
            action: change.action,
            subject_id: &row.id,
            data: json!({
                "status": change.to.id(),
                "from": from.id(),
                "note": change.review_note,
                "tracking_no": change.tracking_no,
                "channel": row.channel,
                "received_account": row.received_account,
                "expected_arrival_by_us": row.expected_arrival_by_us,
            }),
        },
    )
    .await?;
    // The merchant's webhook hears of every status change, from the same transaction.
    notify::enqueue_refund_event(conn, row, notify::event_type_for(change.to), now_us).await
}

/// A refund that stops counting against the day it was created on (rejected, canceled,
/// failed) leaves its merchant day's totals. Under the merchant's balance lock, taken here
/// (again, if the ledger posting took it) because rejections post nothing: every writer of
/// a merchant's day rows holds it (`yuanlu_store::queries_merchant_days`).
async fn update_merchant_day(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    from: RefundStatus,
    to: RefundStatus,
) -> EngineResult<()> {
    let sign = match (from.counts_against_day(), to.counts_against_day()) {
        (true, false) => -1,
        (false, true) => 1,
        _ => return Ok(()),
    };
    conn.lock_balance(&row.merchant_id).await?;
    let day = DayKey::containing(&row.merchant_id, row.created_at_us);
    conn.add_to_merchant_days(&BTreeMap::from([(
        day,
        DaySums::refund(row.amount_fen, sign),
    )]))
    .await?;
    Ok(())
}

/// Posts the ledger event the domain chose for a transition, after the funding rule when
/// the refund is being debited.
pub(crate) async fn apply_ledger_effect(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    effects: &transition::Effects,
    now_us: i64,
) -> EngineResult<()> {
    let Some(event) = effects.ledger else {
        return Ok(());
    };
    if effects.check_funding {
        let merchant = conn.get_merchant(&row.merchant_id).await?.ok_or_else(|| {
            EngineError::corrupt(format!("refund {} names a missing merchant", row.id))
        })?;
        let policy = views::merchant(&merchant)?.settings.funding;
        ledger::ensure_funded(
            conn,
            &row.merchant_id,
            policy,
            row.amount_fen - row.deducted_fen - row.fee_refunded_fen,
        )
        .await?;
    }
    post_refund(conn, row, event, now_us).await
}

/// The money of a refund row, as the domain's transitions read it.
pub(crate) fn refund_money(row: &RefundRow) -> RefundMoney {
    RefundMoney {
        refund_type: row.refund_type,
        amount_fen: row.amount_fen,
        fee_refunded_fen: row.fee_refunded_fen,
        paid_by_merchant: paid_by_merchant(row),
    }
}

/// A refund the merchant paid the consumer directly (an operator's reroute to the merchant).
pub(crate) fn paid_by_merchant(row: &RefundRow) -> bool {
    row.received_account.as_deref() == Some(PAID_BY_MERCHANT)
}

/// Posts a refund's money event, and beside a debit or a release one posting per deduction
/// (issue 15 item 2; read only for a refund that has deductions).
pub(crate) async fn post_refund(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    event: LedgerEvent,
    now_us: i64,
) -> EngineResult<()> {
    ledger::post(conn, &refund_posting(row, event, now_us)).await?;
    if row.deducted_fen == 0
        || !matches!(
            event,
            LedgerEvent::RefundQueued | LedgerEvent::RefundReleased
        )
    {
        return Ok(());
    }
    for line in conn.refund_deductions(&row.id).await? {
        let line = Deduction {
            kind: DeductionKind::parse(&line.kind).ok_or_else(|| {
                EngineError::corrupt(format!(
                    "refund {} has a deduction of kind {}",
                    row.id, line.kind
                ))
            })?,
            amount_fen: line.amount_fen,
            reason: line.reason,
        };
        if let Some(facts) = deduction_posting(row, event, &line, now_us) {
            ledger::post(conn, &facts).await?;
        }
    }
    Ok(())
}

/// The facts of a refund's money event. What the channel pays (`refund_succeeded`) is the
/// consumer's amount: the refund less its deductions.
pub(crate) fn refund_posting(row: &RefundRow, event: LedgerEvent, now_us: i64) -> PostingFacts<'_> {
    let amount_fen = match event {
        LedgerEvent::RefundSucceeded => row.amount_fen - row.deducted_fen,
        _ => row.amount_fen,
    };
    PostingFacts {
        merchant_id: &row.merchant_id,
        event,
        reference: &row.id,
        payment_id: Some(&row.payment_id),
        channel: Some(row.channel),
        amount_fen,
        fee_fen: row.fee_refunded_fen,
        at: yuanlu_domain::time::from_micros(now_us),
    }
}

/// The posting of one deduction beside a refund's debit (`refund_deducted`) or release
/// (`deduction_released`); none beside any other event.
pub(crate) fn deduction_posting<'a>(
    row: &'a RefundRow,
    event: LedgerEvent,
    line: &Deduction,
    now_us: i64,
) -> Option<PostingFacts<'a>> {
    let event = match event {
        LedgerEvent::RefundQueued => LedgerEvent::RefundDeducted,
        LedgerEvent::RefundReleased => LedgerEvent::DeductionReleased,
        _ => return None,
    };
    Some(PostingFacts {
        merchant_id: &row.merchant_id,
        event,
        reference: &row.id,
        payment_id: Some(&row.payment_id),
        channel: Some(row.channel),
        amount_fen: line.amount_fen,
        fee_fen: 0,
        at: yuanlu_domain::time::from_micros(now_us),
    })
}

/// A new refund's deduction rows, numbered from 1 in the request's order.
pub(crate) fn deduction_rows(row: &RefundRow, lines: &[Deduction]) -> Vec<DeductionRow> {
    lines
        .iter()
        .enumerate()
        .map(|(n, line)| DeductionRow {
            refund_id: row.id.clone(),
            line_no: n as i64 + 1,
            merchant_id: row.merchant_id.clone(),
            kind: line.kind.id().to_string(),
            amount_fen: line.amount_fen,
            reason: line.reason.clone(),
        })
        .collect()
}

/// A void about to complete whose window has passed (its business date is over, or was
/// settled) becomes a refund (退货): the refund fee rule sets the fee it returns, and the
/// caller's transition to `queued` applies the funding rule and the ledger debit, and sends
/// it along the original route. The timeline says why. A void still possible is left as is.
pub(crate) async fn void_or_refund(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    payment: &PaymentRow,
    counters: &mut PaymentCounters,
    now: DateTime<Utc>,
) -> EngineResult<()> {
    let state = views::payment_state(payment)?;
    let business_date = shanghai_date(state.captured_at);
    let settled = conn
        .is_settled(&business_date.format("%Y-%m-%d").to_string())
        .await?;
    let merchant = conn.get_merchant(&row.merchant_id).await?.ok_or_else(|| {
        EngineError::corrupt(format!("refund {} names a missing merchant", row.id))
    })?;
    let settings = views::merchant(&merchant)?.settings;
    let Some(fee) = void_becomes_refund(&settings, &state, row.fee_refunded_fen, now, settled)
    else {
        return Ok(());
    };
    counters.apply(&transition::void_became_refund(row.fee_refunded_fen, fee));
    conn.update_refund_terms(&row.merchant_id, &row.id, RefundType::Refund, fee)
        .await?;
    audit::append(
        conn,
        AuditEvent {
            chain: &row.merchant_id,
            at_us: to_micros(now),
            actor: "system",
            action: action::BECAME_REFUND,
            subject_id: &row.id,
            data: json!({
                "status": row.status,
                "type": RefundType::Refund.id(),
                "business_date": business_date.format("%Y-%m-%d").to_string(),
                "settled": settled,
                "fee_refunded": fee,
                "fee_refunded_before": row.fee_refunded_fen,
            }),
        },
    )
    .await?;
    row.refund_type = RefundType::Refund;
    row.fee_refunded_fen = fee;
    Ok(())
}

/// A queued void never reaches a channel: the acquirer reverses the payment itself, so it
/// passes through `processing` to `succeeded` in the same transaction.
pub(crate) async fn complete_void(
    conn: &mut Conn<'_>,
    row: &mut RefundRow,
    counters: &mut PaymentCounters,
    actor: &str,
    now_us: i64,
) -> EngineResult<()> {
    let processing = Change {
        to: RefundStatus::Processing,
        action: action::VOID_COMPLETED,
        review_note: None,
        reviewed_by: None,
        tracking_no: None,
    };
    let moved = conn
        .update_refund_status(&RefundStatusUpdate {
            refund_id: &row.id,
            merchant_id: &row.merchant_id,
            from_status: RefundStatus::Queued,
            to_status: processing.to,
            review_note: None,
            reviewed_by: None,
            tracking_no: None,
            failure_reason: None,
            at_us: now_us,
        })
        .await?;
    if !moved {
        return Err(EngineError::corrupt(format!(
            "void {} left the queue while locked",
            row.id
        )));
    }
    let succeeded = Change {
        to: RefundStatus::Succeeded,
        ..processing
    };
    let effects = transition::void_completed();
    counters.apply(&effects.counters);
    apply_ledger_effect(conn, row, &effects, now_us).await?;
    apply_transition(
        conn,
        row,
        counters,
        RefundStatus::Processing,
        &succeeded,
        actor,
        now_us,
    )
    .await
}
