//! Fault injection settings and the deterministic dice behind them.
//!
//! Every decision is a hash of (seed, dice key, fault name, attempt), never a random draw.
//! The dice key is the order in which a simulator first met a refund number (see
//! [`super::books::Books::dice_key`]), not the number, which yuanlu draws at random: a resend
//! of the same refund meets the same world, and the same seed with the same sequence of
//! calls replays a failing end-to-end run.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest latency a spec may ask for: beyond this a simulator is just down.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// Longest confirmation delay a spec may ask for.
pub const MAX_CONFIRM_DELAY_MS: u64 = 3_600_000;
/// Most `key=value` items in one spec.
pub const MAX_SPEC_ITEMS: usize = 32;
/// Confirmation delay when a spec turns slow confirmation on without giving one.
pub const DEFAULT_CONFIRM_DELAY_MS: u64 = 2_000;

const KNOWN_KEYS: &str = "seed, latency (ms or min..max), latency_ms_min, latency_ms_max, error, lost, abnormal, \
     slow, confirm_delay_ms, duplicate, out_of_order (rates also by their long field names)";

/// What the simulator does wrong, and how often. Rates are probabilities in 0.0–1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    pub seed: u64,
    pub latency_ms_min: u64,
    pub latency_ms_max: u64,
    /// Transient error before booking (nothing recorded); decided per attempt, so a retry
    /// may pass.
    pub error_rate: f64,
    /// Book (and pay) the refund, then never answer — first execute of a number only.
    pub lost_response_rate: f64,
    /// The payer's account is closed: ABNORMAL, nothing paid, until rerouted.
    pub abnormal_rate: f64,
    /// Answer PROCESSING and confirm after `confirm_delay_ms`.
    pub slow_confirmation_rate: f64,
    pub confirm_delay_ms: u64,
    /// Send each callback twice.
    pub duplicate_callback_rate: f64,
    /// After the final callback, send a stale earlier one.
    pub out_of_order_callback_rate: f64,
}

/// The faults, by the name that goes into the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Error,
    Lost,
    Abnormal,
    Slow,
    Duplicate,
    OutOfOrder,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Lost => "lost",
            Fault::Abnormal => "abnormal",
            Fault::Slow => "slow",
            Fault::Duplicate => "duplicate",
            Fault::OutOfOrder => "out_of_order",
        }
    }
}

/// A spec that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault spec item {item:?} is not key=value")]
    NotKeyValue { item: String },
    #[error("unknown fault {key:?}; known: {KNOWN_KEYS}")]
    UnknownKey { key: String },
    #[error("{key}={value:?} is not a number")]
    NotANumber { key: String, value: String },
    #[error("{key}={value} is outside 0.0–1.0")]
    RateOutOfRange { key: String, value: f64 },
    #[error("{key} given twice")]
    Repeated { key: String },
    #[error("latency range {min_ms}..{max_ms} ms: the minimum is above the maximum")]
    LatencyRange { min_ms: u64, max_ms: u64 },
    #[error("{key}={value_ms} ms exceeds the maximum {max_ms} ms")]
    TooLong {
        key: String,
        value_ms: u64,
        max_ms: u64,
    },
    #[error("fault spec has more than {MAX_SPEC_ITEMS} items")]
    TooManyItems,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig::none()
    }
}

impl FaultConfig {
    /// A well-behaved channel.
    pub fn none() -> Self {
        FaultConfig {
            seed: 0,
            latency_ms_min: 0,
            latency_ms_max: 0,
            error_rate: 0.0,
            lost_response_rate: 0.0,
            abnormal_rate: 0.0,
            slow_confirmation_rate: 0.0,
            confirm_delay_ms: DEFAULT_CONFIRM_DELAY_MS,
            duplicate_callback_rate: 0.0,
            out_of_order_callback_rate: 0.0,
        }
    }

    /// Reads `"error=0.1,lost=0.2,abnormal=0.05,slow=0.3,confirm_delay_ms=500,duplicate=0.1,
    /// out_of_order=0.1,latency=10..50,seed=7"`. Empty or `none` is [`FaultConfig::none`].
    pub fn from_spec(spec: &str) -> Result<Self, FaultSpecError> {
        let mut config = FaultConfig::none();
        let trimmed = spec.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(config);
        }
        if trimmed.split(',').count() > MAX_SPEC_ITEMS {
            return Err(FaultSpecError::TooManyItems);
        }
        let mut seen: Vec<&'static str> = Vec::new();
        for item in trimmed.split(',') {
            let (key, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| FaultSpecError::NotKeyValue {
                    item: item.trim().to_string(),
                })?;
            let canonical = config.apply(key, value)?;
            if seen.contains(&canonical) {
                return Err(FaultSpecError::Repeated {
                    key: canonical.to_string(),
                });
            }
            seen.push(canonical);
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets one item; returns the canonical key (for repeat detection).
    fn apply(&mut self, key: &str, value: &str) -> Result<&'static str, FaultSpecError> {
        let rate =
            |canonical: &'static str, slot: &mut f64| -> Result<&'static str, FaultSpecError> {
                *slot = parse_rate(canonical, value)?;
                Ok(canonical)
            };
        match key {
            "seed" => {
                self.seed = parse_u64("seed", value)?;
                Ok("seed")
            }
            "latency" | "latency_ms" => {
                (self.latency_ms_min, self.latency_ms_max) = parse_latency(value)?;
                Ok("latency")
            }
            "latency_ms_min" => {
                self.latency_ms_min = parse_u64("latency_ms_min", value)?;
                Ok("latency_ms_min")
            }
            "latency_ms_max" => {
                self.latency_ms_max = parse_u64("latency_ms_max", value)?;
                Ok("latency_ms_max")
            }
            "confirm_delay_ms" | "confirm_ms" => {
                self.confirm_delay_ms = parse_u64("confirm_delay_ms", value)?;
                Ok("confirm_delay_ms")
            }
            "error" | "error_rate" => rate("error", &mut self.error_rate),
            "lost" | "lost_response_rate" => rate("lost", &mut self.lost_response_rate),
            "abnormal" | "abnormal_rate" => rate("abnormal", &mut self.abnormal_rate),
            "slow" | "slow_confirmation_rate" => rate("slow", &mut self.slow_confirmation_rate),
            "duplicate" | "duplicate_callback_rate" => {
                rate("duplicate", &mut self.duplicate_callback_rate)
            }
            "out_of_order" | "out_of_order_callback_rate" => {
                rate("out_of_order", &mut self.out_of_order_callback_rate)
            }
            _ => Err(FaultSpecError::UnknownKey {
                key: key.to_string(),
            }),
        }
    }

    /// Checks ranges (for configs built in code as well as parsed ones).
    pub fn validate(&self) -> Result<(), FaultSpecError> {
        for (key, value) in [
            ("error", self.error_rate),
            ("lost", self.lost_response_rate),
            ("abnormal", self.abnormal_rate),
            ("slow", self.slow_confirmation_rate),
            ("duplicate", self.duplicate_callback_rate),
            ("out_of_order", self.out_of_order_callback_rate),
        ] {
            check_rate(key, value)?;
        }
        if self.latency_ms_min > self.latency_ms_max {
            return Err(FaultSpecError::LatencyRange {
                min_ms: self.latency_ms_min,
                max_ms: self.latency_ms_max,
            });
        }
        check_ms("latency_ms_max", self.latency_ms_max, MAX_LATENCY_MS)?;
        check_ms(
            "confirm_delay_ms",
            self.confirm_delay_ms,
            MAX_CONFIRM_DELAY_MS,
        )
    }

    fn rate(&self, fault: Fault) -> f64 {
        match fault {
            Fault::Error => self.error_rate,
            Fault::Lost => self.lost_response_rate,
            Fault::Abnormal => self.abnormal_rate,
            Fault::Slow => self.slow_confirmation_rate,
            Fault::Duplicate => self.duplicate_callback_rate,
            Fault::OutOfOrder => self.out_of_order_callback_rate,
        }
    }

    /// Whether `fault` strikes the refund with this dice key (on this attempt, for
    /// per-attempt faults).
    pub fn strikes(&self, fault: Fault, dice_key: &str, attempt: u32) -> bool {
        let rate = self.rate(fault);
        rate > 0.0 && unit_roll(self.seed, dice_key, fault.name(), attempt) < rate
    }

    /// The latency of the refund with this dice key, in `[latency_ms_min, latency_ms_max]`.
    pub fn latency_ms(&self, dice_key: &str) -> u64 {
        let span_ms = self.latency_ms_max.saturating_sub(self.latency_ms_min);
        if span_ms == 0 {
            return self.latency_ms_min;
        }
        let roll = unit_roll(self.seed, dice_key, "latency", 0);
        // Truncation is the point: a uniform pick of a whole millisecond.
        let offset_ms = ((span_ms as f64 + 1.0) * roll) as u64;
        self.latency_ms_min + offset_ms.min(span_ms)
    }
}

impl std::str::FromStr for FaultConfig {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        FaultConfig::from_spec(spec)
    }
}

/// A number in [0, 1) from the hash of the inputs.
pub fn unit_roll(seed: u64, refund_no: &str, name: &str, attempt: u32) -> f64 {
    let digest = stable_hash(seed, refund_no, name, attempt);
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable, so the result is strictly below 1.0.
    (u64::from_be_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// SHA-256 of the inputs, with separators so ("ab","c") and ("a","bc") differ.
pub fn stable_hash(seed: u64, refund_no: &str, name: &str, attempt: u32) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(refund_no.as_bytes());
    hasher.update([0u8]);
    hasher.update(name.as_bytes());
    hasher.update([0u8]);
    hasher.update(attempt.to_be_bytes());
    hasher.finalize().into()
}

fn parse_u64(key: &str, value: &str) -> Result<u64, FaultSpecError> {
    value.parse().map_err(|_| FaultSpecError::NotANumber {
        key: key.to_string(),
        value: value.to_string(),
    })
}

fn parse_rate(key: &str, value: &str) -> Result<f64, FaultSpecError> {
    let rate: f64 = value.parse().map_err(|_| FaultSpecError::NotANumber {
        key: key.to_string(),
        value: value.to_string(),
    })?;
    check_rate(key, rate)?;
    Ok(rate)
}

fn check_rate(key: &str, value: f64) -> Result<(), FaultSpecError> {
    // NaN is outside every range, so it is refused here too.
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(FaultSpecError::RateOutOfRange {
            key: key.to_string(),
            value,
        })
    }
}

fn check_ms(key: &str, value_ms: u64, max_ms: u64) -> Result<(), FaultSpecError> {
    if value_ms <= max_ms {
        Ok(())
    } else {
        Err(FaultSpecError::TooLong {
            key: key.to_string(),
            value_ms,
            max_ms,
        })
    }
}

/// `"20"` or `"10..50"`.
fn parse_latency(value: &str) -> Result<(u64, u64), FaultSpecError> {
    match value.split_once("..") {
        Some((min, max)) => Ok((
            parse_u64("latency", min.trim())?,
            parse_u64("latency", max.trim())?,
        )),
        None => {
            let fixed_ms = parse_u64("latency", value)?;
            Ok((fixed_ms, fixed_ms))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn full_spec() {
        let config = FaultConfig::from_spec(
            "error=0.1, lost=0.2,abnormal=0.05,slow=0.3,confirm_delay_ms=500,duplicate=0.4,out_of_order=0.5,latency=10..50,seed=7",
        )
        .unwrap();
        assert_eq!(
            config,
            FaultConfig {
                seed: 7,
                latency_ms_min: 10,
                latency_ms_max: 50,
                error_rate: 0.1,
                lost_response_rate: 0.2,
                abnormal_rate: 0.05,
                slow_confirmation_rate: 0.3,
                confirm_delay_ms: 500,
                duplicate_callback_rate: 0.4,
                out_of_order_callback_rate: 0.5,
            }
        );
        assert_eq!("none".parse::<FaultConfig>(), Ok(FaultConfig::none()));
        assert_eq!(FaultConfig::from_spec(""), Ok(FaultConfig::none()));
        assert_eq!(
            FaultConfig::from_spec("error_rate=1").unwrap().error_rate,
            1.0
        );
        assert_eq!(
            FaultConfig::from_spec("latency=20").unwrap().latency_ms_max,
            20
        );
    }

    #[test]
    fn clear_errors() {
        let cases: [(&str, FaultSpecError); 8] = [
            (
                "error",
                FaultSpecError::NotKeyValue {
                    item: "error".into(),
                },
            ),
            (
                "eror=0.1",
                FaultSpecError::UnknownKey { key: "eror".into() },
            ),
            (
                "error=lots",
                FaultSpecError::NotANumber {
                    key: "error".into(),
                    value: "lots".into(),
                },
            ),
            (
                "lost=1.5",
                FaultSpecError::RateOutOfRange {
                    key: "lost".into(),
                    value: 1.5,
                },
            ),
            (
                "lost=-0.1",
                FaultSpecError::RateOutOfRange {
                    key: "lost".into(),
                    value: -0.1,
                },
            ),
            (
                "error=0.1,error_rate=0.2",
                FaultSpecError::Repeated {
                    key: "error".into(),
                },
            ),
            (
                "latency=50..10",
                FaultSpecError::LatencyRange {
                    min_ms: 50,
                    max_ms: 10,
                },
            ),
            (
                "confirm_delay_ms=99999999",
                FaultSpecError::TooLong {
                    key: "confirm_delay_ms".into(),
                    value_ms: 99_999_999,
                    max_ms: MAX_CONFIRM_DELAY_MS,
                },
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(FaultConfig::from_spec(spec), Err(expected), "{spec}");
        }
        assert!(matches!(
            FaultConfig::from_spec("slow=NaN"),
            Err(FaultSpecError::RateOutOfRange { .. })
        ));
        let many = vec!["seed=1"; MAX_SPEC_ITEMS + 1].join(",");
        assert_eq!(
            FaultConfig::from_spec(&many),
            Err(FaultSpecError::TooManyItems)
        );
        let message = FaultConfig::from_spec("eror=1").unwrap_err().to_string();
        assert!(message.contains("known: seed"), "{message}");
    }

    #[test]
    fn decisions_are_deterministic_and_follow_the_rate() {
        let config = FaultConfig {
            error_rate: 0.3,
            ..FaultConfig::none()
        };
        let numbers: Vec<String> = (0..2_000).map(|i| format!("rf_{i}")).collect();
        let first: Vec<bool> = numbers
            .iter()
            .map(|n| config.strikes(Fault::Error, n, 1))
            .collect();
        let again: Vec<bool> = numbers
            .iter()
            .map(|n| config.strikes(Fault::Error, n, 1))
            .collect();
        assert_eq!(first, again);
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((500..700).contains(&hits), "{hits} of 2000 at rate 0.3");
        let other_seed = FaultConfig {
            seed: 1,
            ..config.clone()
        };
        let moved = numbers
            .iter()
            .zip(&first)
            .filter(|(n, hit)| other_seed.strikes(Fault::Error, n, 1) != **hit)
            .count();
        assert!(moved > 100, "a new seed is a new world");
        assert!(!FaultConfig::none().strikes(Fault::Lost, "rf_1", 0));
        let always = FaultConfig {
            lost_response_rate: 1.0,
            ..FaultConfig::none()
        };
        assert!(numbers.iter().all(|n| always.strikes(Fault::Lost, n, 0)));
    }

    #[test]
    fn latency_stays_in_range() {
        let config = FaultConfig {
            latency_ms_min: 10,
            latency_ms_max: 12,
            ..FaultConfig::none()
        };
        let picks: Vec<u64> = (0..300)
            .map(|i| config.latency_ms(&format!("rf_{i}")))
            .collect();
        assert!(picks.iter().all(|ms| (10..=12).contains(ms)));
        for ms in [10, 11, 12] {
            assert!(picks.contains(&ms), "{ms} never picked");
        }
        assert_eq!(config.latency_ms("rf_1"), config.latency_ms("rf_1"));
    }
}
