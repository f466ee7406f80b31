//! The simulators' statements: `GET /sim/statement?date=YYYY-MM-DD&inject=…` writes the
//! channel's own statement of a business date from its books — the WeChat Pay trade bill,
//! the Alipay bill (GBK) or the card network's settlement file — with the writers of
//! `yuanlu-reconcile`, so that `yuanlu reconcile` can be tried against what a channel says.
//!
//! - What it lists: the refunds the simulator paid that day (reached SUCCESS, `succeeded_at`
//!   on the Asia/Shanghai date), one line each, sorted by refund number. **Refunds only**: a
//!   simulator is told payment references and totals, never the payments themselves, so the
//!   statement has no payment lines (yuanlu then reconciles refunds only). The card
//!   simulator also plays UnionPay QR; its statement lists those refunds too.
//! - `inject=duplicate=N,missing=N,amount_off=N` (each optional, default 0) falsifies the
//!   statement deterministically, on the first eligible refunds by number, each refund
//!   taking at most one injection, in that order: `duplicate` lists a refund twice (paid
//!   twice), `missing` leaves a paid refund out (never paid), `amount_off` lists it one fen
//!   more than it was. Fewer are injected when fewer refunds were paid.
//! - Which refund got what is in the `X-Sim-Injected` header
//!   (`duplicate=rf_a;missing=rf_b;amount_off=rf_c`, several numbers comma-separated) and in
//!   `GET /sim/statement/injected` with the same query (JSON).
//! - WeChat Pay issues no bill for a day without trades: so neither does its simulator (404).
//!   Alipay's and the card network's statements may be empty.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use yuanlu_domain::time::shanghai_date;
use yuanlu_reconcile::{LineKind, LineStatus, Statement, StatementChannel, StatementLine};

use super::books::BookEntry;
use super::{SimChannel, SimState};

/// The header naming the injected refunds.
pub const INJECTED_HEADER: &str = "x-sim-injected";

/// `?date=&inject=`.
#[derive(Debug, Clone, Deserialize)]
pub struct StatementParams {
    /// `YYYY-MM-DD` (Asia/Shanghai); today's date when absent.
    pub date: Option<String>,
    /// `duplicate=N,missing=N,amount_off=N`.
    pub inject: Option<String>,
}

/// How many refunds get each injection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injection {
    pub duplicate: usize,
    pub missing: usize,
    pub amount_off: usize,
}

impl Injection {
    /// Parses `duplicate=1,missing=1,amount_off=1`.
    pub fn parse(spec: &str) -> Result<Injection, String> {
        let mut injection = Injection::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, count) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: write name=count"))?;
            let count: usize = count
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the count is not a number"))?;
            match name.trim() {
                "duplicate" => injection.duplicate = count,
                "missing" => injection.missing = count,
                "amount_off" => injection.amount_off = count,
                other => {
                    return Err(format!(
                        "unknown injection {other:?}; use duplicate, missing, amount_off"
                    ));
                }
            }
        }
        Ok(injection)
    }
}

/// Which refund numbers got which injection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    pub duplicate: Vec<String>,
    pub missing: Vec<String>,
    pub amount_off: Vec<String>,
}

impl Injected {
    /// `duplicate=rf_a;missing=rf_b;amount_off=rf_c`.
    pub fn header_value(&self) -> String {
        [
            ("duplicate", &self.duplicate),
            ("missing", &self.missing),
            ("amount_off", &self.amount_off),
        ]
        .iter()
        .map(|(name, numbers)| format!("{name}={}", numbers.join(",")))
        .collect::<Vec<_>>()
        .join(";")
    }
}

/// The statement of a simulator for `date`, and what was injected into it.
pub fn build(
    channel: SimChannel,
    entries: &[BookEntry],
    date: NaiveDate,
    injection: Injection,
) -> (Statement, Injected) {
    let eligible: Vec<&BookEntry> = entries
        .iter()
        .filter(|e| e.paid_count > 0)
        .filter(|e| e.succeeded_at.is_some_and(|at| shanghai_date(at) == date))
        .collect();
    let mut injected = Injected::default();
    let mut lines = Vec::with_capacity(eligible.len() + injection.duplicate);
    for (i, entry) in eligible.iter().enumerate() {
        let mut line = line_of(entry);
        if i < injection.duplicate {
            injected.duplicate.push(entry.refund_no.clone());
            lines.push(line.clone());
        } else if i < injection.duplicate + injection.missing {
            injected.missing.push(entry.refund_no.clone());
            continue;
        } else if i < injection.duplicate + injection.missing + injection.amount_off {
            injected.amount_off.push(entry.refund_no.clone());
            line.amount_fen = line.amount_fen.saturating_add(1);
        }
        lines.push(line);
    }
    let statement = Statement {
        channel: statement_channel(channel),
        business_date: date,
        lines,
        declared_totals: None,
    };
    (statement, injected)
}

fn line_of(entry: &BookEntry) -> StatementLine {
    StatementLine {
        line_no: 0,
        kind: LineKind::Refund,
        channel_txn_id: Some(entry.channel_refund_id.clone()),
        our_ref: entry.refund_no.clone(),
        payment_ref: Some(entry.payment_ref.clone()),
        amount_fen: entry.amount_fen,
        status: LineStatus::Succeeded,
        occurred_at: entry.succeeded_at.unwrap_or(entry.created_at),
        account: entry.account.clone(),
    }
}

/// The statement format a simulator's channel issues.
pub fn statement_channel(channel: SimChannel) -> StatementChannel {
    match channel {
        SimChannel::Wechat => StatementChannel::Wechat,
        SimChannel::Alipay => StatementChannel::Alipay,
        SimChannel::Card => StatementChannel::Card,
    }
}

fn content_type(channel: SimChannel) -> &'static str {
    match channel {
        SimChannel::Wechat => "text/csv; charset=utf-8",
        SimChannel::Alipay => "text/csv; charset=GBK",
        SimChannel::Card => "text/plain; charset=utf-8",
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "code": "PARAM_ERROR", "message": message })),
    )
        .into_response()
}

/// The date and injection a request asks for.
fn read_params(
    state: &SimState,
    params: &StatementParams,
) -> Result<(NaiveDate, Injection), String> {
    let date = match params.date.as_deref() {
        None => shanghai_date(state.now()),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| format!("date {text:?} is not YYYY-MM-DD"))?,
    };
    let injection = Injection::parse(params.inject.as_deref().unwrap_or(""))
        .map_err(|e| format!("inject: {e}"))?;
    Ok((date, injection))
}

/// `GET /sim/statement`.
pub(super) async fn statement(
    State(state): State<Arc<SimState>>,
    Query(params): Query<StatementParams>,
) -> Response {
    let (date, injection) = match read_params(&state, &params) {
        Ok(read) => read,
        Err(message) => return bad_request(message),
    };
    let entries = state.lock_books().snapshot().refunds;
    let (statement, injected) = build(state.channel(), &entries, date, injection);
    drop(entries);
    if statement.lines.is_empty() && state.channel() == SimChannel::Wechat {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({
                "code": "NO_STATEMENT_BILL_EXIST",
                "message": format!("no bill exists for {date}: no refund was paid that day"),
            })),
        )
            .into_response();
    }
    let bytes = yuanlu_reconcile::write(&statement);
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(state.channel())),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{date}.csv\"",
        state.channel().name()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&injected.header_value()) {
        headers.insert(INJECTED_HEADER, value);
    }
    response
}

/// `GET /sim/statement/injected`: which refund got which injection, as JSON.
pub(super) async fn injected(
    State(state): State<Arc<SimState>>,
    Query(params): Query<StatementParams>,
) -> Response {
    let (date, injection) = match read_params(&state, &params) {
        Ok(read) => read,
        Err(message) => return bad_request(message),
    };
    let entries = state.lock_books().snapshot().refunds;
    let (statement, injected) = build(state.channel(), &entries, date, injection);
    Json(json!({
        "channel": state.channel().name(),
        "format": statement.channel.id(),
        "date": date.format("%Y-%m-%d").to_string(),
        "lines": statement.lines.len(),
        "duplicate": injected.duplicate,
        "missing": injected.missing,
        "amount_off": injected.amount_off,
    }))
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use yuanlu_reconcile::{OurRecord, OurStatus, ReconClass};

    use super::*;
    use crate::simulator::SimStatus;

    fn entry(n: u32, at: DateTime<Utc>) -> BookEntry {
        BookEntry {
            refund_no: format!("rf_{n:04}"),
            dice_key: format!("#{n}"),
            payment_ref: format!("pay_{n:04}"),
            amount_fen: 1_000 + i64::from(n),
            payment_total_fen: 10_000,
            account: Some("**** 0403".into()),
            status: SimStatus::Success,
            channel_refund_id: format!("50{n:020}"),
            paid_count: 1,
            paid_fen: 1_000 + i64::from(n),
            created_at: at,
            succeeded_at: Some(at),
            notify_url: None,
        }
    }

    fn record(entry: &BookEntry) -> OurRecord {
        OurRecord {
            kind: LineKind::Refund,
            our_ref: entry.refund_no.clone(),
            channel_txn_id: Some(entry.channel_refund_id.clone()),
            amount_fen: entry.amount_fen,
            status: OurStatus::Succeeded,
            payment_ref: Some(entry.payment_ref.clone()),
            settled_to_merchant_fen: None,
            refunded_fen: 0,
        }
    }

    #[test]
    fn injections_parse() {
        assert_eq!(
            Injection::parse("duplicate=1, missing=2,amount_off=3").unwrap(),
            Injection {
                duplicate: 1,
                missing: 2,
                amount_off: 3
            }
        );
        assert_eq!(Injection::parse("").unwrap(), Injection::default());
        assert!(Injection::parse("twice=1").is_err());
        assert!(Injection::parse("missing").is_err());
        assert!(Injection::parse("missing=x").is_err());
    }

    #[test]
    fn each_format_round_trips_and_matching_finds_exactly_the_injections() {
        let at = DateTime::parse_from_rfc3339("2026-11-20T14:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let date = shanghai_date(at);
        let mut entries: Vec<BookEntry> = (0..6).map(|n| entry(n, at)).collect();
        // Paid the day before, and not paid at all: neither is listed.
        entries.push(entry(90, at - Duration::days(1)));
        let mut unpaid = entry(91, at);
        unpaid.paid_count = 0;
        unpaid.status = SimStatus::Abnormal;
        entries.push(unpaid);
        let records: Vec<OurRecord> = entries[..6].iter().map(record).collect();
        let injection = Injection {
            duplicate: 1,
            missing: 1,
            amount_off: 1,
        };
        for channel in SimChannel::ALL {
            let (statement, injected) = build(channel, &entries, date, injection);
            assert_eq!(injected.duplicate, vec!["rf_0000"]);
            assert_eq!(injected.missing, vec!["rf_0001"]);
            assert_eq!(injected.amount_off, vec!["rf_0002"]);
            assert_eq!(statement.lines.len(), 6, "{channel:?}");
            let bytes = yuanlu_reconcile::write(&statement);
            let parsed =
                yuanlu_reconcile::parse(statement_channel(channel), &bytes, &mut |_| {}).unwrap();
            assert_eq!(parsed.business_date, date);
            let report = yuanlu_reconcile::reconcile(&parsed, &records);
            let found: Vec<(ReconClass, String)> = report
                .items
                .iter()
                .map(|i| (i.class, i.our_ref.clone().unwrap_or_default()))
                .collect();
            assert_eq!(
                found,
                vec![
                    (ReconClass::DuplicateInChannel, "rf_0000".to_string()),
                    (ReconClass::AmountMismatch, "rf_0002".to_string()),
                    (ReconClass::MissingInChannel, "rf_0001".to_string()),
                ],
                "{channel:?}"
            );
            assert_eq!(report.total(ReconClass::Matched).count, 4);
        }
    }

    #[test]
    fn header_names_every_injection() {
        let injected = Injected {
            duplicate: vec!["rf_a".into()],
            missing: vec!["rf_b".into(), "rf_c".into()],
            amount_off: vec![],
        };
        assert_eq!(
            injected.header_value(),
            "duplicate=rf_a;missing=rf_b,rf_c;amount_off="
        );
    }
}
