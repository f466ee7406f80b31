//! Cases (工单) about a refund: what a case is about, whether it is open, who opened it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// The refund has not arrived (when it should have).
    NotArrived,
    /// The amount refunded is not what was expected.
    WrongAmount,
    Other,
}

string_enum!(CaseKind, "case kind" {
    NotArrived => "not_arrived",
    WrongAmount => "wrong_amount",
    Other => "other",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Resolved,
}

string_enum!(CaseStatus, "case status" { Open => "open", Resolved => "resolved" });

/// Who opened a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseOpener {
    Merchant,
    Acquirer,
    Consumer,
    /// The overdue monitor.
    System,
}

string_enum!(CaseOpener, "case opener" {
    Merchant => "merchant",
    Acquirer => "acquirer",
    Consumer => "consumer",
    System => "system",
});
