//! Changing a merchant's settings on the console: the same use case as
//! `PATCH /v1/merchants/{id}` (versioned, audited with before and after; the new values apply
//! to refunds asked for after the change). A field left empty keeps its value. Admin only.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use serde::Deserialize;
use yuanlu_domain::ledger::FundingPolicy;
use yuanlu_domain::settings::{
    DailyRefundLimitPatch, EvidenceSettingsPatch, MerchantSettingsPatch, ReviewSettingsPatch,
};
use yuanlu_engine::ops::settings::UpdateMerchant;

use crate::AppState;
use crate::pages::ctx::Ctx;
use crate::pages::error::{PageError, PageResult};
use crate::pages::form::{PageForm, parse_yuan};
use crate::pages::merchant::checked_id;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/merchants/{id}/settings", post(change))
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    csrf: Option<String>,
    large_amount: Option<String>,
    funding: Option<String>,
    daily_amount: Option<String>,
    daily_count: Option<String>,
    voucher_above: Option<String>,
    id_check_above: Option<String>,
}

/// An optional form value: `None` when empty, else parsed or the field's problem.
fn optional<T>(
    ctx: &Ctx,
    value: Option<&str>,
    label: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, PageError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse(text)
            .map(Some)
            .ok_or_else(|| PageError::invalid(ctx.lang, label)),
    }
}

fn parse_count(text: &str) -> Option<i64> {
    text.parse::<i64>().ok()
}

pub async fn change(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    PageForm(form): PageForm<SettingsForm>,
) -> PageResult {
    let who = ctx.admin()?;
    ctx.check_csrf(form.csrf.as_deref())?;
    let id = checked_id(&ctx, &id)?;
    let large_amount = optional(
        &ctx,
        form.large_amount.as_deref(),
        "merchant-large-amount",
        parse_yuan,
    )?;
    let funding = optional(
        &ctx,
        form.funding.as_deref(),
        "merchant-funding",
        FundingPolicy::parse,
    )?;
    let daily_amount = optional(
        &ctx,
        form.daily_amount.as_deref(),
        "merchant-daily-amount",
        parse_yuan,
    )?;
    let daily_count = optional(
        &ctx,
        form.daily_count.as_deref(),
        "merchant-daily-count",
        parse_count,
    )?;
    let daily_refund_limit =
        (daily_amount.is_some() || daily_count.is_some()).then(|| DailyRefundLimitPatch {
            amount_fen: daily_amount.map(Some),
            count: daily_count.map(Some),
        });
    let voucher_above = optional(
        &ctx,
        form.voucher_above.as_deref(),
        "merchant-voucher-above",
        parse_yuan,
    )?;
    let id_check_above = optional(
        &ctx,
        form.id_check_above.as_deref(),
        "merchant-id-check-above",
        parse_yuan,
    )?;
    let evidence =
        (voucher_above.is_some() || id_check_above.is_some()).then(|| EvidenceSettingsPatch {
            require_voucher_above: voucher_above.map(Some),
            require_id_check_above: id_check_above.map(Some),
        });
    let settings = MerchantSettingsPatch {
        review: large_amount.map(|fen| ReviewSettingsPatch {
            large_amount_fen: Some(fen),
            ..ReviewSettingsPatch::default()
        }),
        funding,
        daily_refund_limit,
        evidence,
        ..MerchantSettingsPatch::default()
    };
    // The engine checks every value's range with the API's messages.
    state
        .engine
        .update_merchant_settings(&who, &id, UpdateMerchant { settings })
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Redirect::to(&format!("/console/merchants/{id}#settings")).into_response())
}
