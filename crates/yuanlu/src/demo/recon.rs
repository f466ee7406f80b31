//! The acquirer's morning reconciliation: each simulator's statement of the business day
//! that just ended, fetched as an operator would download it and imported through the
//! engine. On some days one statement comes with a falsified line (missing, amount off,
//! duplicated), so the reconciliations have exceptions to show.

use chrono::NaiveDate;
use yuanlu_engine::auth::Principal;
use yuanlu_reconcile::StatementChannel;

use super::world::World;

/// The three statements, and the line each one may come falsified with.
const FILES: [(&str, StatementChannel, &str); 3] = [
    ("wechat", StatementChannel::Wechat, "missing=1"),
    ("alipay", StatementChannel::Alipay, "amount_off=1"),
    ("card", StatementChannel::Card, "duplicate=1"),
];

/// Imports the three statements of `date`; the `n`-th business day reconciled falsifies the
/// statement `n % 4` (none on every fourth day).
pub async fn reconcile_day(world: &mut World, date: NaiveDate, n: u64) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    for (index, (path, channel, falsified)) in FILES.into_iter().enumerate() {
        let inject = if n % 4 == index as u64 { falsified } else { "" };
        let url = format!(
            "{}/sim/{path}/sim/statement?date={date}&inject={inject}",
            world.base
        );
        let response = client
            .get(&url)
            .bearer_auth(&world.books_token)
            .send()
            .await
            .map_err(|e| format!("fetch the {path} statement: {e}"))?;
        // WeChat Pay issues no bill for a day without refunds (404): nothing to reconcile.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            world.statements_missing += 1;
            continue;
        }
        let response = response
            .error_for_status()
            .map_err(|e| format!("fetch the {path} statement: {e}"))?;
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let view = world
            .engine
            .import_statement(&Principal::Admin, channel, &bytes, &mut |_| {})
            .await
            .map_err(|e| format!("reconcile the {path} statement of {date}: {e}"))?;
        world.exceptions += view.exceptions as u64;
        world.reconciliations.push(view.id);
    }
    Ok(())
}
