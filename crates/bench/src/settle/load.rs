//! The bulk loader: exactly the rows `Engine::record_payment` writes, for N payments, in
//! multi-row INSERTs.

use super::*;

/// What [`load`] wrote, and what settling it must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub rows: RowsLoaded,
    pub merchants_with_payments: usize,
    /// Σ (amount − fee) over the payments: the day's net, computed from the generated data.
    pub expected_net_fen: i64,
}

/// A bound value of a multi-row INSERT.
pub(super) enum Value {
    Text(String),
    Null,
    Int(i64),
    Bool(bool),
}

/// Rows of one table, flattened, `width` values a row.
pub(super) struct Rows {
    head: &'static str,
    tail: &'static str,
    width: usize,
    values: Vec<Value>,
}

impl Rows {
    fn new(head: &'static str, width: usize, tail: &'static str) -> Rows {
        Rows {
            head,
            tail,
            width,
            values: Vec::new(),
        }
    }

    fn count(&self) -> usize {
        self.values.len() / self.width
    }
}

pub(super) fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

pub(super) fn opt_text(value: Option<String>) -> Value {
    value.map_or(Value::Null, Value::Text)
}

/// Inserts the rows with as few statements as the parameter limit allows.
pub(super) async fn insert_rows(conn: &mut Conn<'_>, rows: &Rows) -> Result<(), String> {
    let per_statement = (BINDS_MAX / rows.width).max(1) * rows.width;
    for chunk in rows.values.chunks(per_statement) {
        let mut sql = String::with_capacity(chunk.len() * 5 + rows.head.len() + 64);
        sql.push_str(rows.head);
        sql.push_str(" VALUES ");
        for (n, _) in chunk.iter().enumerate() {
            let column = n % rows.width;
            if column == 0 {
                if n > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
            } else {
                sql.push_str(", ");
            }
            // SQLite numbered parameters cost a linear name lookup each (quadratic per
            // statement); anonymous ones are bound in order.
            match conn {
                Conn::Sqlite(_) => sql.push('?'),
                Conn::Postgres(_) => sql.push_str(&format!("${}", n + 1)),
            }
            if column + 1 == rows.width {
                sql.push(')');
            }
        }
        sql.push_str(rows.tail);
        macro_rules! bind_all {
            ($c:expr) => {{
                let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
                for value in chunk {
                    query = match value {
                        Value::Text(s) => query.bind(s.as_str()),
                        Value::Null => query.bind(None::<&str>),
                        Value::Int(i) => query.bind(*i),
                        Value::Bool(b) => query.bind(*b),
                    };
                }
                query.execute(&mut **$c).await.map(|_| ())
            }};
        }
        let result = match conn {
            Conn::Sqlite(c) => bind_all!(c),
            Conn::Postgres(c) => bind_all!(c),
        };
        result.map_err(|e| format!("bulk insert ({}): {e}", rows.head))?;
    }
    Ok(())
}

/// Bulk-loads `n` payments of [`day_payment`] on `merchants` with, for each, the rows
/// `Engine::record_payment` writes when the merchant's key records it at its capture time.
/// `payment_id(i)` names payment `i`.
// Long on purpose: the rows `record_payment` writes, table by table in one pass, so the loader reads as the engine's write it mirrors.
pub async fn load(
    db: &Db,
    merchants: &[DayMerchant],
    n: usize,
    mut payment_id: impl FnMut(usize) -> String,
    bar: &ProgressBar,
) -> Result<Loaded, String> {
    let store = |what: &'static str| move |e: yuanlu_store::StoreError| format!("{what}: {e}");
    // The merchants' audit heads and balances as they stand.
    let (mut heads, mut balance_of) = {
        let mut pooled = db.acquire().await.map_err(store("connect"))?;
        let mut conn = pooled.conn();
        let heads: BTreeMap<String, (i64, String)> = conn
            .audit_heads()
            .await
            .map_err(store("read the audit heads"))?
            .into_iter()
            .map(|h| (h.chain, (h.seq, h.hash)))
            .collect();
        let balances: BTreeMap<String, (i64, i64)> = conn
            .all_balances()
            .await
            .map_err(store("read the balances"))?
            .into_iter()
            .map(|(m, unsettled, carried)| (m, (unsettled, carried)))
            .collect();
        (heads, balances)
    };
    let actors: Vec<String> = merchants.iter().map(|m| m.who.actor()).collect();
    let mut rows_loaded = RowsLoaded::default();
    let mut with_payments = BTreeSet::new();
    let mut expected_net: i64 = 0;

    let mut start = 0;
    while start < n {
        let tx_end = (start + LOAD_TX_PAYMENTS).min(n);
        let mut tx = db.begin().await.map_err(store("begin"))?;
        let mut touched = BTreeSet::new();
        while start < tx_end {
            let end = (start + LOAD_CHUNK_PAYMENTS).min(tx_end);
            let mut payments = Rows::new(
                "INSERT INTO payments (id, merchant_id, terminal_id, channel, amount_fen, currency, fee_fen, kind, \
                 member, payer_account, payer_bank, batch_no, trace_no, rrn, order_no, shipping_status, phone, \
                 captured_at_us, created_at_us)",
                19,
                "",
            );
            let mut postings = Rows::new(
                "INSERT INTO ledger_postings (id, merchant_id, event, reference, payment_id, channel, amount_fen, fee_fen, business_date, at_us)",
                10,
                "",
            );
            let mut entries = Rows::new(
                "INSERT INTO ledger_entries (posting_id, line_no, merchant_id, account, amount_fen)",
                5,
                "",
            );
            let mut audit = Rows::new(
                "INSERT INTO audit_log (chain, seq, at_us, actor, action, subject_id, data, prev_hash, hash)",
                9,
                "",
            );
            for i in start..end {
                let p = day_payment(i, n, merchants.len());
                let merchant = merchants
                    .get(p.merchant)
                    .ok_or("a payment of no merchant")?;
                let m = merchant.id.as_str();
                let settings = merchant.settings.channel(p.channel);
                let fee = payment_fee(p.amount_fen, settings.fee_rate_ppm, settings.fee_cap_fen);
                let id = payment_id(i);
                let at_us = to_micros(p.at);
                payments.values.extend([
                    text(id.clone()),
                    text(m),
                    text(p.terminal_id.clone()),
                    text(p.channel.id()),
                    Value::Int(p.amount_fen),
                    text(CURRENCY),
                    Value::Int(fee),
                    text(PaymentKind::Sale.id()),
                    Value::Bool(false),
                    opt_text(p.payer.masked()),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Int(at_us),
                    Value::Int(at_us),
                ]);
                let facts = PostingFacts {
                    merchant_id: m,
                    event: LedgerEvent::PaymentCaptured,
                    reference: &id,
                    payment_id: Some(&id),
                    channel: Some(p.channel),
                    amount_fen: p.amount_fen,
                    fee_fen: fee,
                    at: p.at,
                };
                let posting =
                    posting_for(&facts).map_err(|e| format!("payment {i}'s posting: {e}"))?;
                let posting_id = new_id(POSTING);
                postings.values.extend([
                    text(posting_id.clone()),
                    text(m),
                    text(LedgerEvent::PaymentCaptured.id()),
                    text(id.clone()),
                    text(id.clone()),
                    text(p.channel.id()),
                    Value::Int(p.amount_fen),
                    Value::Int(fee),
                    text(shanghai_date(p.at).format("%Y-%m-%d").to_string()),
                    Value::Int(at_us),
                ]);
                for (line, entry) in posting.entries().iter().enumerate() {
                    entries.values.extend([
                        text(posting_id.clone()),
                        Value::Int(line as i64),
                        text(m),
                        text(entry.account.id()),
                        Value::Int(entry.amount_fen),
                    ]);
                }
                let delta = merchant_balance(&balances([&posting]), m);
                let balance = balance_of.entry(m.to_string()).or_insert((0, 0));
                balance.0 += delta.unsettled_fen;
                balance.1 += delta.carried_fen;

                let data = json!({ "channel": p.channel.id(), "amount": p.amount_fen, "fee": fee, "captured_at_us": at_us })
                    .to_string();
                let actor = actors.get(p.merchant).map_or("", String::as_str);
                let head = heads
                    .entry(m.to_string())
                    .or_insert_with(|| (0, yuanlu_domain::audit::GENESIS_HASH.to_string()));
                let seq = head.0 + 1;
                let hash = entry_hash(
                    &head.1,
                    &AuditContent {
                        chain: m,
                        seq,
                        at_us,
                        actor,
                        action: "payment.recorded",
                        subject_id: &id,
                        data: &data,
                    },
                );
                audit.values.extend([
                    text(m),
                    Value::Int(seq),
                    Value::Int(at_us),
                    text(actor),
                    text("payment.recorded"),
                    text(id),
                    text(data),
                    text(std::mem::take(&mut head.1)),
                    text(hash.clone()),
                ]);
                *head = (seq, hash);

                expected_net += p.amount_fen - fee;
                with_payments.insert(p.merchant);
                touched.insert(p.merchant);
            }
            let mut conn = tx.conn();
            for rows in [&payments, &postings, &entries, &audit] {
                insert_rows(&mut conn, rows).await?;
            }
            rows_loaded.payments += payments.count();
            rows_loaded.postings += postings.count();
            rows_loaded.entries += entries.count();
            rows_loaded.audit += audit.count();
            bar.inc((end - start) as u64);
            start = end;
        }
        // The touched merchants' balances and audit heads, as the last payment left them.
        let mut balance_rows = Rows::new(
            "INSERT INTO merchant_balances (merchant_id, unsettled_fen, carried_fen)",
            3,
            " ON CONFLICT (merchant_id) DO UPDATE SET unsettled_fen = excluded.unsettled_fen, carried_fen = excluded.carried_fen",
        );
        let mut head_rows = Rows::new(
            "INSERT INTO audit_heads (chain, seq, hash)",
            3,
            " ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        );
        for k in touched {
            let Some(m) = merchants.get(k) else { continue };
            if let Some((unsettled, carried)) = balance_of.get(&m.id) {
                balance_rows.values.extend([
                    text(m.id.clone()),
                    Value::Int(*unsettled),
                    Value::Int(*carried),
                ]);
            }
            if let Some((seq, hash)) = heads.get(&m.id) {
                head_rows
                    .values
                    .extend([text(m.id.clone()), Value::Int(*seq), text(hash.clone())]);
            }
        }
        let mut conn = tx.conn();
        insert_rows(&mut conn, &balance_rows).await?;
        insert_rows(&mut conn, &head_rows).await?;
        tx.commit().await.map_err(store("commit"))?;
    }
    // The merchant days' sales, as `Engine::record_payment` adds them.
    let mut tx = db.begin().await.map_err(store("begin"))?;
    tx.conn()
        .rebuild_merchant_days()
        .await
        .map_err(store("merchant days"))?;
    tx.commit().await.map_err(store("commit"))?;
    Ok(Loaded {
        rows: rows_loaded,
        merchants_with_payments: with_payments.len(),
        expected_net_fen: expected_net,
    })
}
