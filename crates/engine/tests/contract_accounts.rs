//! No full account number is stored in plaintext (issue 9, item 8), on both backends: after a
//! refund is rerouted to a bank account the consumer gave, the channel is sent the number
//! whole (opened from its sealed copy), and once it paid (naming the account in full) the
//! number is in no row of any table and its sealed copy is erased; its masked form is kept.

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
use yuanlu_engine::account_key::AccountKey;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::Clock;
use yuanlu_engine::dispatch::{ChannelSet, DispatchConfig, RerouteInput};
use yuanlu_engine::notify::SetWebhook;
use yuanlu_engine::{Db, Engine};
use yuanlu_web::api::bodies;

use crate::common::Harness;

const FULL_NUMBER: &str = "6222021234567890";
const MASKED: &str = "6222********7890";

/// A channel whose original route is closed: abnormal until rerouted, then it pays and
/// names the account it paid in full. It remembers every account it was sent.
#[derive(Clone)]
struct ClosedRoute {
    clock: Arc<dyn Clock>,
    sent_accounts: Arc<Mutex<Vec<String>>>,
    /// Accept a reroute now and confirm it only when queried.
    confirm_on_query: bool,
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
            Some(account) if self.confirm_on_query => {
                self.sent_accounts.lock().unwrap().push(account.clone());
                Ok(ChannelOutcome::Processing {
                    channel_refund_id: format!("ch_{}", request.refund_id),
                })
            }
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
        request: &RefundRequest,
    ) -> Result<Option<ChannelOutcome>, ConnectorError> {
        if self.confirm_on_query && !self.sent().is_empty() {
            return Ok(Some(ChannelOutcome::Succeeded {
                channel_refund_id: format!("ch_{}", request.refund_id),
                received_account: None,
                succeeded_at: self.clock.now(),
            }));
        }
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

impl ClosedRoute {
    fn new(h: &Harness) -> Self {
        ClosedRoute {
            clock: h.clock.clone(),
            sent_accounts: Arc::default(),
            confirm_on_query: false,
        }
    }

    fn engine(&self, engine: &Engine) -> Engine {
        let set = ChannelSet::default().with(&Channel::ALL, Arc::new(self.clone()));
        engine.clone().with_channels(set)
    }

    fn sent(&self) -> Vec<String> {
        self.sent_accounts.lock().unwrap().clone()
    }
}

fn reroute_to_bank() -> RerouteInput {
    serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "bank_account", "account": { "number": "6222 0212 3456 7890", "bank": "工商银行" } })).unwrap().into()
}

/// A card refund the closed route made abnormal, waiting for a reroute.
async fn abnormal_refund(h: &Harness, engine: &Engine, shop: &Principal) -> String {
    let payment = h
        .payment(
            shop,
            json!({ "channel": "credit_card", "amount": 10_000, "payer": { "card_last4": "0403", "bank": "招商银行" } }),
        )
        .await;
    h.clock.advance(Duration::days(1)); // not a same-day void
    h.payment(shop, json!({ "channel": "alipay", "amount": 10_000_000 }))
        .await;
    let id = h
        .refund(shop, json!({ "payment_id": payment.id, "amount": 3_000, "reason": "customer_cancel", "merchant_refund_no": "acct-1" }))
        .await
        .id;
    drain(h, engine).await;
    assert_eq!(
        engine.get_refund(shop, &id).await.unwrap().status,
        RefundStatus::Abnormal
    );
    id
}

async fn sealed_of(h: &Harness, id: &str) -> String {
    h.fetch_text(&format!(
        "SELECT coalesce(reroute_account_sealed, 'NULL') FROM refunds WHERE id = '{id}'"
    ))
    .await
}

contract!(a_rerouted_account_number_is_stored_nowhere_in_full, |h| {
    let channel = ClosedRoute::new(&h);
    let engine = channel.engine(&h.engine);
    let shop = h.merchant().await;
    let Principal::Merchant { merchant_id, .. } = &shop else {
        unreachable!()
    };
    let hook: SetWebhook = serde_json::from_value::<bodies::SetWebhook>(
        json!({ "url": "https://example.com/yuanlu" }),
    )
    .unwrap()
    .into();
    engine
        .set_webhook(&Principal::Admin, merchant_id, hook)
        .await
        .unwrap();
    let id = abnormal_refund(&h, &engine, &shop).await;
    engine
        .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
        .await
        .unwrap();
    // Waiting for the worker: the number is kept sealed, never in plaintext.
    let sealed = sealed_of(&h, &id).await;
    assert!(sealed.starts_with("v1:"), "{sealed}");
    assert!(!every_row(&h).await.contains(FULL_NUMBER));
    drain(&h, &engine).await;
    let done = engine.get_refund(&shop, &id).await.unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    // The channel was sent the number whole: a bank cannot pay a masked one.
    assert_eq!(channel.sent(), vec![format!("工商银行|{FULL_NUMBER}")]);
    assert_eq!(sealed_of(&h, &id).await, "NULL", "erased once paid");
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

contract!(
    a_sealed_account_number_the_key_does_not_open_is_never_sent,
    |h| {
        let channel = ClosedRoute::new(&h);
        let engine = channel.engine(&h.engine);
        let shop = h.merchant().await;
        let id = abnormal_refund(&h, &engine, &shop).await;
        engine
            .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
            .await
            .unwrap();
        // The worker runs with another key (a server configured differently).
        let other_key = AccountKey::from_bytes(&[9; 32]).unwrap();
        let misconfigured = engine.clone().with_account_key(other_key);
        drain(&h, &misconfigured).await;
        let refund = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(refund.status, RefundStatus::Abnormal);
        assert!(channel.sent().is_empty(), "sent: {:?}", channel.sent());
        let shown = serde_json::to_string(&refund).unwrap();
        assert!(shown.contains("account key does not match"), "{shown}");
        assert_eq!(
            sealed_of(&h, &id).await,
            "NULL",
            "erased when it left dispatch"
        );
        // An operator reroutes it again, on a server with the right key: paid, whole.
        engine
            .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
            .await
            .unwrap();
        drain(&h, &engine).await;
        assert_eq!(
            engine.get_refund(&shop, &id).await.unwrap().status,
            RefundStatus::Succeeded
        );
        assert_eq!(channel.sent(), vec![format!("工商银行|{FULL_NUMBER}")]);
    }
);

contract!(
    a_reroute_already_sent_is_still_followed_when_the_key_changes,
    |h| {
        let channel = ClosedRoute {
            confirm_on_query: true,
            ..ClosedRoute::new(&h)
        };
        let engine = channel.engine(&h.engine);
        let shop = h.merchant().await;
        let id = abnormal_refund(&h, &engine, &shop).await;
        engine
            .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
            .await
            .unwrap();
        // Sent whole and accepted; then the servers restart with another key.
        engine.dispatch_once(&config()).await.unwrap();
        assert_eq!(channel.sent(), vec![format!("工商银行|{FULL_NUMBER}")]);
        let other_key = AccountKey::from_bytes(&[9; 32]).unwrap();
        let misconfigured = engine.clone().with_account_key(other_key);
        drain(&h, &misconfigured).await;
        // A query needs no account: the channel's confirmation is still taken.
        assert_eq!(
            engine.get_refund(&shop, &id).await.unwrap().status,
            RefundStatus::Succeeded
        );
        assert_eq!(channel.sent().len(), 1);
        assert_eq!(sealed_of(&h, &id).await, "NULL");
    }
);

contract!(
    a_sealed_account_number_moved_to_another_refund_does_not_open,
    |h| {
        let channel = ClosedRoute::new(&h);
        let engine = channel.engine(&h.engine);
        let (shop, other_shop) = (h.merchant().await, h.merchant().await);
        let id = abnormal_refund(&h, &engine, &shop).await;
        let other = abnormal_refund(&h, &engine, &other_shop).await;
        for refund_id in [&id, &other] {
            engine
                .reroute_refund(&Principal::Admin, refund_id, reroute_to_bank())
                .await
                .unwrap();
        }
        // Someone with database access copies one refund's sealed number onto the other.
        h.execute(&format!(
            "UPDATE refunds SET reroute_account_sealed = \
         (SELECT reroute_account_sealed FROM refunds WHERE id = '{id}') WHERE id = '{other}'"
        ))
        .await;
        drain(&h, &engine).await;
        let moved = engine.get_refund(&other_shop, &other).await.unwrap();
        assert_eq!(moved.status, RefundStatus::Abnormal);
        assert_eq!(
            engine.get_refund(&shop, &id).await.unwrap().status,
            RefundStatus::Succeeded
        );
        // Sent once, for the refund it was sealed to.
        assert_eq!(channel.sent(), vec![format!("工商银行|{FULL_NUMBER}")]);
    }
);

contract!(
    a_reroute_kept_masked_by_an_earlier_version_is_never_sent_masked,
    |h| {
        let channel = ClosedRoute::new(&h);
        let engine = channel.engine(&h.engine);
        let shop = h.merchant().await;
        let id = abnormal_refund(&h, &engine, &shop).await;
        engine
            .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
            .await
            .unwrap();
        // What a reroute of an earlier version left: the masked number and nothing sealed.
        h.execute(&format!(
            "UPDATE refunds SET reroute_account_sealed = NULL WHERE id = '{id}'"
        ))
        .await;
        drain(&h, &engine).await;
        let refund = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(refund.status, RefundStatus::Abnormal);
        assert!(channel.sent().is_empty(), "sent: {:?}", channel.sent());
        let shown = serde_json::to_string(&refund).unwrap();
        assert!(shown.contains("reroute it again"), "{shown}");
    }
);

contract!(
    without_an_account_key_a_reroute_to_a_bank_account_is_refused,
    |h| {
        let channel = ClosedRoute::new(&h);
        let engine = channel.engine(&h.engine);
        let shop = h.merchant().await;
        let id = abnormal_refund(&h, &engine, &shop).await;
        // A PostgreSQL server with no key configured.
        let mut keyless = engine.clone();
        keyless.account_key = None;
        let refused = keyless
            .reroute_refund(&Principal::Admin, &id, reroute_to_bank())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "account_key_not_configured");
        assert!(
            refused.to_string().contains("YUANLU_ACCOUNT_KEY_FILE"),
            "{refused}"
        );
        let refund = engine.get_refund(&shop, &id).await.unwrap();
        assert_eq!(refund.status, RefundStatus::Abnormal, "nothing changed");
        assert_eq!(sealed_of(&h, &id).await, "NULL");
        // Back to the merchant needs no key.
        let to_merchant: RerouteInput =
            serde_json::from_value::<bodies::RerouteInput>(json!({ "to": "merchant" }))
                .unwrap()
                .into();
        let paid = keyless
            .reroute_refund(&Principal::Admin, &id, to_merchant)
            .await
            .unwrap();
        assert_eq!(paid.status, RefundStatus::Succeeded);
        assert!(channel.sent().is_empty());
    }
);

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
