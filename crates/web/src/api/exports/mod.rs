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

use axum::extract::State;
use axum::response::Response;
use futures_util::future::BoxFuture;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::ops_lists::{
    ExceptionQueueQuery, QueuedException, ReconciliationListQuery, StatementListQuery,
};
use yuanlu_engine::reconciliation::ReconciliationView;
use yuanlu_engine::refunds::RefundQuery;
use yuanlu_engine::settlement::StatementView;
use yuanlu_engine::views::{Page, Refund};
use yuanlu_engine::{Engine, EngineResult};

use super::recon_lists::{ExceptionQueueParams, ReconciliationListParams};
use super::refunds::RefundListParams;
use super::settlements::StatementParams;
use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

mod writer;

pub use writer::{Cell, EXPORT_PAGE_ROWS, FormatParams, UTF8_BOM, XLSX_ROWS_MAX, yuan};
use writer::{Sheet, export_pages, format_of, local_time, opt_money, opt_text, text, word};

/// A list that exports: its parameters (the list's filters) make the engine's query, which
/// the engine answers a page at a time. [`export`] serves the four lists with it.
pub(crate) trait Listing: Send + 'static {
    type Query: Clone + Send + Sync + 'static;
    type Item: Send + 'static;
    /// Only the acquirer's admins export the list (checked first, before the format).
    const ADMIN_ONLY: bool;
    fn sheet() -> Sheet<Self::Item>;
    fn into_query(self) -> Result<Self::Query, Problem>;
    /// The query's cursor and page size.
    fn paging(query: &mut Self::Query) -> (&mut Option<String>, &mut i64);
    fn list(
        engine: Engine,
        who: Principal,
        query: Self::Query,
    ) -> BoxFuture<'static, EngineResult<Page<Self::Item>>>;
}

/// The export of one list for `who` (the API's handlers and the pages' links): who may,
/// the format, the filters, then the pages from the query's cursor on.
pub(crate) async fn export<L: Listing>(
    engine: &Engine,
    who: &Principal,
    format: &FormatParams,
    params: L,
) -> ApiResult<Response> {
    if L::ADMIN_ONLY {
        who.require_admin()?;
    }
    let format = format_of(format)?;
    let query = params.into_query()?;
    export_pages(L::sheet(), format, engine, who, query, L::paging, L::list).await
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
    export(&state.engine, &who, &format, params).await
}

impl Listing for RefundListParams {
    type Query = RefundQuery;
    type Item = Refund;
    const ADMIN_ONLY: bool = false;
    fn sheet() -> Sheet<Refund> {
        Sheet {
            name: "refunds",
            columns: REFUND_COLUMNS,
            row: refund_row,
            id: |r| r.id.clone(),
        }
    }
    fn into_query(self) -> Result<RefundQuery, Problem> {
        super::refunds::refund_query(self)
    }
    fn paging(q: &mut RefundQuery) -> (&mut Option<String>, &mut i64) {
        (&mut q.starting_after, &mut q.limit)
    }
    fn list(
        engine: Engine,
        who: Principal,
        q: RefundQuery,
    ) -> BoxFuture<'static, EngineResult<Page<Refund>>> {
        Box::pin(async move { engine.list_refunds(&who, q).await })
    }
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
    export(&state.engine, &who, &format, params).await
}

impl Listing for StatementParams {
    type Query = StatementListQuery;
    type Item = StatementView;
    const ADMIN_ONLY: bool = false;
    fn sheet() -> Sheet<StatementView> {
        Sheet {
            name: "settlements",
            columns: STATEMENT_COLUMNS,
            row: statement_row,
            id: |v| v.id.clone(),
        }
    }
    fn into_query(self) -> Result<StatementListQuery, Problem> {
        self.history_query()
    }
    fn paging(q: &mut StatementListQuery) -> (&mut Option<String>, &mut i64) {
        (&mut q.starting_after, &mut q.limit)
    }
    fn list(
        engine: Engine,
        who: Principal,
        q: StatementListQuery,
    ) -> BoxFuture<'static, EngineResult<Page<StatementView>>> {
        Box::pin(async move { engine.list_statement_history(&who, q).await })
    }
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
    export(&state.engine, &who, &format, params).await
}

impl Listing for ReconciliationListParams {
    type Query = ReconciliationListQuery;
    type Item = ReconciliationView;
    const ADMIN_ONLY: bool = true;
    fn sheet() -> Sheet<ReconciliationView> {
        Sheet {
            name: "reconciliations",
            columns: RECONCILIATION_COLUMNS,
            row: reconciliation_row,
            id: |v| v.id.clone(),
        }
    }
    fn into_query(self) -> Result<ReconciliationListQuery, Problem> {
        self.query()
    }
    fn paging(q: &mut ReconciliationListQuery) -> (&mut Option<String>, &mut i64) {
        (&mut q.starting_after, &mut q.limit)
    }
    fn list(
        engine: Engine,
        who: Principal,
        q: ReconciliationListQuery,
    ) -> BoxFuture<'static, EngineResult<Page<ReconciliationView>>> {
        Box::pin(async move { engine.list_reconciliations(&who, q).await })
    }
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
    export(&state.engine, &who, &format, params).await
}

impl Listing for ExceptionQueueParams {
    type Query = ExceptionQueueQuery;
    type Item = QueuedException;
    const ADMIN_ONLY: bool = true;
    fn sheet() -> Sheet<QueuedException> {
        Sheet {
            name: "reconciliation-exceptions",
            columns: EXCEPTION_COLUMNS,
            row: exception_row,
            id: |q| q.exception.id.clone(),
        }
    }
    fn into_query(self) -> Result<ExceptionQueueQuery, Problem> {
        self.query()
    }
    fn paging(q: &mut ExceptionQueueQuery) -> (&mut Option<String>, &mut i64) {
        (&mut q.starting_after, &mut q.limit)
    }
    fn list(
        engine: Engine,
        who: Principal,
        q: ExceptionQueueQuery,
    ) -> BoxFuture<'static, EngineResult<Page<QueuedException>>> {
        Box::pin(async move { engine.exception_queue(&who, q).await })
    }
}
