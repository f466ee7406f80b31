//! The pages' cookies: all HTTP-only and SameSite, `Secure` when served over TLS.

use axum::http::{HeaderMap, header};

/// The signed-in session's token (SameSite=Lax, so a link from elsewhere arrives signed in
/// but no cross-site form post does).
pub const SESSION_COOKIE: &str = "yl_session";
/// The anonymous double-submit CSRF token (sign-in and consumer forms).
pub const CSRF_COOKIE: &str = "yl_csrf";
/// The chosen language.
pub const LANG_COOKIE: &str = "yl_lang";

/// A cookie's value from the request.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
}

/// Tokens are 64 hex digits.
pub fn looks_like_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `Set-Cookie` value. `max_age` in seconds; `None` for a browser-session cookie.
pub fn set(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let same_site = if name == SESSION_COOKIE {
        "Lax"
    } else {
        "Strict"
    };
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", secure, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_same_site_and_secure_over_tls() {
        let c = set(SESSION_COOKIE, "abc", true, Some(60));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        let c = set(CSRF_COOKIE, "abc", false, None);
        assert!(c.contains("SameSite=Strict") && !c.contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; yl_lang=en".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(get(&headers, LANG_COOKIE).as_deref(), Some("en"));
        assert_eq!(get(&headers, "b"), None);
    }
}
