//! `/v1/refunds/{id}/evidence` and `/v1/cases/{id}/evidence`: proof and identity (证明材料,
//! 身份核实). The merchant's own keys or the admin; never the consumer's endpoints.
//!
//! An upload is the file itself as the body (no multipart): `Content-Type: image/jpeg`,
//! `image/png`, `application/pdf` or `application/octet-stream`, with `?kind=sale_voucher`
//! or `?kind=receipt_photo`. The declared type only lets the request in; the file's first
//! bytes decide what it is. An ID check is JSON (`Content-Type: application/json`). See
//! docs/evidence.md.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;
use yuanlu_domain::evidence::{EVIDENCE_BYTES_MAX, EvidenceKind, FileType};
use yuanlu_engine::evidence::{Evidence, EvidenceInput, IdCheckInput, Subject};

use crate::AppState;
use crate::extract::{ApiPath, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// Declared types a file upload may carry (what it is, its content decides).
const FILE_CONTENT_TYPES: [&str; 4] = [
    "image/jpeg",
    "image/png",
    "application/pdf",
    "application/octet-stream",
];

/// The refund upload and list routes with their own body limit, for `api_routes`.
pub fn refund_routes() -> UtoipaMethodRouter<AppState> {
    with_body_limit(routes!(add_refund_evidence, list_refund_evidence))
}

/// The case upload and list routes with their own body limit.
pub fn case_routes() -> UtoipaMethodRouter<AppState> {
    with_body_limit(routes!(add_case_evidence, list_case_evidence))
}

fn with_body_limit(routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = routes;
    (
        schemas,
        paths,
        method_router.layer(DefaultBodyLimit::max(EVIDENCE_BYTES_MAX)),
    )
}

/// `?kind=` of a file upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// `sale_voucher` or `receipt_photo` for a file; omitted for an ID check (JSON).
    pub kind: Option<EvidenceKind>,
}

/// A subject's evidence, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceList {
    pub data: Vec<Evidence>,
}

fn media_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Reads the upload: an ID check from JSON, or a file of `kind` from the raw body. A body
/// over the limit is refused from its declared length, before it is read.
async fn read_upload(
    request: Request,
    state: &AppState,
    kind: Option<EvidenceKind>,
) -> Result<EvidenceInput, Problem> {
    let media = media_type(&request);
    if media.as_deref() == Some("application/json") {
        let crate::extract::ApiJson(input) =
            crate::extract::ApiJson::<IdCheckInput>::from_request(request, state).await?;
        return Ok(EvidenceInput::IdCheck(input));
    }
    if !media
        .as_deref()
        .is_some_and(|m| FILE_CONTENT_TYPES.contains(&m))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "evidence_unsupported_type",
            "send a JPEG, PNG or PDF file as the body (Content-Type image/jpeg, image/png, \
             application/pdf or application/octet-stream), or an ID check as application/json",
        )
        .with_field("file"));
    }
    let Some(kind) = kind else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "say what the file is: ?kind=sale_voucher or ?kind=receipt_photo",
        )
        .with_field("kind"));
    };
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "evidence_too_large",
                    format!(
                        "the file is larger than {EVIDENCE_BYTES_MAX} bytes; send a smaller photo or scan"
                    ),
                )
            } else {
                Problem::new(rejection.status(), "validation_error", rejection.body_text())
            }
            .with_field("file")
        })?;
    Ok(EvidenceInput::File {
        kind,
        bytes: bytes.to_vec(),
    })
}

async fn add(
    state: &AppState,
    who: &yuanlu_engine::auth::Principal,
    subject: Subject<'_>,
    request: Request,
    kind: Option<EvidenceKind>,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    // Who may add is checked before the body is read.
    state.engine.authorize_evidence(who, subject).await?;
    let input = read_upload(request, state, kind).await?;
    let added = state.engine.add_evidence(who, subject, input).await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added.evidence)))
}

/// One subject's three handlers (the upload, the list, a file's content) with their
/// OpenAPI descriptions, written once for refunds and cases: they differ only in the path,
/// the tag, the id and the [`Subject`].
macro_rules! evidence_handlers {
    (
        subject: $subject:path, tag: $tag:tt, id: $id:tt,
        path: $path:tt, content_path: $content_path:tt,
        $(#[$add_doc:meta])* add: $add:ident,
        $(#[$list_doc:meta])* list: $list:ident,
        $(#[$content_doc:meta])* content: $content:ident $(,)?
    ) => {
        $(#[$add_doc])*
        #[utoipa::path(post, path = $path, tag = $tag, security(("bearer" = [])),
            params(("id" = String, Path, description = $id), UploadParams),
            request_body(content(
                (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "application/pdf"),
                (Vec<u8> = "application/octet-stream"), (IdCheckInput = "application/json")),
                description = "The file itself (with `?kind=`), or an ID check as JSON."),
            responses((status = 201, body = Evidence, description = "added"),
                       (status = 200, body = Evidence, description = "the same evidence was added before: the stored one"),
                       (status = 413, body = Problem, description = "`evidence_too_large`"),
                       (status = 415, body = Problem, description = "`evidence_unsupported_type`: not a JPEG, PNG or PDF by content"),
                       (status = "4XX", body = Problem)))]
        pub async fn $add(
            State(state): State<AppState>,
            Auth(who): Auth,
            ApiPath(id): ApiPath<String>,
            ApiQuery(params): ApiQuery<UploadParams>,
            request: Request,
        ) -> ApiResult<(StatusCode, Json<Evidence>)> {
            add(&state, &who, $subject(&id), request, params.kind).await
        }

        $(#[$list_doc])*
        #[utoipa::path(get, path = $path, tag = $tag, security(("bearer" = [])),
            params(("id" = String, Path, description = $id)),
            responses((status = 200, body = EvidenceList), (status = "4XX", body = Problem)))]
        pub async fn $list(
            State(state): State<AppState>,
            Auth(who): Auth,
            ApiPath(id): ApiPath<String>,
        ) -> ApiResult<Json<EvidenceList>> {
            let data = state.engine.list_evidence(&who, $subject(&id)).await?;
            Ok(Json(EvidenceList { data }))
        }

        $(#[$content_doc])*
        #[utoipa::path(get, path = $content_path, tag = $tag, security(("bearer" = [])),
            params(("id" = String, Path, description = $id),
                   ("evidence_id" = String, Path, description = "evidence id, `ev_…`")),
            responses((status = 200, content(
                (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "application/pdf"))),
                (status = "4XX", body = Problem)))]
        pub async fn $content(
            State(state): State<AppState>,
            Auth(who): Auth,
            ApiPath((id, evidence_id)): ApiPath<(String, String)>,
        ) -> ApiResult<Response> {
            content(&state, &who, $subject(&id), &evidence_id).await
        }
    };
}

evidence_handlers! {
    subject: Subject::refund, tag: "refunds", id: "refund id, `rf_…`",
    path: "/v1/refunds/{id}/evidence",
    content_path: "/v1/refunds/{id}/evidence/{evidence_id}/content",
    /// Adds evidence to a refund: the sale voucher or a receipt photo (the file itself as the
    /// body, JPEG, PNG or PDF by content, up to 5 MiB, with `?kind=`), or an ID check result
    /// (JSON: `{"kind": "id_check", "checked_by", "document_type", "last_digits"}`, the last 4
    /// characters only; a whole ID number is refused with `full_id_number_refused`). 201 with the
    /// evidence; 200 with the stored one when the same file (or check) of the same kind is on the
    /// refund already. Completing what the merchant requires releases a held refund.
    add: add_refund_evidence,
    /// A refund's evidence, oldest first (files and ID checks; never the files' bytes).
    list: list_refund_evidence,
    /// The file of one piece of a refund's evidence, as uploaded (checked against its SHA-256),
    /// with the type its content showed. An ID check has no file (404).
    content: refund_evidence_content,
}

evidence_handlers! {
    subject: Subject::case, tag: "cases", id: "case id, `case_…`",
    path: "/v1/cases/{id}/evidence",
    content_path: "/v1/cases/{id}/evidence/{evidence_id}/content",
    /// Adds evidence to a case, as for a refund (a case holds nothing back).
    add: add_case_evidence,
    /// A case's evidence, oldest first.
    list: list_case_evidence,
    /// The file of one piece of a case's evidence.
    content: case_evidence_content,
}

/// The file as a download: its checked type, never sniffed or rendered in place by the
/// browser, never cached by a shared cache.
async fn content(
    state: &AppState,
    who: &yuanlu_engine::auth::Principal,
    subject: Subject<'_>,
    evidence_id: &str,
) -> ApiResult<Response> {
    let (evidence, bytes) = state
        .engine
        .evidence_content(who, subject, evidence_id)
        .await?;
    let file_type = evidence.content_type.unwrap_or(FileType::Pdf);
    let extension = match file_type {
        FileType::Jpeg => "jpg",
        FileType::Png => "png",
        FileType::Pdf => "pdf",
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", evidence.id);
    Ok((
        [
            (header::CONTENT_TYPE, file_type.id().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_string(),
            ),
            (
                header::HeaderName::from_static("x-evidence-sha256"),
                evidence.sha256.clone(),
            ),
        ],
        bytes,
    )
        .into_response())
}
