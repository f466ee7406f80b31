//! The acquirer console's list of merchants (admin only).

use crate::Engine;
use crate::auth::Principal;
use crate::error::EngineResult;
use crate::views::{self, Merchant};

/// Merchants listed on one page of the console at most.
pub const MERCHANTS_PAGE_MAX: i64 = 200;

impl Engine {
    /// Up to `limit` (1–[`MERCHANTS_PAGE_MAX`]) merchants after `after`, oldest first, with
    /// their settings (balances are not read: see [`Engine::get_merchant`]). Admin only.
    pub async fn list_merchants(
        &self,
        who: &Principal,
        after: Option<&str>,
        limit: i64,
    ) -> EngineResult<Vec<Merchant>> {
        who.require_admin()?;
        let limit = limit.clamp(1, MERCHANTS_PAGE_MAX);
        let mut pooled = self.db.acquire().await?;
        let rows = pooled
            .conn()
            .list_merchants_page(after.unwrap_or(""), limit)
            .await?;
        rows.iter().map(views::merchant).collect()
    }
}
