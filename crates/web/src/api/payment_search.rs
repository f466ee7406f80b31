//! The filters of `GET /v1/payments`, read and checked at the edge: each bad value is a
//! 400 `validation_error` naming its field, before the engine is asked.

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use yuanlu_engine::payment_search::PaymentFilters;

use super::page_limit;
use crate::problem::Problem;

/// Filters of the payment list; every one given must match.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PaymentListParams {
    /// `YYYY-MM-DD`: payments captured on this business date (Asia/Shanghai). Not with
    /// `captured_from`/`captured_to`.
    pub business_date: Option<String>,
    /// RFC 3339; payments captured at or after.
    pub captured_from: Option<String>,
    /// RFC 3339; payments captured before.
    pub captured_to: Option<String>,
    /// Exact amount in fen.
    pub amount: Option<String>,
    /// The last 4 digits of the card, or of the phone (wallet account or consumer phone).
    pub last4: Option<String>,
    /// Reference number (参考号) printed on the slip.
    pub rrn: Option<String>,
    /// Voucher (trace) number (凭证号) printed on the slip.
    pub trace_no: Option<String>,
    pub terminal_id: Option<String>,
    /// The merchant's order number.
    pub order_no: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// An id from the previous page: the page starts after it.
    pub starting_after: Option<String>,
}

fn bad(field: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "validation_error", detail).with_field(field)
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    bad(
                        field,
                        format!(
                            "{field} must be an RFC 3339 instant such as 2026-11-21T08:00:00+08:00"
                        ),
                    )
                })
        })
        .transpose()
}

impl PaymentListParams {
    /// The engine's filters, or the first bad value's problem.
    pub fn filters(self) -> Result<PaymentFilters, Problem> {
        let business_date = self
            .business_date
            .as_deref()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    bad(
                        "business_date",
                        "business_date must be a date such as 2026-11-21".into(),
                    )
                })
            })
            .transpose()?;
        let amount = self
            .amount
            .as_deref()
            .map(|a| {
                a.parse::<i64>().map_err(|_| {
                    bad(
                        "amount",
                        "amount must be a whole number of fen, e.g. 1250 for 12.50".into(),
                    )
                })
            })
            .transpose()?;
        Ok(PaymentFilters {
            business_date,
            captured_from: instant("captured_from", self.captured_from.as_deref())?,
            captured_to: instant("captured_to", self.captured_to.as_deref())?,
            amount,
            last4: self.last4,
            rrn: self.rrn,
            trace_no: self.trace_no,
            terminal_id: self.terminal_id,
            order_no: self.order_no,
            limit: page_limit(self.limit)?,
            starting_after: self.starting_after,
        })
    }
}
