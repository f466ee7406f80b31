//! The v1 handlers, one module per resource.

pub mod admin;
pub mod arrival;
pub mod bank_statements;
pub mod bodies;
pub mod cases;
pub mod channels;
pub mod evidence;
pub mod exports;
pub mod keys;
pub mod merchants;
pub mod notifications;
pub mod operations;
pub mod payment_search;
pub mod payments;
pub mod public;
pub mod recon_lists;
pub mod reconciliations;
pub mod refunds;
pub mod reports;
pub mod settlements;
pub mod terminals;

use serde::Deserialize;

use crate::problem::Problem;

/// Page size bounds of every list.
pub const LIST_LIMIT_DEFAULT: i64 = 20;
pub const LIST_LIMIT_MAX: i64 = 100;

/// `?limit=&starting_after=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// An id from the previous page: the page starts after it.
    pub starting_after: Option<String>,
}

/// The page size, or a `validation_error` outside 1–100.
pub fn page_limit(limit: Option<i64>) -> Result<i64, Problem> {
    match limit {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(l) if (1..=LIST_LIMIT_MAX).contains(&l) => Ok(l),
        Some(_) => Err(Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "validation_error",
            format!("limit must be between 1 and {LIST_LIMIT_MAX}"),
        )
        .with_field("limit")),
    }
}
