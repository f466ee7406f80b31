//! The admin key: from `YUANLU_ADMIN_KEY`, else from `<data-dir>/admin.key`, else generated
//! on first start, written there (readable by the owner only) and printed once.

use std::io::Write;
use std::path::Path;

use yuanlu_engine::ids::new_secret_key;

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
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let key = new_secret_key("ylk_admin");
    write_private(&path, &key).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((key, AdminKeySource::Generated(path)))
}

fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
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
