//! `yuanlu bench …`: runs the `yuanlu-bench` program (crate `yuanlu-bench`) found beside this
//! binary, telling it which server to start. The benchmark is not part of this binary.

use std::process::ExitCode;

use crate::cli::BenchForward;

pub async fn run(forward: BenchForward) -> Result<ExitCode, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let bench = me.with_file_name(format!("yuanlu-bench{}", std::env::consts::EXE_SUFFIX));
    if !bench.is_file() {
        return Err(format!(
            "the benchmark is a separate program and {} is missing: \
             build it with `cargo build --release -p yuanlu-bench`",
            bench.display()
        ));
    }
    let status = tokio::process::Command::new(&bench)
        .arg("--server")
        .arg(&me)
        .args(&forward.args)
        .status()
        .await
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
