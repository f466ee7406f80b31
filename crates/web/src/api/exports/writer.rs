//! The writers of an export: cells, the CSV stream (page by page, UTF-8 with BOM, formulas
//! defused) and the XLSX workbook (in memory, at most [`XLSX_ROWS_MAX`] rows), and the
//! walk of a list from its cursor on, [`EXPORT_PAGE_ROWS`] rows at a time.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use yuanlu_domain::time::shanghai;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::views::Page;
use yuanlu_engine::{Engine, EngineResult};

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
pub(super) enum Format {
    Csv,
    Xlsx,
}

pub(super) fn format_of(params: &FormatParams) -> Result<Format, Problem> {
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

pub(super) fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

pub(super) fn opt_text(value: Option<impl Into<String>>) -> Cell {
    value.map_or(Cell::Empty, |v| Cell::Text(v.into()))
}

pub(super) fn opt_money(value: Option<i64>) -> Cell {
    value.map_or(Cell::Empty, Cell::Money)
}

/// A serialized enum's name (`"wechat"`, `"succeeded"`).
pub(super) fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub(super) fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `12345` fen → `123.45`; `-5` → `-0.05`.
pub fn yuan(fen: i64) -> String {
    yuanlu_domain::money::format_cny(fen)
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

/// What a list's export shows: its file name, its columns, a row per item, and the item's
/// id (the next page's cursor).
pub(crate) struct Sheet<T> {
    pub(super) name: &'static str,
    pub(super) columns: &'static [&'static str],
    pub(super) row: fn(&T) -> Vec<Cell>,
    pub(super) id: fn(&T) -> String,
}

/// Exports `query`'s list for `who`: from the cursor the query carries on, a page of
/// [`EXPORT_PAGE_ROWS`] at a time. `paging` names the query's cursor and page size.
pub(super) async fn export_pages<T, Q, F>(
    sheet: Sheet<T>,
    format: Format,
    engine: &Engine,
    who: &Principal,
    mut query: Q,
    paging: fn(&mut Q) -> (&mut Option<String>, &mut i64),
    list: F,
) -> ApiResult<Response>
where
    T: Send + 'static,
    Q: Clone + Send + Sync + 'static,
    F: Fn(Engine, Principal, Q) -> BoxFuture<'static, EngineResult<Page<T>>>
        + Send
        + Sync
        + 'static,
{
    let (cursor, limit) = paging(&mut query);
    let first = cursor.take();
    *limit = EXPORT_PAGE_ROWS;
    let (engine, who) = (engine.clone(), who.clone());
    let fetch: Fetch<T> = Arc::new(move |cursor| {
        let mut query = query.clone();
        *paging(&mut query).0 = cursor;
        list(engine.clone(), who.clone(), query)
    });
    Export {
        name: sheet.name,
        columns: sheet.columns,
        row: sheet.row,
        id: sheet.id,
        fetch,
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
