//! Downloads (issue 16): the refund list, settlement statements, reconciliations and
//! reconciliation exceptions as CSV or XLSX, with the same filters as their lists.
//!
//! `GET /v1/exports/{refunds|settlements|reconciliations|reconciliation-exceptions}`
//! `?format=csv|xlsx` (default `csv`) plus the list's filters; `limit` is ignored (an export
//! holds every row the filters select; `starting_after` still starts it after an item).
//!
//! - CSV: UTF-8 with a byte order mark (so Excel reads Chinese right), a header row in
//!   Chinese, amounts in yuan with two decimals, times in Asia/Shanghai. Streamed: the
//!   body is written page by page ([`EXPORT_PAGE_ROWS`] rows) as the list is walked, so a
//!   year of refunds never sits in memory. The first page is read before the answer
//!   starts, so a bad filter or key is an ordinary 4xx problem; an error after that cuts
//!   the download short (the client sees an incomplete body, not a wrong one).
//! - XLSX (`rust_xlsxwriter`): built in memory, up to [`XLSX_ROWS_MAX`] rows; above that
//!   422 `export_too_large` (narrow the range or take the CSV).
//!
//! Text cells that begin with `=`, `+`, `-` or `@` get a leading `'` in the CSV, so a
//! spreadsheet never runs a merchant's note as a formula.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use yuanlu_domain::time::shanghai;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::ops_lists::QueuedException;
use yuanlu_engine::reconciliation::ReconciliationView;
use yuanlu_engine::settlement::StatementView;
use yuanlu_engine::views::{Page, Refund};
use yuanlu_engine::{Engine, EngineResult};

use super::recon_lists::{ExceptionQueueParams, ReconciliationListParams};
use super::refunds::RefundListParams;
use super::settlements::StatementParams;
use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// Rows read (and, for CSV, written) per page of an export.
pub const EXPORT_PAGE_ROWS: i64 = 100;
/// The most rows an XLSX export holds (it is built in memory).
pub const XLSX_ROWS_MAX: usize = 50_000;
/// The byte order mark that opens every CSV export.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `?format=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FormatParams {
    /// `csv` (default; UTF-8 with BOM, streamed) or `xlsx` (at most 50,000 rows).
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

fn format_of(params: &FormatParams) -> Result<Format, Problem> {
    match params.format.as_deref() {
        None | Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some(other) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("unknown format {other:?}; use csv or xlsx"),
        )
        .with_field("format")),
    }
}

/// One cell of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// Fen, shown as yuan with two decimals.
    Money(i64),
    Empty,
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

fn opt_text(value: Option<impl Into<String>>) -> Cell {
    value.map_or(Cell::Empty, |v| Cell::Text(v.into()))
}

fn opt_money(value: Option<i64>) -> Cell {
    value.map_or(Cell::Empty, Cell::Money)
}

/// A serialized enum's name (`"wechat"`, `"succeeded"`).
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `12345` fen → `123.45`; `-5` → `-0.05`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// One CSV field.
fn csv_field(cell: &Cell, out: &mut String) {
    match cell {
        Cell::Empty => {}
        Cell::Int(n) => out.push_str(&n.to_string()),
        Cell::Money(fen) => out.push_str(&yuan(*fen)),
        Cell::Text(s) => {
            let guarded = if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.clone()
            };
            if guarded.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&guarded.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&guarded);
            }
        }
    }
}

fn csv_line(cells: &[Cell], out: &mut String) {
    for (n, cell) in cells.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        csv_field(cell, out);
    }
    out.push_str("\r\n");
}

fn csv_header(columns: &[&str]) -> String {
    let mut out = String::new();
    let cells: Vec<Cell> = columns.iter().map(|c| text(*c)).collect();
    csv_line(&cells, &mut out);
    out
}

/// Reads the page of a list after a cursor (`None`: the first page).
type Fetch<T> =
    Arc<dyn Fn(Option<String>) -> BoxFuture<'static, EngineResult<Page<T>>> + Send + Sync>;

/// What an export of one list needs: its columns, a row per item, the item's id (the next
/// page's cursor), and how to read a page after a cursor.
struct Export<T> {
    name: &'static str,
    columns: &'static [&'static str],
    row: fn(&T) -> Vec<Cell>,
    id: fn(&T) -> String,
    fetch: Fetch<T>,
}

impl<T: Send + 'static> Export<T> {
    async fn respond(self, format: Format, first_cursor: Option<String>) -> ApiResult<Response> {
        let first = (self.fetch)(first_cursor).await?;
        match format {
            Format::Csv => Ok(self.csv(first)),
            Format::Xlsx => self.xlsx(first).await,
        }
    }

    fn csv(self, first: Page<T>) -> Response {
        struct CsvState<T> {
            export: Export<T>,
            pending: Option<Page<T>>,
            header_sent: bool,
            finished: bool,
            failed: Option<String>,
        }
        let state = CsvState {
            export: self,
            pending: Some(first),
            header_sent: false,
            finished: false,
            failed: None,
        };
        let name = state.export.name;
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            if let Some(error) = state.failed.take() {
                // The rows so far went out; an error now aborts the body.
                state.finished = true;
                return Some((Err(std::io::Error::other(error)), state));
            }
            if state.finished {
                return None;
            }
            let mut out = String::new();
            if !state.header_sent {
                state.header_sent = true;
                out.push_str(std::str::from_utf8(UTF8_BOM).unwrap_or_default());
                out.push_str(&csv_header(state.export.columns));
            }
            let page = match state.pending.take() {
                Some(page) => page,
                None => {
                    // Only reached after a page with `has_more`; its last id is the cursor.
                    return None;
                }
            };
            for item in &page.data {
                csv_line(&(state.export.row)(item), &mut out);
            }
            let cursor = page.data.last().map(|item| (state.export.id)(item));
            match (page.has_more, cursor) {
                (true, Some(cursor)) => match (state.export.fetch)(Some(cursor)).await {
                    Ok(next) => state.pending = Some(next),
                    Err(error) => {
                        tracing::warn!(export = state.export.name, %error, "export cut short");
                        state.failed = Some(error.to_string());
                    }
                },
                _ => state.finished = true,
            }
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), state))
        });
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.csv\""),
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response()
    }

    async fn xlsx(self, first: Page<T>) -> ApiResult<Response> {
        let mut rows: Vec<Vec<Cell>> = first.data.iter().map(self.row).collect();
        let mut has_more = first.has_more;
        let mut cursor = first.data.last().map(self.id);
        while has_more {
            if rows.len() > XLSX_ROWS_MAX {
                break;
            }
            let Some(after) = cursor.take() else { break };
            let page = (self.fetch)(Some(after)).await?;
            rows.extend(page.data.iter().map(self.row));
            has_more = page.has_more;
            cursor = page.data.last().map(self.id);
        }
        if rows.len() > XLSX_ROWS_MAX {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "export_too_large",
                format!(
                    "an XLSX export holds at most {XLSX_ROWS_MAX} rows and these filters select more; narrow the date range or use format=csv (streamed, no limit)"
                ),
            )
            .with_field("format"));
        }
        let columns = self.columns;
        let name = self.name;
        let bytes = tokio::task::spawn_blocking(move || workbook(columns, &rows))
            .await
            .map_err(|e| workbook_failed(&e.to_string()))?
            .map_err(|e| workbook_failed(&e.to_string()))?;
        Ok((
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.xlsx\""),
                ),
            ],
            bytes,
        )
            .into_response())
    }
}

fn workbook_failed(error: &str) -> Problem {
    tracing::error!(%error, "building an XLSX export failed");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the workbook could not be built",
    )
}

/// One worksheet: a bold header row, amounts as numbers with two decimals.
fn workbook(columns: &[&str], rows: &[Vec<Cell>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let bold = XFormat::new().set_bold();
    let money = XFormat::new().set_num_format("0.00");
    for (c, title) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *title, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = (r + 1) as u32;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    sheet.write_string(r, c, s)?;
                }
                Cell::Int(n) => {
                    sheet.write_number(r, c, *n as f64)?;
                }
                Cell::Money(fen) => {
                    sheet.write_number_with_format(r, c, *fen as f64 / 100.0, &money)?;
                }
            }
        }
    }
    book.save_to_buffer()
}

fn fetcher<T, Q, F>(
    engine: &Engine,
    who: &Principal,
    query: Q,
    set_cursor: fn(&mut Q, Option<String>),
    list: F,
) -> Fetch<T>
where
    T: Send + 'static,
    Q: Clone + Send + Sync + 'static,
    F: Fn(Engine, Principal, Q) -> BoxFuture<'static, EngineResult<Page<T>>>
        + Send
        + Sync
        + 'static,
{
    let engine = engine.clone();
    let who = who.clone();
    Arc::new(move |cursor| {
        let mut query = query.clone();
        set_cursor(&mut query, cursor);
        list(engine.clone(), who.clone(), query)
    })
}

const REFUND_COLUMNS: &[&str] = &[
    "退款编号",
    "商户编号",
    "支付编号",
    "商户退款单号",
    "渠道",
    "类型",
    "状态",
    "退款金额(元)",
    "退还手续费(元)",
    "原因",
    "备注",
    "申请人",
    "退款去向",
    "预计到账",
    "创建时间",
    "更新时间",
];

fn refund_row(r: &Refund) -> Vec<Cell> {
    vec![
        text(&r.id),
        text(&r.merchant_id),
        text(&r.payment_id),
        text(&r.merchant_refund_no),
        text(word(&r.channel)),
        text(word(&r.refund_type)),
        text(word(&r.status)),
        Cell::Money(r.amount),
        Cell::Money(r.fee_refunded),
        text(word(&r.reason)),
        opt_text(r.note.clone()),
        opt_text(r.requested_by.name.clone()),
        // The export speaks Chinese (its headers are), so does the destination.
        text(crate::present::refund::destination(
            yuanlu_words::Lang::Zh,
            &r.destination,
        )),
        opt_text(r.expected_arrival_by.map(local_time)),
        text(local_time(r.created_at)),
        text(local_time(r.updated_at)),
    ]
}

/// The refund list (`GET /v1/refunds`'s filters) as CSV or XLSX.
#[utoipa::path(get, path = "/v1/exports/refunds", tag = "exports", security(("bearer" = [])),
    params(FormatParams, RefundListParams),
    responses((status = 200, description = "`text/csv` (UTF-8 with BOM, streamed) or XLSX",
                content((String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
              (status = "4XX", body = Problem)))]
pub async fn export_refunds(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(format): ApiQuery<FormatParams>,
    ApiQuery(params): ApiQuery<RefundListParams>,
) -> ApiResult<Response> {
    refunds(&state.engine, &who, &format, params).await
}

/// The refund export for `who` (the API's handler and the pages' link).
pub async fn refunds(
    engine: &Engine,
    who: &Principal,
    format: &FormatParams,
    params: RefundListParams,
) -> ApiResult<Response> {
    let format = format_of(format)?;
    let mut query = super::refunds::refund_query(params)?;
    let first = query.starting_after.take();
    query.limit = EXPORT_PAGE_ROWS;
    Export {
        name: "refunds",
        columns: REFUND_COLUMNS,
        row: refund_row,
        id: |r: &Refund| r.id.clone(),
        fetch: fetcher(
            engine,
            who,
            query,
            |q, c| q.starting_after = c,
            |engine, who, q| Box::pin(async move { engine.list_refunds(&who, q).await }),
        ),
    }
    .respond(format, first)
    .await
}

const STATEMENT_COLUMNS: &[&str] = &[
    "结算单编号",
    "商户编号",
    "交易日期",
    "入账日期",
    "期初结转(元)",
    "交易笔数",
    "交易金额(元)",
    "手续费(元)",
    "撤销笔数",
    "撤销金额(元)",
    "退货笔数",
    "退货金额(元)",
    "退还手续费(元)",
    "退回笔数",
    "退回金额(元)",
    "净额(元)",
    "入户金额(元)",
    "期末结转(元)",
];

fn statement_row(v: &StatementView) -> Vec<Cell> {
    let s = &v.statement;
    vec![
        text(&v.id),
        text(&v.merchant_id),
        text(&v.business_date),
        text(&v.payout_date),
        Cell::Money(s.opening_carried_fen),
        Cell::Int(s.sales_count),
        Cell::Money(s.sales_fen),
        Cell::Money(s.fees_fen),
        Cell::Int(s.voids_count),
        Cell::Money(s.voids_fen),
        Cell::Int(s.refunds_count),
        Cell::Money(s.refunds_fen),
        Cell::Money(s.refund_fees_returned_fen),
        Cell::Int(s.credited_back_count),
        Cell::Money(s.credited_back_fen),
        Cell::Money(s.net_fen),
        Cell::Money(v.payout),
        Cell::Money(v.closing_carried),
    ]
}

/// Settlement statements (`GET /v1/settlements`'s filters: `merchant_id`, `from`, `to`,
/// `business_date`) as CSV or XLSX, one row per statement (对账单). A merchant key
/// exports only its own.
#[utoipa::path(get, path = "/v1/exports/settlements", tag = "exports", security(("bearer" = [])),
    params(FormatParams, StatementParams),
    responses((status = 200, description = "`text/csv` (UTF-8 with BOM, streamed) or XLSX",
                content((String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
              (status = "4XX", body = Problem)))]
pub async fn export_settlements(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(format): ApiQuery<FormatParams>,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> ApiResult<Response> {
    settlements(&state.engine, &who, &format, params).await
}

/// The statement export for `who`.
pub async fn settlements(
    engine: &Engine,
    who: &Principal,
    format: &FormatParams,
    params: StatementParams,
) -> ApiResult<Response> {
    let format = format_of(format)?;
    let mut query = params.history_query()?;
    let first = query.starting_after.take();
    query.limit = EXPORT_PAGE_ROWS;
    Export {
        name: "settlements",
        columns: STATEMENT_COLUMNS,
        row: statement_row,
        id: |v: &StatementView| v.id.clone(),
        fetch: fetcher(
            engine,
            who,
            query,
            |q, c| q.starting_after = c,
            |engine, who, q| Box::pin(async move { engine.list_statement_history(&who, q).await }),
        ),
    }
    .respond(format, first)
    .await
}

const RECONCILIATION_COLUMNS: &[&str] = &[
    "对账编号",
    "渠道",
    "交易日期",
    "文件行数",
    "我方记录数",
    "差错数",
    "未处理差错",
    "状态",
    "导入人",
    "导入时间",
    "文件SHA-256",
];

fn reconciliation_row(v: &ReconciliationView) -> Vec<Cell> {
    vec![
        text(&v.id),
        text(&v.channel),
        text(&v.business_date),
        Cell::Int(v.lines),
        Cell::Int(v.records),
        Cell::Int(v.exceptions),
        Cell::Int(v.open_exceptions),
        text(&v.status),
        text(&v.created_by),
        text(local_time(v.created_at)),
        text(&v.file_sha256),
    ]
}

/// Reconciliations (`GET /v1/reconciliations`'s filters) as CSV or XLSX. Admin.
#[utoipa::path(get, path = "/v1/exports/reconciliations", tag = "exports", security(("bearer" = [])),
    params(FormatParams, ReconciliationListParams),
    responses((status = 200, description = "`text/csv` (UTF-8 with BOM, streamed) or XLSX",
                content((String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
              (status = "4XX", body = Problem)))]
pub async fn export_reconciliations(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(format): ApiQuery<FormatParams>,
    ApiQuery(params): ApiQuery<ReconciliationListParams>,
) -> ApiResult<Response> {
    reconciliations(&state.engine, &who, &format, params).await
}

/// The reconciliation export (admin).
pub async fn reconciliations(
    engine: &Engine,
    who: &Principal,
    format: &FormatParams,
    params: ReconciliationListParams,
) -> ApiResult<Response> {
    who.require_admin()?;
    let format = format_of(format)?;
    let mut query = params.query()?;
    let first = query.starting_after.take();
    query.limit = EXPORT_PAGE_ROWS;
    Export {
        name: "reconciliations",
        columns: RECONCILIATION_COLUMNS,
        row: reconciliation_row,
        id: |v: &ReconciliationView| v.id.clone(),
        fetch: fetcher(
            engine,
            who,
            query,
            |q, c| q.starting_after = c,
            |engine, who, q| Box::pin(async move { engine.list_reconciliations(&who, q).await }),
        ),
    }
    .respond(format, first)
    .await
}

const EXCEPTION_COLUMNS: &[&str] = &[
    "差错编号",
    "对账编号",
    "渠道",
    "交易日期",
    "商户编号",
    "差错类型",
    "种类",
    "文件行号",
    "我方单号",
    "渠道单号",
    "我方金额(元)",
    "渠道金额(元)",
    "差额(元)",
    "状态",
    "已等待天数",
    "说明",
    "发现时间",
    "处理时间",
    "处理说明",
];

fn exception_row(q: &QueuedException) -> Vec<Cell> {
    let e = &q.exception;
    vec![
        text(&e.id),
        text(&e.reconciliation_id),
        text(&q.channel),
        text(&q.business_date),
        opt_text(e.merchant_id.clone()),
        text(&e.class),
        text(&e.kind),
        e.line_no.map_or(Cell::Empty, Cell::Int),
        opt_text(e.our_ref.clone()),
        opt_text(e.channel_txn_id.clone()),
        opt_money(e.our_amount),
        opt_money(e.channel_amount),
        opt_money(q.difference),
        text(&e.status),
        Cell::Int(q.age_days),
        text(&e.detail),
        text(local_time(e.created_at)),
        opt_text(e.resolved_at.map(local_time)),
        opt_text(e.resolution_note.clone()),
    ]
}

/// Reconciliation exceptions across imports (`GET /v1/reconciliation-exceptions`'s
/// filters) as CSV or XLSX. Admin.
#[utoipa::path(get, path = "/v1/exports/reconciliation-exceptions", tag = "exports", security(("bearer" = [])),
    params(FormatParams, ExceptionQueueParams),
    responses((status = 200, description = "`text/csv` (UTF-8 with BOM, streamed) or XLSX",
                content((String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
              (status = "4XX", body = Problem)))]
pub async fn export_exceptions(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(format): ApiQuery<FormatParams>,
    ApiQuery(params): ApiQuery<ExceptionQueueParams>,
) -> ApiResult<Response> {
    exceptions(&state.engine, &who, &format, params).await
}

/// The exception export (admin).
pub async fn exceptions(
    engine: &Engine,
    who: &Principal,
    format: &FormatParams,
    params: ExceptionQueueParams,
) -> ApiResult<Response> {
    who.require_admin()?;
    let format = format_of(format)?;
    let mut query = params.query()?;
    let first = query.starting_after.take();
    query.limit = EXPORT_PAGE_ROWS;
    Export {
        name: "reconciliation-exceptions",
        columns: EXCEPTION_COLUMNS,
        row: exception_row,
        id: |q: &QueuedException| q.exception.id.clone(),
        fetch: fetcher(
            engine,
            who,
            query,
            |q, c| q.starting_after = c,
            |engine, who, q| Box::pin(async move { engine.exception_queue(&who, q).await }),
        ),
    }
    .respond(format, first)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_line(
            &[
                text("退货, 顾客"),
                text("say \"hi\""),
                text("=SUM(A1)"),
                Cell::Money(-5),
                Cell::Money(102_721),
                Cell::Empty,
                Cell::Int(3),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            "\"退货, 顾客\",\"say \"\"hi\"\"\",'=SUM(A1),-0.05,1027.21,,3\r\n"
        );
    }
}
