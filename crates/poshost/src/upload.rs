//! 批上送 (0320): after an unbalanced settlement the terminal uploads its batch, up to eight
//! lines a message in field 48: the count (n2), then per line the card organisation (n2),
//! the trace (n6), the card number (n20, right-aligned, zero-filled) and the amount (n12).
//! The host compares each line with its journal of the batch and answers, in field 48, the
//! count and per line its trace (n6) and a result digit (`docs/pos.md`); 39 is 00 when every
//! line matches and 95 (reconcile error) when one does not.

use yuanlu_engine::{Engine, EngineError};

use crate::codes;
use crate::handler::{Outcome, Request};
use crate::reply::mask_pan;

/// Characters of one uploaded line.
pub const LINE_DIGITS: usize = 40;
/// Lines in one 0320.
pub const LINES_MAX: usize = 8;

/// The result digit of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// `0`: the host has the same approved request (trace, amount, card).
    Matches,
    /// `1`: the host has no approved request with this trace in the batch.
    Unknown,
    /// `2`: the amount differs.
    AmountDiffers,
    /// `3`: the card differs.
    CardDiffers,
    /// `4`: the host has it, reversed.
    Reversed,
}

impl LineResult {
    pub fn digit(self) -> char {
        match self {
            LineResult::Matches => '0',
            LineResult::Unknown => '1',
            LineResult::AmountDiffers => '2',
            LineResult::CardDiffers => '3',
            LineResult::Reversed => '4',
        }
    }
}

/// One uploaded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLine {
    pub trace_no: String,
    /// The card number, leading zeros removed; empty when the terminal sent none.
    pub pan: String,
    pub amount_fen: i64,
}

/// Field 48 of a 0320 for these lines (at most eight are written).
pub fn upload_field(lines: &[UploadLine]) -> String {
    let lines = &lines[..lines.len().min(LINES_MAX)];
    let mut field = format!("{:02}", lines.len());
    for line in lines {
        field.push_str(&format!(
            "00{}{:0>20}{:012}",
            line.trace_no, line.pan, line.amount_fen
        ));
    }
    field
}

/// The lines of field 48; `None` when it is not `count` whole lines of digits.
pub fn parse_lines(field: &str) -> Option<Vec<UploadLine>> {
    let count: usize = field.get(..2)?.parse().ok()?;
    let rest = field.get(2..)?;
    if count > LINES_MAX
        || rest.len() != count * LINE_DIGITS
        || !rest.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    (0..count)
        .map(|i| {
            let line = rest.get(i * LINE_DIGITS..(i + 1) * LINE_DIGITS)?;
            Some(UploadLine {
                trace_no: line.get(2..8)?.to_string(),
                pan: line.get(8..28)?.trim_start_matches('0').to_string(),
                amount_fen: line.get(28..40)?.parse().ok()?,
            })
        })
        .collect()
}

pub async fn batch_upload(engine: &Engine, req: &Request<'_>) -> Outcome {
    let network_code = req.message.get_str(60).and_then(|v| v.get(8..11));
    let Some(field) = req.message.get_str(48) else {
        // The upload's end (60.3 202/207) carries no lines.
        return match network_code {
            Some("202" | "207") => Outcome::code(codes::APPROVED),
            _ => Outcome::code(codes::FORMAT_ERROR),
        };
    };
    let Some(lines) = parse_lines(field) else {
        return Outcome::code(codes::FORMAT_ERROR);
    };
    let compared = async {
        let mut pooled = engine.db.acquire().await?;
        let mut conn = pooled.conn();
        let mut results = Vec::with_capacity(lines.len());
        for line in &lines {
            let rows = conn
                .journal_of_trace(&req.terminal.row.id, &req.batch_no, &line.trace_no)
                .await?;
            let row = rows
                .iter()
                .find(|r| r.response_code.as_deref() == Some(codes::APPROVED));
            let card = mask_pan(&line.pan);
            let result = match row {
                None => LineResult::Unknown,
                Some(r) if r.reversed => LineResult::Reversed,
                Some(r) if r.amount_fen != line.amount_fen => LineResult::AmountDiffers,
                Some(r) if card.is_some() && r.card_masked.is_some() && card != r.card_masked => {
                    LineResult::CardDiffers
                }
                Some(_) => LineResult::Matches,
            };
            results.push((line.trace_no.clone(), result));
        }
        Ok::<_, EngineError>(results)
    }
    .await;
    let Ok(results) = compared else {
        return Outcome::code(codes::SYSTEM_ERROR);
    };
    let mut field = format!("{:02}", results.len());
    for (trace, result) in &results {
        field.push_str(trace);
        field.push(result.digit());
    }
    let all_match = results.iter().all(|(_, r)| *r == LineResult::Matches);
    Outcome {
        code: if all_match {
            codes::APPROVED
        } else {
            codes::RECONCILE_ERROR
        },
        field48: Some(field),
        ..Outcome::default()
    }
}
