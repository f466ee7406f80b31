//! Form and query extractors whose bad input is a 400 page in the reader's language, never
//! a bare text answer or a 500; and parsing of the texts forms carry.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ctx::Ctx;
use super::error::PageError;
use crate::AppState;

/// A posted `application/x-www-form-urlencoded` form.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let lang = Ctx::from_request_parts(&mut parts, state).await?.lang;
        let request = Request::from_parts(parts, body);
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(PageForm(value)),
            Err(_) => Err(PageError::invalid(lang, "field-form")),
        }
    }
}

/// A page's query string.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let parsed = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .ok();
        match parsed {
            Some(axum::extract::Query(value)) => Ok(PageQuery(value)),
            None => {
                let lang = Ctx::from_request_parts(parts, state).await?.lang;
                Err(PageError::invalid(lang, "field-query"))
            }
        }
    }
}

/// An optional text: trimmed, `None` when empty; a control character is refused.
pub fn text(ctx: &Ctx, value: Option<&str>, label: &str) -> Result<Option<String>, PageError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().any(char::is_control) || v.chars().count() > 500 => {
            Err(PageError::invalid(ctx.lang, label))
        }
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// Yuan as people type it (`12`, `12.3`, `1,234.56`, `¥12.30`) → fen.
pub fn parse_yuan(value: &str) -> Option<i64> {
    let cleaned: String = value
        .trim()
        .trim_start_matches(['¥', '￥'])
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() || whole.len() > 12 || frac.len() > 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::parse_yuan;

    #[test]
    fn yuan_as_typed_becomes_fen() {
        assert_eq!(parse_yuan("12"), Some(1_200));
        assert_eq!(parse_yuan("12.3"), Some(1_230));
        assert_eq!(parse_yuan("¥1,234.56"), Some(123_456));
        assert_eq!(parse_yuan("0.05"), Some(5));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan(""), None);
        assert_eq!(parse_yuan("abc"), None);
        assert_eq!(parse_yuan("99999999999999"), None);
    }
}
