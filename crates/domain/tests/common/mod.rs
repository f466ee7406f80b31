//! Shared builders of the domain crate's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::decide::{DecideContext, RefundAsk, RefundPlan, RefundRefusal, decide_refund};
use yuanlu_domain::fees::payment_fee;
use yuanlu_domain::payment::{PaymentKind, PaymentState};
use yuanlu_domain::refund::{RefundReason, RequesterRole};
use yuanlu_domain::review::DayTotals;
use yuanlu_domain::settings::MerchantSettings;

/// 10:00 in Shanghai on 2026-03-10.
pub const CAPTURED_AT: &str = "2026-03-10T02:00:00Z";

pub fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| d.with_timezone(&Utc))
        .expect("valid RFC 3339 instant")
}

/// A fresh sale of `amount_fen` on `channel`, with its fee under the default settings,
/// no order, not a member, nothing refunded.
pub fn payment(channel: Channel, amount_fen: i64) -> PaymentState {
    let settings = MerchantSettings::default().channel(channel);
    PaymentState {
        channel,
        amount_fen,
        fee_fen: payment_fee(amount_fen, settings.fee_rate_ppm, settings.fee_cap_fen),
        kind: PaymentKind::Sale,
        member: false,
        shipping_status: None,
        captured_at: utc(CAPTURED_AT),
        amount_refunded_fen: 0,
        amount_in_flight_fen: 0,
        fee_returned_fen: 0,
        refund_count: 0,
        voided: false,
    }
}

/// Sales so large that no refund trips `refund_ratio`.
pub fn quiet_day() -> DayTotals {
    DayTotals {
        sales_fen: 1_000_000_000,
        refunds_fen: 0,
    }
}

/// A refund asked by the merchant for reason `other`.
pub fn ask(amount_fen: Option<i64>) -> RefundAsk {
    RefundAsk {
        amount_fen,
        reason: RefundReason::Other,
        requested_by: RequesterRole::Merchant,
    }
}

/// Everything `decide_refund` reads, with defaults that trigger no review and no void:
/// default settings, asked one day after capture, a quiet day, not settled.
#[derive(Debug, Clone)]
pub struct Case {
    pub settings: MerchantSettings,
    pub payment: PaymentState,
    pub now: DateTime<Utc>,
    pub today: DayTotals,
    pub settled: bool,
}

impl Case {
    pub fn new(channel: Channel, amount_fen: i64) -> Self {
        let payment = payment(channel, amount_fen);
        let now = payment.captured_at + Duration::days(1);
        Self {
            settings: MerchantSettings::default(),
            payment,
            now,
            today: quiet_day(),
            settled: false,
        }
    }

    /// Asked on the capture day (Asia/Shanghai), one hour after capture.
    pub fn same_day(mut self) -> Self {
        self.now = self.payment.captured_at + Duration::hours(1);
        self
    }

    pub fn decide(&self, ask: &RefundAsk) -> Result<RefundPlan, RefundRefusal> {
        decide_refund(
            ask,
            &DecideContext {
                settings: &self.settings,
                payment: &self.payment,
                now: self.now,
                today: self.today,
                capture_day_settled: self.settled,
            },
        )
    }

    /// A merchant's refund for reason `other`.
    pub fn refund(&self, amount_fen: Option<i64>) -> Result<RefundPlan, RefundRefusal> {
        self.decide(&ask(amount_fen))
    }

    /// Applies an accepted plan as the store would: held in flight, fee counted, one more
    /// refund, voided if it is a void.
    pub fn hold(&mut self, plan: &RefundPlan) {
        self.payment.amount_in_flight_fen += plan.amount_fen;
        self.payment.fee_returned_fen += plan.fee_refunded_fen;
        self.payment.refund_count += 1;
        if plan.refund_type == yuanlu_domain::refund::RefundType::Void {
            self.payment.voided = true;
        }
    }
}

/// The refusal code of a decision, or `"accepted"`.
pub fn code(decision: &Result<RefundPlan, RefundRefusal>) -> &'static str {
    match decision {
        Ok(_) => "accepted",
        Err(refusal) => refusal.code(),
    }
}
