//! Sale, void, refund and reversal, each through the engine's use cases: a sale records a
//! payment; a void and a refund create a refund (the engine decides void or refund by its
//! own void window and applies every refund rule); a reversal undoes what it reverses.

use yuanlu_domain::refund::{RefundReason, RefundStatus};
use yuanlu_engine::Engine;
use yuanlu_engine::payments::{PayerInput, RecordPayment, VoucherInput};
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund, RequestedByInput, ReviewNote};
use yuanlu_store::PosJournalRow;

use crate::codes::{self, for_engine_error};
use crate::handler::{Outcome, Request};

/// The channel a POS card sale is recorded under.
pub const POS_CHANNEL: &str = "debit_card";

pub async fn sale(engine: &Engine, req: &Request<'_>) -> Outcome {
    if req.amount_fen <= 0 {
        return Outcome::code(codes::INVALID_AMOUNT);
    }
    record_sale(engine, req).await
}

/// The payment of a sale or a completion. Run again after its host died unanswered
/// (`req.recovered`), it first looks for the payment its first run recorded under the
/// same RRN, so a request is never paid twice.
pub(crate) async fn record_sale(engine: &Engine, req: &Request<'_>) -> Outcome {
    if req.recovered {
        let found = async {
            let mut pooled = engine.db.acquire().await?;
            let id = pooled
                .conn()
                .pos_payment_by_rrn(
                    &req.terminal.row.merchant_id,
                    &req.terminal.row.terminal_id,
                    &req.rrn,
                )
                .await?;
            Ok::<_, yuanlu_engine::EngineError>(id)
        }
        .await;
        match found {
            Ok(Some(payment_id)) => {
                return Outcome {
                    code: codes::APPROVED,
                    payment_id: Some(payment_id),
                    ..Outcome::default()
                };
            }
            Ok(None) => {}
            Err(_) => return Outcome::code(codes::SYSTEM_ERROR),
        }
    }
    let last4 = req
        .card_masked
        .as_deref()
        .map(|m| m[m.len().saturating_sub(4)..].to_string());
    let input = RecordPayment {
        merchant_id: None,
        channel: POS_CHANNEL.to_string(),
        amount: req.amount_fen.into(),
        currency: "CNY".to_string(),
        terminal_id: Some(req.terminal.row.terminal_id.clone()),
        payer: last4.map(|l| PayerInput {
            card_last4: Some(l),
            ..PayerInput::default()
        }),
        voucher: Some(VoucherInput {
            batch_no: Some(req.batch_no.clone()),
            trace_no: Some(req.trace_no.clone()),
            rrn: Some(req.rrn.clone()),
        }),
        kind: None,
        member: None,
        order: None,
        phone: None,
        captured_at: None,
    };
    match engine.record_payment(&req.principal, input).await {
        Ok(payment) => Outcome {
            code: codes::APPROVED,
            payment_id: Some(payment.id),
            ..Outcome::default()
        },
        Err(error) => Outcome::code(for_engine_error(&error)),
    }
}

/// The approved, unreversed original (of one of `kinds`, first found) that field 37 names.
pub(crate) async fn original_by_rrn(
    engine: &Engine,
    req: &Request<'_>,
    kinds: &[&str],
) -> Result<PosJournalRow, Outcome> {
    let Some(rrn) = req.message.get_str(37) else {
        return Err(Outcome::code(codes::FORMAT_ERROR));
    };
    let found = async {
        let mut pooled = engine.db.acquire().await?;
        for kind in kinds {
            let row = pooled
                .conn()
                .find_approved_by_rrn(&req.terminal.row.merchant_id, rrn, kind)
                .await?;
            if row.is_some() {
                return Ok(row);
            }
        }
        Ok::<_, yuanlu_engine::EngineError>(None)
    }
    .await;
    match found {
        Ok(Some(row)) if !row.reversed && row.payment_id.is_some() => Ok(row),
        Ok(_) => Err(Outcome::code(codes::ORIGINAL_NOT_FOUND)),
        Err(_) => Err(Outcome::code(codes::SYSTEM_ERROR)),
    }
}

async fn original_sale(engine: &Engine, req: &Request<'_>) -> Result<PosJournalRow, Outcome> {
    original_by_rrn(engine, req, &["sale"]).await
}

pub(crate) async fn create_refund(
    engine: &Engine,
    req: &Request<'_>,
    sale: &PosJournalRow,
    label: &str,
) -> Outcome {
    let input = CreateRefund {
        payment_id: sale.payment_id.clone().unwrap_or_default(),
        amount: Some(req.amount_fen.into()),
        reason: RefundReason::CustomerCancel,
        merchant_refund_no: format!(
            "pos-{label}-{}-{}-{}",
            req.terminal
                .row
                .terminal_id
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            req.batch_no,
            req.trace_no
        ),
        note: None,
        requested_by: Some(RequestedByInput {
            role: None,
            name: Some(format!("POS {}", req.terminal.row.terminal_id)),
        }),
        // A POS refund carries no deductions (issue 15 item 2: the API only).
        deductions: Vec::new(),
    };
    match engine.create_refund(&req.principal, input).await {
        Ok(CreateOutcome::Created(refund) | CreateOutcome::Existing(refund)) => Outcome {
            code: codes::APPROVED,
            refund_id: Some(refund.id),
            payment_id: sale.payment_id.clone(),
            ..Outcome::default()
        },
        Err(error) => Outcome::code(for_engine_error(&error)),
    }
}

/// 消费撤销: same terminal, same batch, same day, the full amount of the original.
pub async fn void(engine: &Engine, req: &Request<'_>) -> Outcome {
    let sale = match original_sale(engine, req).await {
        Ok(sale) => sale,
        Err(outcome) => return outcome,
    };
    if let Some(refused) = void_refusal(engine, req, &sale) {
        return refused;
    }
    create_refund(engine, req, &sale, "void").await
}

/// The terminal-side rules of a void (of a sale or a completion): same terminal (58), same
/// batch and business day (12), the full amount (64), the same card when both are known
/// (14).
pub(crate) fn void_refusal(
    engine: &Engine,
    req: &Request<'_>,
    sale: &PosJournalRow,
) -> Option<Outcome> {
    if sale.terminal_ref != req.terminal.row.id {
        return Some(Outcome::code(codes::TERMINAL_DIFFERS));
    }
    let today = yuanlu_domain::time::shanghai_date(engine.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    if sale.batch_no != req.batch_no || sale.business_date != today {
        return Some(Outcome::code(codes::INVALID_RELATED));
    }
    if req.amount_fen != sale.amount_fen {
        return Some(Outcome::code(codes::AMOUNT_MISMATCH));
    }
    if req.card_masked.is_some()
        && sale.card_masked.is_some()
        && req.card_masked != sale.card_masked
    {
        return Some(Outcome::code(codes::CARD_DIFFERS));
    }
    None
}

/// 退货: the original's RRN and date (61.3, MMDD); partial amounts, under the engine's cap
/// and window.
pub async fn refund(engine: &Engine, req: &Request<'_>) -> Outcome {
    if req.amount_fen <= 0 {
        return Outcome::code(codes::INVALID_AMOUNT);
    }
    let sale = match original_by_rrn(engine, req, &["sale", "completion"]).await {
        Ok(sale) => sale,
        Err(outcome) => return outcome,
    };
    let given_date = req.message.get_str(61).and_then(|v| v.get(12..16));
    let sale_date = sale
        .business_date
        .get(5..7)
        .zip(sale.business_date.get(8..10));
    match (given_date, sale_date) {
        (Some(given), Some((mm, dd))) if given == format!("{mm}{dd}") => {}
        (None, _) => return Outcome::code(codes::FORMAT_ERROR),
        _ => return Outcome::code(codes::ORIGINAL_NOT_FOUND),
    }
    create_refund(engine, req, &sale, "refund").await
}

/// 冲正 of a request the terminal got no answer for: a sale, void, pre-authorisation,
/// pre-auth void, completion or completion void. The original is the same terminal, batch
/// and trace with the MTI 60.1 names. Unknown, declined or already reversed: 00, nothing
/// changes.
pub async fn reversal(engine: &Engine, req: &Request<'_>) -> Outcome {
    let type_code = req
        .message
        .get_str(60)
        .and_then(|v| v.get(..2))
        .unwrap_or_default();
    let mti = crate::handler::reversed_mti(type_code);
    let original = async {
        let mut pooled = engine.db.acquire().await?;
        let row = pooled
            .conn()
            .get_journal(&req.terminal.row.id, &req.batch_no, &req.trace_no, mti)
            .await?;
        Ok::<_, yuanlu_engine::EngineError>(row)
    }
    .await;
    let original = match original {
        Ok(Some(row)) if row.response_code.as_deref() == Some(codes::APPROVED) && !row.reversed => {
            row
        }
        Ok(_) => return Outcome::code(codes::APPROVED),
        Err(_) => return Outcome::code(codes::SYSTEM_ERROR),
    };
    let undone = match original.kind.as_str() {
        "sale" | "completion" => {
            let full = Request {
                amount_fen: original.amount_fen,
                principal: req.principal.clone(),
                card_masked: None,
                rrn: req.rrn.clone(),
                batch_no: req.batch_no.clone(),
                trace_no: req.trace_no.clone(),
                ..*req
            };
            let label = if original.kind == "sale" {
                "reversal"
            } else {
                "creversal"
            };
            let outcome = create_refund(engine, &full, &original, label).await;
            if outcome.code == codes::APPROVED && original.kind == "completion" {
                crate::preauth::release_preauth_of(engine, req, &original)
                    .await
                    .with_refund(outcome)
            } else {
                outcome
            }
        }
        "void" | "completion_void" => {
            let reclosed = if original.kind == "completion_void" {
                crate::preauth::reclose_preauth_of(engine, req, &original).await
            } else {
                Ok(())
            };
            match reclosed {
                Ok(()) => {
                    let outcome = cancel_void(engine, req, &original).await;
                    if outcome.code != codes::APPROVED && original.kind == "completion_void" {
                        crate::preauth::reopen_after_failed_reclose(engine, req, &original).await;
                    }
                    outcome
                }
                Err(refused) => refused,
            }
        }
        "preauth" | "preauth_void" => crate::preauth::reverse(engine, req, &original).await,
        _ => Outcome::code(codes::APPROVED),
    };
    if undone.code == codes::APPROVED {
        let marked = async {
            let mut tx = engine.db.begin().await?;
            tx.conn()
                .mark_journal_reversed(
                    &original.terminal_ref,
                    &original.batch_no,
                    &original.trace_no,
                    &original.mti,
                )
                .await?;
            tx.commit().await?;
            Ok::<_, yuanlu_engine::EngineError>(())
        }
        .await;
        if marked.is_err() {
            return Outcome::code(codes::SYSTEM_ERROR);
        }
    }
    undone
}

/// Cancels the refund a void made. Already canceled (a reversal run again after its host
/// died): approved. Already sent to its channel: 96, the back office handles it.
async fn cancel_void(engine: &Engine, req: &Request<'_>, original: &PosJournalRow) -> Outcome {
    let Some(refund_id) = &original.refund_id else {
        return Outcome::code(codes::APPROVED);
    };
    let canceled = engine
        .cancel_refund(
            &req.principal,
            refund_id,
            ReviewNote {
                note: Some("POS reversal".to_string()),
            },
        )
        .await;
    match canceled {
        Ok(refund) => Outcome {
            code: codes::APPROVED,
            refund_id: Some(refund.id),
            ..Outcome::default()
        },
        Err(error) => {
            let already = engine
                .get_refund(&req.principal, refund_id)
                .await
                .is_ok_and(|r| r.status == RefundStatus::Canceled);
            if already {
                return Outcome {
                    code: codes::APPROVED,
                    refund_id: Some(refund_id.clone()),
                    ..Outcome::default()
                };
            }
            tracing::warn!(%error, refund_id, "pos host: a reversed void's refund could not be canceled");
            Outcome::code(codes::SYSTEM_ERROR)
        }
    }
}
