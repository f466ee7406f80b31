//! `yuanlu reconcile --channel C --file F`: imports a channel statement for its business
//! date, matches it against the books, and prints the report and its exceptions.
//!
//! Exit status 0 when the import succeeded, exceptions or not (they are printed and stored
//! for an operator to resolve); non-zero when the file is refused (the line at fault is
//! printed, and nothing is stored) or the database cannot be reached. Importing a file
//! imported before prints the stored report.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use yuanlu_domain::money::format_cny;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::SystemClock;
use yuanlu_engine::reconciliation::{
    ExceptionQuery, ExceptionStatus, ReconException, ReconciliationView,
};
use yuanlu_engine::{Engine, EngineError};

use crate::cli::ReconcileArgs;

type CommandResult = Result<ExitCode, String>;

/// Exceptions fetched per page while printing.
const PAGE: i64 = 100;

pub async fn run(args: ReconcileArgs) -> CommandResult {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let db = crate::database::open(&args.database).await?;
    let engine = Engine::new(db, Arc::new(SystemClock));
    let result = import(&engine, &args, &bytes).await;
    engine.db.close().await;
    result
}

async fn import(engine: &Engine, args: &ReconcileArgs, bytes: &[u8]) -> CommandResult {
    let total = bytes.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("reading");
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut progress = |read: u64| {
        bar.set_position(read);
        if read >= total {
            bar.set_message("matching and storing");
        }
    };
    let outcome = engine
        .import_statement(&Principal::Admin, args.channel, bytes, &mut progress)
        .await;
    bar.finish_and_clear();
    let view = match outcome {
        Ok(view) => view,
        Err(EngineError::Validation { field, message }) if field == "file" => {
            return Err(format!(
                "{} refused, nothing was imported: {message}",
                args.file.display()
            ));
        }
        Err(error) => return Err(error.to_string()),
    };
    let mut out = String::new();
    print_report(&mut out, &view);
    print_exceptions(&mut out, engine, &view, args.show).await?;
    // A closed pipe (`| head`) is not an error of the import, which is stored by now.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `println!` into the report.
macro_rules! say {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

fn print_report(out: &mut String, view: &ReconciliationView) {
    if view.already_imported {
        say!(
            out,
            "this file was imported before, at {}: the stored reconciliation follows",
            view.created_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    say!(
        out,
        "reconciliation {} ({} statement, business date {}): {} lines, {} records, status {}",
        view.id,
        view.channel,
        view.business_date,
        view.lines,
        view.records,
        view.status
    );
    if !view.report.payments_reconciled {
        say!(
            out,
            "the statement lists no payments: only refunds were reconciled"
        );
    }
    say!(out);
    say!(
        out,
        "{:<24} {:>10} {:>18} {:>18}",
        "class",
        "count",
        "channel CNY",
        "yuanlu CNY"
    );
    for class in &view.report.classes {
        say!(
            out,
            "{:<24} {:>10} {:>18} {:>18}",
            class.class,
            class.count,
            format_cny(class.channel_amount),
            format_cny(class.our_amount)
        );
    }
    if view.report.unlisted_not_succeeded > 0 {
        say!(
            out,
            "({} of our records are in flight or failed and not listed: no class)",
            view.report.unlisted_not_succeeded
        );
    }
    say!(out);
    say!(
        out,
        "exceptions: {} opened, {} open",
        view.exceptions,
        view.open_exceptions
    );
}

async fn print_exceptions(
    out: &mut String,
    engine: &Engine,
    view: &ReconciliationView,
    show: usize,
) -> Result<(), String> {
    let mut shown = 0;
    let mut after = None;
    while shown < show {
        let page = engine
            .list_exceptions(
                &Principal::Admin,
                &view.id,
                ExceptionQuery {
                    status: Some(ExceptionStatus::Open),
                    limit: PAGE,
                    starting_after: after.take(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        for exception in page.data.iter().take(show - shown) {
            say!(out, "  {}", describe(exception));
            shown += 1;
        }
        match page.data.last() {
            Some(last) if page.has_more => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let open = usize::try_from(view.open_exceptions).unwrap_or(0);
    if open > shown {
        say!(
            out,
            "  … and {} more: GET /v1/reconciliations/{}/exceptions?status=open",
            open - shown,
            view.id
        );
    }
    if open > 0 {
        say!(
            out,
            "resolve each with POST /v1/reconciliation-exceptions/{{id}}/resolve {{\"note\": …}}"
        );
    }
    Ok(())
}

fn describe(exception: &ReconException) -> String {
    let line = exception
        .line_no
        .map_or_else(|| "not listed".to_string(), |n| format!("line {n}"));
    let amount = |fen: Option<i64>| fen.map_or_else(|| "-".to_string(), format_cny);
    format!(
        "{} {:<22} {:<10} {} {} channel {} yuanlu {} merchant {}: {}",
        exception.id,
        exception.class,
        line,
        exception.kind,
        exception.our_ref.as_deref().unwrap_or("-"),
        amount(exception.channel_amount),
        amount(exception.our_amount),
        exception.merchant_id.as_deref().unwrap_or("-"),
        exception.detail
    )
}
