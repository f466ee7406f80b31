//! No full account number is stored (issue 9, item 8), on both backends: after a refund is
//! rerouted to a bank account the consumer gave, and the channel paid it (naming the account
//! in full), the number is in no row of any table; its masked form is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Duration;
use serde_json::json;
use yuanlu_channels::{
    CallbackError, CallbackEvent, ChannelOutcome, ConnectorError, RefundConnector, RefundRequest,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig, RerouteInput};
use yuanlu_engine::notify::SetWebhook;
use yuanlu_engine::{Db, Engine};

use crate::common::Harness;

const FULL_NUMBER: &str = "6222021234567890";
const MASKED: &str = "6222********7890";

/// A channel whose original route is closed: abnormal until rerouted, then it pays and
/// names the account it paid in full. It remembers every account it was sent.
#[derive(Clone)]
struct ClosedRoute {
    clock: Arc<dyn Clock>,
    sent_accounts: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl RefundConnector for ClosedRoute {
    fn channel_name(&self) -> &'static str {
        "closed-route"
    }

    async fn execute(&self, request: &RefundRequest) -> Result<ChannelOutcome, ConnectorError> {
        match &request.reroute_account {
            None => Ok(ChannelOutcome::Abnormal {
                channel_refund_id: None,
                reason: "CARD_CLOSED".into(),
            }),
            Some(account) => {
                self.sent_accounts.lock().unwrap().push(account.clone());
                // Some channels name the account paid in full (WeChat's
                // user_received_account): yuanlu must not keep it so.
                Ok(ChannelOutcome::Succeeded {
                    channel_refund_id: format!("ch_{}", request.refund_id),
                    received_account: Some(format!("工商银行{FULL_NUMBER}")),
                    succeeded_at: self.clock.now(),
                })
            }
        }
    }

    async fn query(
        &self,
        _request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        Ok(None)
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<CallbackEvent, CallbackError> {
        Err(CallbackError("no callbacks".into()))
    }
}

fn config() -> DispatchConfig {
    DispatchConfig {
        worker_id: "w1".to_string(),
        ..DispatchConfig::default()
    }
}

/// Passes of one worker, moving the clock past every retry, until nothing is due.
async fn drain(h: &Harness, engine: &Engine) {
    for _ in 0..50 {
        engine.dispatch_once(&config()).await.unwrap();
        match engine.next_dispatch_due().await.unwrap() {
            None => return,
            Some(due) => {
                let wait = (due - h.clock.now()).max(Duration::zero()) + Duration::milliseconds(1);
                h.clock.advance(wait);
            }
        }
    }
    panic!("dispatch did not settle in 50 passes");
}

/// Every row of every table of the test database, as text.
async fn every_row(h: &Harness) -> String {
    let mut all = String::new();
    match &h.engine.db {
        Db::Sqlite(_) => {
            let tables = h
                .fetch_text(
                    "SELECT group_concat(name, ',') FROM sqlite_master \
                     WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .await;
            for table in tables.split(',') {
                let columns = h
                    .fetch_text(&format!(
                        "SELECT group_concat('quote(' || name || ')', ' || '' '' || ') \
                         FROM pragma_table_info('{table}')"
                    ))
                    .await;
                let rows = h
                    .fetch_text(&format!(
                        "SELECT coalesce(group_concat({columns}, char(10)), '') FROM {table}"
                    ))
                    .await;
                all.push_str(&format!("[{table}]\n{rows}\n"));
            }
        }
        Db::Postgres(_) => {
            let tables = h
                .fetch_text(
                    "SELECT string_agg(table_name, ',') FROM information_schema.tables \
                     WHERE table_schema = current_schema()",
                )
                .await;
            for table in tables.split(',') {
                let rows = h
                    .fetch_text(&format!(
                        "SELECT coalesce(string_agg(t::text, chr(10)), '') FROM {table} t"
                    ))
                    .await;
                all.push_str(&format!("[{table}]\n{rows}\n"));
            }
        }
    }
    all
}

contract!(a_rerouted_account_number_is_stored_nowhere_in_full, |h| {
    let channel = ClosedRoute {
        clock: h.clock.clone(),
        sent_accounts: Arc::default(),
    };
    let set = ChannelSet::default().with(&Channel::ALL, Arc::new(channel.clone()));
    let engine = h.engine.clone().with_channels(set);
    let shop = h.merchant().await;
    let Principal::Merchant { merchant_id, .. } = &shop else {
        unreachable!()
    };
    let hook: SetWebhook =
        serde_json::from_value(json!({ "url": "https://example.com/yuanlu" })).unwrap();
    engine
        .set_webhook(&Principal::Admin, merchant_id, hook)
        .await
        .unwrap();
    let payment = h
            .payment(
                &shop,
                json!({ "channel": "credit_card", "amount": 10_000, "payer": { "card_last4": "0403", "bank": "招商银行" } }),
            )
            .await;
    h.clock.advance(Duration::days(1)); // not a same-day void
    h.payment(&shop, json!({ "channel": "alipay", "amount": 10_000_000 }))
        .await;
    let id = h
            .refund(&shop, json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel", "merchant_refund_no": "acct-1" }))
            .await
            .id;
    drain(&h, &engine).await;
    assert_eq!(
        engine.get_refund(&shop, &id).await.unwrap().status,
        RefundStatus::Abnormal
    );
    let input: RerouteInput = serde_json::from_value(json!({ "to": "bank_account", "account": { "number": "6222 0212 3456 7890", "bank": "工商银行" } })).unwrap();
    engine
        .reroute_refund(&Principal::Admin, &id, input)
        .await
        .unwrap();
    drain(&h, &engine).await;
    let done = engine.get_refund(&shop, &id).await.unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    assert_eq!(
        *channel.sent_accounts.lock().unwrap(),
        vec![format!("工商银行|{MASKED}")]
    );
    let rows = every_row(&h).await;
    for table in [
        "[refunds]",
        "[audit_log]",
        "[webhook_outbox]",
        "[sms_outbox]",
    ] {
        assert!(rows.contains(table), "{table} not read:\n{rows}");
    }
    assert!(rows.contains(MASKED), "the masked number is kept:\n{rows}");
    let leaks: Vec<&str> = rows
        .lines()
        .filter(|line| line.contains(FULL_NUMBER) || line.starts_with('['))
        .collect();
    assert!(
        !rows.contains(FULL_NUMBER),
        "a full account number is stored:\n{}",
        leaks.join("\n")
    );
    let shown = serde_json::to_string(&done).unwrap();
    assert!(!shown.contains(FULL_NUMBER), "{shown}");
    assert!(shown.contains(MASKED), "{shown}");
});

contract!(migration_0009_masks_account_numbers_stored_before_it, |h| {
    let shop = h.merchant().await;
    let payment = h
        .payment(&shop, json!({ "channel": "credit_card", "amount": 10_000 }))
        .await;
    h.clock.advance(Duration::days(1));
    h.payment(&shop, json!({ "channel": "alipay", "amount": 10_000_000 }))
        .await;
    let id = h
            .refund(&shop, json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel", "merchant_refund_no": "old-1" }))
            .await
            .id;
    // What earlier versions wrote after a reroute.
    h.execute(&format!(
        "UPDATE refunds SET reroute_account = '工商|银行|{FULL_NUMBER}', \
             received_account = '工商|银行|{FULL_NUMBER}' WHERE id = '{id}'"
    ))
    .await;
    let migration = match &h.engine.db {
        Db::Sqlite(_) => {
            include_str!("../../store/migrations/sqlite/0009_mask_account_numbers.sql")
        }
        Db::Postgres(_) => {
            include_str!("../../store/migrations/postgres/0009_mask_account_numbers.sql")
        }
    };
    for statement in migration.split(';').filter(|s| s.contains("UPDATE")) {
        h.execute(statement).await;
    }
    let stored = h
        .fetch_text(&format!(
            "SELECT reroute_account || ' ' || received_account FROM refunds WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(stored, format!("工商|银行|{MASKED} 工商|银行|{MASKED}"));
    // Already masked, or too short to be an account: left alone.
    for statement in migration.split(';').filter(|s| s.contains("UPDATE")) {
        h.execute(statement).await;
    }
    h.execute(&format!(
        "UPDATE refunds SET received_account = '招商银行信用卡0403' WHERE id = '{id}'"
    ))
    .await;
    for statement in migration.split(';').filter(|s| s.contains("UPDATE")) {
        h.execute(statement).await;
    }
    let stored = h
        .fetch_text(&format!(
            "SELECT reroute_account || ' ' || received_account FROM refunds WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(stored, format!("工商|银行|{MASKED} 招商银行信用卡0403"));
});
