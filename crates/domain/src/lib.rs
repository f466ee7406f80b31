//! yuanlu's domain: every rule about money lives here, pure and synchronous.
//!
//! - [`account`]: account numbers masked to their first and last four digits.
//! - [`money`]: amounts in fen and rates in parts per million, half-up rounding.
//! - [`channel`]: the five payment channels and their default settings.
//! - [`settings`]: per-merchant settings (fees, windows, fee-refund policy, review thresholds).
//! - [`fees`]: the merchant fee of a payment and the fee returned by each refund.
//! - [`clock`]: the one source of "now" (real or simulated); nothing else reads the OS clock.
//! - [`time`]: Asia/Shanghai business dates of UTC instants.
//! - [`calendar`]: China's working-day calendar (holidays and 调休), embedded 2024–2026.
//! - [`arrival`]: when a refund accepted by the channel is expected to arrive.
//! - [`payment`]: a captured payment and what is still refundable.
//! - [`refund`]: refund states, reasons, the state machine.
//! - [`transition`]: what each refund transition does to money: payment counters, ledger
//!   event, funding check; and the overdue rule.
//! - [`review`]: which refunds wait for a reviewer, and who may approve them.
//! - [`deduction`]: deductions agreed with the consumer (handling fee, restocking, tax).
//! - [`decide`]: the rules checked when a refund is asked for, in one pure function.
//! - [`audit`]: the canonical content and SHA-256 chaining of audit entries.
//! - [`ledger`]: double-entry postings of every money event, balances, the funding rule.
//! - [`settlement`]: a merchant's statement of one business date: what is credited, and why.
//! - [`case`]: cases (工单) about a refund: their kinds, states and openers.
//! - [`evidence`]: proof and identity (证明材料, 身份核实): file types by content, ID checks,
//!   the evidence a merchant requires above an amount.
//! - [`text_id`]: the stable text ids of the enums, read back once with a clear error.

#[macro_use]
pub mod text_id;

pub mod account;
pub mod arrival;
pub mod audit;
pub mod calendar;
pub mod case;
pub mod channel;
pub mod clock;
pub mod decide;
pub mod deduction;
pub mod evidence;
pub mod fees;
pub mod ledger;
pub mod money;
pub mod payment;
pub mod refund;
pub mod review;
pub mod settings;
pub mod settlement;
pub mod time;
pub mod transition;
