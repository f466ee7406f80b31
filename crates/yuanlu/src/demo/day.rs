//! One business day of the demo: the shops' sales, refunds of every kind, reviews, returns,
//! dispatch, reroutes of abnormal refunds; and the next morning's settlement.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::{Value, json};
use yuanlu_engine::EngineError;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::public::GiveFeedback;
use yuanlu_engine::refunds::{CreateOutcome, RecordReturn, ReviewNote};
use yuanlu_web::api::bodies;

use super::world::{Kind, World};

/// 09:00 in Shanghai on `date`.
pub fn opening(date: NaiveDate) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    chrono::FixedOffset::east_opt(8 * 3600)
        .and_then(|tz| tz.from_local_datetime(&local).single())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// (channel, amount range in fen, sales per day) of a kind of shop.
fn sales(kind: Kind) -> (&'static [&'static str], i64, i64, i64) {
    match kind {
        Kind::Noodles => (
            &["wechat", "alipay", "wechat", "unionpay_qr"],
            1_200,
            4_800,
            40,
        ),
        Kind::Supermarket => (&["debit_card", "credit_card", "alipay"], 2_000, 60_000, 24),
        Kind::Electronics => (&["credit_card", "debit_card"], 40_000, 900_000, 8),
        Kind::Kiosk => (&["wechat", "unionpay_qr"], 300, 2_000, 2),
    }
}

/// One day; `hold` on the last business day, whose evening has the kiosk's held refund.
pub async fn run_day(world: &mut World, date: NaiveDate, hold: bool) -> Result<(), String> {
    let label = super::label(date);
    world.yesterday_started_us = world.day_started_us;
    world.day_started_us = world.clock.now().timestamp_micros();
    for shop in 0..world.shops.len() {
        let kind = world.shops[shop].kind;
        let (channels, lo, hi, per_day) = sales(kind);
        if kind == Kind::Kiosk && world.rng.chance(50) {
            kiosk_morning(world, shop, &label).await?;
        }
        let n = world.rng.range(per_day * 3 / 4, per_day * 5 / 4);
        // The kiosk, in an office building, is closed on days off.
        let open = kind != Kind::Kiosk || world.engine.calendar.is_business_day(date);
        for i in (0..n).filter(|_| open) {
            let minutes = world.rng.range(1, 4);
            world.tick(minutes);
            let channel = channels[(world.rng.next() % channels.len() as u64) as usize];
            let amount = world.rng.range(lo, hi);
            let mut body = json!({ "channel": channel, "amount": amount, "currency": "CNY",
                "terminal_id": format!("T{:02}", 1 + world.rng.next() % 3) });
            if kind == Kind::Supermarket {
                body["member"] = json!(world.rng.chance(40));
            }
            super::sale::slip(&mut world.rng, channel, &label, i, &mut body);
            let delivered = kind == Kind::Electronics && world.rng.chance(60);
            if kind == Kind::Electronics {
                let shipping = if delivered { "delivered" } else { "unshipped" };
                body["order"] = json!({ "merchant_order_no": format!("O{label}{i}"),
                    "shipping_status": shipping });
            }
            let input = serde_json::from_value::<bodies::RecordPayment>(body)
                .map_err(|e| e.to_string())?
                .into();
            let who = world.shops[shop].who.clone();
            let payment = world
                .engine
                .record_payment(&who, input)
                .await
                .map_err(|e| format!("record a payment: {e}"))?;
            if delivered {
                world.shops[shop].delivered.push(payment.id.clone());
            }
            world.shops[shop].payments.push((payment.id, amount, date));
            // A same-day mistake: voided at once.
            if world.rng.chance(4) {
                let (id, _, _) =
                    world.shops[shop].payments[world.shops[shop].payments.len() - 1].clone();
                refund(
                    world,
                    shop,
                    &id,
                    None,
                    "duplicate_charge",
                    &format!("V{label}{i}"),
                )
                .await?;
            }
        }
        // Refunds of earlier sales: partial and full, some needing review or a return.
        let refunds = world.rng.range(per_day / 8, per_day / 4 + 1);
        for r in 0..refunds {
            let minutes = world.rng.range(2, 10);
            world.tick(minutes);
            let count = world.shops[shop].payments.len();
            if count == 0 {
                break;
            }
            let pick = (world.rng.next() % count as u64) as usize;
            let (id, amount, _) = world.shops[shop].payments[pick].clone();
            let partial = world.rng.chance(50);
            let amount = partial.then(|| (amount * world.rng.range(20, 80) / 100).max(1));
            let reason = match kind {
                Kind::Electronics => "quality_issue",
                _ if world.rng.chance(30) => "customer_cancel",
                _ => "quality_issue",
            };
            refund(world, shop, &id, amount, reason, &format!("R{label}{r}")).await?;
        }
    }
    if hold {
        super::story::kiosk_hold(world, date).await?;
    }
    world.tick(30);
    review_and_return(world, &label).await?;
    world.drain_dispatch().await?;
    reroute_abnormal(world).await?;
    world.drain_dispatch().await?;
    world.tick(60);
    super::story::daily_cases(world).await?;
    feedback(world).await
}

/// First thing in the morning, before any sale, the kiosk refunds its largest sale: its
/// balance may not fund it.
async fn kiosk_morning(world: &mut World, shop: usize, label: &str) -> Result<(), String> {
    let largest = world.shops[shop]
        .payments
        .iter()
        .max_by_key(|p| p.1)
        .cloned();
    if let Some((id, _, _)) = largest {
        let number = format!("K{label}");
        refund(world, shop, &id, None, "customer_cancel", &number).await?;
    }
    Ok(())
}

/// About a third of the consumers whose refund arrived today rate it (most are pleased).
async fn feedback(world: &mut World) -> Result<(), String> {
    const COMMENTS: [&str; 5] = [
        "took too long, and nobody told me where it was",
        "arrived, but later than promised",
        "fine",
        "quick, thanks",
        "back on my card the next day, very good",
    ];
    for (refund_id, payment_id) in succeeded_since(world, world.day_started_us).await? {
        if !world.rng.chance(35) {
            continue;
        }
        let rating: i64 = match world.rng.next() % 10 {
            0 => 1,
            1 => 2,
            2 | 3 => 3,
            4..=6 => 4,
            _ => 5,
        };
        let comment = world
            .rng
            .chance(50)
            .then(|| COMMENTS[(rating - 1) as usize].to_string());
        let input = GiveFeedback {
            rating,
            comment,
            reference: payment_id,
        };
        world
            .engine
            .public_feedback(&refund_id, input)
            .await
            .map_err(|e| format!("feedback on {refund_id}: {e:?}"))?;
        world.ratings += 1;
    }
    Ok(())
}

/// Refunds that succeeded since `since_us`, without a rating: (refund id, the payment's
/// reference: its `rrn`, or its id when it has none).
async fn succeeded_since(world: &World, since_us: i64) -> Result<Vec<(String, String)>, String> {
    const SQL: &str = "SELECT r.id, COALESCE(p.rrn, p.id) FROM refunds r \
        JOIN payments p ON p.id = r.payment_id WHERE r.status = 'succeeded' \
        AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.refund_id = r.id) \
        AND r.updated_at_us >= $1 ORDER BY r.created_at_us, r.id";
    let rows = match &world.engine.db {
        yuanlu_engine::Db::Sqlite(pool) => {
            sqlx::query_as::<_, (String, String)>(SQL)
                .bind(since_us)
                .fetch_all(pool)
                .await
        }
        yuanlu_engine::Db::Postgres(pool) => {
            sqlx::query_as::<_, (String, String)>(SQL)
                .bind(since_us)
                .fetch_all(pool)
                .await
        }
    };
    rows.map_err(|e| e.to_string())
}

async fn refund(
    world: &mut World,
    shop: usize,
    payment_id: &str,
    amount: Option<i64>,
    reason: &str,
    number: &str,
) -> Result<(), String> {
    let mut body =
        json!({ "payment_id": payment_id, "reason": reason, "merchant_refund_no": number });
    if let Some(amount) = amount {
        body["amount"] = Value::from(amount);
    }
    let input = serde_json::from_value::<bodies::CreateRefund>(body)
        .map_err(|e| e.to_string())?
        .into();
    let who = world.shops[shop].who.clone();
    match world.engine.create_refund(&who, input).await {
        Ok(CreateOutcome::Created(_)) | Ok(_) => Ok(()),
        // Refusals are part of the story (nothing left to refund, too little balance).
        Err(
            error @ (EngineError::Refused(_)
            | EngineError::InsufficientBalance { .. }
            | EngineError::InvalidTransition { .. }),
        ) => {
            let code = error.code().to_string();
            *world.refused.entry(code).or_default() += 1;
            Ok(())
        }
        Err(other) => Err(format!("create a refund: {other}")),
    }
}

/// Reviews most refunds left pending since an earlier day (approve or reject) and receives
/// most returned goods; the rest, and today's, stay waiting, as on a real afternoon.
async fn review_and_return(world: &mut World, label: &str) -> Result<(), String> {
    for id in ids(world, "pending_review", world.day_started_us).await? {
        if world.story.kiosk_hold.as_deref() == Some(id.as_str()) {
            continue;
        }
        world.tick(1);
        let roll = world.rng.next() % 10;
        let result = if roll < 5 {
            world
                .engine
                .approve_refund(
                    &super::admin(),
                    &id,
                    ReviewNote {
                        note: Some("checked the receipt".into()),
                    },
                )
                .await
        } else if roll < 8 {
            world
                .engine
                .reject_refund(
                    &super::admin(),
                    &id,
                    ReviewNote {
                        note: Some("the goods were used".into()),
                    },
                )
                .await
        } else {
            continue;
        };
        match result {
            Ok(_) => {}
            // Too little balance to fund it: it stays in review until the balance grows.
            Err(EngineError::InsufficientBalance { .. }) => world.story.held_for_balance += 1,
            Err(e) => return Err(format!("review {id}: {e}")),
        }
    }
    let shop = world.shops.iter().position(|s| s.kind == Kind::Electronics);
    for (n, id) in ids(world, "awaiting_return", world.day_started_us)
        .await?
        .into_iter()
        .enumerate()
    {
        let Some(shop) = shop else {
            continue;
        };
        let roll = world.rng.next() % 10;
        if roll == 9 {
            // The customer kept the goods after all.
            super::story::cancel(world, shop, &id, "the customer kept the goods").await?;
            continue;
        }
        if roll >= 6 {
            continue;
        }
        world.tick(1);
        let who = world.shops[shop].who.clone();
        let input = RecordReturn {
            tracking_no: format!("SF{label}{n:04}"),
        };
        world
            .engine
            .record_return(&who, &id, input)
            .await
            .map_err(|e| format!("return {id}: {e}"))?;
    }
    Ok(())
}

/// Two of three of yesterday's abnormal refunds are rerouted, to the merchant or a bank
/// account; the third is left to an operator, and today's wait for tomorrow.
async fn reroute_abnormal(world: &mut World) -> Result<(), String> {
    let yesterday = world.yesterday_started_us;
    for id in ids(world, "abnormal", world.day_started_us).await? {
        if created_us(world, &id).await? < yesterday {
            continue;
        }
        let roll = world.rng.next() % 3;
        let body = match roll {
            0 => json!({ "to": "merchant" }),
            1 => json!({ "to": "bank_account", "account": {
                "number": format!("6222{:012}", world.rng.next() % 1_000_000_000_000),
                "bank": "Industrial and Commercial Bank of China" } }),
            _ => continue,
        };
        let input = serde_json::from_value::<bodies::RerouteInput>(body)
            .map_err(|e| e.to_string())?
            .into();
        world
            .engine
            .reroute_refund(&super::admin(), &id, input)
            .await
            .map_err(|e| format!("reroute {id}: {e}"))?;
    }
    Ok(())
}

/// When a refund was created (reading, not writing).
async fn created_us(world: &World, id: &str) -> Result<i64, String> {
    const SQL: &str = "SELECT created_at_us FROM refunds WHERE id = $1";
    let row = match &world.engine.db {
        yuanlu_engine::Db::Sqlite(pool) => {
            sqlx::query_scalar::<_, i64>(SQL)
                .bind(id)
                .fetch_one(pool)
                .await
        }
        yuanlu_engine::Db::Postgres(pool) => {
            sqlx::query_scalar::<_, i64>(SQL)
                .bind(id)
                .fetch_one(pool)
                .await
        }
    };
    row.map_err(|e| e.to_string())
}

/// Refund ids in a status, oldest first (reading, not writing).
/// Only those created before `before_us`.
async fn ids(world: &World, status: &str, before_us: i64) -> Result<Vec<String>, String> {
    const SQL: &str = "SELECT id FROM refunds WHERE status = $1 AND created_at_us < $2 ORDER BY created_at_us, id";
    let rows = match &world.engine.db {
        yuanlu_engine::Db::Sqlite(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(status)
                .bind(before_us)
                .fetch_all(pool)
                .await
        }
        yuanlu_engine::Db::Postgres(pool) => {
            sqlx::query_scalar::<_, String>(SQL)
                .bind(status)
                .bind(before_us)
                .fetch_all(pool)
                .await
        }
    };
    rows.map_err(|e| e.to_string())
}

/// The morning after: settles the day that ended and reconciles the channels' statements
/// of it (business days only).
pub async fn close_previous(world: &mut World, today: NaiveDate) -> Result<(), String> {
    let Some(previous) = today.pred_opt() else {
        return Ok(());
    };
    if !world.engine.calendar.is_business_day(previous) {
        return Ok(());
    }
    world
        .engine
        .run_settlement(&super::admin(), previous)
        .await
        .map_err(|e| format!("settle {previous}: {e}"))?;
    world.settlements += 1;
    let n = world.settlements;
    super::recon::reconcile_day(world, previous, n).await
}
