//! What every page knows about its request: the reader's language, who is signed in, the
//! CSRF token its forms carry, and how to say things (words, money, dates).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use yuanlu_engine::EngineError;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::staff::{StaffRole, StaffUser};
use yuanlu_words::{Arg, Lang, Words};

use super::cookies::{self, LANG_COOKIE, SESSION_COOKIE};
use super::error::PageError;
use super::layer::{AnonCsrf, OverTls};
use crate::AppState;

/// The request as the templates see it.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub user: Option<StaffUser>,
    /// The token every form on this page carries (the session's, or the anonymous cookie's).
    pub csrf: String,
    /// The path, for the language switch.
    pub path: String,
    pub tls: bool,
    /// The session token from the cookie (for sign-out).
    pub session_token: Option<String>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let query_lang = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("lang="))
                .map(str::to_string)
        });
        let remembered = cookies::get(&parts.headers, LANG_COOKIE);
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = Lang::negotiate(
            query_lang.as_deref(),
            remembered.as_deref(),
            accept,
            Lang::Zh,
        );
        let anon = parts
            .extensions
            .get::<AnonCsrf>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let tls = parts.extensions.get::<OverTls>().is_some_and(|t| t.0);
        let session_token =
            cookies::get(&parts.headers, SESSION_COOKIE).filter(|t| cookies::looks_like_token(t));
        let session = match &session_token {
            Some(token) => state
                .engine
                .staff_session(token)
                .await
                .map_err(|e| PageError::engine(lang, e))?,
            None => None,
        };
        let (user, csrf) = match session {
            Some(s) => (Some(s.user), s.csrf_token),
            None => (None, anon),
        };
        Ok(Ctx {
            lang,
            user,
            csrf,
            path: parts.uri.path().to_string(),
            tls,
            session_token,
        })
    }
}

impl Ctx {
    /// A message of pages.ftl in the reader's language.
    pub fn t(&self, id: &str) -> String {
        Words::get().text(self.lang, id, &[])
    }

    /// A message with one text argument.
    pub fn t1(&self, id: &str, name: &str, value: &str) -> String {
        Words::get().text(self.lang, id, &[(name, Arg::Str(value))])
    }

    /// `¥1,234.56`.
    pub fn money<T: Fen>(&self, fen: T) -> String {
        self.t1("money-yuan", "amount", &yuanlu_words::yuan(fen.fen()))
    }

    /// A named value's words: `prefix-id`, e.g. `status-pending_review`.
    pub fn word(&self, prefix: &str, id: &str) -> String {
        self.t(&format!("{prefix}-{id}"))
    }

    /// An instant in Shanghai time, `2026-01-08 23:59`.
    pub fn when<T: Instant>(&self, at: T) -> String {
        at.instant()
            .with_timezone(&yuanlu_domain::time::shanghai())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// A date in Shanghai time, `2026-01-08`.
    pub fn day<T: Instant>(&self, at: T) -> String {
        at.instant()
            .with_timezone(&yuanlu_domain::time::shanghai())
            .format("%Y-%m-%d")
            .to_string()
    }

    pub fn is_zh(&self) -> bool {
        self.lang == Lang::Zh
    }

    pub fn html_lang(&self) -> &'static str {
        self.lang.tag()
    }

    /// The link of the language switch: this page in the other language.
    pub fn other_lang_href(&self) -> String {
        let other = if self.lang == Lang::Zh { "en" } else { "zh" };
        format!("{}?lang={other}", self.path)
    }

    pub fn other_lang_name(&self) -> String {
        let other = if self.lang == Lang::Zh {
            Lang::En
        } else {
            Lang::Zh
        };
        Words::get().text(other, "language-name", &[])
    }

    pub fn role_name(&self) -> String {
        self.user
            .as_ref()
            .map(|u| self.word("role", u.role.id()))
            .unwrap_or_default()
    }

    pub fn is_merchant(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role.is_merchant_staff())
    }

    pub fn is_acquirer(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| !u.role.is_merchant_staff())
    }

    pub fn is_supervisor(&self) -> bool {
        self.has_role(StaffRole::Supervisor)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(StaffRole::Admin)
    }

    fn has_role(&self, role: StaffRole) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == role)
    }

    /// The signed-in merchant staff member's principal, or a sign-in redirect / 403.
    pub fn merchant(&self) -> Result<Principal, PageError> {
        match &self.user {
            Some(u) if u.role.is_merchant_staff() => Ok(u.principal()),
            Some(_) => Err(PageError::forbidden(self.lang)),
            None => Err(PageError::SignIn(self.path.clone())),
        }
    }

    /// The signed-in acquirer staff member's principal (reviewers and admins).
    pub fn acquirer(&self) -> Result<Principal, PageError> {
        match &self.user {
            Some(u) if !u.role.is_merchant_staff() => Ok(u.principal()),
            Some(_) => Err(PageError::forbidden(self.lang)),
            None => Err(PageError::SignIn(self.path.clone())),
        }
    }

    /// Any signed-in staff member's principal.
    pub fn staff(&self) -> Result<Principal, PageError> {
        match &self.user {
            Some(u) => Ok(u.principal()),
            None => Err(PageError::SignIn(self.path.clone())),
        }
    }

    /// The acquirer admin (staff and keys pages).
    pub fn admin(&self) -> Result<Principal, PageError> {
        let who = self.acquirer()?;
        if self.is_admin() {
            Ok(who)
        } else {
            Err(PageError::forbidden(self.lang))
        }
    }

    /// Checks a posted form's CSRF token against this page's.
    pub fn check_csrf(&self, posted: Option<&str>) -> Result<(), PageError> {
        match posted {
            Some(token) if !self.csrf.is_empty() && same(token, &self.csrf) => Ok(()),
            _ => Err(PageError::Status {
                status: StatusCode::FORBIDDEN,
                lang: self.lang,
                message: self.t("error-csrf"),
                detail: None,
            }),
        }
    }

    /// An engine error as this reader's page.
    pub fn fail(&self, error: EngineError) -> PageError {
        PageError::engine(self.lang, error)
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Ctx {
    /// A context with no request behind it (error pages, template tests).
    pub fn bare(lang: Lang) -> Ctx {
        Ctx {
            lang,
            user: None,
            csrf: String::new(),
            path: "/".to_string(),
            tls: false,
            session_token: None,
        }
    }
}

impl Ctx {
    /// A timeline event's title, e.g. `refund.accepted` → "通道已受理".
    pub fn event(&self, event: &str) -> String {
        self.t(&format!("event-{}", event.replace('.', "-")))
    }
}

/// An amount in fen, however many references a template wraps it in.
pub trait Fen {
    fn fen(&self) -> i64;
}

impl Fen for i64 {
    fn fen(&self) -> i64 {
        *self
    }
}

impl<T: Fen + ?Sized> Fen for &T {
    fn fen(&self) -> i64 {
        (**self).fen()
    }
}

/// An instant, however many references a template wraps it in.
pub trait Instant {
    fn instant(&self) -> DateTime<Utc>;
}

impl Instant for DateTime<Utc> {
    fn instant(&self) -> DateTime<Utc> {
        *self
    }
}

impl<T: Instant + ?Sized> Instant for &T {
    fn instant(&self) -> DateTime<Utc> {
        (**self).instant()
    }
}
