//! What a sale's slip carries besides its amount: the payer (a card's last four digits, or
//! a wallet's phone number, stored masked), the consumer's phone for SMS and the status
//! page, and the voucher numbers a POS prints (batch, trace, reference number 参考号).

use serde_json::{Value, json};

use super::world::Rng;

const BANKS: [&str; 4] = [
    "China Merchants Bank",
    "Industrial and Commercial Bank of China",
    "Bank of China",
    "China Construction Bank",
];

/// Fills `body`'s payer, phone and voucher for a sale on `channel`, the `i`-th of the day
/// `label` (`20261204`).
pub fn slip(rng: &mut Rng, channel: &str, label: &str, i: i64, body: &mut Value) {
    let phone = format!(
        "1{}{:09}",
        [3, 5, 8][(rng.next() % 3) as usize],
        rng.next() % 1_000_000_000
    );
    let day = label.get(4..).unwrap_or(label);
    let trace = format!("{day}{:02}", i % 100);
    let rrn = format!("{:012}", rng.next() % 1_000_000_000_000);
    match channel {
        "credit_card" | "debit_card" => {
            body["payer"] = json!({ "card_last4": format!("{:04}", rng.next() % 10_000),
                "bank": BANKS[(rng.next() % BANKS.len() as u64) as usize] });
            body["voucher"] = json!({ "batch_no": format!("00{day}"), "trace_no": trace,
                "rrn": rrn });
        }
        "unionpay_qr" => {
            body["voucher"] = json!({ "trace_no": trace, "rrn": rrn });
        }
        _ => {
            body["payer"] = json!({ "wallet_account": phone });
        }
    }
    if rng.chance(60) {
        body["phone"] = json!(phone);
    }
}
