//! Extractors that turn every malformed request into a [`Problem`], never a bare 4xx text
//! or a 500: JSON bodies, query strings, and the bearer key.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use yuanlu_engine::auth::Principal;

use crate::AppState;
use crate::problem::Problem;

/// The largest request body accepted, in bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

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
