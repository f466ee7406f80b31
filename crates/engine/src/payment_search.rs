//! Finding the original sale: `GET /v1/payments` with filters, and the same search for the
//! merchant back office's pages. A merchant searches its own payments; the admin all.

use chrono::{DateTime, NaiveDate, Utc};
use yuanlu_domain::time::{shanghai_day_bounds, to_micros};
use yuanlu_store::queries_search::PaymentSearch;

use crate::Engine;
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::payments::{IDENTIFIER_CHARS_MAX, PAYMENT_AMOUNT_FEN_MAX, optional_text};
use crate::views::{self, Page, Payment};

/// What a cashier knows about a sale; every filter given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilters {
    /// The business date (Asia/Shanghai) the payment was captured on; not with a range.
    pub business_date: Option<NaiveDate>,
    /// Captured at or after.
    pub captured_from: Option<DateTime<Utc>>,
    /// Captured before.
    pub captured_to: Option<DateTime<Utc>>,
    /// Exact amount in fen.
    pub amount: Option<i64>,
    /// Last four digits of the card, or of the phone (wallet account or consumer phone).
    pub last4: Option<String>,
    /// Reference number (参考号) of the slip.
    pub rrn: Option<String>,
    /// Voucher (trace) number (凭证号) of the slip.
    pub trace_no: Option<String>,
    pub terminal_id: Option<String>,
    /// The merchant's order number.
    pub order_no: Option<String>,
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// Checks the filters (the rules the API and the pages share) and turns them into the
/// store's search.
pub fn search_of(who: &Principal, filters: &PaymentFilters) -> EngineResult<PaymentSearch> {
    let (mut from_us, mut to_us) = (
        filters.captured_from.map(to_micros),
        filters.captured_to.map(to_micros),
    );
    if let Some(date) = filters.business_date {
        if from_us.is_some() || to_us.is_some() {
            return Err(EngineError::validation(
                "business_date",
                "give business_date or captured_from/captured_to, not both",
            ));
        }
        let (start, end) = shanghai_day_bounds(date);
        (from_us, to_us) = (Some(to_micros(start)), Some(to_micros(end)));
    }
    if let (Some(from), Some(to)) = (from_us, to_us)
        && from >= to
    {
        return Err(EngineError::validation(
            "captured_to",
            "captured_to must be after captured_from",
        ));
    }
    if let Some(amount) = filters.amount
        && !(1..=PAYMENT_AMOUNT_FEN_MAX).contains(&amount)
    {
        return Err(EngineError::validation(
            "amount",
            format!("give an amount in fen from 1 to {PAYMENT_AMOUNT_FEN_MAX}"),
        ));
    }
    if let Some(last4) = &filters.last4
        && (last4.len() != 4 || !last4.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(EngineError::validation(
            "last4",
            "give exactly the last 4 digits of the card or phone",
        ));
    }
    let text = |field: &str, value: &Option<String>| {
        optional_text(field, value.as_deref(), IDENTIFIER_CHARS_MAX)
    };
    Ok(PaymentSearch {
        merchant_id: who.merchant_scope().map(str::to_string),
        captured_from_us: from_us,
        captured_to_us: to_us,
        amount_fen: filters.amount,
        last4: filters.last4.clone(),
        rrn: text("rrn", &filters.rrn)?,
        trace_no: text("trace_no", &filters.trace_no)?,
        terminal_id: text("terminal_id", &filters.terminal_id)?,
        order_no: text("order_no", &filters.order_no)?,
        starting_after: filters.starting_after.clone(),
        limit: filters.limit + 1,
    })
}

impl Engine {
    /// Payments matching every filter, newest first (a page of `filters.limit`).
    pub async fn search_payments(
        &self,
        who: &Principal,
        filters: &PaymentFilters,
    ) -> EngineResult<Page<Payment>> {
        let search = search_of(who, filters)?;
        let mut pooled = self.db.acquire().await?;
        let rows = pooled.conn().search_payments(&search).await?;
        Page::of_rows(rows, filters.limit, |r| views::payment(&r, &[]))
    }
}
