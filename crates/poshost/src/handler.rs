//! One frame in, one frame out: find the terminal (97), sign-on, check the MAC (A0), answer
//! a repeat with its first answer, route the rest, journal the answer, sign it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Duration;
use yuanlu_engine::Engine;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::terminals::PosTerminal;
use yuanlu_iso8583::crypto::sign_on_keys_field;
use yuanlu_iso8583::{Frame, Message, mac};
use yuanlu_store::PosJournalRow;

use crate::codes;
use crate::reply::{self, digits_of, mask_pan, pan_of};

/// How long a claimed, unanswered journal row belongs to the host that claimed it. A repeat
/// within it is answered 94; after it, the repeat takes the row over and runs the request
/// again (every transaction is safe to run again: see `docs/pos.md`, "Crash safety").
pub const CLAIM_LEASE_SECONDS: i64 = 60;

/// The host's handler, over the engine. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    pub engine: Engine,
    /// Test fail point: stop as a killed host would, after the transaction's effects and
    /// before its answer is journaled (the connection is closed unanswered).
    die_before_answer: Arc<AtomicBool>,
}

/// What a request is, from its MTI, field 3 and 60.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sale,
    Void,
    Refund,
    PreAuth,
    PreAuthVoid,
    Completion,
    CompletionVoid,
    Reversal,
    Settlement,
    BatchUpload,
}

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::Sale => "sale",
            Kind::Void => "void",
            Kind::Refund => "refund",
            Kind::PreAuth => "preauth",
            Kind::PreAuthVoid => "preauth_void",
            Kind::Completion => "completion",
            Kind::CompletionVoid => "completion_void",
            Kind::Reversal => "reversal",
            Kind::Settlement => "settlement",
            Kind::BatchUpload => "batch_upload",
        }
    }

    fn of(message: &Message) -> Option<Kind> {
        let code = message.get_str(3).unwrap_or_default();
        let type_code = message
            .get_str(60)
            .and_then(|v| v.get(..2))
            .unwrap_or_default();
        match (message.mti(), code, type_code) {
            ("0200", "000000", "22") => Some(Kind::Sale),
            ("0200", "200000", "23") => Some(Kind::Void),
            ("0220", "200000", "25") => Some(Kind::Refund),
            ("0100", "030000", "10") => Some(Kind::PreAuth),
            ("0100", "200000", "11") => Some(Kind::PreAuthVoid),
            ("0200", "000000", "20") => Some(Kind::Completion),
            ("0200", "200000", "21") => Some(Kind::CompletionVoid),
            ("0400", _, "10" | "11" | "20" | "21" | "22" | "23") => Some(Kind::Reversal),
            ("0500", _, _) => Some(Kind::Settlement),
            ("0320", _, _) => Some(Kind::BatchUpload),
            _ => None,
        }
    }

    /// Whether the answer carries an RRN (37) and, approved, an auth code (38).
    fn has_reference(self) -> bool {
        !matches!(self, Kind::Reversal | Kind::Settlement | Kind::BatchUpload)
    }
}

/// The MTI of the request a reversal (0400) with this 60.1 reverses.
pub fn reversed_mti(type_code: &str) -> &'static str {
    match type_code {
        "10" | "11" => "0100",
        _ => "0200",
    }
}

/// A request being handled: the terminal, the message and its keys in the journal.
pub struct Request<'a> {
    pub terminal: &'a PosTerminal,
    pub message: &'a Message,
    pub kind: Kind,
    pub batch_no: String,
    pub trace_no: String,
    pub amount_fen: i64,
    pub card_masked: Option<String>,
    pub rrn: String,
    pub principal: Principal,
    /// Run again after its first run's host died unanswered: the transaction first looks
    /// for what its first run did.
    pub recovered: bool,
}

/// What a transaction decided.
#[derive(Debug, Default)]
pub struct Outcome {
    pub code: &'static str,
    pub payment_id: Option<String>,
    pub refund_id: Option<String>,
    /// Field 48 of the answer (settlement, batch upload).
    pub field48: Option<String>,
    /// The RRN of the pre-authorisation a completion or pre-auth void closed.
    pub original_rrn: Option<String>,
}

impl Outcome {
    pub fn code(code: &'static str) -> Self {
        Outcome {
            code,
            ..Outcome::default()
        }
    }

    /// This outcome's code, with the refund and payment of `refund`.
    pub fn with_refund(self, refund: Outcome) -> Self {
        if self.code != codes::APPROVED {
            return self;
        }
        Outcome {
            original_rrn: self.original_rrn,
            field48: self.field48,
            ..refund
        }
    }
}

impl Host {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            die_before_answer: Arc::default(),
        }
    }

    /// For crash tests: from now on, stop after a transaction's effects without journaling
    /// or sending its answer, as a host killed between the two would.
    #[doc(hidden)]
    pub fn die_before_answer(&self, on: bool) {
        self.die_before_answer.store(on, Ordering::SeqCst);
    }

    /// Answers one frame body; `None` closes the connection (not even an MTI to answer).
    pub async fn handle(&self, body: &[u8]) -> Option<Vec<u8>> {
        let Ok(frame) = Frame::decode_body(body) else {
            return reply::format_error(body);
        };
        let answer = self.answer(&frame).await?;
        frame
            .answer(answer.message)
            .encode()
            .ok()
            .or_else(|| reply::format_error(body))
    }

    async fn answer(&self, frame: &Frame) -> Option<Frame> {
        let request = &frame.message;
        let now = self.engine.clock.now();
        let plain = |code: &str| Some(frame.answer(reply::answer(request, code, now)));
        let (Some(t41), Some(t42)) = (request.get_str(41), request.get_str(42)) else {
            return plain(codes::FORMAT_ERROR);
        };
        let terminal = match self.engine.pos_terminal(t41, t42).await {
            Ok(Some(t)) => t,
            Ok(None) => return plain(codes::TERMINAL_UNKNOWN),
            Err(error) => {
                tracing::error!(%error, "pos host: terminal lookup failed");
                return plain(codes::SYSTEM_ERROR);
            }
        };
        if request.mti() == "0800" {
            return Some(frame.answer(self.sign_on(&terminal, request).await));
        }
        let Some(mak) = terminal.mak.filter(|mak| mac::verify(request, mak)) else {
            let mut answer = frame.answer(reply::answer(request, codes::MAC_FAILURE, now));
            if terminal.mak.is_none() {
                // Header nibble 3: "sign on again".
                answer.header[2] = (answer.header[2] & 0xF0) | 0x03;
            }
            return Some(answer);
        };
        let mut message = self.financial(&terminal, request).await?;
        if mac::sign(&mut message, &mak).is_err() {
            message = reply::answer(request, codes::SYSTEM_ERROR, now);
        }
        Some(frame.answer(message))
    }

    async fn sign_on(&self, terminal: &PosTerminal, request: &Message) -> Message {
        let now = self.engine.clock.now();
        let field60 = request.get_str(60).unwrap_or_default();
        let Some(batch) = field60
            .get(2..8)
            .filter(|b| b.bytes().all(|c| c.is_ascii_digit()))
        else {
            return reply::answer(request, codes::FORMAT_ERROR, now);
        };
        let pik: [u8; 16] = rand::random();
        let mak: [u8; 16] = rand::random();
        if let Err(error) = self.engine.pos_sign_on(terminal, &mak, batch).await {
            tracing::error!(%error, "pos host: sign-on not stored");
            return reply::answer(request, codes::SYSTEM_ERROR, now);
        }
        let mut answer = reply::answer(request, codes::APPROVED, now);
        let _ = answer.set(62, sign_on_keys_field(&terminal.tmk, &pik, &mak));
        answer
    }

    // Long on purpose: the crash-safe order (repeat check, journal, route, keep the answer)
    // is the point of this function; split, the order would no longer be visible in one place.
    /// A MAC-checked request: a repeat gets its first answer; otherwise it is journaled,
    /// routed and its answer kept. The answer is returned unsigned; `None` only at the
    /// test fail point.
    async fn financial(&self, terminal: &PosTerminal, request: &Message) -> Option<Message> {
        let now = self.engine.clock.now();
        let plain = |code: &str| Some(reply::answer(request, code, now));
        let Some(kind) = Kind::of(request) else {
            return plain(codes::NOT_SUPPORTED);
        };
        let batch = request.get_str(60).and_then(|v| v.get(2..8));
        let (Some(batch_no), Some(trace_no)) = (batch, request.get_str(11)) else {
            return plain(codes::FORMAT_ERROR);
        };
        let amount_fen = request
            .get_str(4)
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(0);
        let id = &terminal.row.id;
        let rrn = digits_of(&[id, batch_no, trace_no, request.mti()], 12);
        let mut row = PosJournalRow {
            terminal_ref: id.clone(),
            batch_no: batch_no.to_string(),
            trace_no: trace_no.to_string(),
            mti: request.mti().to_string(),
            kind: kind.id().to_string(),
            merchant_id: terminal.row.merchant_id.clone(),
            amount_fen,
            card_masked: pan_of(request).as_deref().and_then(mask_pan),
            rrn: None,
            auth_code: None,
            response_code: None,
            answer_hex: None,
            payment_id: None,
            refund_id: None,
            original_rrn: request.get_str(37).map(str::to_string),
            original_trace_no: request
                .get_str(61)
                .and_then(|v| v.get(6..12))
                .map(str::to_string),
            reversed: false,
            business_date: yuanlu_domain::time::shanghai_date(now)
                .format("%Y-%m-%d")
                .to_string(),
            created_at_us: yuanlu_domain::time::to_micros(now),
            preauth_state: None,
            closed_by_rrn: None,
            claimed_at_us: yuanlu_domain::time::to_micros(now),
        };
        let recovered = match self.claim(&row).await {
            Ok(Claim::New) => false,
            Ok(Claim::TakenOver) => {
                tracing::warn!(terminal = %id, batch_no, trace_no, "pos host: taking over a request its host left unanswered");
                true
            }
            Ok(Claim::Answered(answer)) => return Some(answer),
            Ok(Claim::Pending) => return plain(codes::DUPLICATE),
            Err(error) => {
                tracing::error!(%error, "pos host: journal claim failed");
                return plain(codes::SYSTEM_ERROR);
            }
        };
        let req = Request {
            terminal,
            message: request,
            kind,
            batch_no: batch_no.to_string(),
            trace_no: trace_no.to_string(),
            amount_fen,
            card_masked: row.card_masked.clone(),
            rrn: rrn.clone(),
            principal: Principal::Merchant {
                merchant_id: terminal.row.merchant_id.clone(),
                key_id: format!("pos:{id}"),
                role: MerchantRole::Staff,
            },
            recovered,
        };
        let outcome = self.route(&req).await;
        if self.die_before_answer.load(Ordering::SeqCst) {
            return None;
        }
        let mut answer = reply::answer(request, outcome.code, now);
        if kind.has_reference() {
            let _ = answer.set(37, rrn.clone());
            row.rrn = Some(rrn.clone());
            if outcome.code == codes::APPROVED {
                let auth = digits_of(&[&rrn, "auth"], 6);
                let _ = answer.set(38, auth.clone());
                row.auth_code = Some(auth);
            }
        }
        if let Some(field48) = &outcome.field48 {
            let _ = answer.set(48, field48.clone());
        }
        row.response_code = Some(outcome.code.to_string());
        row.answer_hex = answer.encode().ok().map(hex::encode_upper);
        row.payment_id = outcome.payment_id;
        row.refund_id = outcome.refund_id;
        if outcome.original_rrn.is_some() {
            row.original_rrn = outcome.original_rrn;
        }
        if let Err(error) = self.keep_answer(&row).await {
            tracing::error!(%error, "pos host: answer not journaled");
        }
        Some(answer)
    }

    async fn route(&self, req: &Request<'_>) -> Outcome {
        match req.kind {
            Kind::Sale => crate::txn::sale(&self.engine, req).await,
            Kind::Void => crate::txn::void(&self.engine, req).await,
            Kind::Refund => crate::txn::refund(&self.engine, req).await,
            Kind::PreAuth => crate::preauth::preauth(req),
            Kind::PreAuthVoid => crate::preauth::preauth_void(&self.engine, req).await,
            Kind::Completion => crate::preauth::completion(&self.engine, req).await,
            Kind::CompletionVoid => crate::preauth::completion_void(&self.engine, req).await,
            Kind::Reversal => crate::txn::reversal(&self.engine, req).await,
            Kind::Settlement => crate::settle::settlement(&self.engine, req).await,
            Kind::BatchUpload => crate::upload::batch_upload(&self.engine, req).await,
        }
    }

    async fn claim(&self, row: &PosJournalRow) -> Result<Claim, yuanlu_engine::EngineError> {
        let mut tx = self.engine.db.begin().await?;
        let fresh = tx.conn().claim_journal(row).await?;
        let existing = if fresh {
            None
        } else {
            tx.conn()
                .get_journal(&row.terminal_ref, &row.batch_no, &row.trace_no, &row.mti)
                .await?
        };
        // Unanswered past its lease: the host that claimed it died; take it over.
        let lease_end = |e: &PosJournalRow| {
            e.claimed_at_us.saturating_add(
                Duration::seconds(CLAIM_LEASE_SECONDS)
                    .num_microseconds()
                    .unwrap_or(i64::MAX),
            )
        };
        let taken_over = match &existing {
            Some(e) if e.response_code.is_none() && lease_end(e) <= row.claimed_at_us => {
                tx.conn()
                    .take_over_claim(row, e.claimed_at_us, row.claimed_at_us)
                    .await?
            }
            _ => false,
        };
        tx.commit().await?;
        if fresh {
            return Ok(Claim::New);
        }
        if taken_over {
            return Ok(Claim::TakenOver);
        }
        let answer = existing
            .and_then(|e| e.answer_hex)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|bytes| Message::decode(&bytes).ok());
        Ok(answer.map_or(Claim::Pending, |mut m| {
            m.remove(64);
            Claim::Answered(m)
        }))
    }

    async fn keep_answer(&self, row: &PosJournalRow) -> Result<(), yuanlu_engine::EngineError> {
        let mut tx = self.engine.db.begin().await?;
        tx.conn().answer_journal(row).await?;
        tx.commit().await?;
        Ok(())
    }
}

enum Claim {
    New,
    /// Claimed before by a host that died unanswered; this one runs it again.
    TakenOver,
    Answered(Message),
    Pending,
}
