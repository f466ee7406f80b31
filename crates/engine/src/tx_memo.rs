//! What one write transaction has already read, and the rows it holds locked, so that the
//! creates sharing it (group commit, [`crate::refund_writer`]) do not read them again.
//!
//! Reads that nothing in the transaction changes (a merchant's settings, whether it has a
//! webhook, whether a business date is settled) are kept as first read: the creates of the
//! batch then see the same snapshot, as if the batch had run at its first read. Locked rows
//! (a merchant's balance, its audit head) are kept as this transaction last wrote them; code
//! that writes them without the memo must call [`TxMemo::forget_locked`] afterwards.

use std::collections::HashMap;

use yuanlu_domain::audit::GENESIS_HASH;
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_store::{AuditHeadRow, AuditRow, BalanceRow, Conn, DayKey, DaySums};

use crate::error::{EngineError, EngineResult};
use crate::views;

#[derive(Default)]
pub(crate) struct TxMemo {
    settings: HashMap<String, MerchantSettings>,
    has_webhook: HashMap<String, bool>,
    settled: HashMap<String, bool>,
    balances: HashMap<String, BalanceRow>,
    audit_heads: HashMap<String, AuditHeadRow>,
    /// A merchant day's totals as first read, plus the refunds this transaction has
    /// created since: the refund rules' sales and refunds of the day.
    day_totals: HashMap<DayKey, DaySums>,
    /// The same, first read under the merchant's balance lock: the daily limit.
    day_refunds: HashMap<DayKey, DaySums>,
    /// A merchant's stored settings versions (issue 16): `(effective_from_us, version,
    /// settings)`, oldest first; empty when its settings never changed.
    settings_versions: HashMap<String, Vec<(i64, i64, MerchantSettings)>>,
}

impl TxMemo {
    pub async fn settings(
        &mut self,
        conn: &mut Conn<'_>,
        merchant_id: &str,
    ) -> EngineResult<MerchantSettings> {
        if let Some(settings) = self.settings.get(merchant_id) {
            return Ok(settings.clone());
        }
        let merchant = conn
            .get_merchant(merchant_id)
            .await?
            .ok_or_else(|| EngineError::corrupt(format!("merchant {merchant_id} is missing")))?;
        let settings = views::merchant(&merchant)?.settings;
        self.settings
            .insert(merchant_id.to_string(), settings.clone());
        Ok(settings)
    }

    pub async fn has_webhook(
        &mut self,
        conn: &mut Conn<'_>,
        merchant_id: &str,
    ) -> EngineResult<bool> {
        if let Some(known) = self.has_webhook.get(merchant_id) {
            return Ok(*known);
        }
        let known = conn.get_webhook(merchant_id).await?.is_some();
        self.has_webhook.insert(merchant_id.to_string(), known);
        Ok(known)
    }

    /// Whether settlement has run for `business_date` (`YYYY-MM-DD`).
    pub async fn is_settled(
        &mut self,
        conn: &mut Conn<'_>,
        business_date: &str,
    ) -> EngineResult<bool> {
        if let Some(known) = self.settled.get(business_date) {
            return Ok(*known);
        }
        let known = conn.is_settled(business_date).await?;
        self.settled.insert(business_date.to_string(), known);
        Ok(known)
    }

    /// The merchant day's sales and the refunds counting against it.
    pub async fn day_totals(&mut self, conn: &mut Conn<'_>, day: &DayKey) -> EngineResult<DaySums> {
        if let Some(totals) = self.day_totals.get(day) {
            return Ok(*totals);
        }
        let totals = conn.merchant_day(day).await?;
        self.day_totals.insert(day.clone(), totals);
        Ok(totals)
    }

    /// This transaction created a refund that counts against `day` (and wrote it to the
    /// day's row, which the totals already read do not hold).
    pub fn created_refund(&mut self, day: &DayKey, amount_fen: i64) {
        let change = DaySums::refund(amount_fen, 1);
        for known in [&mut self.day_totals, &mut self.day_refunds] {
            if let Some(totals) = known.get_mut(day) {
                totals.add(change);
            }
        }
    }

    /// The merchant day's refunds (count and fen) for the daily limit. Call it while
    /// holding the merchant's balance lock ([`TxMemo::locked_balance`]), so that
    /// concurrent creates of the merchant are counted.
    pub async fn day_refunds(
        &mut self,
        conn: &mut Conn<'_>,
        day: &DayKey,
    ) -> EngineResult<DaySums> {
        if let Some(known) = self.day_refunds.get(day) {
            return Ok(*known);
        }
        let known = conn.merchant_day(day).await?;
        self.day_refunds.insert(day.clone(), known);
        Ok(known)
    }

    /// The merchant's settings in force when a payment was recorded at `recorded_at_us`
    /// (issue 16: a payment keeps the fee terms it was taken under), or `None` when the
    /// merchant's settings never changed.
    pub async fn settings_at(
        &mut self,
        conn: &mut Conn<'_>,
        merchant_id: &str,
        recorded_at_us: i64,
    ) -> EngineResult<Option<MerchantSettings>> {
        if !self.settings_versions.contains_key(merchant_id) {
            let mut versions = Vec::new();
            for row in conn.settings_versions(merchant_id).await? {
                let settings: MerchantSettings =
                    serde_json::from_str(&row.settings).map_err(|e| {
                        EngineError::corrupt(format!(
                            "settings version {} of {merchant_id}: {e}",
                            row.version
                        ))
                    })?;
                versions.push((row.effective_from_us, row.version, settings));
            }
            self.settings_versions
                .insert(merchant_id.to_string(), versions);
        }
        Ok(self
            .settings_versions
            .get(merchant_id)
            .and_then(|versions| {
                versions
                    .iter()
                    .filter(|(from_us, _, _)| *from_us <= recorded_at_us)
                    .max_by_key(|(from_us, version, _)| (*from_us, *version))
                    .or_else(|| versions.first())
            })
            .map(|(_, _, settings)| settings.clone()))
    }

    /// The merchant's balance row, locked by this transaction.
    pub async fn locked_balance(
        &mut self,
        conn: &mut Conn<'_>,
        merchant_id: &str,
    ) -> EngineResult<BalanceRow> {
        if let Some(row) = self.balances.get(merchant_id) {
            return Ok(*row);
        }
        let row = conn.lock_balance(merchant_id).await?;
        self.balances.insert(merchant_id.to_string(), row);
        Ok(row)
    }

    /// The balance row as this transaction just wrote it.
    pub fn wrote_balance(&mut self, merchant_id: &str, row: BalanceRow) {
        self.balances.insert(merchant_id.to_string(), row);
    }

    /// The chain's head, locked by this transaction.
    pub async fn locked_audit_head(
        &mut self,
        conn: &mut Conn<'_>,
        chain: &str,
    ) -> EngineResult<AuditHeadRow> {
        if let Some(head) = self.audit_heads.get(chain) {
            return Ok(head.clone());
        }
        let head = conn.lock_audit_head(chain, GENESIS_HASH).await?;
        self.audit_heads.insert(chain.to_string(), head.clone());
        Ok(head)
    }

    /// The chain's head moved to `entry`, appended by this transaction.
    pub fn appended(&mut self, entry: &AuditRow) {
        self.audit_heads.insert(
            entry.chain.clone(),
            AuditHeadRow {
                chain: entry.chain.clone(),
                seq: entry.seq,
                hash: entry.hash.clone(),
            },
        );
    }

    /// The merchant's balance or audit head was written without the memo: read them again.
    pub fn forget_locked(&mut self, merchant_id: &str) {
        self.balances.remove(merchant_id);
        self.audit_heads.remove(merchant_id);
    }
}
