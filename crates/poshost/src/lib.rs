//! yuanlu's POS host: terminals speak the China UnionPay dialect of ISO 8583 over TCP
//! (`docs/pos.md`). Shaped like mini-redis:
//!
//! - [`server`]: the listener, a connection limit, graceful shutdown.
//! - [`connection`]: reading whole frames under a length limit and timeouts.
//! - [`handler`]: one frame in, one frame out: terminal, MAC, duplicates, routing.
//! - [`txn`], [`settle`]: the transactions, each through the engine's use cases.
//! - [`codes`]: field 39 and the mapping of engine refusals onto it.

pub mod client;
pub mod codes;
pub mod connection;
pub mod handler;
pub mod preauth;
mod reply;
pub mod server;
pub mod settle;
pub mod txn;
pub mod upload;

pub use handler::Host;
pub use server::{HostConfig, serve};
