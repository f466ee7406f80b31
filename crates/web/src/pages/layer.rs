//! One middleware around every page: security headers (a Content-Security-Policy that
//! allows nothing from elsewhere and no script at all), the anonymous CSRF cookie, and
//! remembering a `?lang=` choice in a cookie.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngExt;
use yuanlu_words::Lang;

use super::cookies::{self, CSRF_COOKIE, LANG_COOKIE};

/// The policy of every page: our own styles and images (charts are inline SVG), forms
/// posted only to us, no scripts, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The anonymous CSRF token a request carries (from its cookie, or new for this answer).
#[derive(Debug, Clone)]
pub struct AnonCsrf(pub String);

/// Whether this request reached us over TLS (directly, or as the proxy in front says).
#[derive(Debug, Clone, Copy)]
pub struct OverTls(pub bool);

pub async fn page_layer(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let tls = request.uri().scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let existing = cookies::get(headers, CSRF_COOKIE).filter(|t| cookies::looks_like_token(t));
    let new_csrf = existing.is_none().then(|| {
        let bytes: [u8; 32] = rand::rng().random();
        hex::encode(bytes)
    });
    let csrf = existing.or_else(|| new_csrf.clone()).unwrap_or_default();
    let chosen_lang = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("lang="))
            .and_then(Lang::parse)
    });
    request.extensions_mut().insert(AnonCsrf(csrf));
    request.extensions_mut().insert(OverTls(tls));
    let mut response = next.run(request).await;
    let out = response.headers_mut();
    if let Some(token) = new_csrf
        && let Ok(value) = HeaderValue::from_str(&cookies::set(CSRF_COOKIE, &token, tls, None))
    {
        out.append(header::SET_COOKIE, value);
    }
    if let Some(lang) = chosen_lang
        && let Ok(value) = HeaderValue::from_str(&cookies::set(
            LANG_COOKIE,
            lang.tag(),
            tls,
            Some(365 * 24 * 3_600),
        ))
    {
        out.append(header::SET_COOKIE, value);
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !out.contains_key(header::CACHE_CONTROL) {
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
