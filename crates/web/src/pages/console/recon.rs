//! Reconciliation on the console: the admin uploads a channel's statement file (the same
//! parsers and use case as `POST /v1/reconciliations` and `yuanlu reconcile`), then reads
//! the import's report and resolves its exceptions.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use yuanlu_engine::reconciliation::{
    ExceptionQuery, ReconException, ReconciliationView, StatementChannel,
};

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::merchant::checked_id;
use crate::pages::multipart;
use crate::problem::Problem;

/// The largest statement a page uploads; larger files go through `yuanlu reconcile` (or the
/// API, which takes up to 256 MiB).
pub const STATEMENT_PAGE_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Exceptions shown on a reconciliation's page at most.
const EXCEPTIONS_SHOWN: i64 = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/reconciliations",
            get(upload_page)
                .post(upload)
                .layer(DefaultBodyLimit::max(STATEMENT_PAGE_BYTES_MAX)),
        )
        .route("/console/reconciliations/{id}", get(show))
}

#[derive(Template)]
#[template(path = "console/reconciliations.html")]
pub struct UploadPage {
    pub ctx: Ctx,
    pub channels: Vec<&'static str>,
    pub limit_mib: usize,
}

pub async fn upload_page(ctx: Ctx) -> PageResult {
    ctx.acquirer()?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &UploadPage {
            ctx,
            channels: StatementChannel::ALL.map(StatementChannel::id).to_vec(),
            limit_mib: STATEMENT_PAGE_BYTES_MAX / (1024 * 1024),
        },
    ))
}

fn utf8<'a>(part: Option<&multipart::Part<'a>>) -> Option<&'a str> {
    part.and_then(|p| std::str::from_utf8(p.data).ok())
}

/// The upload: a `multipart/form-data` post with `csrf`, `channel` and `file`.
pub async fn upload(State(state): State<AppState>, ctx: Ctx, request: Request) -> PageResult {
    // Who may, before the body is read.
    let who = ctx.admin()?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multipart::boundary(content_type)
        .ok_or_else(|| PageError::invalid(ctx.lang, "recon-file"))?;
    let too_large = || PageError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        lang: ctx.lang,
        message: ctx.t1(
            "recon-too-large",
            "size",
            &(STATEMENT_PAGE_BYTES_MAX / (1024 * 1024)).to_string(),
        ),
        detail: None,
    };
    // A declared length over the limit is refused before any of the body is read.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > STATEMENT_PAGE_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                PageError::invalid(ctx.lang, "recon-file")
            }
        })?;
    let parts = multipart::parse(&body, &boundary)
        .ok_or_else(|| PageError::invalid(ctx.lang, "recon-file"))?;
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    ctx.check_csrf(utf8(field("csrf")))?;
    let channel = utf8(field("channel"))
        .and_then(StatementChannel::parse_id)
        .ok_or_else(|| PageError::invalid(ctx.lang, "recon-channel"))?;
    let file = field("file")
        .map(|p| p.data)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| PageError::invalid(ctx.lang, "recon-file"))?;
    crate::extract::check_file_bytes("file", file).map_err(|p| PageError::problem(ctx.lang, p))?;
    let view = state
        .engine
        .import_statement(&who, channel, file, &mut |_| {})
        .await
        .map_err(|e| ctx.fail(e))?;
    let again = if view.already_imported {
        "?again=1"
    } else {
        ""
    };
    Ok(Redirect::to(&format!("/console/reconciliations/{}{again}", view.id)).into_response())
}

#[derive(Template)]
#[template(path = "console/reconciliation.html")]
pub struct ReconPage {
    pub ctx: Ctx,
    pub recon: ReconciliationView,
    pub exceptions: Vec<ReconException>,
    pub again: bool,
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> PageResult {
    let who = ctx.acquirer()?;
    let id = checked_id(&ctx, &id)?;
    let recon = state
        .engine
        .get_reconciliation(&who, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let exceptions = state
        .engine
        .list_exceptions(
            &who,
            &id,
            ExceptionQuery {
                status: None,
                limit: EXCEPTIONS_SHOWN,
                starting_after: None,
            },
        )
        .await
        .map_err(|e| PageError::problem(ctx.lang, Problem::from(e)))?
        .data;
    let again = query.is_some_and(|q| q.split('&').any(|p| p == "again=1"));
    let lang = ctx.lang;
    Ok(render(
        lang,
        &ReconPage {
            ctx,
            recon,
            exceptions,
            again,
        },
    ))
}
