//! The demo's story beyond plain sales and refunds: consumers complaining about overdue
//! refunds and the overdue monitor opening cases, operators resolving them, the kiosk's
//! refund held in review for want of balance, and the last morning's refunds that leave
//! every status present at the demo's "now". All through the engine's use cases.

use chrono::NaiveDate;
use serde_json::{Value, json};
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::cases::{AssignCase, CaseError, CaseKind, OpenCase, ResolveCase};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::public::OpenPublicCase;
use yuanlu_engine::refunds::{CreateOutcome, ReviewNote};
use yuanlu_engine::staff::{AddUser, StaffRole};
use yuanlu_engine::terminals::RegisterTerminal;
use yuanlu_engine::{Db, EngineError};
use yuanlu_web::api::bodies;

use super::world::{Kind, World};

/// Counts of what the scenes did, for the report.
#[derive(Debug, Default)]
pub struct Story {
    pub cases_by_consumers: u64,
    pub cases_by_monitor: u64,
    pub cases_by_merchants: u64,
    pub cases_resolved: u64,
    pub canceled: u64,
    /// Approvals refused with `insufficient_merchant_balance`: the refund stays in review.
    pub held_for_balance: u64,
    /// The kiosk's refund waiting in review that its balance cannot fund.
    pub kiosk_hold: Option<String>,
}

impl Story {
    pub fn print(&self) {
        println!(
            "cases: {} opened by consumers, {} by merchants, {} by the overdue monitor, {} resolved",
            self.cases_by_consumers,
            self.cases_by_merchants,
            self.cases_by_monitor,
            self.cases_resolved
        );
        println!("refunds canceled by the merchant: {}", self.canceled);
        println!(
            "approvals refused (insufficient_merchant_balance), left in review: {}",
            self.held_for_balance
        );
    }
}

/// The demo's one password for every staff sign-in: the demo is a showroom on a simulated
/// clock, and `serve --demo` prints it beside the usernames.
pub const DEMO_PASSWORD: &str = "yuanlu-demo";

/// The shop part of a demo username (`noodles.cashier`).
pub fn slug(kind: Kind) -> &'static str {
    match kind {
        Kind::Noodles => "noodles",
        Kind::Supermarket => "supermarket",
        Kind::Electronics => "electronics",
        Kind::Kiosk => "kiosk",
    }
}

/// The demo's sign-ins, (username, role): a cashier and a supervisor per shop, an acquirer
/// reviewer and admin.
pub fn sign_ins() -> Vec<(String, StaffRole)> {
    let mut users = Vec::new();
    for kind in [
        Kind::Noodles,
        Kind::Supermarket,
        Kind::Electronics,
        Kind::Kiosk,
    ] {
        users.push((format!("{}.cashier", slug(kind)), StaffRole::Cashier));
        users.push((format!("{}.supervisor", slug(kind)), StaffRole::Supervisor));
    }
    users.push(("acquirer.reviewer".to_string(), StaffRole::Reviewer));
    users.push(("acquirer.admin".to_string(), StaffRole::Admin));
    users
}

/// Staff sign-ins for the pages, made through the same use case as `yuanlu users add`, and
/// the supermarket's POS terminal, registered as `POST /v1/terminals` does (its master key
/// goes into `demo.json` so `yuanlu pos` can sign on); called after the merchants are
/// created, before the first day. Without an account key (PostgreSQL without
/// `YUANLU_ACCOUNT_KEY`) no terminal is registered: its keys could not be sealed.
pub async fn staff_and_terminals(world: &mut World) -> Result<(), String> {
    for (username, role) in sign_ins() {
        let merchant_id = if role.is_merchant_staff() {
            let shop = world
                .shops
                .iter()
                .find(|s| username.starts_with(&format!("{}.", slug(s.kind))))
                .ok_or_else(|| format!("no demo shop for {username}"))?;
            shop.who.merchant_scope().map(str::to_string)
        } else {
            None
        };
        let input = AddUser {
            username: username.clone(),
            role,
            merchant_id,
            password: DEMO_PASSWORD.to_string(),
        };
        world
            .engine
            .add_staff_user(None, input)
            .await
            .map_err(|e| format!("demo sign-in {username}: {e}"))?;
    }
    if world.engine.account_key.is_none() {
        return Ok(());
    }
    let merchant_id = world
        .shops
        .iter()
        .find(|s| s.kind == Kind::Supermarket)
        .and_then(|s| s.who.merchant_scope())
        .ok_or("no demo supermarket")?
        .to_string();
    let created = world
        .engine
        .register_terminal(
            &super::admin(),
            RegisterTerminal {
                merchant_id: merchant_id.clone(),
                terminal_id: DEMO_TERMINAL_ID.to_string(),
                merchant_no: DEMO_MERCHANT_NO.to_string(),
            },
        )
        .await
        .map_err(|e| format!("demo terminal: {e}"))?;
    world.terminals.push(json!({
        "merchant_id": merchant_id,
        "terminal_id": DEMO_TERMINAL_ID,
        "merchant_no": DEMO_MERCHANT_NO,
        "tmk": created.tmk,
    }));
    Ok(())
}

/// The supermarket's terminal (field 41) and merchant number (field 42).
pub const DEMO_TERMINAL_ID: &str = "10000001";
pub const DEMO_MERCHANT_NO: &str = "898100012340001";

/// After the day's dispatch: some consumers whose refund is past its expected arrival open
/// a case themselves; the overdue monitor raises the rest; operators resolve cases opened the day before.
pub async fn daily_cases(world: &mut World) -> Result<(), String> {
    let now_us = world.clock.now().timestamp_micros();
    for (refund_id, reference) in overdue_without_case(&world.engine.db, now_us).await? {
        if !world.rng.chance(60) {
            continue;
        }
        let input = OpenPublicCase {
            refund_id: Some(refund_id.clone()),
            reference: Some(reference),
            merchant_refund_no: None,
            phone_last4: None,
            kind: CaseKind::NotArrived,
            description: "the refund was promised by now and has not reached my account".into(),
            contact: None,
        };
        world
            .engine
            .public_open_case(input)
            .await
            .map_err(|e| format!("open a case on {refund_id}: {}", case_error(&e)))?;
        world.story.cases_by_consumers += 1;
    }
    let raised = world
        .engine
        .monitor_overdue_once()
        .await
        .map_err(|e| format!("overdue monitor: {e}"))?;
    world.story.cases_by_monitor += raised as u64;
    let since_yesterday = now_us - 20 * 3_600_000_000;
    for case_id in open_cases_before(&world.engine.db, since_yesterday).await? {
        if !world.rng.chance(70) {
            continue;
        }
        let admin = super::admin();
        let owner = AssignCase {
            owner: "ops: Wang Fang".into(),
        };
        let resolution = ResolveCase {
            resolution: "asked the channel: the refund is under way with the bank; told the \
                         consumer the new date"
                .into(),
        };
        world
            .engine
            .assign_case(&admin, &case_id, owner)
            .await
            .map_err(|e| format!("assign {case_id}: {}", case_error(&e)))?;
        world
            .engine
            .resolve_case(&admin, &case_id, resolution)
            .await
            .map_err(|e| format!("resolve {case_id}: {}", case_error(&e)))?;
        world.story.cases_resolved += 1;
    }
    Ok(())
}

fn case_error(error: &CaseError) -> String {
    format!("{} ({error})", error.code())
}

/// The evening of the last business day: the kiosk sells a carton of cigarettes and takes it
/// back; the refund is large for the kiosk, so it waits for the acquirer's review. The kiosk
/// sells nothing on the days off, so after the next morning's settlement its balance is 0
/// and the approval is refused with `insufficient_merchant_balance` (see [`final_morning`]).
pub async fn kiosk_hold(world: &mut World, date: NaiveDate) -> Result<(), String> {
    let Some(shop) = shop_of(world, Kind::Kiosk) else {
        return Ok(());
    };
    world.tick(5);
    let label = super::label(date);
    let body = json!({ "channel": "wechat", "amount": 5_800, "currency": "CNY",
        "terminal_id": "T01", "payer": { "wallet_account": "13900005800" },
        "phone": "13900005800" });
    let payment = record_payment(world, shop, body).await?;
    let refund = json!({ "payment_id": payment, "reason": "quality_issue",
        "merchant_refund_no": format!("H{label}") });
    if let Some((id, RefundStatus::PendingReview)) = create_refund(world, shop, refund).await? {
        world.story.kiosk_hold = Some(id);
    }
    Ok(())
}

/// The demo's last morning (its "now"): the acquirer tries to approve the kiosk's refund
/// (refused: too little balance), refunds arrive that the dispatcher has not taken yet, a
/// delivered order's refund waits for its goods, and another is canceled.
pub async fn final_morning(world: &mut World) -> Result<(), String> {
    let raised = world
        .engine
        .monitor_overdue_once()
        .await
        .map_err(|e| format!("overdue monitor: {e}"))?;
    world.story.cases_by_monitor += raised as u64;
    merchant_case(world).await?;
    if let Some(id) = world.story.kiosk_hold.clone() {
        world.tick(2);
        let note = ReviewNote {
            note: Some("checked the receipt".into()),
        };
        match world
            .engine
            .approve_refund(&super::admin(), &id, note)
            .await
        {
            Err(EngineError::InsufficientBalance { .. }) => world.story.held_for_balance += 1,
            Err(other) => return Err(format!("approve {id}: {other}")),
            Ok(_) => {}
        }
    }
    if let Some(shop) = shop_of(world, Kind::Noodles) {
        // Breakfast, then two earlier sales refunded: queued, for the dispatcher to take.
        for n in 0..6 {
            world.tick(2);
            let body = json!({ "channel": "wechat", "amount": 1_800 + n * 100, "currency": "CNY",
                "terminal_id": "T01", "payer": { "wallet_account": "13700001800" } });
            record_payment(world, shop, body).await?;
        }
        for n in 0..2usize {
            world.tick(3);
            let count = world.shops[shop].payments.len();
            let Some((payment, amount, _)) = count
                .checked_sub(7 + n * 5)
                .and_then(|i| world.shops[shop].payments.get(i).cloned())
            else {
                continue;
            };
            let body = json!({ "payment_id": payment, "amount": (amount / 2).max(1),
                "reason": "customer_cancel", "merchant_refund_no": format!("Q{n}") });
            create_refund(world, shop, body).await?;
        }
    }
    if let Some(shop) = shop_of(world, Kind::Electronics) {
        let delivered = world.shops[shop].delivered.clone();
        let mut made = 0;
        for payment in delivered.iter().rev() {
            if made == 2 {
                break;
            }
            world.tick(3);
            let body = json!({ "payment_id": payment, "reason": "quality_issue",
                "merchant_refund_no": format!("G{made}") });
            let Some((id, status)) = create_refund(world, shop, body).await? else {
                continue;
            };
            made += 1;
            if made == 2 && status == RefundStatus::AwaitingReturn {
                // The customer decided to keep it after all.
                cancel(world, shop, &id, "the customer kept the goods").await?;
            }
        }
    }
    Ok(())
}

/// The supermarket opens a case this morning: a customer says yesterday's refund was short.
async fn merchant_case(world: &mut World) -> Result<(), String> {
    const SQL: &str = "SELECT id FROM refunds WHERE merchant_id = $1 AND status = 'succeeded' \
        ORDER BY created_at_us DESC, id LIMIT 1";
    let Some(shop) = shop_of(world, Kind::Supermarket) else {
        return Ok(());
    };
    let who = world.shops[shop].who.clone();
    let merchant = who.merchant_scope().unwrap_or_default().to_string();
    let found = match &world.engine.db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(&merchant)
                .fetch_optional(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(&merchant)
                .fetch_optional(pool)
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    let Some(refund_id) = found else {
        return Ok(());
    };
    world.tick(2);
    let input = OpenCase {
        refund_id,
        kind: CaseKind::WrongAmount,
        description: "the customer says less came back than the receipt shows".into(),
        contact: Some("front desk, ext. 12".into()),
    };
    world
        .engine
        .open_case(&who, input)
        .await
        .map_err(|e| format!("open a merchant case: {e}"))?;
    world.story.cases_by_merchants += 1;
    Ok(())
}

/// The merchant cancels a refund that has not gone to its channel.
pub async fn cancel(world: &mut World, shop: usize, id: &str, note: &str) -> Result<(), String> {
    let who = world.shops[shop].who.clone();
    let note = ReviewNote {
        note: Some(note.to_string()),
    };
    world
        .engine
        .cancel_refund(&who, id, note)
        .await
        .map_err(|e| format!("cancel {id}: {e}"))?;
    world.story.canceled += 1;
    Ok(())
}

fn shop_of(world: &World, kind: Kind) -> Option<usize> {
    world.shops.iter().position(|s| s.kind == kind)
}

async fn record_payment(world: &mut World, shop: usize, body: Value) -> Result<String, String> {
    let amount = body["amount"].as_i64().unwrap_or(0);
    let input = serde_json::from_value::<bodies::RecordPayment>(body)
        .map_err(|e| e.to_string())?
        .into();
    let who = world.shops[shop].who.clone();
    let payment = world
        .engine
        .record_payment(&who, input)
        .await
        .map_err(|e| format!("record a payment: {e}"))?;
    let today = yuanlu_domain::time::shanghai_date(world.clock.now());
    world.shops[shop]
        .payments
        .push((payment.id.clone(), amount, today));
    Ok(payment.id)
}

/// Creates a refund; `None` when the engine refused it (counted as the day's refusals are).
async fn create_refund(
    world: &mut World,
    shop: usize,
    body: Value,
) -> Result<Option<(String, RefundStatus)>, String> {
    let input = serde_json::from_value::<bodies::CreateRefund>(body)
        .map_err(|e| e.to_string())?
        .into();
    let who = world.shops[shop].who.clone();
    match world.engine.create_refund(&who, input).await {
        Ok(CreateOutcome::Created(refund)) => Ok(Some((refund.id.clone(), refund.status))),
        Ok(_) => Ok(None),
        Err(
            error @ (EngineError::Refused(_)
            | EngineError::InsufficientBalance { .. }
            | EngineError::InvalidTransition { .. }),
        ) => {
            *world.refused.entry(error.code().to_string()).or_default() += 1;
            Ok(None)
        }
        Err(other) => Err(format!("create a refund: {other}")),
    }
}

/// Processing or abnormal refunds past their expected arrival without any case: (refund id,
/// the payment's reference a consumer holds).
async fn overdue_without_case(db: &Db, now_us: i64) -> Result<Vec<(String, String)>, String> {
    const SQL: &str = "SELECT r.id, COALESCE(p.rrn, p.id) FROM refunds r \
        JOIN payments p ON p.id = r.payment_id \
        WHERE r.status IN ('processing', 'abnormal') AND r.expected_arrival_by_us < $1 \
        AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.refund_id = r.id) \
        ORDER BY r.created_at_us, r.id";
    let rows = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as::<_, (String, String)>(SQL)
                .bind(now_us)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as::<_, (String, String)>(SQL)
                .bind(now_us)
                .fetch_all(pool)
                .await
        }
    };
    rows.map_err(|e| e.to_string())
}

async fn open_cases_before(db: &Db, before_us: i64) -> Result<Vec<String>, String> {
    const SQL: &str = "SELECT id FROM cases WHERE status = 'open' AND created_at_us < $1 \
        ORDER BY created_at_us, id";
    let rows = match db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(before_us)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(before_us)
                .fetch_all(pool)
                .await
        }
    };
    rows.map_err(|e| e.to_string())
}

/// The refund statuses no refund has at the end (the demo aims to leave none missing).
/// `failed` is left out: it is a channel declining a refund for good, and the simulators
/// decline only what yuanlu never sends (amounts above the payment, masked accounts).
pub async fn missing_statuses(db: &Db) -> Result<Vec<&'static str>, String> {
    const SQL: &str = "SELECT DISTINCT status FROM refunds";
    let present = match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, String>(SQL).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar::<_, String>(SQL).fetch_all(pool).await,
    }
    .map_err(|e| e.to_string())?;
    Ok(RefundStatus::ALL
        .iter()
        .filter(|s| **s != RefundStatus::Failed)
        .map(|s| s.id())
        .filter(|id| !present.iter().any(|p| p == id))
        .collect())
}
