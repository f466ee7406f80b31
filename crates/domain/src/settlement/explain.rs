//! A statement in plain words, one sentence a line.

use super::*;

impl Statement {
    /// A short plain-language breakdown, one sentence a line: the date and payout date, the
    /// activity by kind, the equation from sales to the amount credited, why the amount
    /// credited differs from the sales, and any debt carried. For a 1 000.00 CNY credit-card
    /// sale:
    ///
    /// ```text
    /// Statement of merchant mch_1 for 2026-03-10 (Asia/Shanghai), paid out on Wednesday 2026-03-11.
    /// Sales: 1 payment, 1000.00; fees charged 6.00.
    /// sales 1000.00 − fees 6.00 = 994.00 credited on 2026-03-11.
    /// 994.00 is credited and not the 1000.00 sold because of: fees −6.00.
    /// ```
    // Long on purpose: one sentence per line of the explanation, in reading order.
    pub fn explain(&self) -> Vec<String> {
        let cny = |fen: i64| format_cny_abs(fen);
        let mut out = vec![format!(
            "Statement of merchant {} for {} (Asia/Shanghai), paid out on {}.",
            self.merchant_id,
            self.business_date,
            self.payout_date.format("%A %Y-%m-%d"),
        )];
        out.push(format!(
            "Sales: {}, {}; fees charged {}.",
            count_of(self.sales_count, "payment", "payments"),
            cny(self.sales_fen),
            cny(self.fees_fen),
        ));
        if self.voids_count > 0 {
            out.push(format!(
                "Voids: {}, {} reversed; fees returned {}.",
                count_of(self.voids_count, "payment", "payments"),
                cny(self.voids_fen),
                cny(self.void_fees_returned_fen),
            ));
        }
        if self.refunds_count > 0 {
            out.push(format!(
                "Refunds debited: {}, {}; fees returned {}.",
                count_of(self.refunds_count, "refund", "refunds"),
                cny(self.refunds_fen),
                cny(self.refund_fees_returned_fen),
            ));
        }
        if self.credited_back_count > 0 {
            out.push(format!(
                "Refunds credited back (failed, or canceled after being debited): {}, {}; \
                 fees they had returned, charged again {}.",
                count_of(self.credited_back_count, "refund", "refunds"),
                cny(self.credited_back_fen),
                cny(self.credited_back_fees_fen),
            ));
        }
        if self.deductions_count > 0 || self.deductions_released_fen > 0 {
            out.push(format!(
                "Deductions kept from refunds (agreed with the consumer, not paid back): {}, {}; charged again {}.",
                count_of(self.deductions_count, "deduction", "deductions"),
                cny(self.deductions_fen),
                cny(self.deductions_released_fen),
            ));
        }
        if self.opening_carried_fen < 0 {
            out.push(format!(
                "Debt carried from earlier settlements: {}.",
                cny(self.opening_carried_fen),
            ));
        }

        let mut equation = format!("sales {}", cny(self.sales_fen));
        let terms = [
            ('−', "fees", self.fees_fen),
            ('−', "voids", self.voids_fen),
            ('+', "void fees returned", self.void_fees_returned_fen),
            ('−', "refunds", self.refunds_fen),
            ('+', "refund fees returned", self.refund_fees_returned_fen),
            ('+', "credited back", self.credited_back_fen),
            ('−', "fees charged again", self.credited_back_fees_fen),
            ('+', "deductions kept", self.deductions_fen),
            (
                '−',
                "deductions charged again",
                self.deductions_released_fen,
            ),
            ('−', "carried debt", self.opening_carried_fen),
        ];
        for (op, name, amount) in terms {
            if amount != 0 {
                equation.push_str(&format!(" {op} {name} {}", cny(amount)));
            }
        }
        let outcome = if self.total_fen > 0 {
            format!("{} credited on {}", cny(self.payout_fen), self.payout_date)
        } else if self.total_fen == 0 {
            "0.00: nothing to credit".to_owned()
        } else {
            format!("−{}: nothing credited", cny(self.total_fen))
        };
        out.push(format!("{equation} = {outcome}."));

        if self.payout_fen != self.sales_fen {
            let reasons = [
                ("fees", -self.fees_fen),
                (
                    "voids net of fees returned",
                    self.void_fees_returned_fen - self.voids_fen,
                ),
                (
                    "refunds net of fees returned",
                    self.refund_fees_returned_fen - self.refunds_fen,
                ),
                (
                    "refunds credited back net of fees",
                    self.credited_back_fen - self.credited_back_fees_fen,
                ),
                (
                    "deductions kept",
                    self.deductions_fen - self.deductions_released_fen,
                ),
                ("debt carried from earlier", self.opening_carried_fen),
                (
                    "debt carried to later settlements",
                    -self.closing_carried_fen,
                ),
            ];
            let reasons: Vec<String> = reasons
                .into_iter()
                .filter(|(_, fen)| *fen != 0)
                .map(|(name, fen)| format!("{name} {}", signed_cny(fen)))
                .collect();
            out.push(format!(
                "{} is credited and not the {} sold because of: {}.",
                cny(self.payout_fen),
                cny(self.sales_fen),
                reasons.join(", "),
            ));
        }
        if self.closing_carried_fen < 0 {
            out.push(format!(
                "The merchant owes {}: it is carried and deducted from later payouts.",
                cny(self.closing_carried_fen),
            ));
        }
        out
    }
}

fn count_of(count: i64, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}

impl StatementLine {
    /// The line in one plain English sentence, e.g. `credit card payment pay_1 at 10:00:
    /// sale 1000.00 less fee 6.00 = +994.00`; a line that stored its English when it was
    /// settled says that.
    pub fn english(&self) -> String {
        if !self.explanation.is_empty() {
            return self.explanation.clone();
        }
        let (reference, channel) = (&self.reference, self.channel.display_name());
        let payment = self.payment_id.as_deref().unwrap_or_default();
        let (amount, fee) = (format_cny(self.amount_fen), format_cny(self.fee_fen));
        let net = signed_cny(self.net_fen);
        match self.kind {
            LineKind::Payment => {
                let at = self.captured_at.map_or_else(String::new, |at| {
                    at.with_timezone(&shanghai()).format("%H:%M").to_string()
                });
                format!(
                    "{channel} payment {reference} at {at}: sale {amount} less fee {fee} = {net}"
                )
            }
            LineKind::Void => format!(
                "void {reference} of {channel} payment {payment}: sale {amount} reversed, its fee {fee} returned = {net}"
            ),
            LineKind::Refund => {
                let fee_text = if self.fee_fen == 0 {
                    "no fee returned".to_owned()
                } else {
                    format!("fee {fee} returned")
                };
                format!(
                    "refund {reference} of {channel} payment {payment}: {amount} debited, {fee_text} = {net}"
                )
            }
            LineKind::RefundCreditedBack => {
                let fee_text = if self.fee_fen == 0 {
                    String::new()
                } else {
                    format!(" less the fee {fee} it had returned")
                };
                format!(
                    "refund {reference} of {channel} payment {payment} failed, was canceled or was paid by the merchant directly: {amount} credited back{fee_text} = {net}"
                )
            }
            LineKind::Deduction | LineKind::DeductionReleased => {
                let Some(d) = &self.deduction else {
                    return format!("deduction of refund {reference}: {amount} = {net}");
                };
                let what = if self.kind == LineKind::DeductionReleased {
                    "charged again as the refund was credited back"
                } else {
                    "kept by the merchant, not paid to the consumer"
                };
                format!(
                    "deduction {} of refund {reference}: {} {amount} {what} ({}) = {net}",
                    d.line_no,
                    d.kind.english(),
                    d.reason,
                )
            }
        }
    }
}
