//! Who is calling: the acquirer's admin key, or one merchant's key with a role.

use yuanlu_domain::review::Reviewer;

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
    /// Resolves a bearer token. `admin_key_hash` is the SHA-256 of the configured admin key.
    /// Returns `None` for an unknown key.
    pub async fn authenticate(
        &self,
        admin_key_hash: &str,
        bearer: &str,
    ) -> EngineResult<Option<Principal>> {
        if bearer.is_empty() || bearer.len() > API_KEY_LENGTH_MAX {
            return Ok(None);
        }
        let hash = hash_key(bearer);
        if constant_time_eq(hash.as_bytes(), admin_key_hash.as_bytes()) {
            return Ok(Some(Principal::Admin));
        }
        let mut conn = self.db.acquire().await?;
        let Some(row) = conn.conn().find_api_key(&hash).await? else {
            return Ok(None);
        };
        let role = MerchantRole::parse(&row.role).ok_or_else(|| {
            EngineError::corrupt(format!("api key {} has role {}", row.id, row.role))
        })?;
        Ok(Some(Principal::Merchant {
            merchant_id: row.merchant_id,
            key_id: row.id,
            role,
        }))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
