//! The request bodies of the v1 API: what a client sends, with its OpenAPI schema. Each
//! body becomes the engine's plain input by `From` (destructured, so a field added on one
//! side and not the other does not compile); amounts are parsed here into
//! [`AskedAmount`], so the engine never reads JSON.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use yuanlu_domain::case::CaseKind;
use yuanlu_domain::deduction::Deduction;
use yuanlu_domain::payment::{PaymentKind, ShippingStatus};
use yuanlu_domain::refund::{RefundReason, RequesterRole};
use yuanlu_domain::settings::MerchantSettingsPatch;
use yuanlu_engine as engine;
use yuanlu_engine::auth::MerchantRole;
use yuanlu_engine::refunds::AskedAmount;

/// `From<body>` for the engine's input of the same name and fields: each field moves as it
/// is, or through the function named after it. The body is destructured, so a field added
/// to one side and not the other does not compile.
macro_rules! into_engine {
    ($body:ident => $($engine:ident)::+ { $($field:ident $(: $convert:ident)?),* $(,)? }) => {
        impl From<$body> for $($engine)::+ {
            fn from(body: $body) -> Self {
                let $body { $($field),* } = body;
                Self { $($field $(: $convert($field))?),* }
            }
        }
    };
}

/// A nested body, when sent.
fn opt<A: Into<B>, B>(body: Option<A>) -> Option<B> {
    body.map(Into::into)
}

/// An optional amount, when sent.
fn opt_amount(value: Option<serde_json::Value>) -> Option<AskedAmount> {
    value.map(asked_amount)
}

/// An amount as sent: an integer is fen (checked by [`AskedAmount::from`]); anything else
/// (a string, a fraction, `true`, an object) is no amount, refused by the engine with
/// `invalid_amount` in the order of its checks.
pub fn asked_amount(value: serde_json::Value) -> AskedAmount {
    value
        .as_i64()
        .map_or(AskedAmount::Invalid, AskedAmount::from)
}

/// `POST /v1/terminals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterTerminal {
    pub merchant_id: String,
    /// Field 41, 8 printable ASCII characters, e.g. `10000001`.
    pub terminal_id: String,
    /// Field 42, 15 printable ASCII characters, e.g. `898100012340001`.
    pub merchant_no: String,
}

into_engine!(RegisterTerminal => engine::terminals::RegisterTerminal { merchant_id, terminal_id, merchant_no });

/// `POST /v1/payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPayment {
    /// Admin back-fills only: the merchant the payment belongs to.
    pub merchant_id: Option<String>,
    /// `credit_card`, `debit_card`, `wechat`, `alipay` or `unionpay_qr`.
    pub channel: String,
    /// Fen, a positive integer.
    #[schema(value_type = i64)]
    pub amount: serde_json::Value,
    /// Must be `CNY`.
    pub currency: String,
    pub terminal_id: Option<String>,
    pub payer: Option<PayerInput>,
    pub voucher: Option<VoucherInput>,
    pub kind: Option<PaymentKind>,
    pub member: Option<bool>,
    pub order: Option<OrderInput>,
    /// The consumer's mobile number (11 digits), for SMS and the consumer lookup.
    pub phone: Option<String>,
    /// Only under the simulated clock or for admin back-fills; never in the future.
    pub captured_at: Option<DateTime<Utc>>,
}

into_engine!(RecordPayment => engine::payments::RecordPayment { merchant_id, channel, amount: asked_amount, currency, terminal_id, payer: opt, voucher: opt, kind, member, order: opt, phone, captured_at });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayerInput {
    /// Last four digits of the card; yuanlu stores `**** 1234` and never a full number.
    pub card_last4: Option<String>,
    /// A wallet account (phone or e-mail); stored masked.
    pub wallet_account: Option<String>,
    /// Issuing bank, e.g. "China Merchants Bank".
    pub bank: Option<String>,
}

into_engine!(PayerInput => engine::payments::PayerInput { card_last4, wallet_account, bank });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherInput {
    pub batch_no: Option<String>,
    pub trace_no: Option<String>,
    pub rrn: Option<String>,
}

into_engine!(VoucherInput => engine::payments::VoucherInput { batch_no, trace_no, rrn });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    pub merchant_order_no: String,
    pub shipping_status: ShippingStatus,
}

into_engine!(OrderInput => engine::payments::OrderInput { merchant_order_no, shipping_status });

/// `POST /v1/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    pub payment_id: String,
    /// Fen; omitted means the whole refundable amount.
    #[schema(value_type = Option<i64>)]
    pub amount: Option<serde_json::Value>,
    pub reason: RefundReason,
    /// Unique per merchant; repeating it with the same payment and amount returns the
    /// existing refund. 1–64 of `0-9 A-Z a-z _ - | * @`.
    pub merchant_refund_no: String,
    /// Required when the reason is `other`.
    pub note: Option<String>,
    pub requested_by: Option<RequestedByInput>,
    /// Deductions agreed with the consumer (a handling fee, a restocking charge, tax), each
    /// `{kind, amount, reason}`: the consumer gets `amount` less their sum, the merchant
    /// keeps them. At most 10; their sum must be smaller than the refund's amount. Only the
    /// API takes them (never a POS void or refund).
    #[serde(default)]
    pub deductions: Vec<Deduction>,
}

into_engine!(CreateRefund => engine::refunds::CreateRefund { payment_id, amount: opt_amount, reason, merchant_refund_no, note, requested_by: opt, deductions });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedByInput {
    /// `merchant` (default) or `consumer` (a consumer's request relayed by the merchant).
    pub role: Option<RequesterRole>,
    /// Who asked, e.g. "cashier Li".
    pub name: Option<String>,
}

into_engine!(RequestedByInput => engine::refunds::RequestedByInput { role, name });

/// `POST /v1/refunds/{id}/approve|reject|cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewNote {
    pub note: Option<String>,
}

into_engine!(ReviewNote => engine::refunds::ReviewNote { note });

/// `POST /v1/refunds/{id}/return`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordReturn {
    pub tracking_no: String,
}

into_engine!(RecordReturn => engine::refunds::RecordReturn { tracking_no });

/// `POST /v1/refunds/{id}/reroute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerouteInput {
    /// `bank_account` (the consumer's account, given to the operator) or `merchant`.
    pub to: String,
    /// For `bank_account`: the account number (8–30 digits) and its bank.
    pub account: Option<RerouteAccount>,
    /// For `merchant`: how the merchant paid the consumer: `cash`, `bank_transfer` or
    /// `other` (the default).
    pub method: Option<String>,
    /// For `merchant`: who at the merchant paid (at most 64 characters).
    pub paid_by: Option<String>,
    /// For `merchant`: a note (at most 200 characters).
    pub note: Option<String>,
}

into_engine!(RerouteInput => engine::dispatch::RerouteInput { to, account: opt, method, paid_by, note });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerouteAccount {
    pub number: String,
    pub bank: String,
    pub holder: Option<String>,
}

into_engine!(RerouteAccount => engine::dispatch::RerouteAccount { number, bank, holder });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    pub name: String,
    #[serde(default)]
    pub settings: MerchantSettingsPatch,
}

into_engine!(CreateMerchant => engine::merchants::CreateMerchant { name, settings });

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub role: MerchantRole,
}

into_engine!(CreateApiKey => engine::merchants::CreateApiKey { role });

/// `PATCH /v1/merchants/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    /// Partial settings: omitted fields keep their value, `null` removes an optional one
    /// (`fee_cap_fen`, `arrival`, `daily_refund_limit.amount_fen`/`count`).
    pub settings: MerchantSettingsPatch,
}

into_engine!(UpdateMerchant => engine::ops::settings::UpdateMerchant { settings });

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working, 0 (stops at once) to 604800 (7 days); default
    /// 86400 (24 h).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
}

into_engine!(RotateKey => engine::keys::RotateKey { grace_seconds });

/// `PUT /v1/merchants/{id}/webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// `http://` or `https://` URL that receives the events by POST.
    pub url: String,
}

into_engine!(SetWebhook => engine::notify::SetWebhook { url });

/// `POST /v1/payments/{id}/order`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrder {
    /// `shipped`, `delivered` or `returned` (`unshipped` only for an order not yet shipped).
    pub shipping_status: ShippingStatus,
    /// The merchant's order number: required when the payment has no order yet.
    pub merchant_order_no: Option<String>,
    /// The logistics tracking number: required for `returned` (it is recorded on the
    /// refunds that waited for the goods).
    pub tracking_no: Option<String>,
}

into_engine!(UpdateOrder => engine::ops::orders::UpdateOrder { shipping_status, merchant_order_no, tracking_no });

/// `POST /v1/cases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCase {
    pub refund_id: String,
    pub kind: CaseKind,
    /// What is wrong, 1–1000 characters.
    pub description: String,
    /// How to reach the complainant (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

into_engine!(OpenCase => engine::cases::OpenCase { refund_id, kind, description, contact });

/// `POST /v1/cases/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveCase {
    /// What was done, 1–1000 characters.
    pub resolution: String,
}

into_engine!(ResolveCase => engine::cases::ResolveCase { resolution });

/// `POST /v1/cases/{id}/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCase {
    /// Who handles the case, e.g. "ops: Wang", up to 100 characters.
    pub owner: String,
}

into_engine!(AssignCase => engine::cases::AssignCase { owner });

/// `POST /v1/reconciliation-exceptions/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveException {
    /// What was found and done, 1–2000 characters. Required.
    pub note: Option<String>,
}

/// `POST /v1/public/refund-requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerRefundRequest {
    /// The payment's reference number (`rrn`, on the POS slip), or its payment id when it
    /// has none.
    pub reference: String,
    /// The last 4 digits of the card (or wallet account, or phone) that paid.
    pub last4: String,
    /// Fen; omitted means all that is still refundable.
    #[schema(value_type = Option<i64>)]
    pub amount: Option<serde_json::Value>,
    pub reason: RefundReason,
    /// What happened, up to 500 characters; required for `other`.
    pub description: Option<String>,
    /// How the merchant can reach you (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

into_engine!(ConsumerRefundRequest => engine::ops::consumer::ConsumerRefundRequest { reference, last4, amount: opt_amount, reason, description, contact });

/// `POST /v1/public/refunds/{id}/feedback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveFeedback {
    /// 1 (bad) to 5 (good).
    pub rating: i64,
    /// Up to 500 characters.
    pub comment: Option<String>,
    /// The payment's reference number (`rrn`), or its payment id when it has none.
    pub reference: String,
}

into_engine!(GiveFeedback => engine::public::GiveFeedback { rating, comment, reference });

/// `POST /v1/public/cases`: name the refund by `refund_id` + `reference`, or by
/// `merchant_refund_no` + `phone_last4`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenPublicCase {
    pub refund_id: Option<String>,
    pub reference: Option<String>,
    pub merchant_refund_no: Option<String>,
    pub phone_last4: Option<String>,
    pub kind: CaseKind,
    /// What is wrong, 1–1000 characters.
    pub description: String,
    /// How to reach you (phone, e-mail), up to 100 characters.
    pub contact: Option<String>,
}

into_engine!(OpenPublicCase => engine::public::OpenPublicCase { refund_id, reference, merchant_refund_no, phone_last4, kind, description, contact });

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use yuanlu_domain::money::PositiveFen;

    use super::*;

    #[test]
    fn an_amount_is_a_positive_integer_of_fen_up_to_the_payment_cap() {
        let fen = |n| AskedAmount::Fen(PositiveFen::new(n).unwrap());
        assert_eq!(asked_amount(json!(1)), fen(1));
        assert_eq!(asked_amount(json!(10_000_000_000_i64)), fen(10_000_000_000));
        for no in [
            json!(0),
            json!(-5),
            json!(10_000_000_001_i64),
            json!(12.5),
            json!(1.0),
            json!("100"),
            json!(true),
            json!(null),
            json!({ "fen": 1 }),
            json!(u64::MAX),
        ] {
            assert_eq!(asked_amount(no.clone()), AskedAmount::Invalid, "{no}");
        }
    }

    #[test]
    fn a_body_becomes_the_engines_input_with_its_amount_parsed() {
        let body: CreateRefund = serde_json::from_value(json!({
            "payment_id": "pay_1", "amount": "12", "reason": "customer_cancel",
            "merchant_refund_no": "r1", "requested_by": { "role": "consumer" },
        }))
        .unwrap();
        let input: engine::refunds::CreateRefund = body.into();
        assert_eq!(input.amount, Some(AskedAmount::Invalid));
        assert_eq!(
            input.requested_by.and_then(|r| r.role),
            Some(RequesterRole::Consumer)
        );
        let missing: CreateRefund = serde_json::from_value(json!({
            "payment_id": "pay_1", "amount": null, "reason": "customer_cancel",
            "merchant_refund_no": "r1",
        }))
        .unwrap();
        assert_eq!(engine::refunds::CreateRefund::from(missing).amount, None);
        let unknown = serde_json::from_value::<CreateRefund>(json!({
            "payment_id": "pay_1", "reason": "customer_cancel", "merchant_refund_no": "r1",
            "amout": 5,
        }));
        assert!(unknown.is_err(), "unknown fields are refused");
    }
}
