//! The reroute form of an abnormal refund: to a bank account the consumer gave the operator,
//! or back to the merchant, who paid the consumer some other way. The engine checks both as
//! it does for `POST /v1/refunds/{id}/reroute`, with the same codes and messages.

use yuanlu_engine::dispatch::{RerouteAccount, RerouteInput};

use crate::pages::ctx::Ctx;
use crate::pages::error::PageError;
use crate::pages::form::text;

/// The fields of both reroute forms.
#[derive(Debug, Default)]
pub struct RerouteForm {
    pub to: Option<String>,
    pub method: Option<String>,
    pub paid_by: Option<String>,
    pub note: Option<String>,
    pub account_number: Option<String>,
    pub bank: Option<String>,
    pub holder: Option<String>,
}

/// The engine's input for the form (printable texts; the rules are the engine's).
pub fn input(ctx: &Ctx, form: RerouteForm) -> Result<RerouteInput, PageError> {
    match form.to.as_deref().map(str::trim) {
        None | Some("") | Some("merchant") => Ok(RerouteInput {
            to: "merchant".into(),
            account: None,
            method: Some(
                text(ctx, form.method.as_deref(), "reroute-method")?
                    .unwrap_or_else(|| "other".into()),
            ),
            paid_by: text(ctx, form.paid_by.as_deref(), "reroute-paid-by")?,
            note: text(ctx, form.note.as_deref(), "field-note")?,
        }),
        Some("bank_account") => Ok(RerouteInput {
            to: "bank_account".into(),
            account: Some(RerouteAccount {
                number: text(
                    ctx,
                    form.account_number.as_deref(),
                    "reroute-account-number",
                )?
                .unwrap_or_default(),
                bank: text(ctx, form.bank.as_deref(), "reroute-bank")?.unwrap_or_default(),
                holder: text(ctx, form.holder.as_deref(), "reroute-holder")?,
            }),
            method: None,
            paid_by: None,
            note: None,
        }),
        Some(_) => Err(PageError::invalid(ctx.lang, "reroute-title")),
    }
}
