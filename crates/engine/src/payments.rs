//! Recording captured payments and reading them back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use yuanlu_domain::channel::Channel;
use yuanlu_domain::fees::payment_fee;
use yuanlu_domain::money::CURRENCY;
use yuanlu_domain::money::PositiveFen;
use yuanlu_domain::payment::{PaymentKind, ShippingStatus};
use yuanlu_domain::time::to_micros;
use yuanlu_store::{DayKey, DaySums, PaymentFilter, PaymentRow};

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::ids::{self, new_id};
use crate::ledger::{self, LedgerEvent, PostingFacts};
use crate::refunds::AskedAmount;
use crate::views::{self, Page, Payment};

/// Longest free-text identifier accepted (terminal ids, voucher numbers, order numbers).
pub const IDENTIFIER_CHARS_MAX: usize = 64;
/// Largest single payment accepted: 100 million CNY, far above any POS sale, far below
/// where sums of amounts could overflow `i64`.
pub const PAYMENT_AMOUNT_FEN_MAX: i64 = 10_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct PayerInput {
    /// Last four digits of the card; yuanlu stores `**** 1234` and never a full number.
    pub card_last4: Option<String>,
    /// A wallet account (phone or e-mail); stored masked.
    pub wallet_account: Option<String>,
    /// Issuing bank, e.g. "China Merchants Bank".
    pub bank: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VoucherInput {
    pub batch_no: Option<String>,
    pub trace_no: Option<String>,
    pub rrn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OrderInput {
    pub merchant_order_no: String,
    pub shipping_status: ShippingStatus,
}

/// `POST /v1/payments`.
#[derive(Debug, Clone)]
pub struct RecordPayment {
    /// Admin back-fills only: the merchant the payment belongs to.
    pub merchant_id: Option<String>,
    /// `credit_card`, `debit_card`, `wechat`, `alipay` or `unionpay_qr`.
    pub channel: String,
    /// Fen, a positive integer.
    pub amount: AskedAmount,
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

/// A positive amount in fen, at most [`PAYMENT_AMOUNT_FEN_MAX`], or `invalid_amount`.
pub fn parse_positive_amount(fen: i64) -> EngineResult<PositiveFen> {
    Some(fen)
        .filter(|amount| *amount <= PAYMENT_AMOUNT_FEN_MAX)
        .and_then(|amount| PositiveFen::new(amount).ok())
        .ok_or(EngineError::Refused(
            yuanlu_domain::decide::RefundRefusal::InvalidAmount,
        ))
}

/// Optional text: trimmed, empty means absent, at most `max` characters, printable.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> EngineResult<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(EngineError::validation(
            field,
            format!("at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(EngineError::validation(
            field,
            "control characters are not allowed",
        ));
    }
    if looks_like_card_number(value) {
        return Err(EngineError::validation(
            field,
            "looks like a full card number; yuanlu never stores one",
        ));
    }
    Ok(Some(value.to_string()))
}

/// 13 to 19 digits in a row (spaces and dashes ignored): a primary account number.
fn looks_like_card_number(value: &str) -> bool {
    let mut run = 0;
    for c in value.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 13 {
                return true;
            }
        } else if c != ' ' && c != '-' {
            run = 0;
        }
    }
    false
}

/// `zhang.san@example.com` → `z***n@example.com`; `13812345678` → `138****5678`.
fn mask_wallet_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() == 11 && chars.iter().all(char::is_ascii_digit) {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[7..].iter().collect();
        return format!("{head}****{tail}");
    }
    let (local, domain) = account.split_once('@').unwrap_or((account, ""));
    let local: Vec<char> = local.chars().collect();
    let masked = match local.len() {
        0..=2 => "***".to_string(),
        n => format!("{}***{}", local[0], local[n - 1]),
    };
    if domain.is_empty() {
        masked
    } else {
        format!("{masked}@{domain}")
    }
}

fn masked_payer(payer: &PayerInput) -> EngineResult<(Option<String>, Option<String>)> {
    let bank = optional_text("payer.bank", payer.bank.as_deref(), IDENTIFIER_CHARS_MAX)?;
    let account = match (&payer.card_last4, &payer.wallet_account) {
        (Some(_), Some(_)) => {
            return Err(EngineError::validation(
                "payer",
                "give card_last4 or wallet_account, not both",
            ));
        }
        (Some(last4), None) => {
            if last4.len() != 4 || !last4.chars().all(|c| c.is_ascii_digit()) {
                return Err(EngineError::validation(
                    "payer.card_last4",
                    "give exactly the last 4 digits",
                ));
            }
            Some(format!("**** {last4}"))
        }
        (None, Some(wallet)) => {
            optional_text("payer.wallet_account", Some(wallet), IDENTIFIER_CHARS_MAX)?
                .map(|w| mask_wallet_account(&w))
        }
        (None, None) => None,
    };
    Ok((account, bank))
}

fn valid_phone(phone: Option<&str>) -> EngineResult<Option<String>> {
    match phone {
        None => Ok(None),
        Some(p) if p.len() == 11 && p.starts_with('1') && p.chars().all(|c| c.is_ascii_digit()) => {
            Ok(Some(p.to_string()))
        }
        Some(_) => Err(EngineError::validation(
            "phone",
            "give an 11-digit mobile number starting with 1",
        )),
    }
}

impl Engine {
    // Long on purpose: validates each field of the payment in the order of the API's problems, then writes it with its posting and audit entry in one transaction.
    pub async fn record_payment(
        &self,
        who: &Principal,
        input: RecordPayment,
    ) -> EngineResult<Payment> {
        let now = self.clock.now();
        let merchant_id = match (who, &input.merchant_id) {
            (Principal::Admin, Some(id)) => id.clone(),
            (Principal::Admin, None) => {
                return Err(EngineError::validation(
                    "merchant_id",
                    "the admin key must name the merchant",
                ));
            }
            (Principal::Merchant { merchant_id, .. }, None) => merchant_id.clone(),
            (Principal::Merchant { merchant_id, .. }, Some(id)) if id == merchant_id => {
                merchant_id.clone()
            }
            (Principal::Merchant { .. }, Some(_)) => {
                return Err(EngineError::validation(
                    "merchant_id",
                    "a merchant key records payments for its own merchant only",
                ));
            }
        };
        let channel = Channel::parse(&input.channel).ok_or_else(|| {
            EngineError::validation(
                "channel",
                "use one of credit_card, debit_card, wechat, alipay, unionpay_qr",
            )
        })?;
        let amount = input.amount.fen()?.get();
        if input.currency != CURRENCY {
            return Err(EngineError::UnsupportedCurrency(
                input.currency.chars().take(16).collect(),
            ));
        }
        let captured_at = match input.captured_at {
            None => now,
            Some(at) if !self.clock.is_simulated() && *who != Principal::Admin => {
                let _ = at;
                return Err(EngineError::validation(
                    "captured_at",
                    "only the admin (back-fills) or a server on the simulated clock may set captured_at",
                ));
            }
            Some(at) if at > now => {
                return Err(EngineError::validation("captured_at", "is in the future"));
            }
            Some(at) => at,
        };
        let (payer_account, payer_bank) = masked_payer(&input.payer.clone().unwrap_or_default())?;
        let voucher = input.voucher.clone().unwrap_or_default();
        let order_no = match &input.order {
            Some(order) => Some(
                optional_text(
                    "order.merchant_order_no",
                    Some(&order.merchant_order_no),
                    IDENTIFIER_CHARS_MAX,
                )?
                .ok_or_else(|| EngineError::validation("order.merchant_order_no", "is empty"))?,
            ),
            None => None,
        };
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let capture_date = yuanlu_domain::time::shanghai_date(captured_at)
            .format("%Y-%m-%d")
            .to_string();
        if conn.is_settled(&capture_date).await? {
            return Err(EngineError::validation(
                "captured_at",
                format!(
                    "{capture_date} is already settled; record the payment on an open business date"
                ),
            ));
        }
        let merchant_row =
            conn.get_merchant(&merchant_id)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "merchant",
                    id: merchant_id.clone(),
                })?;
        let settings = views::merchant(&merchant_row)?.settings.channel(channel);
        let row = PaymentRow {
            id: new_id(ids::PAYMENT),
            merchant_id: merchant_id.clone(),
            terminal_id: optional_text(
                "terminal_id",
                input.terminal_id.as_deref(),
                IDENTIFIER_CHARS_MAX,
            )?,
            channel,
            amount_fen: amount,
            currency: CURRENCY.to_string(),
            fee_fen: payment_fee(amount, settings.fee_rate_ppm, settings.fee_cap_fen),
            kind: input.kind.unwrap_or(PaymentKind::Sale),
            member: input.member.unwrap_or(false),
            payer_account,
            payer_bank,
            batch_no: optional_text(
                "voucher.batch_no",
                voucher.batch_no.as_deref(),
                IDENTIFIER_CHARS_MAX,
            )?,
            trace_no: optional_text(
                "voucher.trace_no",
                voucher.trace_no.as_deref(),
                IDENTIFIER_CHARS_MAX,
            )?,
            rrn: optional_text("voucher.rrn", voucher.rrn.as_deref(), IDENTIFIER_CHARS_MAX)?,
            order_no,
            shipping_status: input
                .order
                .as_ref()
                .map(|o| o.shipping_status.id().to_string()),
            phone: valid_phone(input.phone.as_deref())?,
            captured_at_us: to_micros(captured_at),
            created_at_us: to_micros(now),
            amount_refunded_fen: 0,
            amount_in_flight_fen: 0,
            fee_returned_fen: 0,
            refund_count: 0,
            voided: false,
        };
        conn.insert_payment(&row).await?;
        ledger::post(
            &mut conn,
            &PostingFacts {
                merchant_id: &merchant_id,
                event: LedgerEvent::PaymentCaptured,
                reference: &row.id,
                payment_id: Some(&row.id),
                channel: Some(channel),
                amount_fen: amount,
                fee_fen: row.fee_fen,
                // The sale belongs to the day it was captured (a back-fill to its own day).
                at: captured_at,
            },
        )
        .await?;
        // The day's sales, under the balance lock the posting took (`queries_merchant_days`).
        conn.add_to_merchant_days(&BTreeMap::from([(
            DayKey::containing(&merchant_id, row.captured_at_us),
            DaySums::sale(amount),
        )]))
        .await?;
        audit::append(&mut conn, AuditEvent {
            chain: &merchant_id,
            at_us: row.created_at_us,
            actor: &who.actor(),
            action: "payment.recorded",
            subject_id: &row.id,
            data: json!({ "channel": row.channel, "amount": amount, "fee": row.fee_fen, "captured_at_us": row.captured_at_us }),
        })
        .await?;
        tx.commit().await?;
        views::payment(&row, &[])
    }

    pub async fn get_payment(&self, who: &Principal, id: &str) -> EngineResult<Payment> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn
            .get_payment(who.merchant_scope(), id)
            .await?
            .ok_or_else(|| EngineError::PaymentNotFound(id.to_string()))?;
        let refunds = conn.refunds_of_payment(&row.merchant_id, id).await?;
        views::payment(&row, &refunds)
    }

    pub async fn list_payments(
        &self,
        who: &Principal,
        limit: i64,
        starting_after: Option<String>,
    ) -> EngineResult<Page<Payment>> {
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_payments(&PaymentFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                starting_after,
                limit: limit + 1,
            })
            .await?;
        Page::of_rows(rows, limit, |r| views::payment(&r, &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_accounts_are_masked() {
        assert_eq!(mask_wallet_account("13812345678"), "138****5678");
        assert_eq!(
            mask_wallet_account("zhangsan@example.com"),
            "z***n@example.com"
        );
        assert_eq!(mask_wallet_account("ab"), "***");
    }

    #[test]
    fn full_card_numbers_are_refused_anywhere() {
        assert!(looks_like_card_number("6225 8802 1234 0403"));
        assert!(looks_like_card_number("6225880212340403"));
        assert!(!looks_like_card_number("T-0001-2026"));
        assert!(optional_text("note", Some("card 6225880212340403"), 100).is_err());
    }
}
