//! The account key, which seals the full account number of a reroute until the channel has
//! it: from the file `YUANLU_ACCOUNT_KEY_FILE` names, else `YUANLU_ACCOUNT_KEY` (64 hex
//! digits), else — with SQLite only — `<data-dir>/account.key`, generated on first start
//! (readable by the owner only). With PostgreSQL every server sharing the database needs the
//! same key, so none is made up: without one, reroutes to a bank account are refused.
//! Never a command-line flag: flags show in `ps`.

use crate::admin_key::write_private;
use std::path::{Path, PathBuf};

use yuanlu_engine::account_key::AccountKey;
use yuanlu_store::{Backend, Db};

pub const ACCOUNT_KEY_FILE: &str = "account.key";

/// Where the key came from, for the start-up message.
pub enum AccountKeySource {
    File(PathBuf),
    Environment,
    Generated(PathBuf),
    /// PostgreSQL and no key: reroutes to a bank account are refused.
    None,
}

pub fn load_or_create(
    db: &Db,
    data_dir: &Path,
) -> Result<(Option<AccountKey>, AccountKeySource), String> {
    if let Ok(path) = std::env::var("YUANLU_ACCOUNT_KEY_FILE") {
        let path = PathBuf::from(path);
        let key = read_key_file(&path)?
            .ok_or_else(|| format!("YUANLU_ACCOUNT_KEY_FILE: cannot read {}", path.display()))?;
        return Ok((Some(key), AccountKeySource::File(path)));
    }
    if let Ok(text) = std::env::var("YUANLU_ACCOUNT_KEY") {
        let key = AccountKey::from_hex(&text).map_err(|e| format!("YUANLU_ACCOUNT_KEY: {e}"))?;
        return Ok((Some(key), AccountKeySource::Environment));
    }
    if db.backend() != Backend::Sqlite {
        return Ok((None, AccountKeySource::None));
    }
    let path = data_dir.join(ACCOUNT_KEY_FILE);
    if let Some(key) = read_key_file(&path)? {
        return Ok((Some(key), AccountKeySource::File(path)));
    }
    let text = AccountKey::generate_hex();
    let key = AccountKey::from_hex(&text)?;
    write_private(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((Some(key), AccountKeySource::Generated(path)))
}

/// `None` when the file does not exist; an error when it exists and is not a key.
fn read_key_file(path: &Path) -> Result<Option<AccountKey>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => AccountKey::from_hex(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}
