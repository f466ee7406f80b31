//! Issue 13: a batch written with a fixed number of statements gives the same answers and
//! leaves the same rows as its creates run alone, one transaction each. Two identical worlds
//! (merchants, settings, payments, a webhook) in one database; the same pseudo-random creates
//! (accepted, refused by each rule, idempotent repeats, numbers reused for another payment,
//! one payment several times, another merchant's payment) go to the first as one batch and to
//! the second one by one; then answers, refunds, payments, balances, ledger, audit chains and
//! webhook events are compared with the worlds' ids replaced by names. Both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;
use yuanlu_engine::EngineResult;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::notify::SetWebhook;
use yuanlu_engine::refunds::{CreateOutcome, CreateRefund};

/// A small deterministic generator (no clock, no OS randomness): the same cases every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

struct World {
    shops: Vec<Principal>,
    merchant_ids: Vec<String>,
    /// Per merchant: its payments' ids.
    payments: Vec<Vec<String>>,
}

/// Four merchants: default settings with a webhook; a daily refund limit; card payments
/// (reviewed above 100 % of the day's sales and above 5,000.00 CNY); one card payment
/// whose refunds meet the funding rule.
async fn world(h: &common::Harness) -> World {
    let shops = vec![
        h.merchant().await,
        h.merchant_with(json!({ "daily_refund_limit": { "count": 6, "amount_fen": 9_000 } }))
            .await,
        h.merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
            .await,
        h.merchant_with(json!({ "review": { "refund_ratio_percent": 100 } }))
            .await,
    ];
    let merchant_ids: Vec<String> = shops
        .iter()
        .map(|s| s.merchant_scope().unwrap().to_string())
        .collect();
    h.engine
        .set_webhook(
            &shops[0],
            &merchant_ids[0],
            SetWebhook {
                url: "https://shop.example/hooks".into(),
            },
        )
        .await
        .unwrap();
    let mut payments = Vec::new();
    for (i, shop) in shops.iter().enumerate() {
        let bodies = if i == 3 {
            vec![json!({ "channel": "credit_card", "amount": 20_000 })]
        } else if i == 2 {
            vec![
                json!({ "channel": "credit_card", "amount": 2_000_000 }),
                json!({ "channel": "credit_card", "amount": 300_000 }),
            ]
        } else {
            vec![
                json!({ "channel": "wechat", "amount": 10_000 }),
                json!({ "channel": "alipay", "amount": 5_000 }),
                json!({ "channel": "wechat", "amount": 2_000 }),
            ]
        };
        let mut ids = Vec::new();
        for body in bodies {
            ids.push(h.payment(shop, body).await.id);
        }
        payments.push(ids);
    }
    World {
        shops,
        merchant_ids,
        payments,
    }
}

/// A create as (merchant, payment, amount, number): indices into a world.
#[derive(Debug, Clone, Copy)]
enum PaymentPick {
    Own(usize),
    OtherMerchants(usize),
    Missing,
}

#[derive(Debug, Clone)]
struct Ask {
    merchant: usize,
    payment: PaymentPick,
    amount: Option<i64>,
    number: String,
}

fn asks(seed: u64, count: usize) -> Vec<Ask> {
    let mut rng = Lcg(seed);
    let amounts = [1, 300, 500, 1_000, 2_500, 4_000, 6_000, 12_000];
    let random = (0..count)
        .map(|_| {
            let merchant = rng.next(3) as usize;
            let own = if merchant == 2 { 2 } else { 3 };
            let payment = match rng.next(20) {
                0 => PaymentPick::Missing,
                1 | 2 => PaymentPick::OtherMerchants(rng.next(2) as usize),
                _ => PaymentPick::Own(rng.next(own) as usize),
            };
            // The whole refundable amount only off cards (a whole card payment on its day is
            // a void, which a batch runs create by create).
            let amount = if merchant != 2 && rng.next(10) == 0 {
                None
            } else {
                // Card refunds return no fee: the merchant's balance is its payments less
                // their fees, so the funding rule refuses the last refunds of its payments.
                let scale = if merchant == 2 { 100 } else { 1 };
                Some(scale * amounts[rng.next(amounts.len() as u64) as usize])
            };
            Ask {
                merchant,
                payment,
                amount,
                number: format!("n{}", rng.next((count as u64 / 3).max(12))),
            }
        })
        .collect::<Vec<_>>();
    // The fourth merchant's only money is its card payment's 198.80 net (card refunds return
    // no fee): the funding rule refuses f3 and f5, counting the creates before them.
    let funding = [
        (10_000, "f1"),
        (9_000, "f2"),
        (1_000, "f3"),
        (880, "f4"),
        (1, "f5"),
    ]
    .into_iter()
    .map(|(amount, number)| Ask {
        merchant: 3,
        payment: PaymentPick::Own(0),
        amount: Some(amount),
        number: number.to_string(),
    });
    // Interleaved with the others, at a place the seed picks.
    let at = rng.next(random.len() as u64 + 1) as usize;
    let mut all = random;
    all.splice(at..at, funding);
    all
}

fn input(world: &World, ask: &Ask) -> (Principal, CreateRefund) {
    let payment_id = match ask.payment {
        PaymentPick::Own(p) => world.payments[ask.merchant][p].clone(),
        PaymentPick::OtherMerchants(p) => world.payments[(ask.merchant + 1) % 3][p].clone(),
        PaymentPick::Missing => "pay_missing".to_string(),
    };
    let mut body = json!({
        "payment_id": payment_id, "reason": "customer_cancel", "merchant_refund_no": ask.number,
    });
    if let Some(amount) = ask.amount {
        body["amount"] = json!(amount);
    }
    (
        world.shops[ask.merchant].clone(),
        serde_json::from_value::<yuanlu_web::api::bodies::CreateRefund>(body)
            .unwrap()
            .into(),
    )
}

/// Rows of one column of text, sorted.
async fn rows(h: &common::Harness, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = match &h.engine.db {
        yuanlu_engine::Db::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(pool)
            .await
            .unwrap(),
        yuanlu_engine::Db::Postgres(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    rows.sort();
    rows
}

/// Replaces a world's ids (merchants, payments, refunds) by names both worlds share.
struct Names(Vec<(String, String)>);

impl Names {
    async fn of(h: &common::Harness, world: &World) -> Names {
        let mut names = Vec::new();
        for (m, id) in world.merchant_ids.iter().enumerate() {
            names.push((id.clone(), format!("M{m}")));
            for (p, payment) in world.payments[m].iter().enumerate() {
                names.push((payment.clone(), format!("M{m}P{p}")));
            }
            let refunds = rows(
                h,
                &format!(
                    "SELECT id || ' ' || merchant_refund_no FROM refunds WHERE merchant_id = '{id}'"
                ),
            )
            .await;
            for line in refunds {
                let (refund, number) = line.split_once(' ').unwrap();
                names.push((refund.to_string(), format!("M{m}R{number}")));
            }
        }
        Names(names)
    }

    fn apply(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_string(), |text, (id, name)| text.replace(id, name))
    }

    /// The lines of this world (they name one of its merchants), with its ids replaced.
    fn mine(&self, lines: &[String], world: &World) -> Vec<String> {
        let mut mine: Vec<String> = lines
            .iter()
            .filter(|line| world.merchant_ids.iter().any(|m| line.contains(m.as_str())))
            .map(|line| self.apply(line))
            .collect();
        mine.sort();
        mine
    }
}

fn answer_text(answer: &EngineResult<CreateOutcome>) -> String {
    match answer {
        Ok(CreateOutcome::Created(r)) => format!("created {}", serde_json::to_string(r).unwrap()),
        Ok(CreateOutcome::Existing(r)) => {
            format!("existing {}", serde_json::to_string(r).unwrap())
        }
        Err(error) => format!("{} {error}", error.code()),
    }
}

/// Everything the creates write, one sorted line per row.
const STATE: [&str; 7] = [
    "SELECT merchant_id || '|' || payment_id || '|' || merchant_refund_no || '|' || status || '|' || type || '|' \
     || CAST(amount_fen AS TEXT) || '|' || CAST(fee_refunded_fen AS TEXT) || '|' || review_reasons || '|' \
     || COALESCE(required_reviewer, '-') || '|' || COALESCE(note, '-') || '|' || requested_by_role || '|' \
     || CAST(created_at_us AS TEXT) || '|' || CAST(updated_at_us AS TEXT) || '|' \
     || COALESCE(CAST(next_attempt_at_us AS TEXT), '-') || '|' || send_state || '|' || CAST(dispatch_attempts AS TEXT) \
     || '|' || id FROM refunds",
    "SELECT merchant_id || '|' || id || '|' || CAST(amount_refunded_fen AS TEXT) || '|' \
     || CAST(amount_in_flight_fen AS TEXT) || '|' || CAST(fee_returned_fen AS TEXT) || '|' \
     || CAST(refund_count AS TEXT) || '|' || CASE WHEN voided THEN 'voided' ELSE '-' END FROM payments",
    "SELECT merchant_id || '|' || CAST(unsettled_fen AS TEXT) || '|' || CAST(carried_fen AS TEXT) FROM merchant_balances",
    "SELECT p.merchant_id || '|' || p.event || '|' || p.reference || '|' || COALESCE(p.payment_id, '-') || '|' \
     || COALESCE(p.channel, '-') || '|' || CAST(p.amount_fen AS TEXT) || '|' || CAST(p.fee_fen AS TEXT) || '|' \
     || p.business_date || '|' || CAST(p.at_us AS TEXT) || '|' || CAST(e.line_no AS TEXT) || '|' || e.account \
     || '|' || CAST(e.amount_fen AS TEXT) FROM ledger_postings p JOIN ledger_entries e ON e.posting_id = p.id",
    "SELECT chain || '|' || CAST(seq AS TEXT) || '|' || CAST(at_us AS TEXT) || '|' || actor || '|' || action \
     || '|' || subject_id || '|' || data FROM audit_log WHERE action NOT IN ('api_key.created')",
    "SELECT chain || '|' || CAST(seq AS TEXT) FROM audit_heads",
    "SELECT merchant_id || '|' || event_type || '|' || refund_id || '|' || status || '|' \
     || COALESCE(CAST(next_attempt_at_us AS TEXT), '-') FROM webhook_outbox",
];

/// The kinds of answers a run gave: `created`, `existing` or an error code.
async fn batch_equals_alone(
    h: &common::Harness,
    seed: u64,
    count: usize,
) -> std::collections::BTreeSet<String> {
    let batched = world(h).await;
    let alone = world(h).await;
    let asks = asks(seed, count);
    let before = h.engine.group_commit_counts();
    let batch_answers = h
        .engine
        .create_refunds_batch(asks.iter().map(|a| input(&batched, a)).collect())
        .await;
    let after = h.engine.group_commit_counts();
    assert_eq!(
        (
            after.batches_committed - before.batches_committed,
            after.batches_replayed - before.batches_replayed
        ),
        (1, 0),
        "seed {seed}: one batch, committed whole"
    );
    let mut alone_answers = Vec::new();
    for ask in &asks {
        let mut answer = h
            .engine
            .create_refunds_batch(vec![input(&alone, ask)])
            .await;
        alone_answers.push(answer.remove(0));
    }
    let (names_batched, names_alone) = (Names::of(h, &batched).await, Names::of(h, &alone).await);
    let created = batch_answers
        .iter()
        .filter(|a| matches!(a, Ok(CreateOutcome::Created(_))))
        .count();
    assert!(created > 3, "seed {seed}: a useful case creates refunds");
    for (i, (b, a)) in batch_answers.iter().zip(&alone_answers).enumerate() {
        assert_eq!(
            names_batched.apply(&answer_text(b)),
            names_alone.apply(&answer_text(a)),
            "seed {seed}, create {i}: {:?}",
            asks[i]
        );
    }
    for sql in STATE {
        let lines = rows(h, sql).await;
        assert_eq!(
            names_batched.mine(&lines, &batched),
            names_alone.mine(&lines, &alone),
            "seed {seed}: {sql}"
        );
    }
    assert!(h.engine.check_ledger().await.unwrap().balanced);
    let verified = h.engine.verify_audit().await.unwrap();
    assert!(verified.first_bad.is_none(), "{verified:?}");
    batch_answers
        .iter()
        .map(|a| match a {
            Ok(CreateOutcome::Created(_)) => "created".to_string(),
            Ok(CreateOutcome::Existing(_)) => "existing".to_string(),
            Err(error) => error.code().to_string(),
        })
        .collect()
}

contract!(a_batch_answers_and_writes_what_its_creates_alone_do, |h| {
    for seed in [1, 2, 3, 4] {
        batch_equals_alone(&h, seed, 40).await;
    }
});

contract!(every_rule_refuses_in_a_batch_as_alone, |h| {
    // A long batch: every merchant reaches its daily limit, its funding floor, its payments'
    // refundable amounts.
    let kinds = batch_equals_alone(&h, 99, 120).await;
    eprintln!("answers: {kinds:?}");
    for kind in [
        "created",
        "existing",
        "payment_not_found",
        "merchant_refund_no_conflict",
        "amount_exceeds_refundable",
        "daily_refund_limit_exceeded",
        "insufficient_merchant_balance",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
});
