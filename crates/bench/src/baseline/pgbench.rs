//! The same create path as a `pgbench` script, on PostgreSQL.

use super::*;

/// Seconds each `pgbench` run lasts.
pub const PGBENCH_SECONDS: u64 = 10;

/// The pgbench script equivalent to [`create_one`]: the same statements in the same
/// transaction, on a random seeded payment of the scenario. Run with `-M prepared` (sqlx
/// prepares and caches its statements too); variables are parameters there, and pgbench
/// takes any `:name` as a variable, even inside a literal: no literal here has a colon
/// followed by a letter or digit (hence `": 100"` in the JSON and the split actor).
pub fn pgbench_script(plan: &Plan, scenario: Scenario) -> String {
    let shape = RefundShape::for_plan(plan);
    let letter = scenario.letter();
    let payments = scenario.payments(plan);
    let merchants = scenario.merchants(plan);
    let now = Utc::now();
    let day_start_us = shanghai_day_start_us(to_micros(now));
    let capture_date = shanghai_date(now).format("%Y-%m-%d");
    let mid = format!("('mch_{letter}' || lpad(CAST(:m AS text), 25, '0'))");
    let pid = format!("('pay_{letter}' || lpad(CAST(:p AS text), 25, '0'))");
    let kid = format!("('key_{letter}' || lpad(CAST(:m AS text), 25, '0'))");
    let rid = "('rf_' || lpad(CAST(:r AS text), 26, '0'))";
    let no = "('pgb-' || CAST(:r AS text))";
    let now_us = "CAST(extract(epoch from now()) * 1000000 AS BIGINT)";
    let hash = "(md5(CAST(:h_hash AS text) || CAST(:r AS text)) || md5(CAST(:r AS text)))";
    let reviewer = shape
        .required_reviewer
        .map_or("NULL".to_string(), |r| format!("'{r}'"));
    let next_attempt = if shape.queued { now_us } else { "NULL" };
    let status = shape.status;
    let reasons = shape.review_reasons;
    let data = format!(
        "'{{\"amount\": {REFUND_FEN},\"fee_refunded\": 1,\"merchant_refund_no\":\"' || {no} || '\",\"payment_id\":\"' || {pid} || '\",\"requested_by_name\": null,\"requested_by_role\":\"merchant\",\"review_reasons\":\"{reasons}\",\"status\":\"{status}\",\"type\":\"refund\"}}'"
    );
    let posting = if shape.queued {
        queued_posting_sql(&mid, &pid, rid, now_us)
    } else {
        String::new()
    };
    let statements = [
        format!(
            "SELECT key_hash, id, merchant_id, role, created_at_us FROM api_keys WHERE key_hash = lpad({mid}, 64, '0');"
        ),
        "BEGIN;".to_string(),
        format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = {pid} AND merchant_id = {mid} FOR UPDATE;"
        ),
        format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = {mid} AND merchant_refund_no = {no};"
        ),
        format!("SELECT id, name, settings, created_at_us FROM merchants WHERE id = {mid};"),
        format!(
            "SELECT sales_fen, refunds_fen, refunds_count FROM merchant_days WHERE merchant_id = {mid} AND day_start_us = {day_start_us};"
        ),
        format!("SELECT COUNT(*) FROM settlement_runs WHERE business_date = '{capture_date}';"),
        // The baseline's loop has made every balance row: the one-statement lock.
        format!(
            "SELECT unsettled_fen, carried_fen FROM merchant_balances WHERE merchant_id = {mid} FOR UPDATE;"
        ),
        format!(
            "INSERT INTO refunds ({REFUND_INSERT_COLUMNS}) VALUES ({rid}, {mid}, {pid}, {no}, 'wechat', 'refund', '{status}', {REFUND_FEN}, 1, 'customer_cancel', NULL, 'merchant', NULL, '{reasons}', {reviewer}, NULL, NULL, NULL, NULL, NULL, {now_us}, {now_us}, {next_attempt});"
        ),
        format!(
            "INSERT INTO merchant_days (merchant_id, day_start_us, sales_fen, refunds_fen, refunds_count) VALUES ({mid}, {day_start_us}, 0, {REFUND_FEN}, 1) ON CONFLICT (merchant_id, day_start_us) DO UPDATE SET sales_fen = merchant_days.sales_fen + excluded.sales_fen, refunds_fen = merchant_days.refunds_fen + excluded.refunds_fen, refunds_count = merchant_days.refunds_count + excluded.refunds_count;"
        ),
        posting,
        format!(
            "UPDATE payments SET amount_refunded_fen = amount_refunded_fen, amount_in_flight_fen = amount_in_flight_fen + {REFUND_FEN}, fee_returned_fen = LEAST(fee_returned_fen + 1, fee_fen), refund_count = refund_count + 1, voided = voided WHERE id = {pid} AND merchant_id = {mid};"
        ),
        format!(
            "SELECT chain, seq, hash FROM audit_heads WHERE chain = {mid} FOR UPDATE \\gset h_"
        ),
        format!(
            "INSERT INTO audit_log (chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash) VALUES ({mid}, CAST(:h_seq AS BIGINT) + 1, {now_us}, 'merchant:' || {mid} || ':' || 'supervisor:' || {kid}, 'refund.created', {rid}, {data}, CAST(:h_hash AS text), {hash});"
        ),
        format!(
            "UPDATE audit_heads SET seq = CAST(:h_seq AS BIGINT) + 1, hash = {hash} WHERE chain = {mid};"
        ),
        format!(
            "SELECT merchant_id, url, secret, created_at_us, updated_at_us FROM merchant_webhooks WHERE merchant_id = {mid};"
        ),
        "END;".to_string(),
    ];
    let mut script = format!(
        "-- yuanlu bench: one refund as yuanlu creates it (scenario {}).\n\\set p random(0, {})\n\\set m :p % {merchants}\n\\set r random(1, 9000000000000000)\n",
        scenario.name(),
        payments.saturating_sub(1),
    );
    for statement in statements.iter().filter(|s| !s.is_empty()) {
        script.push_str(statement);
        script.push('\n');
    }
    script
}

/// A text as an SQL expression pgbench leaves alone: split after each colon, so no `:name`
/// appears (`'a:b'` becomes `'a:' || 'b'`).
pub(super) fn pgbench_literal(text: &str) -> String {
    if text.is_empty() {
        return "''".to_string();
    }
    text.split_inclusive(':')
        .map(|part| format!("'{part}'"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The statements of a queued refund's `refund_queued` posting, for the pgbench script (fee
/// refunded: 1 fen).
pub(super) fn queued_posting_sql(mid: &str, pid: &str, rid: &str, now_us: &str) -> String {
    const MERCHANT: &str = "@merchant@";
    let posting_id = "('pst_' || lpad(CAST(:r AS text), 26, '0'))";
    let mut lines = vec![format!(
        "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us) VALUES ({posting_id}, {mid}, 'refund_queued', {rid}, {pid}, 'wechat', {REFUND_FEN}, 1, to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD'), {now_us});"
    )];
    if let Ok(posting) = refund_queued(MERCHANT, Channel::Wechat, REFUND_FEN, 1) {
        let mut values = Vec::new();
        for (line_no, entry) in posting.entries().iter().enumerate() {
            let account = entry
                .account
                .id()
                .split(MERCHANT)
                .map(pgbench_literal)
                .collect::<Vec<_>>()
                .join(&format!(" || {mid} || "));
            values.push(format!(
                "({posting_id}, {line_no}, {mid}, {account}, {})",
                entry.amount_fen
            ));
        }
        lines.push(format!(
            "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen) VALUES {};",
            values.join(", ")
        ));
    }
    lines.push(format!(
        "UPDATE merchant_balances SET unsettled_fen = unsettled_fen - {}, carried_fen = carried_fen WHERE merchant_id = {mid};",
        REFUND_FEN - 1
    ));
    lines.join("\n")
}

/// Runs `pgbench` with [`pgbench_script`] against the baseline schema. `Err` says why it
/// did not run (not installed, failed).
pub async fn pgbench(
    base_url: &str,
    schema: &str,
    plan: &Plan,
    scenario: Scenario,
    dir: &Path,
) -> Result<crate::report::Pgbench, String> {
    let path = dir.join(format!("pgbench-{}.sql", scenario.name()));
    std::fs::write(&path, pgbench_script(plan, scenario))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let clients = plan.clients.to_string();
    let threads = plan.clients.min(2).to_string();
    let seconds = PGBENCH_SECONDS.to_string();
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients, "-j", &threads])
        .args(["-T", &seconds, "-f"])
        .arg(&path)
        .arg(base_url)
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "pgbench is not on PATH (Debian: apt-get install postgresql-client)".to_string()
            }
            _ => format!("cannot run pgbench: {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        return Err(format!("pgbench failed ({}): {tail}", output.status));
    }
    parse_pgbench(&stdout).ok_or_else(|| format!("cannot read pgbench's output: {stdout}"))
}

/// `tps = …`, `number of transactions actually processed: …`, `latency average = … ms`.
pub fn parse_pgbench(stdout: &str) -> Option<crate::report::Pgbench> {
    let mut result = crate::report::Pgbench {
        seconds: PGBENCH_SECONDS,
        ..Default::default()
    };
    let mut tps = None;
    for line in stdout.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("tps = ") {
            tps = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            result.transactions = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            result.latency_avg_ms = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        }
    }
    result.tps = tps?;
    Some(result)
}
