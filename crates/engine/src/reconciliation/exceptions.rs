//! Reading reconciliations and their exceptions, and an operator's resolution of one.

use super::*;

impl Engine {
    /// Admin: a reconciliation and its report.
    pub async fn get_reconciliation(
        &self,
        who: &Principal,
        id: &str,
    ) -> EngineResult<ReconciliationView> {
        who.require_admin()?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        let row = conn
            .get_reconciliation(id)
            .await?
            .ok_or_else(|| not_found("reconciliation", id))?;
        let open = conn.count_open_recon_exceptions(id).await?;
        reconciliation_view(&row, open, false)
    }

    /// Admin: a reconciliation's exceptions, in file order.
    pub async fn list_exceptions(
        &self,
        who: &Principal,
        reconciliation_id: &str,
        query: ExceptionQuery,
    ) -> EngineResult<Page<ReconException>> {
        who.require_admin()?;
        let mut pooled = self.db.acquire().await?;
        let mut conn = pooled.conn();
        if conn.get_reconciliation(reconciliation_id).await?.is_none() {
            return Err(not_found("reconciliation", reconciliation_id));
        }
        let limit = query.limit.max(1);
        let rows = conn
            .list_recon_exceptions(&ReconExceptionFilter {
                reconciliation_id: Some(reconciliation_id.to_string()),
                status: query.status.map(|s| s.id().to_string()),
                starting_after: query.starting_after,
                limit: limit + 1,
            })
            .await?;
        Page::of_rows(rows, limit, |r| Ok(exception_view(&r)))
    }

    /// Admin: one exception.
    pub async fn get_exception(&self, who: &Principal, id: &str) -> EngineResult<ReconException> {
        who.require_admin()?;
        let mut pooled = self.db.acquire().await?;
        let row = pooled
            .conn()
            .get_recon_exception(id)
            .await?
            .ok_or_else(|| not_found("reconciliation exception", id))?;
        Ok(exception_view(&row))
    }

    /// Admin: resolves an open exception with a note (required), audited. When the last
    /// open exception of a reconciliation is resolved, the reconciliation is `resolved`.
    pub async fn resolve_exception(
        &self,
        who: &Principal,
        id: &str,
        note: &str,
    ) -> Result<ReconException, ReconError> {
        who.require_admin()?;
        let note = note.trim();
        if note.is_empty() || note.chars().count() > NOTE_CHARS_MAX {
            return Err(EngineError::validation(
                "note",
                format!(
                    "say what was found and done: a note of 1 to {NOTE_CHARS_MAX} characters is required"
                ),
            )
            .into());
        }
        let now_us = to_micros(self.clock.now());
        let actor = who.actor();
        let mut tx = self.db.begin().await?;
        let mut conn = tx.conn();
        let row = conn
            .get_recon_exception(id)
            .await?
            .ok_or_else(|| not_found("reconciliation exception", id))?;
        if !conn
            .resolve_recon_exception(id, note, &actor, now_us)
            .await?
        {
            return Err(ReconError::AlreadyResolved(format!(
                "exception {id} is {}; only an open exception can be resolved",
                row.status
            )));
        }
        if conn
            .count_open_recon_exceptions(&row.reconciliation_id)
            .await?
            == 0
        {
            conn.set_reconciliation_status(&row.reconciliation_id, "resolved")
                .await?;
        }
        audit::append(
            &mut conn,
            AuditEvent {
                chain: SYSTEM_CHAIN,
                at_us: now_us,
                actor: &actor,
                action: action::EXCEPTION_RESOLVED,
                subject_id: id,
                data: json!({
                    "reconciliation_id": row.reconciliation_id,
                    "merchant_id": row.merchant_id,
                    "class": row.class,
                    "our_ref": row.our_ref,
                    "note": note,
                }),
            },
        )
        .await?;
        let row = conn
            .get_recon_exception(id)
            .await?
            .ok_or_else(|| not_found("reconciliation exception", id))?;
        tx.commit().await?;
        Ok(exception_view(&row))
    }
}

pub(crate) fn reconciliation_view(
    row: &ReconciliationRow,
    open_exceptions: i64,
    already_imported: bool,
) -> EngineResult<ReconciliationView> {
    let report: ReconSummary = serde_json::from_str(&row.report)
        .map_err(|e| EngineError::corrupt(format!("reconciliation {}: {e}", row.id)))?;
    Ok(ReconciliationView {
        id: row.id.clone(),
        channel: row.channel.clone(),
        business_date: row.business_date.clone(),
        file_sha256: row.file_sha256.clone(),
        lines: row.lines,
        records: row.records,
        status: row.status.clone(),
        exceptions: row.exceptions,
        open_exceptions,
        report,
        created_by: row.created_by.clone(),
        created_at: from_micros(row.created_at_us),
        already_imported,
    })
}

pub(crate) fn exception_view(row: &ReconExceptionRow) -> ReconException {
    ReconException {
        id: row.id.clone(),
        reconciliation_id: row.reconciliation_id.clone(),
        merchant_id: (!row.merchant_id.is_empty()).then(|| row.merchant_id.clone()),
        class: row.class.clone(),
        kind: row.kind.clone(),
        line_no: row.line_no,
        our_ref: row.our_ref.clone(),
        channel_txn_id: row.channel_txn_id.clone(),
        our_amount: row.our_amount_fen,
        channel_amount: row.channel_amount_fen,
        detail: row.detail.clone(),
        status: row.status.clone(),
        resolution_note: row.resolution_note.clone(),
        resolved_by: row.resolved_by.clone(),
        resolved_at: row.resolved_at_us.map(from_micros),
        created_at: from_micros(row.created_at_us),
    }
}
