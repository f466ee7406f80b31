//! Sale, void, refund and reversal, each through the engine's use cases: a sale records a
//! payment; a void and a refund create a refund (the engine decides void or refund by its
//! own void window and applies every refund rule); a reversal undoes what it reverses.

use serde_json::json;
use yuanlu_domain::refund::RefundReason;
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
    let last4 = req
        .card_masked
        .as_deref()
        .map(|m| m[m.len().saturating_sub(4)..].to_string());
    let input = RecordPayment {
        merchant_id: None,
        channel: POS_CHANNEL.to_string(),
        amount: json!(req.amount_fen),
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

async fn original_sale(engine: &Engine, req: &Request<'_>) -> Result<PosJournalRow, Outcome> {
    let Some(rrn) = req.message.get_str(37) else {
        return Err(Outcome::code(codes::FORMAT_ERROR));
    };
    let found = async {
        let mut pooled = engine.db.acquire().await?;
        let row = pooled
            .conn()
            .find_sale_by_rrn(&req.terminal.row.merchant_id, rrn)
            .await?;
        Ok::<_, yuanlu_engine::EngineError>(row)
    }
    .await;
    match found {
        Ok(Some(row)) if !row.reversed && row.payment_id.is_some() => Ok(row),
        Ok(_) => Err(Outcome::code(codes::ORIGINAL_NOT_FOUND)),
        Err(_) => Err(Outcome::code(codes::SYSTEM_ERROR)),
    }
}

async fn create_refund(
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
    if sale.terminal_ref != req.terminal.row.id {
        return Outcome::code(codes::TERMINAL_DIFFERS);
    }
    let today = yuanlu_domain::time::shanghai_date(engine.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    if sale.batch_no != req.batch_no || sale.business_date != today {
        return Outcome::code(codes::INVALID_RELATED);
    }
    if req.amount_fen != sale.amount_fen {
        return Outcome::code(codes::AMOUNT_MISMATCH);
    }
    if req.card_masked.is_some()
        && sale.card_masked.is_some()
        && req.card_masked != sale.card_masked
    {
        return Outcome::code(codes::CARD_DIFFERS);
    }
    create_refund(engine, req, &sale, "void").await
}

/// 退货: the original's RRN and date (61.3, MMDD); partial amounts, under the engine's cap
/// and window.
pub async fn refund(engine: &Engine, req: &Request<'_>) -> Outcome {
    if req.amount_fen <= 0 {
        return Outcome::code(codes::INVALID_AMOUNT);
    }
    let sale = match original_sale(engine, req).await {
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

/// 冲正 of a sale or a void the terminal got no answer for. The original is the same
/// terminal, batch and trace as a 0200. Unknown, declined or already reversed: 00, nothing
/// changes.
pub async fn reversal(engine: &Engine, req: &Request<'_>) -> Outcome {
    let original = async {
        let mut pooled = engine.db.acquire().await?;
        let row = pooled
            .conn()
            .get_journal(&req.terminal.row.id, &req.batch_no, &req.trace_no, "0200")
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
        "sale" => {
            let amount = Request {
                amount_fen: original.amount_fen,
                principal: req.principal.clone(),
                card_masked: None,
                rrn: req.rrn.clone(),
                batch_no: req.batch_no.clone(),
                trace_no: req.trace_no.clone(),
                ..*req
            };
            create_refund(engine, &amount, &original, "reversal").await
        }
        "void" => match &original.refund_id {
            Some(refund_id) => match engine
                .cancel_refund(
                    &req.principal,
                    refund_id,
                    ReviewNote {
                        note: Some("POS reversal".to_string()),
                    },
                )
                .await
            {
                Ok(refund) => Outcome {
                    code: codes::APPROVED,
                    refund_id: Some(refund.id),
                    ..Outcome::default()
                },
                Err(error) => {
                    tracing::warn!(%error, refund_id, "pos host: a reversed void's refund could not be canceled");
                    Outcome::code(codes::SYSTEM_ERROR)
                }
            },
            None => Outcome::code(codes::APPROVED),
        },
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
                    "0200",
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
