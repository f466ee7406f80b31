//! Issue 16 items 3–5, the day-to-day of operations staff:
//!
//! - [`settings`]: `PATCH /v1/merchants/{id}`: settings change over time, versioned (a
//!   payment keeps the fee terms it was recorded under), audited with before and after;
//!   the daily refund limit (限额) checked in the create path under the balance lock;
//! - [`orders`]: `POST /v1/payments/{id}/order`: the order moves (shipped, delivered,
//!   returned), so the goods-return rule follows the real order;
//! - [`consumer`]: `POST /v1/public/refund-requests`: a consumer with the payment's facts
//!   asks for a refund, which reaches the merchant's review queue as `consumer_request`.

pub mod consumer;
pub mod orders;
pub mod settings;

use yuanlu_domain::settings::{DailyLimitExceeded, DailyRefundLimit};

use crate::error::{EngineError, EngineResult};

/// The daily limit for one more refund of `amount_fen` after `count` refunds of `fen` today.
pub(crate) fn check_daily_limit(
    limit: &DailyRefundLimit,
    count: i64,
    fen: i64,
    amount_fen: i64,
) -> EngineResult<()> {
    limit
        .check(count, fen, amount_fen)
        .map_err(|exceeded| match exceeded {
            DailyLimitExceeded::Amount {
                limit_fen,
                used_fen,
            } => EngineError::DailyRefundLimitExceeded {
                what: "amount",
                limit: limit_fen,
                used: used_fen,
            },
            DailyLimitExceeded::Count { limit, used } => EngineError::DailyRefundLimitExceeded {
                what: "count",
                limit,
                used,
            },
        })
}
