//! Field 39: the response codes the host answers, and how engine refusals map onto them
//! (the table is in `docs/pos.md`).

use yuanlu_engine::EngineError;

pub const APPROVED: &str = "00";
pub const INVALID_RELATED: &str = "12";
pub const INVALID_AMOUNT: &str = "13";
pub const CARD_DIFFERS: &str = "14";
pub const ALREADY_VOIDED: &str = "22";
pub const ORIGINAL_NOT_FOUND: &str = "25";
pub const FORMAT_ERROR: &str = "30";
pub const NOT_SUPPORTED: &str = "40";
pub const INSUFFICIENT_FUNDS: &str = "51";
pub const TERMINAL_DIFFERS: &str = "58";
pub const OVER_LIMIT: &str = "61";
pub const AMOUNT_MISMATCH: &str = "64";
pub const DUPLICATE: &str = "94";
/// Batch upload: a line differs from the host's journal.
pub const RECONCILE_ERROR: &str = "95";
pub const SYSTEM_ERROR: &str = "96";
pub const TERMINAL_UNKNOWN: &str = "97";
pub const MAC_FAILURE: &str = "A0";

/// The response code for an engine error, by its stable API code.
pub fn for_engine_error(error: &EngineError) -> &'static str {
    match error.code() {
        "amount_exceeds_refundable" | "too_many_refunds" | "daily_refund_limit_exceeded" => {
            OVER_LIMIT
        }
        "invalid_amount" => INVALID_AMOUNT,
        "payment_voided" => ALREADY_VOIDED,
        "refund_window_expired" => INVALID_RELATED,
        "payment_not_found" | "not_found" => ORIGINAL_NOT_FOUND,
        "insufficient_merchant_balance" => INSUFFICIENT_FUNDS,
        "merchant_refund_no_conflict" => DUPLICATE,
        "validation_error" => FORMAT_ERROR,
        _ => SYSTEM_ERROR,
    }
}
