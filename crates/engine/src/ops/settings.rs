//! `PATCH /v1/merchants/{id}`: the acquirer changes a merchant's settings.
//!
//! What a change applies to:
//! - fee rates and caps: payments recorded after it (a payment's fee is computed and stored
//!   when it is recorded); the fee-refund policy too: a refund returns fee under the policy
//!   in force when its payment was recorded (the settings versions);
//! - refund windows, review thresholds, the funding policy and the daily limit: refunds
//!   asked for after it;
//! - arrival rules: refunds the channel accepts after it.
//!
//! Each change writes the settings as a new version effective from the change (the first
//! also keeps the settings before it as version 1, effective from the merchant's creation)
//! and appends `merchant.settings_changed` with `before` and `after` to the merchant's chain.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::settings::{MerchantSettings, MerchantSettingsPatch};
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::SettingsVersionRow;

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::views::Merchant;

/// The audit action of a settings change (subject: the merchant).
pub const SETTINGS_CHANGED: &str = "merchant.settings_changed";
/// The `changed_by` of the version that keeps the settings a merchant was created with.
pub const CREATION_VERSION_ACTOR: &str = "merchant.created";

/// `PATCH /v1/merchants/{id}`.
#[derive(Debug, Clone)]
pub struct UpdateMerchant {
    /// Partial settings: omitted fields keep their value, `null` removes an optional one
    /// (`fee_cap_fen`, `arrival`, `daily_refund_limit.amount_fen`/`count`).
    pub settings: MerchantSettingsPatch,
}

/// One version of a merchant's settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsVersion {
    pub version: i64,
    pub effective_from: chrono::DateTime<chrono::Utc>,
    pub changed_by: String,
    pub settings: MerchantSettings,
}

fn parse_settings(merchant_id: &str, json: &str) -> EngineResult<MerchantSettings> {
    serde_json::from_str(json)
        .map_err(|e| EngineError::corrupt(format!("settings of {merchant_id}: {e}")))
}

impl Engine {
    /// Admin: changes a merchant's settings from now on; answers the merchant as `GET` does.
    pub async fn update_merchant_settings(
        &self,
        who: &Principal,
        merchant_id: &str,
        input: UpdateMerchant,
    ) -> EngineResult<Merchant> {
        who.require_admin()?;
        let now_us = to_micros(self.clock.now());
        let actor = who.actor();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let (current, created_at_us) =
            conn.lock_merchant_settings(merchant_id)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "merchant",
                    id: merchant_id.to_string(),
                })?;
        let before = parse_settings(merchant_id, &current)?;
        let after = before
            .apply(&input.settings)
            .map_err(|e| EngineError::Validation {
                field: e.field,
                message: e.problem,
            })?;
        let after_json =
            serde_json::to_string(&after).map_err(|e| EngineError::corrupt(e.to_string()))?;
        let versions = conn.settings_versions(merchant_id).await?;
        let mut version = versions.last().map_or(1, |v| v.version + 1);
        if versions.is_empty() {
            conn.insert_settings_version(&SettingsVersionRow {
                merchant_id: merchant_id.to_string(),
                version: 1,
                effective_from_us: created_at_us,
                settings: current.clone(),
                changed_by: CREATION_VERSION_ACTOR.to_string(),
            })
            .await?;
            version = 2;
        }
        conn.insert_settings_version(&SettingsVersionRow {
            merchant_id: merchant_id.to_string(),
            version,
            effective_from_us: now_us,
            settings: after_json.clone(),
            changed_by: actor.clone(),
        })
        .await?;
        conn.update_merchant_settings(merchant_id, &after_json)
            .await?;
        audit::append(
            &mut conn,
            AuditEvent {
                chain: merchant_id,
                at_us: now_us,
                actor: &actor,
                action: SETTINGS_CHANGED,
                subject_id: merchant_id,
                data: json!({
                    "version": version,
                    "effective_from_us": now_us,
                    "before": before,
                    "after": after,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.get_merchant(who, merchant_id).await
    }

    /// Admin or that merchant: the versions of the merchant's settings, oldest first (empty
    /// when they never changed: the current settings are then the only ones).
    pub async fn merchant_settings_versions(
        &self,
        who: &Principal,
        merchant_id: &str,
    ) -> EngineResult<Vec<SettingsVersion>> {
        who.authorize_merchant(merchant_id, None)?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        if conn.get_merchant(merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        conn.settings_versions(merchant_id)
            .await?
            .into_iter()
            .map(|row| {
                Ok(SettingsVersion {
                    version: row.version,
                    effective_from: from_micros(row.effective_from_us),
                    changed_by: row.changed_by,
                    settings: parse_settings(merchant_id, &row.settings)?,
                })
            })
            .collect()
    }
}
