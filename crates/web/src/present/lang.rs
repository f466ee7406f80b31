//! The API's reader language: `?lang=zh|en` first, then `Accept-Language`, then English
//! (the API's prose was English before it was translated, and clients may read it).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use yuanlu_words::Lang;

/// The language of the prose in an API answer (timeline descriptions, next step, where the
/// money is, statement explanations). Never an error: an unknown `lang` is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLang(pub Lang);

/// `?lang=`, documented on every endpoint whose answer has prose.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangParam {
    /// `zh` (or `zh-CN`) or `en`: the language of the answer's prose (descriptions, next
    /// step, where the money is, statement explanations). Without it, `Accept-Language`
    /// decides; without both, English. Codes and field names never change.
    pub lang: Option<String>,
}

impl ApiLang {
    /// From a query string and an `Accept-Language` header.
    pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> ApiLang {
        let asked = query.and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("lang="))
                .map(str::to_string)
        });
        ApiLang(Lang::negotiate(
            asked.as_deref(),
            None,
            accept_language,
            Lang::En,
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(ApiLang::negotiate(parts.uri.query(), accept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_beats_header_beats_english() {
        assert_eq!(ApiLang::negotiate(Some("lang=zh"), Some("en")).0, Lang::Zh);
        assert_eq!(
            ApiLang::negotiate(Some("limit=5&lang=en"), Some("zh-CN")).0,
            Lang::En
        );
        assert_eq!(
            ApiLang::negotiate(Some("status=queued"), Some("zh-CN,zh;q=0.9")).0,
            Lang::Zh
        );
        assert_eq!(ApiLang::negotiate(Some("lang=fr"), None).0, Lang::En);
        assert_eq!(ApiLang::negotiate(None, None).0, Lang::En);
    }
}
