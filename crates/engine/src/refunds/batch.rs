//! A batch of creates with a fixed number of statements (issue 13): what
//! [`crate::refund_writer`] runs for the creates it finds queued together.
//!
//! 1. **Read** everything the creates need, one statement per table for the whole batch
//!    (`yuanlu_store::queries_refund_batch`): the payments (locked, in id order), the refunds
//!    their `merchant_refund_no` name, the merchants' settings and settings versions, their
//!    balance rows and audit heads (locked, in merchant order), their day's sales and live
//!    refunds, the settled capture days, which merchants have a webhook.
//! 2. **Decide** every create in memory, in the order [`create_in`] would have run them, each
//!    seeing the ones before it: the payment's counters, the day's sums (review threshold,
//!    daily refund limit), the balance (funding rule), the refunds created so far
//!    (idempotency by `merchant_refund_no`), the audit chain's head. The rules, the order of
//!    the checks and the errors are [`create_in`]'s.
//! 3. **Write** each table with one multi-row statement: refunds, ledger postings, their
//!    entries, balances, payment counters, audit entries, audit heads, webhook events.
//!
//! A void that completes at once (rare: a whole same-day payment), a refund with deductions
//! or one held for evidence (issue 15) has more to write; a batch that holds one is run
//! create by create instead ([`BatchStop::OneByOne`]). An idempotent
//! repeat reads its refund's timeline after the writes (one statement per repeat).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use yuanlu_domain::audit::GENESIS_HASH;
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_store::PaymentCounters;
use yuanlu_store::rows_notify::WebhookOutboxRow;
use yuanlu_store::{AuditHeadRow, AuditRow, DayKey, DaySums, EntryRow, PostingRow};

use super::create::{created_audit_data, refund_row};
use super::*;

/// Why a batch was not written as a batch.
pub(crate) enum BatchStop {
    /// A create needs writes the batch does not make (a void completing at once): run the
    /// creates one by one, each as [`create_in`].
    OneByOne,
    /// The database failed: roll back; nothing was acknowledged.
    Broken(EngineError),
}

impl From<yuanlu_store::StoreError> for BatchStop {
    fn from(error: yuanlu_store::StoreError) -> Self {
        BatchStop::Broken(EngineError::Store(error))
    }
}

/// A merchant's settings versions: `(effective_from_us, version, settings)`.
type Versions = Vec<(i64, i64, MerchantSettings)>;

/// What the batch read, as the creates see it (updated by each create in memory).
struct Seen {
    payments: HashMap<String, PaymentRow>,
    refunds: HashMap<(String, String), RefundRow>,
    /// A merchant's settings, or why they cannot be read (a corrupt-data message).
    settings: HashMap<String, Result<MerchantSettings, String>>,
    versions: HashMap<String, Result<Versions, String>>,
    /// Balance rows as locked (or `None`: the merchant has none yet), then as written.
    balances: HashMap<String, Option<BalanceRow>>,
    heads: HashMap<String, Option<AuditHeadRow>>,
    days: HashMap<DayKey, DaySums>,
    settled: HashSet<String>,
    webhooks: HashSet<String>,
}

/// What the batch writes.
#[derive(Default)]
struct Writes {
    refunds: Vec<RefundRow>,
    postings: Vec<PostingRow>,
    entries: Vec<EntryRow>,
    /// Merchants whose balance moved (in first-move order), and those without a row yet.
    balances_moved: Vec<String>,
    balances_new: BTreeSet<String>,
    counters: Vec<(String, PaymentCounters)>,
    audits: Vec<AuditRow>,
    heads_new: BTreeSet<String>,
    events: Vec<WebhookOutboxRow>,
    /// What the refunds add to their merchants' days.
    days: BTreeMap<DayKey, DaySums>,
}

/// An idempotent repeat, answered after the writes: its refund (`None`: created by this
/// batch, read back) and the payment as the repeat saw it.
struct Repeat {
    index: usize,
    key: (String, String),
    row: Option<RefundRow>,
    payment: PaymentRow,
}

/// Runs the creates of `batch` in `order` inside `conn`'s transaction: the answers by the
/// batch's index (a refusal is an answer), or why the batch cannot be written this way.
pub(crate) async fn create_batch(
    conn: &mut Conn<'_>,
    batch: &[CreateJob],
    order: &[usize],
) -> Result<Vec<Option<EngineResult<CreateOutcome>>>, BatchStop> {
    let nows: Vec<DateTime<Utc>> = batch.iter().map(|job| job.clock.now()).collect();
    let mut seen = read_batch(conn, batch, &nows).await?;
    let mut writes = Writes::default();
    let mut answers: Vec<Option<EngineResult<CreateOutcome>>> =
        batch.iter().map(|_| None).collect();
    let mut repeats = Vec::new();
    for &index in order {
        match decide_one(&mut seen, &mut writes, &batch[index], nows[index])? {
            Decided::Answer(answer) => answers[index] = Some(answer),
            Decided::Repeat { key, row, payment } => repeats.push(Repeat {
                index,
                key,
                row: row.map(|row| *row),
                payment: *payment,
            }),
        }
    }
    write_batch_rows(conn, &seen, writes).await?;
    answer_repeats(conn, repeats, &mut answers).await?;
    Ok(answers)
}

/// Step 1: every read, one statement per table.
async fn read_batch(
    conn: &mut Conn<'_>,
    batch: &[CreateJob],
    nows: &[DateTime<Utc>],
) -> Result<Seen, BatchStop> {
    let payment_ids: Vec<String> = sorted(batch.iter().map(|j| j.input.payment_id.clone()));
    let payments: HashMap<String, PaymentRow> = conn
        .lock_payments_batch(&payment_ids)
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let numbers: Vec<(String, String)> = sorted(
        batch
            .iter()
            .map(|j| (j.merchant_id.clone(), j.input.merchant_refund_no.clone())),
    );
    let refunds = conn
        .refunds_by_merchant_nos(&numbers)
        .await?
        .into_iter()
        .map(|r| ((r.merchant_id.clone(), r.merchant_refund_no.clone()), r))
        .collect();
    let merchant_ids: Vec<String> = sorted(batch.iter().map(|j| j.merchant_id.clone()));
    let mut settings: HashMap<String, Result<MerchantSettings, String>> = merchant_ids
        .iter()
        .map(|m| (m.clone(), Err(format!("merchant {m} is missing"))))
        .collect();
    for merchant in conn.merchants_by_ids(&merchant_ids).await? {
        let parsed = serde_json::from_str::<MerchantSettings>(&merchant.settings)
            .map_err(|e| format!("settings of {}: {e}", merchant.id));
        settings.insert(merchant.id.clone(), parsed);
    }
    let mut versions: HashMap<String, Result<Versions, String>> = merchant_ids
        .iter()
        .map(|m| (m.clone(), Ok(Vec::new())))
        .collect();
    for row in conn.settings_versions_of(&merchant_ids).await? {
        let parsed: Result<MerchantSettings, _> = serde_json::from_str(&row.settings);
        let entry = versions
            .entry(row.merchant_id.clone())
            .or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), parsed) {
            (Ok(list), Ok(settings)) => list.push((row.effective_from_us, row.version, settings)),
            (Ok(_), Err(e)) => {
                *entry = Err(format!(
                    "settings version {} of {}: {e}",
                    row.version, row.merchant_id
                ));
            }
            (Err(_), _) => {}
        }
    }
    let locked = conn.lock_existing_balances(&merchant_ids).await?;
    let balances = merchant_ids
        .iter()
        .map(|m| (m.clone(), locked.get(m).copied()))
        .collect();
    let mut locked_heads = conn.lock_existing_audit_heads(&merchant_ids).await?;
    let heads = merchant_ids
        .iter()
        .map(|m| (m.clone(), locked_heads.remove(m)))
        .collect();
    // Read under the balance locks: concurrent creates of these merchants are counted.
    let day_keys: Vec<DayKey> = sorted(
        batch
            .iter()
            .zip(nows)
            .map(|(job, now)| DayKey::containing(&job.merchant_id, to_micros(*now))),
    );
    let days = conn.merchant_days(&day_keys).await?;
    let capture_dates: Vec<String> = sorted(payments.values().map(|p| {
        shanghai_date(yuanlu_domain::time::from_micros(p.captured_at_us))
            .format("%Y-%m-%d")
            .to_string()
    }));
    let settled = conn
        .settled_dates(&capture_dates)
        .await?
        .into_iter()
        .collect();
    let webhooks = conn
        .merchants_with_webhook(&merchant_ids)
        .await?
        .into_iter()
        .collect();
    Ok(Seen {
        payments,
        refunds,
        settings,
        versions,
        balances,
        heads,
        days,
        settled,
        webhooks,
    })
}

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let set: BTreeSet<T> = items.collect();
    set.into_iter().collect()
}

enum Decided {
    Answer(EngineResult<CreateOutcome>),
    Repeat {
        key: (String, String),
        row: Option<Box<RefundRow>>,
        payment: Box<PaymentRow>,
    },
}

/// Step 2 for one create: [`create_in`]'s reads, rules and writes, against memory.
fn decide_one(
    seen: &mut Seen,
    writes: &mut Writes,
    job: &CreateJob,
    now: DateTime<Utc>,
) -> Result<Decided, BatchStop> {
    let (merchant_id, input, parsed) = (job.merchant_id.as_str(), &job.input, &job.parsed);
    let refused = |error: EngineError| Ok(Decided::Answer(Err(error)));
    // Deductions (issue 15) write more than the batch's statements: run create by create.
    if !parsed.deductions.is_empty() {
        return Err(BatchStop::OneByOne);
    }
    let Some(payment_row) = seen
        .payments
        .get(&input.payment_id)
        .filter(|p| p.merchant_id == merchant_id)
        .cloned()
    else {
        return refused(EngineError::PaymentNotFound(input.payment_id.clone()));
    };
    let key = (merchant_id.to_string(), input.merchant_refund_no.clone());
    if let Some(existing) = seen.refunds.get(&key) {
        let same = existing.payment_id == input.payment_id
            && parsed
                .ask
                .amount_fen
                .is_none_or(|a| a == existing.amount_fen)
            && parsed.deducted_fen == existing.deducted_fen;
        if !same {
            return refused(EngineError::MerchantRefundNoConflict {
                merchant_refund_no: input.merchant_refund_no.clone(),
                existing_refund_id: existing.id.clone(),
                existing_payment_id: existing.payment_id.clone(),
                existing_amount: existing.amount_fen,
            });
        }
        let created_here = writes.refunds.iter().any(|r| r.id == existing.id);
        return Ok(Decided::Repeat {
            row: (!created_here).then(|| Box::new(existing.clone())),
            key,
            payment: Box::new(payment_row),
        });
    }
    let mut settings = match seen.settings.get(merchant_id) {
        Some(Ok(settings)) => settings.clone(),
        Some(Err(why)) => return refused(EngineError::corrupt(why.clone())),
        None => {
            return refused(EngineError::corrupt(format!(
                "merchant {merchant_id} is missing"
            )));
        }
    };
    let payment = match views::payment_state(&payment_row) {
        Ok(payment) => payment,
        Err(error) => return refused(error),
    };
    let then = match seen.versions.get(merchant_id) {
        Some(Ok(versions)) => settings_at(versions, payment_row.created_at_us),
        Some(Err(why)) => return refused(EngineError::corrupt(why.clone())),
        None => None,
    };
    if let Some(then) = then {
        let policy = then.channel(payment.channel).fee_refund;
        let mut channel = settings.channel(payment.channel);
        channel.fee_refund = policy;
        settings.channels.insert(payment.channel, channel);
    }
    let day = DayKey::containing(merchant_id, to_micros(now));
    let sums = seen.days.get(&day).copied().unwrap_or_default();
    let capture_date = shanghai_date(payment.captured_at)
        .format("%Y-%m-%d")
        .to_string();
    let plan = match yuanlu_domain::decide::decide_refund(
        &parsed.ask,
        &DecideContext {
            settings: &settings,
            payment: &payment,
            now,
            today: DayTotals {
                sales_fen: sums.sales_fen,
                refunds_fen: sums.refunds_fen,
            },
            capture_day_settled: seen.settled.contains(&capture_date),
        },
    ) {
        Ok(plan) => plan,
        Err(error) => return refused(error.into()),
    };
    // A void completing at once, or a refund held for the evidence its merchant requires
    // (issue 15), has more to write than the batch does: run create by create.
    if (plan.status == RefundStatus::Queued && plan.refund_type == RefundType::Void)
        || !plan.evidence_required.is_empty()
    {
        return Err(BatchStop::OneByOne);
    }
    // The balance row, locked; `lock_balance` creates it here if the merchant has none.
    let stored_balance = seen.balances.get(merchant_id).copied().flatten();
    let balance = stored_balance.unwrap_or_default();
    if stored_balance.is_none() {
        writes.balances_new.insert(merchant_id.to_string());
        seen.balances
            .insert(merchant_id.to_string(), Some(BalanceRow::default()));
    }
    if !settings.daily_refund_limit.is_unlimited()
        && let Err(error) = crate::ops::check_daily_limit(
            &settings.daily_refund_limit,
            sums.refunds_count,
            sums.refunds_fen,
            plan.amount_fen,
        )
    {
        return refused(error);
    }
    if let Err(error) = ledger::check_funded(
        balance,
        settings.funding,
        plan.amount_fen - plan.fee_refunded_fen,
    ) {
        return refused(error);
    }
    // The create goes through: what `write_create` writes, in memory.
    let now_us = to_micros(now);
    let row = refund_row(merchant_id, input, parsed, &payment_row, &plan, now_us);
    if plan.status.counts_against_day() {
        let change = DaySums::refund(row.amount_fen, 1);
        seen.days.entry(day.clone()).or_default().add(change);
        writes.days.entry(day).or_default().add(change);
    }
    let effects = transition::created(plan.status, &refund_money(&row));
    if let Some(event) = effects.ledger {
        let facts = refund_posting(&row, event, now_us);
        match ledger::prepare_posting_locked(&facts, balance) {
            Ok(Some((posting, entries, after))) => {
                writes.postings.push(posting);
                writes.entries.extend(entries);
                seen.balances.insert(merchant_id.to_string(), Some(after));
                if !writes.balances_moved.iter().any(|m| m == merchant_id) {
                    writes.balances_moved.push(merchant_id.to_string());
                }
            }
            Ok(None) => {}
            Err(error) => return Err(BatchStop::Broken(error)),
        }
    }
    let mut counters = payment_row.counters();
    counters.apply(&effects.counters);
    if let Some(stored) = seen.payments.get_mut(&payment_row.id) {
        stored.set_counters(&counters);
    }
    match writes
        .counters
        .iter_mut()
        .find(|(id, _)| *id == payment_row.id)
    {
        Some((_, slot)) => *slot = counters,
        None => writes.counters.push((payment_row.id.clone(), counters)),
    }
    let head = match seen.heads.get(merchant_id).cloned().flatten() {
        Some(head) => head,
        None => {
            // `lock_audit_head` would have created the head here.
            writes.heads_new.insert(merchant_id.to_string());
            AuditHeadRow {
                chain: merchant_id.to_string(),
                seq: 0,
                hash: GENESIS_HASH.to_string(),
            }
        }
    };
    let entry = audit::entry_after(
        head,
        AuditEvent {
            chain: merchant_id,
            at_us: now_us,
            actor: &job.actor,
            action: action::CREATED,
            subject_id: &row.id,
            data: created_audit_data(&row, &plan.evidence_required, &parsed.deductions),
        },
    );
    seen.heads.insert(
        merchant_id.to_string(),
        Some(AuditHeadRow {
            chain: entry.chain.clone(),
            seq: entry.seq,
            hash: entry.hash.clone(),
        }),
    );
    if seen.webhooks.contains(merchant_id) {
        writes.events.push(notify::refund_event_row(
            &row,
            notify::EVENT_CREATED,
            now_us,
        ));
    }
    let view = refund_view_of(&row, &payment_row, std::slice::from_ref(&entry))
        .map_err(BatchStop::Broken)?;
    writes.audits.push(entry);
    seen.refunds.insert(key, row.clone());
    writes.refunds.push(row);
    Ok(Decided::Answer(Ok(CreateOutcome::Created(Box::new(view)))))
}

/// [`crate::tx_memo::TxMemo::settings_at`] over versions already read.
fn settings_at(versions: &Versions, recorded_at_us: i64) -> Option<MerchantSettings> {
    versions
        .iter()
        .filter(|(from_us, _, _)| *from_us <= recorded_at_us)
        .max_by_key(|(from_us, version, _)| (*from_us, *version))
        .or_else(|| versions.first())
        .map(|(_, _, settings)| settings.clone())
}

/// Step 3: one multi-row statement per table.
async fn write_batch_rows(
    conn: &mut Conn<'_>,
    seen: &Seen,
    writes: Writes,
) -> Result<(), BatchStop> {
    if !writes.refunds.is_empty() {
        conn.insert_refunds(&writes.refunds).await?;
    }
    if !writes.postings.is_empty() {
        conn.insert_postings(&writes.postings, &writes.entries)
            .await?;
    }
    if !writes.balances_new.is_empty() {
        let new: Vec<String> = writes.balances_new.iter().cloned().collect();
        let locked = conn.lock_balances(&new).await?;
        // Created by another transaction since our read, and maybe moved: start over alone.
        if new
            .iter()
            .any(|m| locked.get(m).copied().unwrap_or_default() != BalanceRow::default())
        {
            return Err(BatchStop::Broken(EngineError::corrupt(
                "a merchant's balance row appeared during the batch",
            )));
        }
    }
    let balances: Vec<(String, BalanceRow)> = writes
        .balances_moved
        .iter()
        .filter_map(|m| Some((m.clone(), seen.balances.get(m).copied().flatten()?)))
        .collect();
    if !balances.is_empty() {
        conn.set_balances(&balances).await?;
    }
    if !writes.counters.is_empty() {
        conn.set_payment_counters(&writes.counters).await?;
    }
    if !writes.heads_new.is_empty() {
        let new: Vec<String> = writes.heads_new.iter().cloned().collect();
        let locked = conn.lock_audit_heads(&new, GENESIS_HASH).await?;
        if new.iter().any(|c| {
            locked
                .get(c)
                .is_none_or(|h| h.seq != 0 || h.hash != GENESIS_HASH)
        }) {
            return Err(BatchStop::Broken(EngineError::corrupt(
                "an audit chain's head appeared during the batch",
            )));
        }
    }
    if !writes.audits.is_empty() {
        conn.append_audits(&writes.audits).await?;
    }
    if !writes.events.is_empty() {
        conn.insert_webhook_events(&writes.events).await?;
    }
    // Last, under every balance lock of the batch (see `queries_merchant_days`).
    conn.add_to_merchant_days(&writes.days).await?;
    Ok(())
}

/// The idempotent repeats: each refund with its timeline, as [`create_in`] answers them.
async fn answer_repeats(
    conn: &mut Conn<'_>,
    repeats: Vec<Repeat>,
    answers: &mut [Option<EngineResult<CreateOutcome>>],
) -> Result<(), BatchStop> {
    if repeats.is_empty() {
        return Ok(());
    }
    // Refunds this batch created are read back as stored.
    let created: Vec<(String, String)> = sorted(
        repeats
            .iter()
            .filter(|r| r.row.is_none())
            .map(|r| r.key.clone()),
    );
    let stored: HashMap<(String, String), RefundRow> = conn
        .refunds_by_merchant_nos(&created)
        .await?
        .into_iter()
        .map(|r| ((r.merchant_id.clone(), r.merchant_refund_no.clone()), r))
        .collect();
    for repeat in repeats {
        let row = match repeat.row {
            Some(row) => row,
            None => stored.get(&repeat.key).cloned().ok_or_else(|| {
                BatchStop::Broken(EngineError::corrupt(
                    "a refund created by the batch vanished before its repeat",
                ))
            })?,
        };
        let view = refund_view(conn, &row, &repeat.payment)
            .await
            .map_err(BatchStop::Broken)?;
        answers[repeat.index] = Some(Ok(CreateOutcome::Existing(Box::new(view))));
    }
    Ok(())
}
