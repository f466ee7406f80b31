//! Evidence on the merchant's refund page (证明材料, 身份核实): the list, a file upload
//! (`multipart/form-data` with `csrf`, `kind`, `file`), an ID check form and the download —
//! the same use cases as `/v1/refunds/{id}/evidence`, with the same checks (type by
//! content, 5 MiB, the last four characters of an ID number only).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;
use yuanlu_domain::evidence::{DocumentType, EVIDENCE_BYTES_MAX, EvidenceKind, FileType};
use yuanlu_engine::evidence::{EvidenceInput, IdCheckInput, Subject};

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult};
use crate::pages::form::PageForm;
use crate::pages::merchant::checked_id;
use crate::pages::multipart;

/// Room for the form's other parts around a file at the limit.
const FORM_BYTES_MAX: usize = EVIDENCE_BYTES_MAX + 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/merchant/refunds/{id}/evidence",
            post(upload).layer(DefaultBodyLimit::max(FORM_BYTES_MAX)),
        )
        .route("/merchant/refunds/{id}/id-check", post(id_check))
        .route(
            "/merchant/refunds/{id}/evidence/{evidence_id}",
            get(download),
        )
}

/// The kinds a page uploads as files, and the document types of an ID check.
pub const FILE_KINDS: [EvidenceKind; 2] = [EvidenceKind::SaleVoucher, EvidenceKind::ReceiptPhoto];

pub fn document_types() -> &'static [DocumentType] {
    DocumentType::ALL
}

fn utf8<'a>(part: Option<&multipart::Part<'a>>) -> Option<&'a str> {
    part.and_then(|p| std::str::from_utf8(p.data).ok())
}

/// The file upload.
pub async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    let who = ctx.merchant()?;
    let id = checked_id(&ctx, &id)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multipart::boundary(content_type)
        .ok_or_else(|| PageError::invalid(ctx.lang, "evidence-file"))?;
    let too_large = || PageError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        lang: ctx.lang,
        message: ctx.t("evidence-too-large"),
        detail: None,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > FORM_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                PageError::invalid(ctx.lang, "evidence-file")
            }
        })?;
    let parts = multipart::parse(&body, &boundary)
        .ok_or_else(|| PageError::invalid(ctx.lang, "evidence-file"))?;
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    ctx.check_csrf(utf8(field("csrf")))?;
    let kind = utf8(field("kind"))
        .and_then(EvidenceKind::parse)
        .filter(|k| k.is_file())
        .ok_or_else(|| PageError::invalid(ctx.lang, "evidence-kind"))?;
    let bytes = field("file")
        .map(|p| p.data.to_vec())
        .ok_or_else(|| PageError::invalid(ctx.lang, "evidence-file"))?;
    state
        .engine
        .add_evidence(
            &who,
            Subject::refund(&id),
            EvidenceInput::File { kind, bytes },
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&format!("/merchant/refunds/{id}#evidence")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct IdCheckForm {
    csrf: Option<String>,
    checked_by: Option<String>,
    document_type: Option<String>,
    last_digits: Option<String>,
}

/// The ID check form.
pub async fn id_check(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<IdCheckForm>,
) -> PageResult {
    let who = ctx.merchant()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let document_type = form
        .document_type
        .as_deref()
        .and_then(DocumentType::parse)
        .ok_or_else(|| PageError::invalid(ctx.lang, "evidence-document-type"))?;
    let input = IdCheckInput {
        kind: EvidenceKind::IdCheck,
        checked_by: form.checked_by.unwrap_or_default(),
        document_type,
        last_digits: form.last_digits.unwrap_or_default(),
    };
    state
        .engine
        .add_evidence(&who, Subject::refund(&id), EvidenceInput::IdCheck(input))
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&format!("/merchant/refunds/{id}#evidence")).into_response())
}

/// A file as a download, never rendered in place.
pub async fn download(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, evidence_id)): Path<(String, String)>,
) -> PageResult {
    let who = ctx.merchant()?;
    let id = checked_id(&ctx, &id)?;
    let evidence_id = checked_id(&ctx, &evidence_id)?;
    let (evidence, bytes) = state
        .engine
        .evidence_content(&who, Subject::refund(&id), &evidence_id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let file_type = evidence.content_type.unwrap_or(FileType::Pdf);
    let extension = match file_type {
        FileType::Jpeg => "jpg",
        FileType::Png => "png",
        FileType::Pdf => "pdf",
    };
    Ok((
        [
            (header::CONTENT_TYPE, file_type.id().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{extension}\"", evidence.id),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
