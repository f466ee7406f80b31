//! The generated day: its merchants, created through the engine, and its payments.

use super::*;

/// A merchant of the day, created through the engine.
pub struct DayMerchant {
    pub id: String,
    /// Its supervisor key, as the POS records payments with it.
    pub who: Principal,
    pub settings: MerchantSettings,
}

/// The payer of a generated payment, as given to `POST /v1/payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payer {
    Card { last4: String },
    Wallet { account: String },
    Unknown,
}

impl Payer {
    /// What `record_payment` stores: `**** 1234`, `138****5678`.
    pub fn masked(&self) -> Option<String> {
        match self {
            Payer::Card { last4 } => Some(format!("**** {last4}")),
            Payer::Wallet { account } => {
                let head = account.get(..3).unwrap_or_default();
                let tail = account.get(7..).unwrap_or_default();
                Some(format!("{head}****{tail}"))
            }
            Payer::Unknown => None,
        }
    }
}

/// Payment `i` of a day of `n` payments over `merchants` merchants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPayment {
    pub merchant: usize,
    pub channel: Channel,
    pub amount_fen: i64,
    /// Captured (and recorded) at this instant, on [`BUSINESS_DATE`] in Asia/Shanghai.
    pub at: DateTime<Utc>,
    pub terminal_id: String,
    pub payer: Payer,
}

/// The generated payments' mix, from two random draws: 40 % WeChat Pay, 30 % Alipay, 10 %
/// each credit card, debit card and UnionPay QR; 1.00–300.00 CNY, one in 20 of
/// 1,000–21,000 CNY. Shared with the preload, so both benchmarks load the same kind of day.
pub fn channel_and_amount(r: u64, r2: u64) -> (Channel, i64) {
    let channel = match (r >> 20) % 10 {
        0..=3 => Channel::Wechat,
        4..=6 => Channel::Alipay,
        7 => Channel::CreditCard,
        8 => Channel::DebitCard,
        _ => Channel::UnionpayQr,
    };
    let amount_fen = if (r2 >> 40).is_multiple_of(20) {
        100_000 + (r2 % 2_000_000) as i64
    } else {
        100 + (r2 % 29_901) as i64
    };
    (channel, amount_fen)
}

/// SplitMix64: a fixed, seedable stream without a dependency.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The settings patch of merchant `k`: mixed fee rates.
pub(super) fn merchant_settings(k: usize) -> serde_json::Value {
    let mut channels = serde_json::Map::new();
    if k.is_multiple_of(5) {
        channels.insert("wechat".into(), json!({ "fee_rate_ppm": 2_000 }));
        channels.insert("alipay".into(), json!({ "fee_rate_ppm": 2_000 }));
    }
    if k.is_multiple_of(7) {
        channels.insert("credit_card".into(), json!({ "fee_rate_ppm": 5_500 }));
    }
    json!({ "channels": channels })
}

/// Payment `i` of `n` (time order), on one of `merchants` merchants.
pub fn day_payment(i: usize, n: usize, merchants: usize) -> DayPayment {
    let (day_start, _) = shanghai_day_bounds(BUSINESS_DATE);
    let day_us: u128 = 86_400_000_000;
    // Spread over the day, strictly inside it, in time order.
    let offset = (i as u128 * day_us / n.max(1) as u128) as i64;
    let r = mix(SEED ^ i as u64);
    let r2 = mix(r);
    let merchant = (r % merchants.max(1) as u64) as usize;
    let (channel, amount_fen) = channel_and_amount(r, r2);
    let payer = match channel {
        Channel::CreditCard | Channel::DebitCard => Payer::Card {
            last4: format!("{:04}", (r2 >> 20) % 10_000),
        },
        Channel::Wechat | Channel::Alipay => Payer::Wallet {
            account: format!("138{:08}", (r2 >> 16) % 100_000_000),
        },
        Channel::UnionpayQr => Payer::Unknown,
    };
    DayPayment {
        merchant,
        channel,
        amount_fen,
        at: day_start + chrono::Duration::microseconds(offset),
        terminal_id: format!("T{:03}", (r >> 50) % 4),
        payer,
    }
}

/// `n` merchants through `Engine::create_merchant`, each with its supervisor principal.
pub async fn create_merchants(
    engine: &Engine,
    n: usize,
    bar: &ProgressBar,
) -> Result<Vec<DayMerchant>, String> {
    let mut merchants = Vec::with_capacity(n);
    for k in 0..n {
        let settings = serde_json::from_value(merchant_settings(k))
            .map_err(|e| format!("merchant settings: {e}"))?;
        let input = CreateMerchant {
            name: format!("Settlement shop {k:04}"),
            settings,
        };
        let created = engine
            .create_merchant(&Principal::Admin, input)
            .await
            .map_err(|e| format!("create a merchant: {e}"))?;
        let who = engine
            .authenticate(&created.api_key)
            .await
            .map_err(|e| format!("authenticate a merchant key: {e}"))?
            .ok_or("a new merchant's key is unknown")?;
        merchants.push(DayMerchant {
            id: created.merchant.id,
            who,
            settings: created.merchant.settings,
        });
        bar.inc(1);
    }
    Ok(merchants)
}
