//! An operator's reroute of an `abnormal` refund: to the consumer's bank account (sent
//! again), or to the merchant, who paid the consumer directly.

use super::*;

impl Engine {
    /// An operator moves an `abnormal` refund on: to a bank account the consumer gave (it is
    /// sent again, under the same refund id, to that account), or to the merchant, who paid
    /// the consumer directly (cash or a transfer at the counter): it succeeds, its
    /// destination "paid by the merchant directly", and its hold is released back to the
    /// merchant's balance (the merchant paid out of pocket; see docs/decisions.md).
    // Long on purpose: one operator's reroute under the payment's lock: both targets' writes side by side in one transaction.
    pub async fn reroute_refund(
        &self,
        who: &crate::auth::Principal,
        id: &str,
        input: RerouteInput,
    ) -> EngineResult<crate::views::Refund> {
        who.require_admin()?;
        let target = RerouteTarget::parse(&input)?;
        let account_key = match &target {
            RerouteTarget::BankAccount { .. } => Some(
                self.account_key
                    .clone()
                    .ok_or(EngineError::AccountKeyNotConfigured)?,
            ),
            RerouteTarget::Merchant(_) => None,
        };
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let Some((mut row, payment)) = lock_refund(&mut conn, id).await? else {
            return Err(EngineError::NotFound {
                what: "refund",
                id: id.to_string(),
            });
        };
        let status = row.status;
        if status != RefundStatus::Abnormal {
            return Err(EngineError::InvalidTransition {
                refund_id: row.id.clone(),
                status: status.id().to_string(),
                action: "rerouted",
            });
        }
        let mut counters = payment.counters();
        let actor = who.actor();
        let (note, account_shown) = match &target {
            RerouteTarget::BankAccount { display, .. } => (
                format!("rerouted to the consumer's bank account {display}"),
                Some(display.clone()),
            ),
            RerouteTarget::Merchant(paid) => (paid.note(), None),
        };
        let change = Change {
            to: RefundStatus::Processing,
            action: action::REROUTED,
            review_note: Some(note.clone()),
            reviewed_by: Some(actor.clone()),
            tracking_no: None,
        };
        apply_transition(
            &mut conn,
            &mut row,
            &mut counters,
            status,
            &change,
            &actor,
            now_us,
        )
        .await?;
        match target {
            RerouteTarget::BankAccount { account, full, .. } => {
                let key = account_key.ok_or(EngineError::AccountKeyNotConfigured)?;
                // The full number, for the channel: sealed to this refund, erased when the
                // refund leaves dispatch (`finish`).
                row.reroute_account_sealed =
                    Some(key.seal(&row.id, &full).map_err(EngineError::corrupt)?);
                row.reroute_account = Some(account);
                row.send_state = SendState::NotSent;
                // A new route has its own attempts (the old one may have used them all).
                row.dispatch_attempts = 0;
                row.next_attempt_at_us = Some(now_us);
                row.received_account = account_shown;
                conn.reroute_refund(&row).await?;
            }
            RerouteTarget::Merchant(_) => {
                finish(&mut row);
                // The destination marks the refund as paid by the merchant: the ledger
                // releases its hold instead of paying it out through the channel.
                row.received_account = Some(PAID_BY_MERCHANT.to_string());
                let paid = Change {
                    to: RefundStatus::Succeeded,
                    action: action::PAID_BY_MERCHANT,
                    review_note: Some(note),
                    reviewed_by: Some(actor.clone()),
                    tracking_no: None,
                };
                apply_transition(
                    &mut conn,
                    &mut row,
                    &mut counters,
                    RefundStatus::Processing,
                    &paid,
                    &actor,
                    now_us,
                )
                .await?;
                conn.record_refund_outcome(&row).await?;
            }
        }
        let view = crate::refunds::refund_view(&mut conn, &row, &payment).await?;
        tx.commit().await?;
        Ok(view)
    }
}

/// `POST /v1/refunds/{id}/reroute`.
#[derive(Debug, Clone)]
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

/// How the merchant paid the consumer, as recorded by the operator.
struct PaidByMerchant {
    method: &'static str,
    paid_by: Option<String>,
    note: Option<String>,
}

impl PaidByMerchant {
    pub(super) fn parse(input: &RerouteInput) -> EngineResult<Self> {
        let method = match input.method.as_deref().map(str::trim) {
            None | Some("other") => "other",
            Some("cash") => "cash",
            Some("bank_transfer") => "bank_transfer",
            Some(_) => {
                return Err(EngineError::validation(
                    "method",
                    "use `cash`, `bank_transfer` or `other`",
                ));
            }
        };
        Ok(PaidByMerchant {
            method,
            paid_by: free_text(input.paid_by.as_deref(), "paid_by", 64)?,
            note: free_text(input.note.as_deref(), "note", 200)?,
        })
    }

    /// The timeline's note: how, by whom, and the operator's words.
    pub(super) fn note(&self) -> String {
        let method = match self.method {
            "cash" => "in cash",
            "bank_transfer" => "by bank transfer",
            _ => "by other means",
        };
        let by = self
            .paid_by
            .as_deref()
            .map(|who| format!(", by {who}"))
            .unwrap_or_default();
        let note = self
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        format!("{PAID_BY_MERCHANT} ({method}{by}){note}")
    }
}

/// An optional free text: trimmed, empty as none, bounded, no control characters.
fn free_text(value: Option<&str>, field: &str, max: usize) -> EngineResult<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(EngineError::validation(
            field,
            format!("at most {max} characters, no control characters"),
        ));
    }
    Ok(Some(value.to_string()))
}

#[derive(Debug, Clone)]
pub struct RerouteAccount {
    pub number: String,
    pub bank: String,
    pub holder: Option<String>,
}

enum RerouteTarget {
    /// `full` is what the channel needs (`工商银行|6222021234567890`), stored only sealed;
    /// `account` is kept (`工商银行|6222********7890`); `display` is what people see
    /// (`工商银行 **** 7890`).
    BankAccount {
        full: String,
        account: String,
        display: String,
    },
    Merchant(PaidByMerchant),
}

impl RerouteTarget {
    pub(super) fn parse(input: &RerouteInput) -> EngineResult<Self> {
        let merchant_fields =
            input.method.is_some() || input.paid_by.is_some() || input.note.is_some();
        if input.to == "bank_account" && merchant_fields {
            return Err(EngineError::validation(
                "method",
                "`method`, `paid_by` and `note` are for a reroute to the merchant",
            ));
        }
        match (input.to.as_str(), &input.account) {
            ("merchant", None) => Ok(RerouteTarget::Merchant(PaidByMerchant::parse(input)?)),
            ("merchant", Some(_)) => Err(EngineError::validation(
                "account",
                "a reroute to the merchant takes no account",
            )),
            ("bank_account", Some(account)) => {
                let number: String = account
                    .number
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if !(8..=30).contains(&number.len()) || !number.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(EngineError::validation(
                        "account.number",
                        "give the account number: 8 to 30 digits",
                    ));
                }
                let bank = account.bank.trim();
                if bank.is_empty()
                    || bank.chars().count() > 64
                    || bank.chars().any(char::is_control)
                {
                    return Err(EngineError::validation(
                        "account.bank",
                        "give the bank's name (1 to 64 characters)",
                    ));
                }
                let last4 = &number[number.len() - 4..];
                Ok(RerouteTarget::BankAccount {
                    full: format!("{bank}|{number}"),
                    account: format!("{bank}|{}", mask_number(&number)),
                    display: format!("{bank} **** {last4}"),
                })
            }
            ("bank_account", None) => Err(EngineError::validation(
                "account",
                "a reroute to a bank account needs the account",
            )),
            _ => Err(EngineError::validation(
                "to",
                "use `bank_account` or `merchant`",
            )),
        }
    }
}
