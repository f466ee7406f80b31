//! SQL fragments generated from the domain's rules, so a rule written in Rust is the one the
//! database runs: status lists and the overdue condition.

use std::sync::LazyLock;

use yuanlu_domain::refund::{RefundStatus, SendState};

/// `('a','b',…)`: the statuses `keep` accepts, for `status IN …`.
pub fn status_list(keep: impl Fn(RefundStatus) -> bool) -> String {
    let ids: Vec<String> = RefundStatus::ALL
        .iter()
        .copied()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.id()))
        .collect();
    format!("({})", ids.join(","))
}

/// The refunds that count against a merchant's day ([`RefundStatus::counts_against_day`]).
pub static LIVE_REFUND_STATUSES: LazyLock<String> =
    LazyLock::new(|| status_list(RefundStatus::counts_against_day));

/// The statuses that can be overdue ([`RefundStatus::may_be_overdue`]).
pub static OVERDUE_STATUSES: LazyLock<String> =
    LazyLock::new(|| status_list(RefundStatus::may_be_overdue));

/// The overdue rule (`yuanlu_domain::transition::is_overdue`) on the refunds table seen as
/// `prefix` (`"r."` or `""`), with `now` and `unconfirmed_before` as placeholders: under way
/// past its expected arrival, or sent before `unconfirmed_before` and still not accepted.
pub fn overdue_condition(prefix: &str, now: &str, unconfirmed_before: &str) -> String {
    format!(
        "{prefix}status IN {statuses} AND ({prefix}expected_arrival_by_us < {now} \
         OR ({prefix}send_state <> '{accepted}' AND {prefix}dispatched_at_us < {unconfirmed_before}))",
        statuses = *OVERDUE_STATUSES,
        accepted = SendState::Accepted.id(),
    )
}

// --- The statements of a refund's create path -------------------------------------------
// Public so that the bench's baseline runs the very texts the store runs.

pub const PAYMENT_COLUMNS: &str = "id, merchant_id, terminal_id, channel, amount_fen, currency, fee_fen, kind, member, \
    payer_account, payer_bank, batch_no, trace_no, rrn, order_no, shipping_status, phone, captured_at_us, \
    created_at_us, amount_refunded_fen, amount_in_flight_fen, fee_returned_fen, refund_count, voided";

/// The columns a refund is created with.
pub const REFUND_INSERT_COLUMNS: &str = "id, merchant_id, payment_id, merchant_refund_no, channel, type, status, amount_fen, \
    fee_refunded_fen, reason, note, requested_by_role, requested_by_name, review_reasons, required_reviewer, \
    review_note, reviewed_by, tracking_no, failure_reason, expected_arrival_by_us, created_at_us, updated_at_us, \
    next_attempt_at_us";

/// Every column of a refund, in [`RefundRow`]'s order.
pub const REFUND_COLUMNS: &str = "id, merchant_id, payment_id, merchant_refund_no, channel, type, status, amount_fen, \
    fee_refunded_fen, reason, note, requested_by_role, requested_by_name, review_reasons, required_reviewer, \
    review_note, reviewed_by, tracking_no, failure_reason, expected_arrival_by_us, created_at_us, updated_at_us, \
    dispatch_attempts, next_attempt_at_us, lease_owner, lease_until_us, send_state, dispatched_at_us, \
    channel_refund_id, received_account, succeeded_at_us, reroute_account, last_error, query_errors, reroute_account_sealed, \
    deducted_fen";

/// Every column of an API key, in [`ApiKeyRow`]'s order.
pub const API_KEY_COLUMNS: &str = "key_hash, id, merchant_id, role, created_at_us, prefix, origin, \
    expires_at_us, revoked_at_us, last_used_at_us, replaced_by";

/// A merchant day's totals (`merchant_days`): `$1` the merchant, `$2` the day's first
/// microsecond; no row is a day with nothing yet.
pub const MERCHANT_DAY: &str = "SELECT sales_fen, refunds_fen, refunds_count FROM merchant_days \
    WHERE merchant_id = $1 AND day_start_us = $2";

/// Adds `($3, $4, $5)` to a merchant day's `(sales_fen, refunds_fen, refunds_count)`.
pub const MERCHANT_DAY_ADD: &str = "INSERT INTO merchant_days \
    (merchant_id, day_start_us, sales_fen, refunds_fen, refunds_count) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (merchant_id, day_start_us) DO UPDATE SET \
    sales_fen = merchant_days.sales_fen + excluded.sales_fen, \
    refunds_fen = merchant_days.refunds_fen + excluded.refunds_fen, \
    refunds_count = merchant_days.refunds_count + excluded.refunds_count";

/// An API key by the hash of its secret.
pub static API_KEY_BY_HASH: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"));

pub const MERCHANT_BY_ID: &str =
    "SELECT id, name, settings, created_at_us FROM merchants WHERE id = $1";
pub const SETTLED_COUNT: &str = "SELECT COUNT(*) FROM settlement_runs WHERE business_date = $1";
pub const UPDATE_PAYMENT_COUNTERS: &str = "UPDATE payments SET amount_refunded_fen = $2, amount_in_flight_fen = $3, \
    fee_returned_fen = $4, refund_count = $5, voided = $6 WHERE id = $1 AND merchant_id = $7";
pub const AUDIT_HEAD_INSERT: &str =
    "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING";
pub const AUDIT_INSERT: &str = "INSERT INTO audit_log (chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const AUDIT_HEAD_UPDATE: &str = "UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain = $1";
pub const BALANCE_INSERT: &str = "INSERT INTO merchant_balances (merchant_id, unsettled_fen, carried_fen) \
    VALUES ($1, 0, 0) ON CONFLICT (merchant_id) DO NOTHING";
pub const BALANCE_UPDATE: &str =
    "UPDATE merchant_balances SET unsettled_fen = $2, carried_fen = $3 WHERE merchant_id = $1";
pub const POSTING_INSERT: &str = "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, \
    channel, amount_fen, fee_fen, business_date, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub const WEBHOOK_BY_MERCHANT: &str = "SELECT merchant_id, url, secret, created_at_us, updated_at_us \
    FROM merchant_webhooks WHERE merchant_id = $1";

/// `INSERT INTO ledger_entries … VALUES ($1, …, $5), ($6, …)` for `rows` entries.
pub fn entries_insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let first = row * 5 + 1;
            format!(
                "(${first}, ${}, ${}, ${}, ${})",
                first + 1,
                first + 2,
                first + 3,
                first + 4
            )
        })
        .collect();
    format!(
        "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) VALUES {}",
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_counts_held_and_paid_refunds() {
        assert_eq!(
            *LIVE_REFUND_STATUSES,
            "('awaiting_return','pending_review','queued','processing','succeeded','abnormal')"
        );
        assert_eq!(*OVERDUE_STATUSES, "('processing','abnormal')");
    }
}
