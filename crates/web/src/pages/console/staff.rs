//! Staff accounts: the admin lists them and adds cashiers, supervisors, reviewers and
//! admins (the same use case as `yuanlu users add`).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yuanlu_engine::staff::{AddUser, StaffRole, StaffUser};

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::PageForm;
use crate::pages::merchant::checked_id;

#[derive(Template)]
#[template(path = "console/staff.html")]
pub struct StaffPage {
    pub ctx: Ctx,
    pub users: Vec<StaffUser>,
    pub roles: Vec<&'static str>,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.acquirer()?;
    let users = state
        .engine
        .list_staff_users(&who)
        .await
        .map_err(|e| ctx.fail(e))?;
    let roles = StaffRole::ALL.iter().map(|r| r.id()).collect();
    let lang = ctx.lang;
    Ok(render(lang, &StaffPage { ctx, users, roles }))
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    csrf: Option<String>,
    username: Option<String>,
    role: Option<String>,
    merchant: Option<String>,
    password: Option<String>,
}

pub async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    PageForm(form): PageForm<AddForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let role = form
        .role
        .as_deref()
        .and_then(StaffRole::parse)
        .ok_or_else(|| PageError::invalid(ctx.lang, "staff-role"))?;
    let input = AddUser {
        username: form.username.unwrap_or_default().trim().to_string(),
        role,
        merchant_id: form
            .merchant
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty()),
        password: form.password.unwrap_or_default(),
    };
    let back = match &input.merchant_id {
        Some(m) if role.is_merchant_staff() => {
            format!("/console/merchants/{}", checked_id(&ctx, m)?)
        }
        _ => "/console/staff".to_string(),
    };
    state
        .engine
        .add_staff_user(Some(&who), input)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&back).into_response())
}
