//! The clock lives in [`yuanlu_domain::clock`], so the channel simulators (which the engine
//! depends on) read the same one; re-exported here for the engine's callers.

pub use yuanlu_domain::clock::{Clock, SimulatedClock, SystemClock};
