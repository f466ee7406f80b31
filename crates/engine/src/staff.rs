//! Staff accounts of the pages and their sessions: merchant cashiers and supervisors,
//! acquirer reviewers and admins. Passwords are kept as Argon2id hashes; a session is a
//! random token the browser holds in a cookie, stored here only as its SHA-256, with its
//! own CSRF token and an expiry.
//!
//! A signed-in person acts through the same [`Principal`] an API key stands for, so every
//! page calls the same use cases with the same rules: a cashier is a merchant `staff`
//! principal (may ask for refunds, never review them), a supervisor a merchant
//! `supervisor`, and both acquirer roles the admin principal (the console keeps staff and
//! keys to `admin`).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use rand::RngExt;
use serde_json::json;
use yuanlu_domain::time::to_micros;
use yuanlu_store::{StaffSessionRow, StaffUserRow, StoreError};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::{MerchantRole, Principal};
use crate::error::{EngineError, EngineResult};
use crate::ids::{hash_key, new_id};

/// How long a sign-in lasts.
pub const SESSION_SECONDS: i64 = 12 * 3_600;
/// Shortest password accepted.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest password accepted (Argon2 hashes anything, but a megabyte is not a password).
pub const PASSWORD_CHARS_MAX: usize = 200;
/// The audit action of a new staff account.
pub const USER_ADDED_ACTION: &str = "staff.added";
/// The id prefix of staff accounts.
pub const STAFF_USER: &str = "usr";

/// What a staff account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Cashier,
    Supervisor,
    Reviewer,
    Admin,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Cashier,
        StaffRole::Supervisor,
        StaffRole::Reviewer,
        StaffRole::Admin,
    ];

    pub fn id(self) -> &'static str {
        match self {
            StaffRole::Cashier => "cashier",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Reviewer => "reviewer",
            StaffRole::Admin => "admin",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Merchant staff (cashier, supervisor) belong to a merchant; acquirer staff do not.
    pub fn is_merchant_staff(self) -> bool {
        matches!(self, StaffRole::Cashier | StaffRole::Supervisor)
    }
}

/// A signed-in (or listed) staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser {
    pub id: String,
    pub username: String,
    pub role: StaffRole,
    pub merchant_id: Option<String>,
}

impl StaffUser {
    /// The principal the use cases see: the same one an API key of that role stands for.
    pub fn principal(&self) -> Principal {
        match (self.role, &self.merchant_id) {
            (StaffRole::Cashier, Some(merchant_id)) => Principal::Merchant {
                merchant_id: merchant_id.clone(),
                key_id: self.id.clone(),
                role: MerchantRole::Staff,
            },
            (StaffRole::Supervisor, Some(merchant_id)) => Principal::Merchant {
                merchant_id: merchant_id.clone(),
                key_id: self.id.clone(),
                role: MerchantRole::Supervisor,
            },
            _ => Principal::Admin,
        }
    }
}

/// A new account: `yuanlu users add` and the console's staff page.
#[derive(Debug, Clone)]
pub struct AddUser {
    pub username: String,
    pub role: StaffRole,
    pub merchant_id: Option<String>,
    pub password: String,
}

/// A session just opened: `token` goes into the cookie and is not kept here.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub user: StaffUser,
    pub expires_at_us: i64,
}

/// A session found by its token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: StaffUser,
    pub csrf_token: String,
}

fn user_of(row: StaffUserRow) -> EngineResult<StaffUser> {
    let role = StaffRole::parse(&row.role).ok_or_else(|| {
        EngineError::Store(StoreError::Corrupt(format!(
            "staff user {} has role {}",
            row.id, row.role
        )))
    })?;
    Ok(StaffUser {
        id: row.id,
        username: row.username,
        role,
        merchant_id: row.merchant_id,
    })
}

/// 3–40 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn valid_username(username: &str) -> EngineResult<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    let first_ok = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=40).contains(&username.len()) && first_ok && username.chars().all(allowed) {
        Ok(())
    } else {
        Err(EngineError::validation(
            "username",
            "give 3 to 40 of a-z 0-9 . _ -, starting with a letter or digit",
        ))
    }
}

fn valid_password(password: &str) -> EngineResult<()> {
    let chars = password.chars().count();
    if (PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars)
        && !password.chars().any(char::is_control)
    {
        Ok(())
    } else {
        Err(EngineError::validation(
            "password",
            format!(
                "give a password of {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} printable characters"
            ),
        ))
    }
}

fn hash_password(password: &str) -> EngineResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| EngineError::Store(StoreError::Corrupt(format!("argon2: {e}"))))
}

/// A hash verified when the username is unknown, so both answers take as long.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-password-of-anyone").unwrap_or_default())
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

impl Engine {
    /// Adds a staff account. `who` is the acquirer admin (`None` for the command line,
    /// which runs with the database's own rights). Audited on the merchant's chain, or the
    /// system chain for acquirer staff.
    pub async fn add_staff_user(
        &self,
        who: Option<&Principal>,
        input: AddUser,
    ) -> EngineResult<StaffUser> {
        if let Some(who) = who {
            who.require_admin()?;
        }
        valid_username(&input.username)?;
        valid_password(&input.password)?;
        let merchant_id = match (input.role.is_merchant_staff(), input.merchant_id) {
            (true, Some(id)) if !id.is_empty() => Some(id),
            (true, _) => {
                return Err(EngineError::validation(
                    "merchant",
                    "a cashier or supervisor belongs to a merchant: name its id (mch_…)",
                ));
            }
            (false, Some(id)) if !id.is_empty() => {
                return Err(EngineError::validation(
                    "merchant",
                    "reviewers and admins are acquirer staff: give no merchant",
                ));
            }
            (false, _) => None,
        };
        let password_hash = hash_password(&input.password)?;
        let now_us = to_micros(self.clock.now());
        let row = StaffUserRow {
            id: new_id(STAFF_USER),
            username: input.username,
            role: input.role.id().to_string(),
            merchant_id,
            password_hash,
            created_at_us: now_us,
            disabled_at_us: None,
        };
        let mut tx = self.db.begin().await?;
        if let Some(merchant_id) = &row.merchant_id
            && tx.conn().get_merchant(merchant_id).await?.is_none()
        {
            return Err(EngineError::validation(
                "merchant",
                format!("no merchant {merchant_id}"),
            ));
        }
        if tx.conn().find_staff_user(&row.username).await?.is_some() {
            return Err(EngineError::Conflict(format!(
                "the username {} is taken",
                row.username
            )));
        }
        tx.conn().insert_staff_user(&row).await?;
        let actor = who.map_or_else(|| "cli".to_string(), Principal::actor);
        audit::append(
            &mut tx.conn(),
            AuditEvent {
                chain: row
                    .merchant_id
                    .as_deref()
                    .unwrap_or(yuanlu_domain::audit::SYSTEM_CHAIN),
                at_us: now_us,
                actor: &actor,
                action: USER_ADDED_ACTION,
                subject_id: &row.id,
                data: json!({ "username": row.username, "role": row.role }),
            },
        )
        .await?;
        tx.commit().await?;
        user_of(row)
    }

    /// Signs in: a new session for the right password, `None` for a wrong one or an
    /// unknown or disabled user (the same answer, after the same work).
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> EngineResult<Option<NewSession>> {
        if username.len() > 40 || password.len() > PASSWORD_CHARS_MAX * 4 {
            return Ok(None);
        }
        let row = {
            let mut pooled = self.db.acquire().await?;
            pooled.conn().find_staff_user(username).await?
        };
        let Some(row) = row.filter(|r| r.disabled_at_us.is_none()) else {
            let _ = password_matches(password, dummy_hash());
            return Ok(None);
        };
        if !password_matches(password, &row.password_hash) {
            return Ok(None);
        }
        let user = user_of(row)?;
        let now_us = to_micros(self.clock.now());
        let token = random_token();
        let session = StaffSessionRow {
            token_hash: hash_key(&token),
            user_id: user.id.clone(),
            csrf_token: random_token(),
            created_at_us: now_us,
            expires_at_us: now_us + SESSION_SECONDS * 1_000_000,
        };
        let mut tx = self.db.begin().await?;
        tx.conn().insert_staff_session(&session).await?;
        tx.commit().await?;
        Ok(Some(NewSession {
            token,
            csrf_token: session.csrf_token,
            user,
            expires_at_us: session.expires_at_us,
        }))
    }

    /// The live session a cookie's token names.
    pub async fn staff_session(&self, token: &str) -> EngineResult<Option<Session>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let now_us = to_micros(self.clock.now());
        let mut pooled = self.db.acquire().await?;
        let found = pooled
            .conn()
            .find_staff_session(&hash_key(token), now_us)
            .await?;
        match found {
            Some((session, user)) => Ok(Some(Session {
                user: user_of(user)?,
                csrf_token: session.csrf_token,
            })),
            None => Ok(None),
        }
    }

    /// Signs out (and sweeps expired sessions).
    pub async fn sign_out(&self, token: &str) -> EngineResult<()> {
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        tx.conn()
            .delete_staff_session(&hash_key(token), now_us)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Staff of one merchant (a merchant principal sees its own), or all (admin).
    pub async fn list_staff_users(&self, who: &Principal) -> EngineResult<Vec<StaffUser>> {
        let mut pooled = self.db.acquire().await?;
        let rows = pooled.conn().list_staff_users(who.merchant_scope()).await?;
        rows.into_iter().map(user_of).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterx", &hash));
        assert!(!password_matches("x", "not a phc string"));
    }

    #[test]
    fn usernames_and_roles_are_checked() {
        assert!(valid_username("li.cashier").is_ok());
        assert!(valid_username("Li").is_err());
        assert!(valid_username("-li").is_err());
        assert_eq!(StaffRole::parse("supervisor"), Some(StaffRole::Supervisor));
        assert_eq!(StaffRole::parse("root"), None);
        assert!(valid_password("short").is_err());
    }
}
