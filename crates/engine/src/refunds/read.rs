//! Reading refunds: one with its timeline, or a page.

use super::*;
use yuanlu_domain::channel::Channel;

impl Engine {
    pub async fn get_refund(&self, who: &Principal, id: &str) -> EngineResult<Refund> {
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn
            .get_refund(who.merchant_scope(), id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "refund",
                id: id.to_string(),
            })?;
        let payment = conn
            .get_payment(None, &row.payment_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("refund {id} names a missing payment")))?;
        refund_view(&mut conn, &row, &payment).await
    }

    pub async fn list_refunds(
        &self,
        who: &Principal,
        query: RefundQuery,
    ) -> EngineResult<Page<Refund>> {
        // No refund has a channel that does not exist (the API refuses one; a page may not).
        let channel = match query.channel.as_deref().map(Channel::parse) {
            Some(None) => {
                return Ok(Page {
                    data: Vec::new(),
                    has_more: false,
                });
            }
            parsed => parsed.flatten(),
        };
        let now = self.clock.now();
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let rows = conn
            .list_refunds(&RefundFilter {
                merchant_id: who.merchant_scope().map(str::to_string),
                status: query.status,
                payment_id: query.payment_id,
                channel,
                created_from_us: query.created_from.map(to_micros),
                created_to_us: query.created_to.map(to_micros),
                overdue: query.overdue.then(|| {
                    (
                        to_micros(now),
                        to_micros(transition::unconfirmed_before(now)),
                    )
                }),
                starting_after: query.starting_after,
                limit: query.limit + 1,
            })
            .await?;
        let has_more = rows.len() as i64 > query.limit;
        let mut data = Vec::with_capacity(rows.len());
        for row in rows.iter().take(query.limit as usize) {
            let payment = conn
                .get_payment(None, &row.payment_id)
                .await?
                .ok_or_else(|| {
                    EngineError::corrupt(format!("refund {} names a missing payment", row.id))
                })?;
            data.push(refund_view(&mut conn, row, &payment).await?);
        }
        Ok(Page { data, has_more })
    }
}

/// The full view of a refund: row, destination from its payment, timeline from the audit log.
pub(crate) async fn refund_view(
    conn: &mut Conn<'_>,
    row: &RefundRow,
    payment: &PaymentRow,
) -> EngineResult<Refund> {
    let entries = conn.audit_of_subject(&row.id).await?;
    let mut view = refund_view_of(row, payment, &entries)?;
    view.evidence = crate::evidence::refund_evidence(conn, &row.id).await?.1;
    Ok(view)
}

/// The full view of a refund from its row, its payment and all its audit entries.
pub(crate) fn refund_view_of(
    row: &RefundRow,
    payment: &PaymentRow,
    entries: &[yuanlu_store::AuditRow],
) -> EngineResult<Refund> {
    let shell = views::refund(row, payment, Vec::new(), None)?;
    let events = timeline::timeline(entries, shell.refund_type, &shell.destination);
    let next = timeline::next_step(
        shell.status,
        shell.review.as_ref().map(|r| r.required_by),
        &shell.destination,
        shell.expected_arrival_by,
    );
    let deductions = if row.deducted_fen == 0 {
        Vec::new()
    } else {
        deductions_of(row, entries)?
    };
    Ok(Refund {
        timeline: events,
        next_step: next,
        deductions,
        ..shell
    })
}

/// A refund's deductions as its `refund.created` audit entry recorded them (the same
/// transaction wrote their rows); their sum must be the row's.
fn deductions_of(
    row: &RefundRow,
    entries: &[yuanlu_store::AuditRow],
) -> EngineResult<Vec<Deduction>> {
    let corrupt =
        |why: &str| EngineError::corrupt(format!("deductions of refund {}: {why}", row.id));
    let created = entries
        .iter()
        .find(|e| e.action == action::CREATED)
        .ok_or_else(|| corrupt("no creation entry"))?;
    #[derive(serde::Deserialize)]
    struct Created {
        #[serde(default)]
        deductions: Vec<Deduction>,
    }
    let created: Created =
        serde_json::from_str(&created.data).map_err(|e| corrupt(&e.to_string()))?;
    let sum: i64 = created.deductions.iter().map(|d| d.amount_fen).sum();
    if sum != row.deducted_fen {
        return Err(corrupt("the audit entry and the row disagree"));
    }
    Ok(created.deductions)
}
