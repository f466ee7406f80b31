//! 结算 (0500): the terminal's field 48 totals against the host's for the batch; the answer
//! says balanced (1) or not (2), and an unbalanced terminal then uploads its batch (0320).

use yuanlu_engine::Engine;
use yuanlu_store::BatchTotals;

use crate::codes;
use crate::handler::{Outcome, Request};

/// Field 48 digits before the flag: debit n12 + n3, credit n12 + n3.
const TOTALS_DIGITS: usize = 30;

/// Field 48 of a settlement request for these totals (flag `0`).
pub fn totals_field(totals: &BatchTotals) -> String {
    format!(
        "{:012}{:03}{:012}{:03}0",
        totals.debit_fen, totals.debit_count, totals.credit_fen, totals.credit_count
    )
}

pub async fn settlement(engine: &Engine, req: &Request<'_>) -> Outcome {
    let Some(given) = req.message.get_str(48).filter(|v| v.len() > TOTALS_DIGITS) else {
        return Outcome::code(codes::FORMAT_ERROR);
    };
    let ours = async {
        let mut pooled = engine.db.acquire().await?;
        let totals = pooled
            .conn()
            .batch_totals(&req.terminal.row.id, &req.batch_no)
            .await?;
        Ok::<_, yuanlu_engine::EngineError>(totals)
    }
    .await;
    let Ok(ours) = ours else {
        return Outcome::code(codes::SYSTEM_ERROR);
    };
    let balanced = given.get(..TOTALS_DIGITS) == totals_field(&ours).get(..TOTALS_DIGITS);
    let flag = if balanced { '1' } else { '2' };
    let mut answer = given.get(..TOTALS_DIGITS).unwrap_or_default().to_string();
    answer.push(flag);
    Outcome {
        code: codes::APPROVED,
        field48: Some(answer),
        ..Outcome::default()
    }
}
