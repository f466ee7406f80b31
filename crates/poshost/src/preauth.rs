//! 预授权 and what follows it. A pre-authorisation holds no money in yuanlu's books: it is
//! a journal row (open, then voided or completed). Its completion is the payment the API
//! shows, recorded like a sale; a completion void reverses that payment like a void (same
//! terminal, batch and day, the full amount) and reopens the pre-authorisation.

use yuanlu_engine::{Engine, EngineError};
use yuanlu_store::PosJournalRow;

use crate::codes;
use crate::handler::{Outcome, Request};
use crate::txn::{create_refund, original_by_rrn, record_sale, void_refusal};

pub const OPEN: Option<&str> = None;
pub const VOIDED: &str = "voided";
pub const COMPLETED: &str = "completed";

/// 预授权 (0100, 030000, 60.1 10): approved with an RRN and an auth code; nothing moves.
pub fn preauth(req: &Request<'_>) -> Outcome {
    if req.amount_fen <= 0 {
        return Outcome::code(codes::INVALID_AMOUNT);
    }
    Outcome::code(codes::APPROVED)
}

/// The pre-authorisation a void or completion names: by RRN (37) when given, else by its
/// auth code (38); with 61.3 (MMDD) when given, its date must match. Reversed: 25.
async fn find_preauth(engine: &Engine, req: &Request<'_>) -> Result<PosJournalRow, Outcome> {
    let merchant = &req.terminal.row.merchant_id;
    let found = async {
        let mut pooled = engine.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = match (req.message.get_str(37), req.message.get_str(38)) {
            (Some(rrn), _) => conn.find_approved_by_rrn(merchant, rrn, "preauth").await?,
            (None, Some(auth)) => conn.find_preauth_by_auth_code(merchant, auth).await?,
            (None, None) => return Ok(Err(Outcome::code(codes::FORMAT_ERROR))),
        };
        Ok::<_, EngineError>(Ok(row))
    }
    .await;
    let row = match found {
        Ok(Ok(Some(row))) if !row.reversed => row,
        Ok(Ok(_)) => return Err(Outcome::code(codes::ORIGINAL_NOT_FOUND)),
        Ok(Err(refused)) => return Err(refused),
        Err(_) => return Err(Outcome::code(codes::SYSTEM_ERROR)),
    };
    let given_date = req
        .message
        .get_str(61)
        .and_then(|v| v.get(12..16))
        .filter(|d| *d != "0000");
    let row_date = row
        .business_date
        .get(5..7)
        .zip(row.business_date.get(8..10))
        .map(|(mm, dd)| format!("{mm}{dd}"));
    if let Some(given) = given_date
        && row_date.as_deref() != Some(given)
    {
        return Err(Outcome::code(codes::ORIGINAL_NOT_FOUND));
    }
    Ok(row)
}

/// Whether `preauth` may be closed by `req` (open, or closed by this same request before
/// its host died): otherwise 22 (voided or completed by another) for a completion, and for
/// a void 22 (voided) or 12 (completed: void the completion first).
fn closable(req: &Request<'_>, preauth: &PosJournalRow, void: bool) -> Option<Outcome> {
    if preauth.closed_by_rrn.as_deref() == Some(req.rrn.as_str()) {
        return None;
    }
    match preauth.preauth_state.as_deref() {
        OPEN => None,
        Some(COMPLETED) if void => Some(Outcome::code(codes::INVALID_RELATED)),
        Some(_) => Some(Outcome::code(codes::ALREADY_VOIDED)),
    }
}

async fn close(
    engine: &Engine,
    preauth: &PosJournalRow,
    state: &str,
    by: &str,
) -> Result<bool, EngineError> {
    let mut tx = engine.db.begin().await?;
    let closed = tx.conn().close_preauth(preauth, state, by).await?;
    tx.commit().await?;
    Ok(closed)
}

async fn reopen(engine: &Engine, preauth: &PosJournalRow, by: &str) -> Result<bool, EngineError> {
    let mut tx = engine.db.begin().await?;
    let reopened = tx.conn().reopen_preauth(preauth, by).await?;
    tx.commit().await?;
    Ok(reopened)
}

/// 预授权撤销 (0100, 200000, 60.1 11): the same terminal (58), the full amount (64), the
/// same card (14); any day while the pre-authorisation is open.
pub async fn preauth_void(engine: &Engine, req: &Request<'_>) -> Outcome {
    let preauth = match find_preauth(engine, req).await {
        Ok(row) => row,
        Err(refused) => return refused,
    };
    if preauth.terminal_ref != req.terminal.row.id {
        return Outcome::code(codes::TERMINAL_DIFFERS);
    }
    if req.amount_fen != preauth.amount_fen {
        return Outcome::code(codes::AMOUNT_MISMATCH);
    }
    if req.card_masked.is_some()
        && preauth.card_masked.is_some()
        && req.card_masked != preauth.card_masked
    {
        return Outcome::code(codes::CARD_DIFFERS);
    }
    if let Some(refused) = closable(req, &preauth, true) {
        return refused;
    }
    match close(engine, &preauth, VOIDED, &req.rrn).await {
        Ok(true) => Outcome {
            code: codes::APPROVED,
            original_rrn: preauth.rrn,
            ..Outcome::default()
        },
        Ok(false) => Outcome::code(codes::ALREADY_VOIDED),
        Err(_) => Outcome::code(codes::SYSTEM_ERROR),
    }
}

/// 预授权完成 (0200, 000000, 60.1 20): an open pre-authorisation of the merchant (any of its
/// terminals), at most its amount (else 61), becomes a payment as a sale does. The
/// pre-authorisation is closed first, so two completions cannot both pay; a completion the
/// engine refuses reopens it.
pub async fn completion(engine: &Engine, req: &Request<'_>) -> Outcome {
    if req.amount_fen <= 0 {
        return Outcome::code(codes::INVALID_AMOUNT);
    }
    let preauth = match find_preauth(engine, req).await {
        Ok(row) => row,
        Err(refused) => return refused,
    };
    if req.amount_fen > preauth.amount_fen {
        return Outcome::code(codes::OVER_LIMIT);
    }
    if let Some(refused) = closable(req, &preauth, false) {
        return refused;
    }
    match close(engine, &preauth, COMPLETED, &req.rrn).await {
        Ok(true) => {}
        Ok(false) => return Outcome::code(codes::ALREADY_VOIDED),
        Err(_) => return Outcome::code(codes::SYSTEM_ERROR),
    }
    let mut paid = record_sale(engine, req).await;
    if paid.code != codes::APPROVED && reopen(engine, &preauth, &req.rrn).await.is_err() {
        tracing::error!(rrn = %req.rrn, "pos host: a refused completion's pre-authorisation stays closed");
    }
    paid.original_rrn = preauth.rrn;
    paid
}

/// 预授权完成撤销 (0200, 200000, 60.1 21): the completion named by 37, under a void's
/// rules; its payment is refunded in full (a void on its day) and the pre-authorisation
/// is open again.
pub async fn completion_void(engine: &Engine, req: &Request<'_>) -> Outcome {
    let completion = match original_by_rrn(engine, req, &["completion"]).await {
        Ok(row) => row,
        Err(refused) => return refused,
    };
    if let Some(refused) = void_refusal(engine, req, &completion) {
        return refused;
    }
    let outcome = create_refund(engine, req, &completion, "cvoid").await;
    if outcome.code != codes::APPROVED {
        return outcome;
    }
    release_preauth_of(engine, req, &completion)
        .await
        .with_refund(outcome)
}

/// After a completion's payment was undone (its void, its reversal): its pre-authorisation
/// is open again.
pub(crate) async fn release_preauth_of(
    engine: &Engine,
    req: &Request<'_>,
    completion: &PosJournalRow,
) -> Outcome {
    let Some(rrn) = completion.rrn.as_deref() else {
        return Outcome::code(codes::APPROVED);
    };
    let released = async {
        let mut tx = engine.db.begin().await?;
        let mut conn = tx.conn();
        if let Some(preauth) = conn
            .find_preauth_closed_by(&req.terminal.row.merchant_id, rrn)
            .await?
        {
            conn.reopen_preauth(&preauth, rrn).await?;
        }
        tx.commit().await?;
        Ok::<_, EngineError>(())
    }
    .await;
    match released {
        Ok(()) => Outcome::code(codes::APPROVED),
        Err(_) => Outcome::code(codes::SYSTEM_ERROR),
    }
}

/// Before a completion void is reversed: its completion's pre-authorisation is completed
/// again, if still open (else 12 and nothing changes).
pub(crate) async fn reclose_preauth_of(
    engine: &Engine,
    req: &Request<'_>,
    completion_void: &PosJournalRow,
) -> Result<(), Outcome> {
    let merchant = &req.terminal.row.merchant_id;
    let reclosed = async {
        let mut tx = engine.db.begin().await?;
        let mut conn = tx.conn();
        let Some(completion_rrn) = completion_void.original_rrn.as_deref() else {
            return Ok(true);
        };
        let Some(completion) = conn
            .find_approved_by_rrn(merchant, completion_rrn, "completion")
            .await?
        else {
            return Ok(true);
        };
        let Some(preauth_rrn) = completion.original_rrn.as_deref() else {
            return Ok(true);
        };
        let Some(preauth) = conn
            .find_approved_by_rrn(merchant, preauth_rrn, "preauth")
            .await?
        else {
            return Ok(true);
        };
        let closed = conn
            .close_preauth(&preauth, COMPLETED, completion_rrn)
            .await?;
        tx.commit().await?;
        Ok::<_, EngineError>(closed)
    }
    .await;
    match reclosed {
        Ok(true) => Ok(()),
        Ok(false) => Err(Outcome::code(codes::INVALID_RELATED)),
        Err(_) => Err(Outcome::code(codes::SYSTEM_ERROR)),
    }
}

/// A completion void's reversal that could not cancel its refund: the pre-authorisation
/// `reclose_preauth_of` completed again is open again, as the completion void left it.
pub(crate) async fn reopen_after_failed_reclose(
    engine: &Engine,
    req: &Request<'_>,
    completion_void: &PosJournalRow,
) {
    let Some(completion_rrn) = completion_void.original_rrn.as_deref() else {
        return;
    };
    let reopened = async {
        let mut tx = engine.db.begin().await?;
        let mut conn = tx.conn();
        if let Some(preauth) = conn
            .find_preauth_closed_by(&req.terminal.row.merchant_id, completion_rrn)
            .await?
        {
            conn.reopen_preauth(&preauth, completion_rrn).await?;
        }
        tx.commit().await?;
        Ok::<_, EngineError>(())
    }
    .await;
    if let Err(error) = reopened {
        tracing::error!(%error, "pos host: a pre-authorisation stays completed after a failed reversal");
    }
}

/// 冲正 of a pre-authorisation (only while open; a completed or voided one: 12) or of a
/// pre-auth void (the pre-authorisation is open again).
pub(crate) async fn reverse(
    engine: &Engine,
    req: &Request<'_>,
    original: &PosJournalRow,
) -> Outcome {
    if original.kind == "preauth" {
        return match original.preauth_state.as_deref() {
            OPEN => Outcome::code(codes::APPROVED),
            Some(_) => Outcome::code(codes::INVALID_RELATED),
        };
    }
    let Some(void_rrn) = original.rrn.as_deref() else {
        return Outcome::code(codes::APPROVED);
    };
    let reopened = async {
        let mut tx = engine.db.begin().await?;
        let mut conn = tx.conn();
        if let Some(preauth) = conn
            .find_preauth_closed_by(&req.terminal.row.merchant_id, void_rrn)
            .await?
        {
            conn.reopen_preauth(&preauth, void_rrn).await?;
        }
        tx.commit().await?;
        Ok::<_, EngineError>(())
    }
    .await;
    match reopened {
        Ok(()) => Outcome::code(codes::APPROVED),
        Err(_) => Outcome::code(codes::SYSTEM_ERROR),
    }
}
