//! Onboarding merchants and issuing their API keys.

use serde_json::json;
use yuanlu_domain::settings::{MerchantSettings, MerchantSettingsPatch};
use yuanlu_domain::time::to_micros;
use yuanlu_store::{Conn, MerchantRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::{MerchantRole, Principal};
use crate::error::{EngineError, EngineResult};
use crate::ids::{self, new_id};
use crate::views::{self, CreatedApiKey, CreatedMerchant, Merchant};

/// Longest merchant name accepted.
pub const MERCHANT_NAME_CHARS_MAX: usize = 200;
/// Prefix of every API key yuanlu issues.
pub const API_KEY_PREFIX: &str = "ylk";

#[derive(Debug, Clone)]
pub struct CreateMerchant {
    pub name: String,
    pub settings: MerchantSettingsPatch,
}

#[derive(Debug, Clone)]
pub struct CreateApiKey {
    pub role: MerchantRole,
}

impl Engine {
    /// Admin: creates a merchant with complete settings and its supervisor key.
    pub async fn create_merchant(
        &self,
        who: &Principal,
        input: CreateMerchant,
    ) -> EngineResult<CreatedMerchant> {
        who.require_admin()?;
        let name =
            crate::payments::optional_text("name", Some(&input.name), MERCHANT_NAME_CHARS_MAX)?
                .ok_or_else(|| {
                    EngineError::validation(
                        "name",
                        format!("give 1 to {MERCHANT_NAME_CHARS_MAX} characters"),
                    )
                })?;
        let name = name.as_str();
        let settings = MerchantSettings::default()
            .apply(&input.settings)
            .map_err(|e| EngineError::Validation {
                field: e.field,
                message: e.problem,
            })?;
        let now_us = to_micros(self.clock.now());
        let row = MerchantRow {
            id: new_id(ids::MERCHANT),
            name: name.to_string(),
            settings: serde_json::to_string(&settings)
                .map_err(|e| EngineError::corrupt(e.to_string()))?,
            created_at_us: now_us,
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        conn.insert_merchant(&row).await?;
        let actor = who.actor();
        audit::append(
            &mut conn,
            AuditEvent {
                chain: &row.id,
                at_us: now_us,
                actor: &actor,
                action: "merchant.created",
                subject_id: &row.id,
                data: json!({ "name": row.name, "settings": settings }),
            },
        )
        .await?;
        let key = issue_key(&mut conn, &row.id, MerchantRole::Supervisor, &actor, now_us).await?;
        tx.commit().await?;
        Ok(CreatedMerchant {
            merchant: views::merchant(&row)?,
            api_key: key.api_key,
        })
    }

    /// Admin or that merchant: the merchant and its settings. Another merchant's id is
    /// "not found", never "forbidden", so ids cannot be probed.
    pub async fn get_merchant(&self, who: &Principal, id: &str) -> EngineResult<Merchant> {
        who.authorize_merchant(id, None)?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn.get_merchant(id).await?;
        let row = row.ok_or_else(|| EngineError::NotFound {
            what: "merchant",
            id: id.to_string(),
        })?;
        let balance = conn.get_balance(id).await?;
        let mut merchant = views::merchant(&row)?;
        merchant.balances.unsettled_fen = balance.unsettled_fen;
        merchant.balances.carried_fen = balance.carried_fen;
        Ok(merchant)
    }

    /// Admin or the merchant's supervisor: a new key for the merchant's staff or supervisors.
    pub async fn create_api_key(
        &self,
        who: &Principal,
        merchant_id: &str,
        input: CreateApiKey,
    ) -> EngineResult<CreatedApiKey> {
        who.authorize_merchant(
            merchant_id,
            Some("only a merchant supervisor may issue keys"),
        )?;
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        if conn.get_merchant(merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        let key = issue_key(&mut conn, merchant_id, input.role, &who.actor(), now_us).await?;
        tx.commit().await?;
        Ok(key)
    }
}

async fn issue_key(
    conn: &mut Conn<'_>,
    merchant_id: &str,
    role: MerchantRole,
    actor: &str,
    now_us: i64,
) -> EngineResult<CreatedApiKey> {
    crate::keys::issue(conn, Some(merchant_id), role.into(), actor, now_us, None).await
}
