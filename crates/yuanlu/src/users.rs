//! `yuanlu users add`: staff accounts for the pages, from the command line (the first
//! admin has to come from somewhere). The password comes from a file, the
//! `YUANLU_USER_PASSWORD` variable, or a line on standard input — never an argument,
//! which other users of the machine could read in the process list.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use yuanlu_engine::Engine;
use yuanlu_engine::clock::SystemClock;
use yuanlu_engine::staff::{AddUser, StaffRole};

use crate::cli::UsersAddArgs;

/// The environment variable a password may come from.
pub const PASSWORD_VAR: &str = "YUANLU_USER_PASSWORD";

fn password(args: &UsersAddArgs) -> Result<String, String> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(text) = std::env::var(PASSWORD_VAR) {
        return Ok(text);
    }
    eprintln!(
        "password for {} (one line on standard input):",
        args.username
    );
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn add(args: UsersAddArgs) -> Result<ExitCode, String> {
    let role = StaffRole::parse(&args.role).ok_or_else(|| {
        format!(
            "--role must be cashier, supervisor, reviewer or admin, not {:?}",
            args.role
        )
    })?;
    let password = password(&args)?;
    let db = crate::database::open(&args.database).await?;
    let engine = Engine::new(db, Arc::new(SystemClock));
    let user = engine
        .add_staff_user(
            None,
            AddUser {
                username: args.username.clone(),
                role,
                merchant_id: args.merchant.clone(),
                password,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "added {} ({}{}) as {}",
        user.username,
        user.role.id(),
        user.merchant_id
            .as_deref()
            .map(|m| format!(" of {m}"))
            .unwrap_or_default(),
        user.id
    );
    Ok(ExitCode::SUCCESS)
}
