//! `yuanlu-bench`: the benchmark program behind `yuanlu bench` (see the library's docs).

use std::process::ExitCode;

use clap::Parser;
use yuanlu_bench::args::BenchCli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = BenchCli::parse();
    match yuanlu_bench::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("yuanlu bench: {error}");
            ExitCode::FAILURE
        }
    }
}
