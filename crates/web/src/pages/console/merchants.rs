//! Merchants on the console: the list, onboarding (the same use case as
//! `POST /v1/merchants`), a merchant's settings, its API keys (issued, rotated and revoked
//! as `/v1/merchants/{id}/keys` and `/v1/keys/{id}/…` do; a new key is shown once) and its
//! staff accounts. Admin only, but reading (reviewers may look).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;
use yuanlu_domain::fees::FeeRefundPolicy;
use yuanlu_domain::ledger::FundingPolicy;
use yuanlu_domain::settings::{MerchantSettingsPatch, ReviewSettingsPatch};
use yuanlu_engine::auth::MerchantRole;
use yuanlu_engine::keys::{ApiKey, KeyStatus, RotateKey};
use yuanlu_engine::merchants::{CreateApiKey, CreateMerchant};
use yuanlu_engine::staff::{StaffRole, StaffUser};
use yuanlu_engine::views::{CreatedApiKey, Merchant};

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult, render};
use crate::pages::form::{PageForm, parse_yuan};
use crate::pages::merchant::checked_id;

/// Merchants on the list page.
const MERCHANTS_SHOWN: i64 = 200;
/// Keys listed on a merchant's page.
const KEYS_SHOWN: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/merchants", get(list).post(onboard))
        .route("/console/merchants/{id}", get(show))
        .route("/console/merchants/{id}/keys", post(issue_key))
        .route("/console/keys/{id}/{action}", post(key_action))
}

#[derive(Template)]
#[template(path = "console/merchants.html")]
pub struct ListPage {
    pub ctx: Ctx,
    pub merchants: Vec<Merchant>,
    pub funding: Vec<&'static str>,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let who = ctx.acquirer()?;
    let merchants = state
        .engine
        .list_merchants(&who, None, MERCHANTS_SHOWN)
        .await
        .map_err(|e| ctx.fail(e))?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &ListPage {
            ctx,
            merchants,
            funding: FundingPolicy::ALL.map(FundingPolicy::id).to_vec(),
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct OnboardForm {
    csrf: Option<String>,
    name: Option<String>,
    large_amount: Option<String>,
    funding: Option<String>,
}

/// A key just issued: shown this once.
#[derive(Template)]
#[template(path = "console/new_key.html")]
pub struct NewKeyPage {
    pub ctx: Ctx,
    pub merchant_id: String,
    pub merchant_name: String,
    pub key: CreatedApiKey,
    pub onboarded: bool,
}

pub async fn onboard(
    State(state): State<AppState>,
    ctx: Ctx,
    PageForm(form): PageForm<OnboardForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let large_amount_fen = match form.large_amount.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            parse_yuan(text)
                .ok_or_else(|| PageError::invalid(ctx.lang, "merchant-large-amount"))?,
        ),
    };
    let funding = match form.funding.as_deref() {
        None | Some("") => None,
        Some(id) => Some(
            FundingPolicy::parse(id)
                .ok_or_else(|| PageError::invalid(ctx.lang, "merchant-funding"))?,
        ),
    };
    let settings = MerchantSettingsPatch {
        review: large_amount_fen.map(|fen| ReviewSettingsPatch {
            large_amount_fen: Some(fen),
            ..ReviewSettingsPatch::default()
        }),
        funding,
        ..MerchantSettingsPatch::default()
    };
    // The engine checks the name (1–200 printable characters) and the settings, as the API.
    let input = CreateMerchant {
        name: form.name.unwrap_or_default(),
        settings,
    };
    let created = state
        .engine
        .create_merchant(&who, input)
        .await
        .map_err(|e| ctx.fail(e))?;
    let key = CreatedApiKey {
        id: String::new(),
        merchant_id: Some(created.merchant.id.clone()),
        role: yuanlu_engine::keys::KeyRole::Supervisor,
        api_key: created.api_key,
    };
    let lang = ctx.lang;
    Ok(render(
        lang,
        &NewKeyPage {
            ctx,
            merchant_id: created.merchant.id,
            merchant_name: created.merchant.name,
            key,
            onboarded: true,
        },
    ))
}

/// One channel's settings as the page shows them.
pub struct ChannelRow {
    pub channel: &'static str,
    pub fee_percent: String,
    pub fee_cap_fen: Option<i64>,
    pub refund_window_days: i64,
    pub fee_refund: &'static str,
}

#[derive(Template)]
#[template(path = "console/merchant.html")]
pub struct MerchantPage {
    pub ctx: Ctx,
    pub merchant: Merchant,
    pub channels: Vec<ChannelRow>,
    pub keys: Vec<ApiKey>,
    pub staff: Vec<StaffUser>,
    pub staff_roles: Vec<&'static str>,
}

impl MerchantPage {
    /// A key's status id, for its words.
    pub fn key_status(&self, key: &ApiKey) -> &'static str {
        match key.status {
            KeyStatus::Active => "active",
            KeyStatus::Expiring => "expiring",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// Parts per million as a percentage, `3800` → `0.38%`.
fn percent(ppm: i64) -> String {
    let hundredths = ppm / 100;
    format!("{}.{:02}%", hundredths / 100, hundredths % 100)
}

fn fee_refund_id(policy: FeeRefundPolicy) -> &'static str {
    match policy {
        FeeRefundPolicy::Proportional => "proportional",
        FeeRefundPolicy::None => "none",
    }
}

pub async fn show(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.acquirer()?;
    let id = checked_id(&ctx, &id)?;
    let merchant = state
        .engine
        .get_merchant(&who, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let keys = state
        .engine
        .list_merchant_keys(&who, &id, KEYS_SHOWN, None)
        .await
        .map_err(|e| ctx.fail(e))?
        .data;
    let staff = state
        .engine
        .list_staff_users(&who)
        .await
        .map_err(|e| ctx.fail(e))?
        .into_iter()
        .filter(|u| u.merchant_id.as_deref() == Some(id.as_str()))
        .collect();
    let channels = merchant
        .settings
        .channels
        .iter()
        .map(|(channel, s)| ChannelRow {
            channel: channel.id(),
            fee_percent: percent(s.fee_rate_ppm),
            fee_cap_fen: s.fee_cap_fen,
            refund_window_days: s.refund_window_days,
            fee_refund: fee_refund_id(s.fee_refund),
        })
        .collect();
    let staff_roles = StaffRole::ALL
        .into_iter()
        .filter(|r| r.is_merchant_staff())
        .map(StaffRole::id)
        .collect();
    let lang = ctx.lang;
    Ok(render(
        lang,
        &MerchantPage {
            ctx,
            merchant,
            channels,
            keys,
            staff,
            staff_roles,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    csrf: Option<String>,
    role: Option<String>,
    grace: Option<String>,
}

pub async fn issue_key(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<KeyForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let role = form
        .role
        .as_deref()
        .and_then(MerchantRole::parse)
        .ok_or_else(|| PageError::invalid(ctx.lang, "key-role"))?;
    let merchant = state
        .engine
        .get_merchant(&who, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let key = state
        .engine
        .create_api_key(&who, &id, CreateApiKey { role })
        .await
        .map_err(|e| ctx.fail(e))?;
    let lang = ctx.lang;
    Ok(render(
        lang,
        &NewKeyPage {
            ctx,
            merchant_id: merchant.id,
            merchant_name: merchant.name,
            key,
            onboarded: false,
        },
    ))
}

/// Rotate (a new key, shown once; the old one works for the chosen grace) or revoke.
pub async fn key_action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    PageForm(form): PageForm<KeyForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    match action.as_str() {
        "revoke" => {
            let key = state
                .engine
                .revoke_key(&who, &id)
                .await
                .map_err(|e| ctx.fail(e))?;
            let back = key
                .merchant_id
                .map(|m| format!("/console/merchants/{m}"))
                .unwrap_or_else(|| "/console/merchants".into());
            Ok(Redirect::to(&back).into_response())
        }
        "rotate" => {
            let grace_seconds = match form.grace.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(
                    text.parse::<i64>()
                        .map_err(|_| PageError::invalid(ctx.lang, "key-grace"))?,
                ),
            };
            // The engine checks the grace (0 to 7 days), as the API.
            let rotated = state
                .engine
                .rotate_key(&who, &id, RotateKey { grace_seconds })
                .await
                .map_err(|e| ctx.fail(e))?;
            let merchant_id = rotated.key.merchant_id.clone().unwrap_or_default();
            let merchant_name = if merchant_id.is_empty() {
                String::new()
            } else {
                state
                    .engine
                    .get_merchant(&who, &merchant_id)
                    .await
                    .map_err(|e| ctx.fail(e))?
                    .name
            };
            let lang = ctx.lang;
            Ok(render(
                lang,
                &NewKeyPage {
                    ctx,
                    merchant_id,
                    merchant_name,
                    key: rotated.key,
                    onboarded: false,
                },
            ))
        }
        _ => Err(PageError::not_found(ctx.lang)),
    }
}
