//! yuanlu's use cases: each reads under the right lock, asks the domain, and writes the
//! change, its payment counters and its audit entry in one transaction. Inputs are plain
//! typed structs (the HTTP bodies that become them are `yuanlu_web::api::bodies`); answers
//! are data, never sentences.
//!
//! - [`clock`]: real and simulated time; every use case asks the clock, never the OS.
//! - [`ids`]: prefixed, time-ordered ids and secret keys.
//! - [`auth`]: API keys and the [`auth::Principal`] they stand for.
//! - [`error`]: [`EngineError`], whose `code()` is the API's stable error code.
//! - [`audit`]: appending to and verifying the SHA-256 chain.
//! - [`merchants`], [`payments`]: the use cases of merchants, keys and payments.
//! - [`refunds`]: `create` (with [`refund_writer`]'s group commit), `review` (approve,
//!   reject, cancel, returned goods) and `read`.
//! - `transition`: the one writer of a refund's status change and its money effects,
//!   below `refunds` and `dispatch` (which both call it).
//! - [`dispatch`]: `worker` takes refunds to their channel, exactly once; `outcome` applies
//!   each channel answer; `reroute` is the operator's way out of `abnormal`.
//! - [`notify`]: merchants' webhooks (`webhooks`: signed delivery) and consumers' SMS
//!   (`sms`), both written to an outbox in the transaction that caused them; an SMS's text
//!   is its facts (`sms_text::SmsFacts`) worded through `yuanlu_words`' `sms.ftl`.
//! - [`cases`]: complaints about a refund; their timeline is data (`CaseEventFacts`).
//! - [`views`]: what the API returns, built from stored rows, as data (no sentences).
//! - [`timeline`]: a refund's history, where the money is, and what happens next, as data
//!   the edge renders in the reader's language (`yuanlu_web::present`).
//! - [`audience`]: what the consumer, the merchant and the acquirer may see of a refund.

pub mod account_key;
pub mod arrival;
pub mod audience;
pub mod audit;
pub mod auth;
pub mod bank_statements;
pub mod cases;
pub mod clock;
pub mod dispatch;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod merchant_list;
pub mod merchants;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod ops_lists;
pub mod overdue;
pub mod payment_search;
pub mod payments;
pub mod public;
pub mod reconciliation;
pub mod refund_writer;
pub mod refunds;
pub mod reports;
pub mod settlement;
pub mod settlement_schedule;
pub mod staff;
pub mod terminals;
pub mod timeline;
pub(crate) mod transition;
mod tx_memo;
pub mod views;
pub mod webhook_net;

use std::sync::{Arc, OnceLock};

pub use error::{EngineError, EngineResult};
pub use yuanlu_store::Db;

use yuanlu_domain::arrival::ArrivalRules;
use yuanlu_domain::calendar::BusinessCalendar;

use crate::clock::Clock;

/// The use cases over one database and one clock. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The channel connectors; `None` where nothing is dispatched (e.g. CLI commands).
    pub channels: Option<Arc<dispatch::ChannelSet>>,
    /// China's business days, for expected arrival dates.
    pub calendar: Arc<BusinessCalendar>,
    pub arrival_rules: Arc<ArrivalRules>,
    /// Where webhooks may go (SSRF policy) and the client that delivers them.
    pub webhook_network: Arc<webhook_net::WebhookNetwork>,
    /// Seals the full account number of a reroute; `None` refuses reroutes to a bank account.
    pub account_key: Option<Arc<account_key::AccountKey>>,
    /// Where evidence files are kept; `None` refuses file uploads.
    pub evidence_store: Option<Arc<evidence::EvidenceStore>>,
    /// Group commit of refund creation, started on first use (it needs a Tokio runtime).
    refund_writer: Arc<OnceLock<refund_writer::RefundWriter>>,
    group_commit: Arc<refund_writer::GroupCommitStats>,
    /// When each key's last use was last written (see [`auth::KeyUse`]).
    key_use: Arc<auth::KeyUse>,
}

impl Engine {
    /// An engine with the embedded business calendar (2024–2026) and the spec's arrival rules.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        let calendar = BusinessCalendar::embedded().unwrap_or_else(|error| {
            // Unreachable with the shipped data (a test parses it); degrade to Monday–Friday.
            tracing::error!(%error, "embedded calendar data does not parse; using Monday–Friday");
            BusinessCalendar::default()
        });
        Self {
            db,
            clock,
            channels: None,
            calendar: Arc::new(calendar),
            arrival_rules: Arc::new(ArrivalRules::default()),
            webhook_network: Arc::default(),
            account_key: None,
            evidence_store: None,
            refund_writer: Arc::new(OnceLock::new()),
            group_commit: Arc::default(),
            key_use: Arc::default(),
        }
    }

    pub(crate) fn refund_writer(&self) -> &refund_writer::RefundWriter {
        self.refund_writer
            .get_or_init(|| refund_writer::RefundWriter::start(self.batch_target()))
    }

    pub(crate) fn batch_target(&self) -> refund_writer::BatchTarget {
        refund_writer::BatchTarget {
            db: self.db.clone(),
            stats: self.group_commit.clone(),
        }
    }

    /// The database answers (a connection can be taken from the pool): the health check.
    pub async fn database_answers(&self) -> EngineResult<()> {
        self.db.acquire().await?;
        Ok(())
    }

    /// What group commit has done since this engine started.
    pub fn group_commit_counts(&self) -> refund_writer::GroupCommitCounts {
        self.group_commit.counts()
    }

    pub fn with_calendar(mut self, calendar: BusinessCalendar) -> Self {
        self.calendar = Arc::new(calendar);
        self
    }

    pub fn with_webhook_network(mut self, network: webhook_net::WebhookNetwork) -> Self {
        self.webhook_network = Arc::new(network);
        self
    }

    pub fn with_account_key(mut self, key: account_key::AccountKey) -> Self {
        self.account_key = Some(Arc::new(key));
        self
    }

    pub fn with_evidence_store(mut self, store: evidence::EvidenceStore) -> Self {
        self.evidence_store = Some(Arc::new(store));
        self
    }

    pub fn with_channels(mut self, channels: dispatch::ChannelSet) -> Self {
        self.channels = Some(Arc::new(channels));
        self
    }
}
