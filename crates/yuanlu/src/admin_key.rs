//! The admin key: from `YUANLU_ADMIN_KEY`, else from `<data-dir>/admin.key`, else generated
//! on first start, written there (readable by the owner only) and printed once.
//!
//! Whichever it is, start-up stores it as an admin key ([`register`]) so that it can be
//! listed, rotated and revoked through the API like any other key. A stored key that was
//! revoked (or rotated past its grace period) stops the start: it never comes back to life.

use std::io::Write;
use std::path::Path;

use yuanlu_engine::Engine;
use yuanlu_engine::ids::new_secret_key;
use yuanlu_engine::keys::{
    ADMIN_KEY_PREFIX, AdminKeyRegistration, ORIGIN_ENVIRONMENT, ORIGIN_FILE,
};

pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Shortest admin key accepted from the environment.
pub const ADMIN_KEY_CHARS_MIN: usize = 16;

/// Where the key came from, for the start-up message.
pub enum AdminKeySource {
    Environment,
    File(std::path::PathBuf),
    Generated(std::path::PathBuf),
}

pub fn load_or_create(data_dir: &Path) -> Result<(String, AdminKeySource), String> {
    if let Ok(key) = std::env::var("YUANLU_ADMIN_KEY") {
        let key = key.trim().to_string();
        if key.len() < ADMIN_KEY_CHARS_MIN {
            return Err(format!(
                "YUANLU_ADMIN_KEY must be at least {ADMIN_KEY_CHARS_MIN} characters"
            ));
        }
        return Ok((key, AdminKeySource::Environment));
    }
    let path = data_dir.join(ADMIN_KEY_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim().to_string();
        if key.len() >= ADMIN_KEY_CHARS_MIN {
            return Ok((key, AdminKeySource::File(path)));
        }
        return Err(format!(
            "{} is too short to be a key; delete it to generate a new one",
            path.display()
        ));
    }
    yuanlu_store::db::create_private_dir(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let key = new_secret_key(ADMIN_KEY_PREFIX);
    write_private(&path, &key).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((key, AdminKeySource::Generated(path)))
}

/// Stores the configured admin key as an admin key the first time it is seen; refuses a
/// stored one that no longer works, with what to do instead.
pub async fn register(engine: &Engine, key: &str, source: &AdminKeySource) -> Result<(), String> {
    let origin = match source {
        AdminKeySource::Environment => ORIGIN_ENVIRONMENT,
        AdminKeySource::File(_) | AdminKeySource::Generated(_) => ORIGIN_FILE,
    };
    let registration = engine
        .register_admin_key(key, origin)
        .await
        .map_err(|e| format!("cannot register the admin key: {e}"))?;
    match registration {
        AdminKeyRegistration::Registered { id } => {
            tracing::info!(key_id = %id, origin, "admin key stored");
            Ok(())
        }
        AdminKeyRegistration::Known { .. } => Ok(()),
        AdminKeyRegistration::Refused { id, reason } => Err(match source {
            AdminKeySource::Environment => format!(
                "the admin key in YUANLU_ADMIN_KEY ({id}) cannot be used: {reason}. Set YUANLU_ADMIN_KEY to a working admin key (the one its rotation issued, or another listed by GET /v1/admin/keys)"
            ),
            AdminKeySource::File(path) | AdminKeySource::Generated(path) => format!(
                "the admin key in {} ({id}) cannot be used: {reason}. Set YUANLU_ADMIN_KEY to a working admin key, or write one into that file",
                path.display()
            ),
        }),
    }
}

/// Writes a new key file readable by its owner only (0600); never overwrites one.
pub(crate) fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{key}")?;
    file.sync_all()
}
