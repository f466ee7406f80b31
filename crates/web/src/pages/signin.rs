//! `/login` and `/logout`. Sign-in attempts are limited per client address and per
//! username (governor's keyed token buckets, in this process's memory), so a password is
//! neither guessed from one address nor sprayed at one account from many.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use yuanlu_engine::staff::SESSION_SECONDS;

use super::cookies::{self, SESSION_COOKIE};
use super::ctx::Ctx;
use super::error::{PageResult, render};
use super::form::{PageForm, PageQuery};
use crate::AppState;
use crate::api::public::ClientKey;

/// Sign-in attempts per client address per minute.
pub const SIGN_INS_PER_CLIENT_PER_MINUTE: u32 = 10;
/// Sign-in attempts per username per minute (from anywhere).
pub const SIGN_INS_PER_USER_PER_MINUTE: u32 = 5;
/// Keys tracked before the limiters forget the idle ones.
const TRACKED_KEYS_MAX: usize = 10_000;

/// The two sign-in limits.
pub struct SignInLimits {
    by_client: DefaultKeyedRateLimiter<Option<IpAddr>>,
    by_user: DefaultKeyedRateLimiter<String>,
}

impl Default for SignInLimits {
    fn default() -> Self {
        let per = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        SignInLimits {
            by_client: RateLimiter::keyed(per(SIGN_INS_PER_CLIENT_PER_MINUTE)),
            by_user: RateLimiter::keyed(per(SIGN_INS_PER_USER_PER_MINUTE)),
        }
    }
}

impl SignInLimits {
    /// Takes one attempt for this client and username; `false` when either is spent.
    pub fn allow(&self, client: Option<IpAddr>, username: &str) -> bool {
        if self.by_client.len() > TRACKED_KEYS_MAX {
            self.by_client.retain_recent();
        }
        if self.by_user.len() > TRACKED_KEYS_MAX {
            self.by_user.retain_recent();
        }
        let client_ok = self.by_client.check_key(&client).is_ok();
        let user_ok = self
            .by_user
            .check_key(&username.to_ascii_lowercase())
            .is_ok();
        client_ok && user_ok
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    ctx: Ctx,
    next: &'a str,
    username: &'a str,
    problem: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

/// Only our own paths: `/merchant/…`, never `//elsewhere` or `https://…`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 300 =>
        {
            n
        }
        _ => "",
    }
}

pub async fn login_page(ctx: Ctx, PageQuery(q): PageQuery<NextParam>) -> Response {
    let lang = ctx.lang;
    let next = safe_next(q.next.as_deref()).to_string();
    render(
        lang,
        &LoginPage {
            ctx,
            next: &next,
            username: "",
            problem: None,
        },
    )
}

pub async fn login(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<SignInLimits>>,
    client: ClientKey,
    ctx: Ctx,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf.as_deref())?;
    let username = form.username.unwrap_or_default().trim().to_string();
    let password = form.password.unwrap_or_default();
    let next = safe_next(form.next.as_deref()).to_string();
    let lang = ctx.lang;
    let again = |ctx: Ctx, status: StatusCode, problem: String| {
        let mut response = render(
            lang,
            &LoginPage {
                ctx,
                next: &next,
                username: &username,
                problem: Some(problem),
            },
        );
        *response.status_mut() = status;
        response
    };
    if !limits.allow(client.0, &username) {
        let problem = ctx.t("login-too-many");
        return Ok(again(ctx, StatusCode::TOO_MANY_REQUESTS, problem));
    }
    let Some(session) = state
        .engine
        .sign_in(&username, &password)
        .await
        .map_err(|e| ctx.fail(e))?
    else {
        let problem = ctx.t("login-wrong");
        return Ok(again(ctx, StatusCode::UNAUTHORIZED, problem));
    };
    let home = if session.user.role.is_merchant_staff() {
        "/merchant"
    } else {
        "/console"
    };
    let to = if next.is_empty() { home } else { next.as_str() };
    let mut response = Redirect::to(to).into_response();
    let cookie = cookies::set(
        SESSION_COOKIE,
        &session.token,
        ctx.tls,
        Some(SESSION_SECONDS),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    pub csrf: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    PageForm(form): PageForm<CsrfOnly>,
) -> PageResult {
    if ctx.user.is_some() {
        ctx.check_csrf(form.csrf.as_deref())?;
    }
    if let Some(token) = &ctx.session_token {
        state
            .engine
            .sign_out(token)
            .await
            .map_err(|e| ctx.fail(e))?;
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookies::clear(SESSION_COOKIE, ctx.tls)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_limited_per_user_and_per_client() {
        let limits = SignInLimits::default();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..SIGN_INS_PER_USER_PER_MINUTE {
            assert!(limits.allow(a, "li"));
        }
        assert!(!limits.allow(Some(IpAddr::from([10, 0, 0, 2])), "li"));
        assert!(limits.allow(a, "wang"));
        assert_eq!(safe_next(Some("//evil.example")), "");
        assert_eq!(safe_next(Some("/merchant/refunds")), "/merchant/refunds");
    }
}
