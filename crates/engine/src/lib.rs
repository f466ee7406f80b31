//! yuanlu's use cases: each reads under the right lock, asks the domain, and writes the
//! change, its payment counters and its audit entry in one transaction.
//!
//! - [`clock`]: real and simulated time; every use case asks the clock, never the OS.
//! - [`ids`]: prefixed, time-ordered ids and secret keys.
//! - [`auth`]: API keys and the [`auth::Principal`] they stand for.
//! - [`error`]: [`EngineError`], whose `code()` is the API's stable error code.
//! - [`audit`]: appending to and verifying the SHA-256 chain.
//! - [`merchants`], [`payments`], [`refunds`]: the use cases.
//! - [`views`]: what the API returns, built from stored rows.
//! - [`timeline`]: a refund's history, where the money is, and what happens next.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod error;
pub mod ids;
pub mod merchants;
pub mod payments;
pub mod refunds;
pub mod timeline;
pub mod views;

use std::sync::Arc;

pub use error::{EngineError, EngineResult};
pub use yuanlu_store::Db;

use crate::clock::Clock;

/// The use cases over one database and one clock. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
}

impl Engine {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}
