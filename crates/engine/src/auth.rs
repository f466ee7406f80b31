//! Who is calling: the acquirer's admin key, or one merchant's key with a role.

use std::collections::HashMap;
use std::sync::Mutex;

use yuanlu_domain::review::Reviewer;
use yuanlu_domain::time::to_micros;
use yuanlu_store::ApiKeyRow;

use crate::Engine;
use crate::error::{EngineError, EngineResult};
use crate::ids::hash_key;

/// A merchant key's role: supervisors may also approve reviews the merchant may give.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MerchantRole {
    Supervisor,
    Staff,
}

impl MerchantRole {
    pub fn id(self) -> &'static str {
        match self {
            MerchantRole::Supervisor => "supervisor",
            MerchantRole::Staff => "staff",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        match id {
            "supervisor" => Some(MerchantRole::Supervisor),
            "staff" => Some(MerchantRole::Staff),
            _ => None,
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Merchant {
        merchant_id: String,
        key_id: String,
        role: MerchantRole,
    },
}

impl Principal {
    /// The merchant whose data this caller is limited to; `None` for the admin.
    pub fn merchant_scope(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::Merchant { merchant_id, .. } => Some(merchant_id),
        }
    }

    /// Who the audit log names.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "acquirer:admin".to_string(),
            Principal::Merchant {
                merchant_id,
                key_id,
                role,
            } => {
                format!("merchant:{merchant_id}:{}:{key_id}", role.id())
            }
        }
    }

    pub fn reviewer(&self) -> Reviewer {
        match self {
            Principal::Admin => Reviewer::Acquirer,
            Principal::Merchant {
                role: MerchantRole::Supervisor,
                ..
            } => Reviewer::MerchantSupervisor,
            Principal::Merchant {
                role: MerchantRole::Staff,
                ..
            } => Reviewer::MerchantStaff,
        }
    }

    /// The merchant id, or `forbidden` for the admin (merchant-only operations).
    pub fn require_merchant(&self) -> EngineResult<&str> {
        self.merchant_scope()
            .ok_or_else(|| EngineError::Forbidden("this operation is for a merchant key".into()))
    }

    /// The one per-merchant authorization check: the admin, or a key of `merchant_id` (with
    /// `supervisor_only` set, a supervisor's key, else `forbidden` with that message).
    /// Another merchant's id is "not found", never "forbidden", so ids cannot be probed.
    pub fn authorize_merchant(
        &self,
        merchant_id: &str,
        supervisor_only: Option<&str>,
    ) -> EngineResult<()> {
        let Principal::Merchant {
            merchant_id: own,
            role,
            ..
        } = self
        else {
            return Ok(());
        };
        if own != merchant_id {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        match supervisor_only {
            Some(why) if *role != MerchantRole::Supervisor => {
                Err(EngineError::Forbidden(why.to_string()))
            }
            _ => Ok(()),
        }
    }

    pub fn require_admin(&self) -> EngineResult<()> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Merchant { .. } => Err(EngineError::Forbidden(
                "this operation needs the admin key".into(),
            )),
        }
    }
}

/// The longest key accepted; longer bearer tokens are refused before hashing.
pub const API_KEY_LENGTH_MAX: usize = 200;

impl Engine {
    /// Resolves a bearer token against the stored keys (admin keys included). Returns
    /// `None` for an unknown, revoked or expired key. Nothing is cached: a revocation is
    /// seen by the very next request, in every process.
    pub async fn authenticate(&self, bearer: &str) -> EngineResult<Option<Principal>> {
        if bearer.is_empty() || bearer.len() > API_KEY_LENGTH_MAX {
            return Ok(None);
        }
        let hash = hash_key(bearer);
        let now_us = to_micros(self.clock.now());
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let Some(row) = conn.find_api_key(&hash).await? else {
            return Ok(None);
        };
        if !key_works_at(&row, now_us) {
            return Ok(None);
        }
        if self.key_use.should_record(&row, now_us) {
            // Best effort: a failed bookkeeping write must not refuse a valid key.
            if let Err(error) = conn.touch_api_key(&row.id, now_us).await {
                tracing::warn!(key_id = %row.id, %error, "cannot record the key's last use");
            }
        }
        principal_of(row).map(Some)
    }
}

/// Whether a stored key opens the API at `now_us`: not revoked, and not past the end of a
/// rotation's grace period.
pub fn key_works_at(row: &ApiKeyRow, now_us: i64) -> bool {
    row.revoked_at_us.is_none() && row.expires_at_us.is_none_or(|end| now_us < end)
}

fn principal_of(row: ApiKeyRow) -> EngineResult<Principal> {
    if row.role == ADMIN_ROLE {
        return Ok(Principal::Admin);
    }
    let role = MerchantRole::parse(&row.role)
        .ok_or_else(|| EngineError::corrupt(format!("api key {} has role {}", row.id, row.role)))?;
    let merchant_id = row
        .merchant_id
        .ok_or_else(|| EngineError::corrupt(format!("merchant key {} has no merchant", row.id)))?;
    Ok(Principal::Merchant {
        merchant_id,
        key_id: row.id,
        role,
    })
}

/// The stored role of an admin key.
pub const ADMIN_ROLE: &str = "admin";

/// How often, at most, a key's `last_used_at` is written: reads on the hot path stay reads.
pub const LAST_USED_RESOLUTION_US: i64 = 60 * 1_000_000;

/// Remembers when this process last wrote each key's `last_used_at`, so that concurrent
/// requests with one key write it once a minute, not once each.
#[derive(Debug, Default)]
pub struct KeyUse {
    written_at_us: Mutex<HashMap<String, i64>>,
}

impl KeyUse {
    /// True when this request should write the key's last use: the stored value is a
    /// minute old or more, and no other request of this process claimed the write.
    pub fn should_record(&self, row: &ApiKeyRow, now_us: i64) -> bool {
        if row
            .last_used_at_us
            .is_some_and(|at| now_us - at < LAST_USED_RESOLUTION_US)
        {
            return false;
        }
        let mut written = match self.written_at_us.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match written.get(&row.id) {
            Some(at) if now_us - at < LAST_USED_RESOLUTION_US => false,
            _ => {
                written.insert(row.id.clone(), now_us);
                true
            }
        }
    }
}
