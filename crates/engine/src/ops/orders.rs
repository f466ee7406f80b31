//! `POST /v1/payments/{id}/order`: the goods order of a payment moves, so the goods-return
//! rule (`awaiting_return`) follows the real order, not its state when the payment was
//! recorded:
//!
//! - a goods refund (`customer_cancel`, `quality_issue`) asked for after the order was
//!   marked `shipped` or `delivered` waits in `awaiting_return`;
//! - once the order is `returned` the goods are back: a new goods refund does not wait, and
//!   the payment's refunds already waiting for the goods move on (to review or the queue)
//!   with the return's tracking number, each as `POST /v1/refunds/{id}/return` would.
//!
//! Orders move forward only (unshipped → shipped → delivered; shipped or delivered →
//! returned); repeating the current status changes nothing; anything else is 409
//! `invalid_transition`.

use serde_json::json;
use yuanlu_domain::payment::ShippingStatus;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::time::to_micros;

use crate::Engine;
use crate::audit::{self, AuditEvent};
use crate::auth::Principal;
use crate::error::{EngineError, EngineResult};
use crate::payments::{IDENTIFIER_CHARS_MAX, optional_text};
use crate::refunds::RecordReturn;
use crate::views::Payment;

/// The audit action of an order update (subject: the payment).
pub const ORDER_UPDATED: &str = "payment.order_updated";

/// `POST /v1/payments/{id}/order`.
#[derive(Debug, Clone)]
pub struct UpdateOrder {
    /// `shipped`, `delivered` or `returned` (`unshipped` only for an order not yet shipped).
    pub shipping_status: ShippingStatus,
    /// The merchant's order number: required when the payment has no order yet.
    pub merchant_order_no: Option<String>,
    /// The logistics tracking number: required for `returned` (it is recorded on the
    /// refunds that waited for the goods).
    pub tracking_no: Option<String>,
}

impl Engine {
    // Long on purpose: one transaction under the payment's lock: the shipping rule, the
    // order row, the refunds that waited for the goods, and the audit entry, in that order.
    /// The payment's merchant: moves the payment's order and answers the
    /// payment as `GET /v1/payments/{id}` does.
    pub async fn update_order(
        &self,
        who: &Principal,
        payment_id: &str,
        input: UpdateOrder,
    ) -> EngineResult<Payment> {
        let order_no = optional_text(
            "merchant_order_no",
            input.merchant_order_no.as_deref(),
            IDENTIFIER_CHARS_MAX,
        )?;
        let tracking_no = optional_text(
            "tracking_no",
            input.tracking_no.as_deref(),
            IDENTIFIER_CHARS_MAX,
        )?;
        let to = input.shipping_status;
        if to == ShippingStatus::Returned && tracking_no.is_none() {
            return Err(EngineError::validation(
                "tracking_no",
                "give the logistics tracking number of the returned goods",
            ));
        }
        who.require_merchant()?;
        let not_found = || EngineError::PaymentNotFound(payment_id.to_string());
        let now_us = to_micros(self.clock.now());
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let merchant_id = conn
            .get_payment(who.merchant_scope(), payment_id)
            .await?
            .ok_or_else(not_found)?
            .merchant_id;
        let payment = conn
            .lock_payment(&merchant_id, payment_id)
            .await?
            .ok_or_else(not_found)?;
        let from = match payment.shipping_status.as_deref() {
            None => None,
            Some(id) => Some(ShippingStatus::parse(id).ok_or_else(|| {
                EngineError::corrupt(format!("payment {payment_id} has shipping status {id}"))
            })?),
        };
        let order_no = match (&payment.order_no, order_no) {
            (_, Some(given)) => given,
            (Some(kept), None) => kept.clone(),
            (None, None) => {
                return Err(EngineError::validation(
                    "merchant_order_no",
                    "the payment has no order yet: give the merchant's order number",
                ));
            }
        };
        if !from.unwrap_or(ShippingStatus::Unshipped).may_move_to(to) {
            return Err(EngineError::Conflict(format!(
                "the order of payment {payment_id} is {}; it cannot become {} (orders move forward only)",
                from.map_or("unshipped", ShippingStatus::id),
                to.id()
            )));
        }
        let changed = from != Some(to) || payment.order_no.as_deref() != Some(&order_no);
        if changed {
            conn.update_payment_order(payment_id, &order_no, to.id())
                .await?;
            audit::append(
                &mut conn,
                AuditEvent {
                    chain: &merchant_id,
                    at_us: now_us,
                    actor: &who.actor(),
                    action: ORDER_UPDATED,
                    subject_id: payment_id,
                    data: json!({
                        "merchant_order_no": order_no,
                        "from": from.map(ShippingStatus::id),
                        "to": to.id(),
                        "tracking_no": tracking_no,
                    }),
                },
            )
            .await?;
        }
        let waiting: Vec<String> = if to == ShippingStatus::Returned {
            conn.refunds_of_payment(&merchant_id, payment_id)
                .await?
                .into_iter()
                .filter(|r| r.status == RefundStatus::AwaitingReturn)
                .map(|r| r.id)
                .collect()
        } else {
            Vec::new()
        };
        tx.commit().await?;
        // The refunds that waited for these goods: each moves on in its own transaction,
        // under its payment's lock, exactly as a recorded return does (one that moved in
        // between is left as it is).
        for refund_id in waiting {
            let input = RecordReturn {
                tracking_no: tracking_no.clone().unwrap_or_default(),
            };
            match self.record_return(who, &refund_id, input).await {
                Ok(_) | Err(EngineError::InvalidTransition { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        self.get_payment(who, payment_id).await
    }
}
