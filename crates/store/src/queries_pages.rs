//! Queries the pages need beyond the API's: the consumer lookup by receipt number and the
//! card's last four digits, and the console's list of merchants.

use crate::db::Conn;
use crate::error::StoreResult;
use crate::on_conn;
use crate::rows::MerchantRow;

/// The consumer lookup by receipt number and the last four digits of the card (or account)
/// paid with (see [`Conn::public_lookup_by_no_card`]); public so a test can read its plan.
/// The payer account is stored masked (`**** 0403`), so its last four characters are the
/// card's last four digits.
pub const PUBLIC_LOOKUP_BY_NO_CARD_SQL: &str = "SELECT r.id, \
    (p.payer_account IS NOT NULL AND p.payer_account LIKE $2) AS card_matches \
    FROM refunds r JOIN payments p ON p.id = r.payment_id AND p.merchant_id = r.merchant_id \
    WHERE r.merchant_refund_no = $1 ORDER BY r.id LIMIT $3";

/// The console's merchant list: by id (time-ordered), after a cursor.
pub const MERCHANTS_PAGE_SQL: &str = "SELECT id, name, settings, created_at_us FROM merchants \
    WHERE id > $1 ORDER BY id LIMIT $2";

impl Conn<'_> {
    /// Up to `limit` refunds (of any merchant) with this `merchant_refund_no`, in id order,
    /// each with whether its payment's payer account ends with `card_last4` (4 digits,
    /// checked by the caller). Reads the index `refunds_by_merchant_refund_no`.
    pub async fn public_lookup_by_no_card(
        &mut self,
        merchant_refund_no: &str,
        card_last4: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, bool)>> {
        let pattern = format!("%{card_last4}");
        Ok(on_conn!(self, |c| sqlx::query_as::<_, (String, bool)>(
            PUBLIC_LOOKUP_BY_NO_CARD_SQL
        )
        .bind(merchant_refund_no)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Up to `limit` merchants with ids after `after` (`""` for the first page), by id.
    pub async fn list_merchants_page(
        &mut self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<MerchantRow>> {
        Ok(on_conn!(self, |c| sqlx::query_as::<_, MerchantRow>(
            MERCHANTS_PAGE_SQL
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?)
    }
}
