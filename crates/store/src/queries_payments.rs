//! Payments: rows, counters and queries, and the day's totals a refund's create reads.

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::error::{StoreError, StoreResult};
use crate::list::{Bind, ListQuery, bind_all};
use crate::on_conn;
use crate::sql::{PAYMENT_COLUMNS, SETTLED_COUNT, UPDATE_PAYMENT_COUNTERS};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::payment::PaymentKind;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub amount_fen: i64,
    pub currency: String,
    pub fee_fen: i64,
    #[sqlx(try_from = "String")]
    pub kind: PaymentKind,
    pub member: bool,
    pub payer_account: Option<String>,
    pub payer_bank: Option<String>,
    pub batch_no: Option<String>,
    pub trace_no: Option<String>,
    pub rrn: Option<String>,
    pub order_no: Option<String>,
    pub shipping_status: Option<String>,
    pub phone: Option<String>,
    pub captured_at_us: i64,
    pub created_at_us: i64,
    pub amount_refunded_fen: i64,
    pub amount_in_flight_fen: i64,
    pub fee_returned_fen: i64,
    pub refund_count: i64,
    pub voided: bool,
}

/// The refund counters of a payment, written back after a refund changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCounters {
    pub amount_refunded_fen: i64,
    pub amount_in_flight_fen: i64,
    pub fee_returned_fen: i64,
    pub refund_count: i64,
    pub voided: bool,
}

impl PaymentCounters {
    /// Moves the counters as the domain decided (`yuanlu_domain::transition`).
    pub fn apply(&mut self, delta: &yuanlu_domain::transition::CounterDelta) {
        self.amount_in_flight_fen += delta.in_flight_fen;
        self.amount_refunded_fen += delta.refunded_fen;
        self.fee_returned_fen += delta.fee_returned_fen;
        self.refund_count += delta.refund_count;
        self.voided |= delta.voided;
    }
}

impl PaymentRow {
    pub fn counters(&self) -> PaymentCounters {
        PaymentCounters {
            amount_refunded_fen: self.amount_refunded_fen,
            amount_in_flight_fen: self.amount_in_flight_fen,
            fee_returned_fen: self.fee_returned_fen,
            refund_count: self.refund_count,
            voided: self.voided,
        }
    }

    /// The row with these counters, as the database holds it after they are written.
    pub fn set_counters(&mut self, counters: &PaymentCounters) {
        self.amount_refunded_fen = counters.amount_refunded_fen;
        self.amount_in_flight_fen = counters.amount_in_flight_fen;
        self.fee_returned_fen = counters.fee_returned_fen;
        self.refund_count = counters.refund_count;
        self.voided = counters.voided;
    }
}

/// Filters of `GET /v1/payments`; `merchant_id` is always set for a merchant key.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub merchant_id: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

/// A payment by id, of the merchant `$2`: a router query (one shard).
pub static PAYMENT_OF_MERCHANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND merchant_id = $2")
});
/// [`PAYMENT_OF_MERCHANT`], locked (PostgreSQL).
pub static PAYMENT_OF_MERCHANT_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *PAYMENT_OF_MERCHANT));
/// A payment by id of any merchant (the acquirer's; `$2` is NULL): every shard is asked.
pub static PAYMENT_OF_ANY_MERCHANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND $2 IS NULL")
});
/// [`PAYMENT_OF_ANY_MERCHANT`], locked (PostgreSQL).
pub static PAYMENT_OF_ANY_MERCHANT_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *PAYMENT_OF_ANY_MERCHANT));

impl Conn<'_> {
    pub async fn insert_payment(&mut self, row: &PaymentRow) -> StoreResult<()> {
        let sql = "INSERT INTO payments (id, merchant_id, terminal_id, channel, amount_fen, currency, fee_fen, kind, \
            member, payer_account, payer_bank, batch_no, trace_no, rrn, order_no, shipping_status, phone, \
            captured_at_us, created_at_us) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
        on_conn!(self, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.merchant_id)
            .bind(&row.terminal_id)
            .bind(row.channel.id())
            .bind(row.amount_fen)
            .bind(&row.currency)
            .bind(row.fee_fen)
            .bind(row.kind.id())
            .bind(row.member)
            .bind(&row.payer_account)
            .bind(&row.payer_bank)
            .bind(&row.batch_no)
            .bind(&row.trace_no)
            .bind(&row.rrn)
            .bind(&row.order_no)
            .bind(&row.shipping_status)
            .bind(&row.phone)
            .bind(row.captured_at_us)
            .bind(row.created_at_us)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A payment of `merchant_id` (any merchant's when `None`, for the admin).
    pub async fn get_payment(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        self.select_payment(merchant_id, id, false).await
    }

    /// The payment, locked for the rest of the transaction. PostgreSQL: `FOR UPDATE`, so
    /// concurrent refunds of one payment queue behind each other. SQLite: the transaction
    /// already holds the database's write lock (`BEGIN IMMEDIATE`).
    pub async fn lock_payment(
        &mut self,
        merchant_id: &str,
        id: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        self.select_payment(Some(merchant_id), id, true).await
    }

    /// Locks these payments in id order, up front (PostgreSQL; SQLite's write transaction
    /// holds the only write lock already). A transaction that locks several payments this
    /// way before any merchant row cannot deadlock with another doing the same.
    pub async fn lock_payments_in_order(&mut self, ids: &[String]) -> StoreResult<()> {
        let Conn::Postgres(c) = self else {
            return Ok(());
        };
        let sql = "SELECT id FROM payments WHERE id = ANY($1) ORDER BY id FOR UPDATE";
        sqlx::query(sql).bind(ids).fetch_all(&mut **c).await?;
        Ok(())
    }

    async fn select_payment(
        &mut self,
        merchant_id: Option<&str>,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PaymentRow>> {
        // A merchant's payment is read on its merchant's shard alone (docs/scaling.md).
        let lock = lock && matches!(self, Conn::Postgres(_));
        let sql = match (merchant_id, lock) {
            (Some(_), false) => PAYMENT_OF_MERCHANT.as_str(),
            (Some(_), true) => PAYMENT_OF_MERCHANT_FOR_UPDATE.as_str(),
            (None, false) => PAYMENT_OF_ANY_MERCHANT.as_str(),
            (None, true) => PAYMENT_OF_ANY_MERCHANT_FOR_UPDATE.as_str(),
        };
        Ok(on_conn!(self, |c| sqlx::query_as::<_, PaymentRow>(sql)
            .bind(id)
            .bind(merchant_id)
            .fetch_optional(&mut **c)
            .await)?)
    }

    /// Writes a payment's counters (`merchant_id`: the payment's merchant, its shard).
    pub async fn update_payment_counters(
        &mut self,
        merchant_id: &str,
        id: &str,
        counters: &PaymentCounters,
    ) -> StoreResult<()> {
        let sql = UPDATE_PAYMENT_COUNTERS;
        let result = on_conn!(self, |c| sqlx::query(sql)
            .bind(id)
            .bind(counters.amount_refunded_fen)
            .bind(counters.amount_in_flight_fen)
            .bind(counters.fee_returned_fen)
            .bind(counters.refund_count)
            .bind(counters.voided)
            .bind(merchant_id)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()))?;
        if result != 1 {
            return Err(StoreError::Corrupt(format!(
                "payment {id} vanished during its update"
            )));
        }
        Ok(())
    }

    pub async fn list_payments(&mut self, filter: &PaymentFilter) -> StoreResult<Vec<PaymentRow>> {
        let mut query = ListQuery::default();
        if let Some(merchant_id) = &filter.merchant_id {
            query.push("merchant_id = ?", Bind::Text(merchant_id.clone()));
        }
        if let Some(after) = &filter.starting_after {
            query.push("id < ?", Bind::Text(after.clone()));
        }
        let sql = query.sql(PAYMENT_COLUMNS, "payments", filter.limit);
        Ok(on_conn!(self, |c| bind_all!(
            sqlx::query_as::<_, PaymentRow>(AssertSqlSafe(sql.clone())),
            &query.binds
        )
        .fetch_all(&mut **c)
        .await)?)
    }

    /// Settlement has run for this business date (`YYYY-MM-DD`).
    pub async fn is_settled(&mut self, business_date: &str) -> StoreResult<bool> {
        let sql = SETTLED_COUNT;
        let count: i64 = on_conn!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(business_date)
            .fetch_one(&mut **c)
            .await)?;
        Ok(count > 0)
    }
}
