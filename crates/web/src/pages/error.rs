//! A page that could not be shown: a redirect to sign in, or an error page in the reader's
//! language with the API's own detail beneath (the same rules and codes as the API; never
//! a 500 for bad input).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use yuanlu_engine::EngineError;
use yuanlu_words::{Lang, Words};

use super::ctx::Ctx;
use crate::problem::Problem;

#[derive(Debug)]
pub enum PageError {
    /// Not signed in: to `/login`, then back to this path.
    SignIn(String),
    Status {
        status: StatusCode,
        lang: Lang,
        message: String,
        /// The API's detail (English), shown small under the message.
        detail: Option<String>,
    },
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: Ctx,
    status: u16,
    message: &'a str,
    detail: Option<&'a str>,
}

impl PageError {
    pub fn forbidden(lang: Lang) -> Self {
        PageError::Status {
            status: StatusCode::FORBIDDEN,
            lang,
            message: Words::get().text(lang, "error-forbidden", &[]),
            detail: None,
        }
    }

    pub fn not_found(lang: Lang) -> Self {
        PageError::Status {
            status: StatusCode::NOT_FOUND,
            lang,
            message: Words::get().text(lang, "error-not_found", &[]),
            detail: None,
        }
    }

    /// A form field that does not hold what it must.
    pub fn invalid(lang: Lang, field_label_id: &str) -> Self {
        let words = Words::get();
        let field = words.text(lang, field_label_id, &[]);
        PageError::Status {
            status: StatusCode::BAD_REQUEST,
            lang,
            message: words.text(
                lang,
                "error-field",
                &[("field", yuanlu_words::Arg::Str(&field))],
            ),
            detail: None,
        }
    }

    pub fn engine(lang: Lang, error: EngineError) -> Self {
        PageError::problem(lang, Problem::from(error))
    }

    /// An API problem in the reader's words: the message by its stable code, the detail
    /// as the API says it.
    pub fn problem(lang: Lang, problem: Problem) -> Self {
        let words = Words::get();
        let id = format!("error-{}", problem.code);
        let message = if words.has(lang, &id) {
            words.text(lang, &id, &[])
        } else {
            words.text(lang, "error-other", &[])
        };
        let internal = problem.status >= 500;
        PageError::Status {
            status: StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST),
            lang,
            message,
            detail: (!internal).then_some(problem.detail),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(next) => {
                let next = if next.starts_with('/') && !next.starts_with("//") {
                    next
                } else {
                    "/".to_string()
                };
                Redirect::to(&format!("/login?next={}", encode(&next))).into_response()
            }
            PageError::Status {
                status,
                lang,
                message,
                detail,
            } => {
                let page = ErrorPage {
                    ctx: Ctx::bare(lang),
                    status: status.as_u16(),
                    message: &message,
                    detail: detail.as_deref(),
                };
                let body = page.render().unwrap_or(message);
                let mut response = (status, Html(body)).into_response();
                response.headers_mut().insert(
                    header::CONTENT_LANGUAGE,
                    HeaderValue::from_static(lang.tag()),
                );
                response
            }
        }
    }
}

/// Percent-encodes a path for a query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Renders a page template, or an error page if it cannot be (a defect, logged).
pub fn render<T: Template>(lang: Lang, page: &T) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = Html(body).into_response();
            response.headers_mut().insert(
                header::CONTENT_LANGUAGE,
                HeaderValue::from_static(lang.tag()),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "a page template failed to render");
            PageError::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                message: Words::get().text(lang, "error-other", &[]),
                detail: None,
            }
            .into_response()
        }
    }
}

pub type PageResult = Result<Response, PageError>;
