//! `GET /v1/payments` with search filters: a cashier finding the original sale by its date,
//! amount, the last four digits of the card or phone, the reference number (参考号), the
//! voucher (trace) number, the terminal or the order number. Every filter has an index
//! (migrations 0015); the query plans are checked by `tests/payment_search_plans.rs`.
//!
//! Last four digits: the payer account is stored masked (`**** 1234`, `138****5678`) and the
//! phone whole; both are matched on their last four characters by the same expression the
//! indexes are built on, [`LAST4_ACCOUNT`] and [`LAST4_PHONE`].

use sqlx::AssertSqlSafe;

use crate::error::StoreResult;
use crate::rows::PaymentRow;
use crate::sql::PAYMENT_COLUMNS;
use crate::{Conn, on_conn};

/// The last four characters of the masked payer account, as indexed.
pub const LAST4_ACCOUNT: &str = "substr(payer_account, length(payer_account) - 3)";
/// The last four digits of the consumer's phone, as indexed.
pub const LAST4_PHONE: &str = "substr(phone, length(phone) - 3)";

/// Filters of a payment search; every one given must match. Amounts in fen, instants in µs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentSearch {
    /// Always set for a merchant (its own payments only).
    pub merchant_id: Option<String>,
    /// Captured at or after.
    pub captured_from_us: Option<i64>,
    /// Captured before.
    pub captured_to_us: Option<i64>,
    pub amount_fen: Option<i64>,
    /// Last four digits of the card or of the phone (payer wallet or consumer phone).
    pub last4: Option<String>,
    pub rrn: Option<String>,
    pub trace_no: Option<String>,
    pub terminal_id: Option<String>,
    pub order_no: Option<String>,
    pub starting_after: Option<String>,
    pub limit: i64,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl PaymentSearch {
    /// The SQL (numbered placeholders, valid on both backends) and its values.
    fn sql(&self) -> (String, Vec<Bind>) {
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |condition: &str, bind: Bind| {
            binds.push(bind);
            conditions.push(condition.replace('?', &format!("${}", binds.len())));
        };
        let text = |v: &Option<String>| v.clone().map(Bind::Text);
        for (condition, bind) in [
            ("merchant_id = ?", text(&self.merchant_id)),
            ("captured_at_us >= ?", self.captured_from_us.map(Bind::Int)),
            ("captured_at_us < ?", self.captured_to_us.map(Bind::Int)),
            ("amount_fen = ?", self.amount_fen.map(Bind::Int)),
            ("rrn = ?", text(&self.rrn)),
            ("trace_no = ?", text(&self.trace_no)),
            ("terminal_id = ?", text(&self.terminal_id)),
            ("order_no = ?", text(&self.order_no)),
            ("id < ?", text(&self.starting_after)),
        ] {
            if let Some(bind) = bind {
                push(condition, bind);
            }
        }
        if let Some(last4) = &self.last4 {
            // Both sides compare with the one value (`push` numbers every `?` alike). The
            // merchant (`$1` when given: pushed first) goes into each side too, so that
            // SQLite's planner serves each side from its index on (last four, merchant)
            // rather than reading the merchant's payments in id order.
            let merchant = if self.merchant_id.is_some() {
                " AND merchant_id = $1"
            } else {
                ""
            };
            push(
                &format!("(({LAST4_ACCOUNT} = ?{merchant}) OR ({LAST4_PHONE} = ?{merchant}))"),
                Bind::Text(last4.clone()),
            );
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments{filter} ORDER BY id DESC LIMIT {}",
            self.limit
        );
        (sql, binds)
    }

    /// The query as run, for a test to ask the database for its plan (`EXPLAIN …`), with
    /// the values inlined as SQL literals (they are digits and simple identifiers).
    pub fn sql_with_literals(&self) -> String {
        let (mut sql, binds) = self.sql();
        for (i, bind) in binds.iter().enumerate().rev() {
            let literal = match bind {
                Bind::Text(text) => format!("'{}'", text.replace('\'', "''")),
                Bind::Int(int) => int.to_string(),
            };
            sql = sql.replace(&format!("${}", i + 1), &literal);
        }
        sql
    }
}

impl Conn<'_> {
    /// Payments matching every filter of `search`, newest first.
    pub async fn search_payments(
        &mut self,
        search: &PaymentSearch,
    ) -> StoreResult<Vec<PaymentRow>> {
        let (sql, binds) = search.sql();
        Ok(on_conn!(self, |c| {
            let mut query = sqlx::query_as::<_, PaymentRow>(AssertSqlSafe(sql.clone()));
            for bind in &binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text.clone()),
                    Bind::Int(int) => query.bind(*int),
                };
            }
            query.fetch_all(&mut **c).await
        })?)
    }
}
