//! API key management: list, issue, revoke and rotate merchant keys and admin keys alike.
//!
//! Keys are stored as SHA-256 hashes with a short display prefix; the secret is shown once,
//! when issued. Who may manage keys: the admin, all of them; a merchant supervisor, its own
//! merchant's keys; staff keys, none. Every change is audited: on the merchant's chain for
//! merchant keys, on the `system` chain for admin keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use yuanlu_domain::audit::{GENESIS_HASH, SYSTEM_CHAIN};
use yuanlu_domain::time::{from_micros, to_micros};
use yuanlu_store::{ApiKeyRow, Conn};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::{ADMIN_ROLE, MerchantRole, Principal, key_works_at};
use crate::error::{EngineError, EngineResult};
use crate::ids::{self, hash_key, new_id, new_secret_key};
use crate::merchants::API_KEY_PREFIX;
use crate::views::{CreatedApiKey, Page};

/// Prefix of admin keys yuanlu issues (also the generated `admin.key`).
pub const ADMIN_KEY_PREFIX: &str = "ylk_admin";
/// A rotated key keeps working this long when the caller does not say (24 h).
pub const GRACE_SECONDS_DEFAULT: i64 = 24 * 3600;
/// The longest grace period a rotation may give the old key (7 days).
pub const GRACE_SECONDS_MAX: i64 = 7 * 24 * 3600;
/// Who the audit log names for what start-up does.
pub const STARTUP_ACTOR: &str = "system:startup";

/// Where a stored key came from.
pub const ORIGIN_API: &str = "api";
pub const ORIGIN_ENVIRONMENT: &str = "environment";
pub const ORIGIN_FILE: &str = "file";

/// A key's role: the admin, or a merchant's supervisor or staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    Admin,
    Supervisor,
    Staff,
}

impl KeyRole {
    pub fn id(self) -> &'static str {
        match self {
            KeyRole::Admin => ADMIN_ROLE,
            KeyRole::Supervisor => MerchantRole::Supervisor.id(),
            KeyRole::Staff => MerchantRole::Staff.id(),
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        match id {
            ADMIN_ROLE => Some(KeyRole::Admin),
            other => MerchantRole::parse(other).map(KeyRole::from),
        }
    }
}

impl From<MerchantRole> for KeyRole {
    fn from(role: MerchantRole) -> Self {
        match role {
            MerchantRole::Supervisor => KeyRole::Supervisor,
            MerchantRole::Staff => KeyRole::Staff,
        }
    }
}

/// Whether a key works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Works, with no end set.
    Active,
    /// Rotated: works until `expires_at`.
    Expiring,
    /// Rotated, and its grace period is over.
    Expired,
    Revoked,
}

/// A stored key as listed: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// `null` for an admin key.
    pub merchant_id: Option<String>,
    pub role: KeyRole,
    /// The key's first characters (`ylk_1a2b3c4d`), to recognise it; `null` for keys
    /// issued before key management existed.
    pub prefix: Option<String>,
    /// `api`, or for admin keys registered at start-up `environment` (`YUANLU_ADMIN_KEY`)
    /// or `file` (`<data-dir>/admin.key`).
    pub origin: Option<String>,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    /// Recorded at most once a minute per key.
    pub last_used_at: Option<DateTime<Utc>>,
    /// End of a rotated key's grace period.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key that replaced this one in a rotation.
    pub replaced_by: Option<String>,
}

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Clone, Default)]
pub struct RotateKey {
    /// How long the old key keeps working, 0 (stops at once) to 604800 (7 days); default
    /// 86400 (24 h).
    pub grace_seconds: Option<i64>,
}

/// A rotation's answer: the new key (shown once) and the old key as it is now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotatedApiKey {
    #[serde(flatten)]
    pub key: CreatedApiKey,
    pub previous: ApiKey,
}

/// What start-up found for the configured admin key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminKeyRegistration {
    /// First seen: stored as an admin key (and audited).
    Registered { id: String },
    /// Stored already and working.
    Known { id: String },
    /// Stored but no longer working (or not an admin key): the server must not start with it.
    Refused { id: String, reason: String },
}

/// What a list shows of a key: its first characters, never enough to use it.
pub fn display_prefix(key: &str) -> String {
    // yuanlu's own keys are `<prefix>_<64 hex digits>`: show the prefix and 8 digits.
    if let Some((head, tail)) = key.rsplit_once('_')
        && tail.len() == 64
        && tail.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return format!("{head}_{}", &tail[..8]);
    }
    // A key chosen by the operator (`YUANLU_ADMIN_KEY`): 4 characters only.
    let shown: String = key.chars().take(4).collect();
    format!("{shown}…")
}

pub fn view(row: &ApiKeyRow, now_us: i64) -> EngineResult<ApiKey> {
    let role = KeyRole::parse(&row.role)
        .ok_or_else(|| EngineError::corrupt(format!("api key {} has role {}", row.id, row.role)))?;
    let status = if row.revoked_at_us.is_some() {
        KeyStatus::Revoked
    } else if !key_works_at(row, now_us) {
        KeyStatus::Expired
    } else if row.expires_at_us.is_some() {
        KeyStatus::Expiring
    } else {
        KeyStatus::Active
    };
    Ok(ApiKey {
        id: row.id.clone(),
        merchant_id: row.merchant_id.clone(),
        role,
        prefix: row.prefix.clone(),
        origin: row.origin.clone(),
        status,
        created_at: from_micros(row.created_at_us),
        last_used_at: row.last_used_at_us.map(from_micros),
        expires_at: row.expires_at_us.map(from_micros),
        revoked_at: row.revoked_at_us.map(from_micros),
        replaced_by: row.replaced_by.clone(),
    })
}

/// Issues a new key in the caller's transaction and audits it. `merchant_id` is `None` for
/// an admin key.
pub(crate) async fn issue(
    conn: &mut Conn<'_>,
    merchant_id: Option<&str>,
    role: KeyRole,
    actor: &str,
    now_us: i64,
    rotated_from: Option<&str>,
) -> EngineResult<CreatedApiKey> {
    let api_key = new_secret_key(if role == KeyRole::Admin {
        ADMIN_KEY_PREFIX
    } else {
        API_KEY_PREFIX
    });
    let row = ApiKeyRow {
        key_hash: hash_key(&api_key),
        id: new_id(ids::API_KEY),
        merchant_id: merchant_id.map(str::to_string),
        role: role.id().to_string(),
        created_at_us: now_us,
        prefix: Some(display_prefix(&api_key)),
        origin: Some(ORIGIN_API.to_string()),
        expires_at_us: None,
        revoked_at_us: None,
        last_used_at_us: None,
        replaced_by: None,
    };
    conn.insert_api_key(&row).await?;
    let mut data = json!({ "role": role.id(), "prefix": row.prefix });
    if let Some(old) = rotated_from {
        data["rotated_from"] = json!(old);
    }
    audit::append(
        conn,
        AuditEvent {
            chain: merchant_id.unwrap_or(SYSTEM_CHAIN),
            at_us: now_us,
            actor,
            action: "api_key.created",
            subject_id: &row.id,
            data,
        },
    )
    .await?;
    Ok(CreatedApiKey {
        id: row.id,
        merchant_id: row.merchant_id,
        role,
        api_key,
    })
}

/// May `who` list or change the keys of `merchant_id` (`None`: the admin keys)? Another
/// merchant's keys and admin keys are "not found" to a merchant, so ids cannot be probed.
fn may_manage(
    who: &Principal,
    merchant_id: Option<&str>,
    what: &'static str,
    id: &str,
) -> EngineResult<()> {
    match who {
        Principal::Admin => Ok(()),
        Principal::Merchant {
            merchant_id: own,
            role,
            ..
        } => {
            if merchant_id != Some(own.as_str()) {
                return Err(EngineError::NotFound {
                    what,
                    id: id.to_string(),
                });
            }
            if *role != MerchantRole::Supervisor {
                return Err(EngineError::Forbidden(
                    "staff keys cannot manage keys; ask a merchant supervisor".into(),
                ));
            }
            Ok(())
        }
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound {
        what: "api key",
        id: id.to_string(),
    }
}

impl Engine {
    /// A merchant's keys, newest first (admin, or that merchant's supervisor).
    pub async fn list_merchant_keys(
        &self,
        who: &Principal,
        merchant_id: &str,
        limit: i64,
        starting_after: Option<String>,
    ) -> EngineResult<Page<ApiKey>> {
        may_manage(who, Some(merchant_id), "merchant", merchant_id)?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        if conn.get_merchant(merchant_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "merchant",
                id: merchant_id.to_string(),
            });
        }
        self.key_page(&mut conn, Some(merchant_id), limit, starting_after)
            .await
    }

    /// The admin keys, newest first (admin only).
    pub async fn list_admin_keys(
        &self,
        who: &Principal,
        limit: i64,
        starting_after: Option<String>,
    ) -> EngineResult<Page<ApiKey>> {
        who.require_admin()?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        self.key_page(&mut conn, None, limit, starting_after).await
    }

    async fn key_page(
        &self,
        conn: &mut Conn<'_>,
        merchant_id: Option<&str>,
        limit: i64,
        starting_after: Option<String>,
    ) -> EngineResult<Page<ApiKey>> {
        let now_us = to_micros(self.clock.now());
        let rows = conn
            .list_api_keys(merchant_id, starting_after.as_deref(), limit + 1)
            .await?;
        Page::of_rows(rows, limit, |row| view(&row, now_us))
    }

    /// Admin: a new admin key, shown once.
    pub async fn create_admin_key(&self, who: &Principal) -> EngineResult<CreatedApiKey> {
        who.require_admin()?;
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let key = issue(&mut conn, None, KeyRole::Admin, &who.actor(), now_us, None).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Revokes a key: the next request with it is `unauthorized`. Revoking a revoked key
    /// answers it as it is. The last working admin key cannot be revoked (`conflict`):
    /// rotate it, or issue another admin key first.
    pub async fn revoke_key(&self, who: &Principal, key_id: &str) -> EngineResult<ApiKey> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let mut row = self.key_to_change(&mut conn, who, key_id).await?;
        if row.revoked_at_us.is_some() {
            return view(&row, now_us);
        }
        if row.merchant_id.is_none() && conn.count_live_admin_keys(now_us, &row.id).await? == 0 {
            return Err(EngineError::Conflict(
                "this is the last working admin key; issue or rotate to another admin key before revoking it".into(),
            ));
        }
        conn.revoke_api_key(&row.id, now_us).await?;
        row.revoked_at_us = Some(now_us);
        audit::append(
            &mut conn,
            AuditEvent {
                chain: row.merchant_id.as_deref().unwrap_or(SYSTEM_CHAIN),
                at_us: now_us,
                actor: &who.actor(),
                action: "api_key.revoked",
                subject_id: &row.id,
                data: json!({ "role": row.role, "prefix": row.prefix }),
            },
        )
        .await?;
        tx.commit().await?;
        view(&row, now_us)
    }

    /// Rotates a key: a new key with the same merchant and role (shown once); the old one
    /// keeps working for `grace_seconds` (0 to 7 days, default 24 h), then stops.
    pub async fn rotate_key(
        &self,
        who: &Principal,
        key_id: &str,
        input: RotateKey,
    ) -> EngineResult<RotatedApiKey> {
        let grace_seconds = input.grace_seconds.unwrap_or(GRACE_SECONDS_DEFAULT);
        if !(0..=GRACE_SECONDS_MAX).contains(&grace_seconds) {
            return Err(EngineError::validation(
                "grace_seconds",
                format!("give 0 (stop at once) to {GRACE_SECONDS_MAX} seconds (7 days)"),
            ));
        }
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let mut row = self.key_to_change(&mut conn, who, key_id).await?;
        if !key_works_at(&row, now_us) {
            return Err(EngineError::Conflict(format!(
                "key {key_id} no longer works; issue a new key instead"
            )));
        }
        if row.replaced_by.is_some() {
            return Err(EngineError::Conflict(format!(
                "key {key_id} was rotated already; rotate its successor or revoke it"
            )));
        }
        let role = KeyRole::parse(&row.role).ok_or_else(|| {
            EngineError::corrupt(format!("api key {} has role {}", row.id, row.role))
        })?;
        let actor = who.actor();
        let new_key = issue(
            &mut conn,
            row.merchant_id.as_deref(),
            role,
            &actor,
            now_us,
            Some(&row.id),
        )
        .await?;
        let expires_at_us = now_us + grace_seconds * 1_000_000;
        conn.expire_api_key(&row.id, expires_at_us, &new_key.id)
            .await?;
        row.expires_at_us = Some(expires_at_us);
        row.replaced_by = Some(new_key.id.clone());
        audit::append(
            &mut conn,
            AuditEvent {
                chain: row.merchant_id.as_deref().unwrap_or(SYSTEM_CHAIN),
                at_us: now_us,
                actor: &actor,
                action: "api_key.rotated",
                subject_id: &row.id,
                data: json!({
                    "replaced_by": new_key.id,
                    "grace_seconds": grace_seconds,
                    "expires_at_us": expires_at_us,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(RotatedApiKey {
            key: new_key,
            previous: view(&row, now_us)?,
        })
    }

    /// The key, read in a write transaction after checking who may change it. Changes to
    /// admin keys lock the `system` chain's head first, so two of them never race past the
    /// "last admin key" check.
    async fn key_to_change(
        &self,
        conn: &mut Conn<'_>,
        who: &Principal,
        key_id: &str,
    ) -> EngineResult<ApiKeyRow> {
        if who.merchant_scope().is_none() {
            conn.lock_audit_head(SYSTEM_CHAIN, GENESIS_HASH).await?;
        }
        let row = conn
            .get_api_key(key_id)
            .await?
            .ok_or_else(|| not_found(key_id))?;
        may_manage(who, row.merchant_id.as_deref(), "api key", key_id)?;
        Ok(row)
    }

    /// Start-up: makes the configured admin key (`YUANLU_ADMIN_KEY` or `admin.key`) a
    /// stored admin key the first time it is seen. A key stored already must still work:
    /// a revoked or expired one is refused, never brought back to life.
    pub async fn register_admin_key(
        &self,
        key: &str,
        origin: &str,
    ) -> EngineResult<AdminKeyRegistration> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        conn.lock_audit_head(SYSTEM_CHAIN, GENESIS_HASH).await?;
        let hash = hash_key(key);
        if let Some(row) = conn.find_api_key(&hash).await? {
            let answer = if row.role != ADMIN_ROLE {
                AdminKeyRegistration::Refused {
                    id: row.id,
                    reason: "it is a merchant key, not an admin key".into(),
                }
            } else if let Some(at) = row.revoked_at_us {
                AdminKeyRegistration::Refused {
                    id: row.id,
                    reason: format!("it was revoked at {}", from_micros(at).to_rfc3339()),
                }
            } else if !key_works_at(&row, now_us) {
                AdminKeyRegistration::Refused {
                    reason: format!(
                        "it was rotated to {} and its grace period ended at {}",
                        row.replaced_by.as_deref().unwrap_or("another key"),
                        row.expires_at_us
                            .map(from_micros)
                            .unwrap_or_default()
                            .to_rfc3339()
                    ),
                    id: row.id,
                }
            } else {
                AdminKeyRegistration::Known { id: row.id }
            };
            return Ok(answer);
        }
        let row = ApiKeyRow {
            key_hash: hash,
            id: new_id(ids::API_KEY),
            merchant_id: None,
            role: ADMIN_ROLE.to_string(),
            created_at_us: now_us,
            prefix: Some(display_prefix(key)),
            origin: Some(origin.to_string()),
            expires_at_us: None,
            revoked_at_us: None,
            last_used_at_us: None,
            replaced_by: None,
        };
        if !conn.insert_api_key_if_new(&row).await? {
            // Another process registered it between our read and insert; it is stored now.
            let stored = conn.find_api_key(&row.key_hash).await?;
            return Ok(AdminKeyRegistration::Known {
                id: stored.map_or(row.id, |stored| stored.id),
            });
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: SYSTEM_CHAIN,
                at_us: now_us,
                actor: STARTUP_ACTOR,
                action: "api_key.created",
                subject_id: &row.id,
                data: json!({ "role": ADMIN_ROLE, "prefix": row.prefix, "origin": origin }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(AdminKeyRegistration::Registered { id: row.id })
    }
}
