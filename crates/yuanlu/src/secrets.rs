//! Secrets come from the environment or from a file, never from a command-line flag (which
//! any local user can read in the process list), and are long enough to resist guessing.

use std::path::Path;

/// Shortest channel or simulator secret accepted, in bytes.
pub const SECRET_BYTES_MIN: usize = 16;

/// The secret in environment variable `var`, or in `file` (its first line's text; a final
/// newline is ignored). Giving both is refused, so it is never unclear which one is used.
/// `None` when neither is given.
pub fn read(var: &str, file: Option<&Path>, file_flag: &str) -> Result<Option<String>, String> {
    let from_env = std::env::var(var).ok().filter(|v| !v.is_empty());
    let secret = match (from_env, file) {
        (Some(_), Some(_)) => return Err(format!("give {var} or {file_flag}, not both")),
        (Some(value), None) => value,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("{file_flag} {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, None) => return Ok(None),
    };
    check_length(var, &secret)?;
    Ok(Some(secret))
}

/// Refuses a secret shorter than [`SECRET_BYTES_MIN`].
pub fn check_length(name: &str, secret: &str) -> Result<(), String> {
    if secret.len() < SECRET_BYTES_MIN {
        return Err(format!(
            "{name} must be at least {SECRET_BYTES_MIN} bytes (it has {})",
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(check_length("S", "fifteen-bytes-x").is_err());
        assert!(check_length("S", "sixteen-bytes-xx").is_ok());
    }
}
