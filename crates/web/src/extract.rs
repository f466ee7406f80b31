//! Extractors that turn every malformed request into a [`Problem`], never a bare 4xx text
//! or a 500: JSON bodies, query strings, path ids, and the bearer key.
//!
//! Every text is checked here, at the edge, before it reaches the engine or a database
//! (PostgreSQL refuses NUL in text; nothing legitimate holds control characters):
//! - a path id ([`ApiPath`]) that cannot be an id (not its route's prefix, other than
//!   `A-Z a-z 0-9 _ -`, longer than [`ID_CHARS_MAX`]) names nothing: 404, with the code an
//!   unknown id of that kind gets;
//! - any other text (JSON strings, query parameters, the public lookup's receipt number)
//!   holding a control character (line breaks and tabs included, as the engine's own text
//!   rules say): 400 `validation_error` naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use yuanlu_engine::auth::Principal;

use crate::AppState;
use crate::problem::Problem;

/// The largest request body accepted, in bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// The longest id a path may name (yuanlu's are a prefix and 26 characters).
pub const ID_CHARS_MAX: usize = 64;
/// Path parameters that are texts, not ids.
const TEXT_PATH_PARAMS: [&str; 1] = ["merchant_refund_no"];

/// The id prefix of the resource a path segment names (`/v1/refunds/{id}` → `rf_`), and
/// the code its "no such" problem has (as the engine answers an unknown id). Segments not
/// listed get the charset and length check only.
fn id_prefix(segment: &str) -> Option<(&'static str, &'static str)> {
    Some(match segment {
        "refunds" | "by-id" => ("rf_", "not_found"),
        "payments" => ("pay_", "payment_not_found"),
        "merchants" => ("mch_", "not_found"),
        "cases" => ("case_", "not_found"),
        "reconciliations" => ("recon_", "not_found"),
        "reconciliation-exceptions" => ("rex_", "not_found"),
        "bank-statements" => ("bsi_", "not_found"),
        "settlements" => ("stl_", "not_found"),
        "evidence" => ("ev_", "not_found"),
        _ => return None,
    })
}

fn control_char_problem(field: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "validation_error",
        format!("{field} holds a control character (e.g. NUL); send printable text"),
    )
    .with_field(field)
}

/// Whether `text` holds a control character (C0, DEL or C1).
fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// The first string (or object key) in `value` with a control character, as a field path.
fn control_in_json(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(text) => has_control(text).then(|| path.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| control_in_json(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if has_control(key) {
                return Some(field);
            }
            control_in_json(item, &field)
        }),
        _ => None,
    }
}

/// Checks every text of a JSON body. Control characters can only be in a string escaped
/// (`\u0000`, `\n`) or as DEL / C1 (U+0080–U+009F) bytes, so most bodies skip the parse.
fn check_json_texts(body: &[u8]) -> Result<(), Problem> {
    let suspicious = body.iter().any(|b| *b == b'\\' || *b == 0x7f)
        || body
            .windows(2)
            .any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]));
    if !suspicious {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    match control_in_json(&value, "") {
        Some(field) => Err(control_char_problem(&field)),
        None => Ok(()),
    }
}

/// Reads an uploaded file sent as the request body itself: its `Content-Type` must be one of
/// `content_types`, its size at most `max_bytes` (`too_large` says what to do instead), it
/// must not be empty, and [`check_file_bytes`] must pass. Everything but the body is checked
/// first, so a refused request is not read.
pub async fn file_body<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
    content_types: &[&str],
    max_bytes: usize,
    too_large: &str,
) -> Result<axum::body::Bytes, Problem> {
    use axum::extract::FromRequest;
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !content_type
        .as_deref()
        .is_some_and(|ct| content_types.contains(&ct))
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "validation_error",
            "send the file itself as the body with `Content-Type: text/csv` or `application/octet-stream`",
        ));
    }
    let bytes = axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the file is larger than {max_bytes} bytes; {too_large}")
            } else {
                rejection.body_text()
            };
            Problem::new(status, "validation_error", detail).with_field("file")
        })?;
    if bytes.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "the body is empty: send the file",
        )
        .with_field("file"));
    }
    check_file_bytes("file", &bytes)?;
    Ok(bytes)
}

/// Checks an uploaded text file (a statement): no control byte but tab and line ends, so
/// no NUL reaches a database text column. Names the line of the first one.
pub fn check_file_bytes(field: &str, bytes: &[u8]) -> Result<(), Problem> {
    let bad = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
    match bytes.iter().position(|b| bad(*b)) {
        None => Ok(()),
        Some(at) => {
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                format!(
                    "{field}: line {line}: a control character (e.g. NUL); statements are text"
                ),
            )
            .with_field(field))
        }
    }
}

/// Checks one path parameter: ids must be able to exist, texts must be printable.
fn check_path_param(route: Option<&str>, name: &str, value: &str) -> Result<(), Problem> {
    if TEXT_PATH_PARAMS.contains(&name) {
        return if has_control(value) {
            Err(control_char_problem(name))
        } else {
            Ok(())
        };
    }
    let segment = route.and_then(|route| {
        let placeholder = format!("{{{name}}}");
        let mut previous = None;
        for part in route.split('/') {
            if part == placeholder {
                return previous;
            }
            previous = Some(part);
        }
        None
    });
    let (prefix, code) = segment.and_then(id_prefix).unwrap_or(("", "not_found"));
    let well_formed = !value.is_empty()
        && value.len() <= ID_CHARS_MAX
        && value.starts_with(prefix)
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if well_formed {
        Ok(())
    } else {
        let what = segment.unwrap_or("resource").trim_end_matches('s');
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            code,
            format!("no such {what}: {name} is not an id yuanlu gives"),
        ))
    }
}

/// A JSON body. An empty body reads as `{}` so that `{note}`-only actions can be posted
/// bare; anything else must be `application/json` and parse completely.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is larger than {REQUEST_BODY_BYTES_MAX} bytes")
            } else {
                rejection.body_text()
            };
            Problem::new(status, "validation_error", detail)
        })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        if body != b"{}" {
            let is_json = content_type.as_deref().is_some_and(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
            if !is_json {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "validation_error",
                    "send the body as JSON with `Content-Type: application/json`",
                ));
            }
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize(&mut *deserializer) {
            Ok(value) => {
                // One JSON value and nothing after it: `{} {}` is not a body.
                deserializer.end().map_err(|e| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "validation_error",
                        format!("the body has data after its JSON value: {e}"),
                    )
                })?;
                check_json_texts(body)?;
                Ok(ApiJson(value))
            }
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                let detail = if path == "." || path.is_empty() {
                    format!("the body is not the expected JSON: {inner}")
                } else {
                    format!("{path}: {inner}")
                };
                let mut problem = Problem::new(StatusCode::BAD_REQUEST, "validation_error", detail);
                if path != "." && !path.is_empty() {
                    problem = problem.with_field(path);
                }
                Err(problem)
            }
        }
    }
}

/// A query string parsed into `T`, or a `validation_error`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(pairs) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            && let Some((name, _)) = pairs
                .0
                .iter()
                .find(|(name, value)| has_control(name) || has_control(value))
        {
            let field = if has_control(name) { "query" } else { name };
            return Err(control_char_problem(field));
        }
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "validation_error", e.body_text()))
    }
}

/// A path segment, decoded; a segment that is not UTF-8 gets a problem, not plain text.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let bad_path = |e: axum::extract::rejection::PathRejection| {
            Problem::new(StatusCode::BAD_REQUEST, "validation_error", e.body_text())
        };
        let raw = axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(bad_path)?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        for (name, value) in &raw.0 {
            check_path_param(route, name, value)?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "validation_error", e.body_text()))
    }
}

/// The authenticated caller, from `Authorization: Bearer <key>`.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(key) = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(Problem::unauthorized());
        };
        match state.engine.authenticate(key).await {
            Ok(Some(principal)) => Ok(Auth(principal)),
            Ok(None) => Err(Problem::unauthorized()),
            Err(error) => Err(error.into()),
        }
    }
}
