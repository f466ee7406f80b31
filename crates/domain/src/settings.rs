//! Per-merchant settings with the spec's defaults. The API accepts a partial
//! [`MerchantSettingsPatch`]; [`MerchantSettings::apply`] validates it onto the current
//! settings so a stored merchant always has a complete, valid set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::arrival::{ArrivalRule, ArrivalRules, ChannelArrival};
use crate::channel::Channel;
use crate::evidence::EvidenceSettings;
use crate::fees::FeeRefundPolicy;
use crate::ledger::FundingPolicy;

/// Upper bound on a fee rate: 10 %. Anything above is a typing mistake, not a tariff.
pub const FEE_RATE_PPM_MAX: i64 = 100_000;
/// Upper bound on a refund window: ten years.
pub const REFUND_WINDOW_DAYS_MAX: i64 = 3_650;
/// Upper bound on an arrival rule in hours: 30 days.
pub const ARRIVAL_HOURS_MAX: u32 = 720;
/// Upper bound on an arrival rule in business days.
pub const ARRIVAL_BUSINESS_DAYS_MAX: u32 = 30;

/// Fees and refund rules of one channel for one merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelSettings {
    /// Merchant discount rate in parts per million (0.38 % = 3800).
    pub fee_rate_ppm: i64,
    /// Fee cap per payment in fen, or null for none.
    pub fee_cap_fen: Option<i64>,
    /// Days after capture during which a payment can be refunded.
    pub refund_window_days: i64,
    pub fee_refund: FeeRefundPolicy,
    /// When a refund is expected to arrive once the channel accepted it, per destination:
    /// `{"balance": {"hours": 2}, "bank_card": {"business_days": 3}}`. Absent: the
    /// acquirer's rules (the spec's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub arrival: Option<ChannelArrival>,
}

impl ChannelSettings {
    pub fn default_for(channel: Channel) -> Self {
        Self {
            fee_rate_ppm: channel.default_fee_rate_ppm(),
            fee_cap_fen: channel.default_fee_cap_fen(),
            refund_window_days: channel.default_refund_window_days(),
            fee_refund: channel.default_fee_refund(),
            arrival: None,
        }
    }
}

/// 限额: the most a merchant may refund per day (Asia/Shanghai), counting the live refunds
/// created that day (any status but rejected, canceled and failed). `null`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DailyRefundLimit {
    /// Fen refunded per day at most.
    pub amount_fen: Option<i64>,
    /// Refunds per day at most.
    pub count: Option<i64>,
}

/// Which part of the daily limit a refund would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyLimitExceeded {
    Amount { limit_fen: i64, used_fen: i64 },
    Count { limit: i64, used: i64 },
}

impl DailyRefundLimit {
    pub fn is_unlimited(&self) -> bool {
        self.amount_fen.is_none() && self.count.is_none()
    }

    /// Whether one more refund of `amount_fen`, after `count_today` refunds of
    /// `amount_today_fen` today, stays within the limit.
    pub fn check(
        &self,
        count_today: i64,
        amount_today_fen: i64,
        amount_fen: i64,
    ) -> Result<(), DailyLimitExceeded> {
        if let Some(limit) = self.count
            && count_today.saturating_add(1) > limit
        {
            return Err(DailyLimitExceeded::Count {
                limit,
                used: count_today,
            });
        }
        if let Some(limit_fen) = self.amount_fen
            && amount_today_fen.saturating_add(amount_fen) > limit_fen
        {
            return Err(DailyLimitExceeded::Amount {
                limit_fen,
                used_fen: amount_today_fen,
            });
        }
        Ok(())
    }
}

/// A change of the daily limit: a number sets it, `null` removes it, omitted keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyRefundLimitPatch {
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub amount_fen: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub count: Option<Option<i64>>,
}

/// Thresholds of the review rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewSettings {
    /// Refunds of at least this many fen need the acquirer's review (`large_amount`).
    pub large_amount_fen: i64,
    /// Refunds of payments older than this many days need review (`late_refund`).
    pub late_refund_days: i64,
    /// Refunds today above this percentage of sales today need review (`refund_ratio`).
    pub refund_ratio_percent: i64,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            large_amount_fen: 500_000,
            late_refund_days: 30,
            refund_ratio_percent: 50,
        }
    }
}

/// A merchant's complete settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MerchantSettings {
    /// Per channel id (`credit_card`, `debit_card`, `wechat`, `alipay`, `unionpay_qr`).
    pub channels: BTreeMap<Channel, ChannelSettings>,
    pub review: ReviewSettings,
    /// How refunds are funded: refused beyond the balance (`require_balance`, default) or
    /// carried as a debt into later payouts (`carry_forward`).
    #[serde(default)]
    pub funding: FundingPolicy,
    /// 限额: the daily refund limit; absent means none.
    #[serde(default, skip_serializing_if = "DailyRefundLimit::is_unlimited")]
    pub daily_refund_limit: DailyRefundLimit,
    /// 证明材料: refunds above these amounts wait for an ID check or the sale voucher.
    #[serde(default)]
    pub evidence: EvidenceSettings,
}

impl Default for MerchantSettings {
    fn default() -> Self {
        Self {
            channels: Channel::ALL
                .into_iter()
                .map(|c| (c, ChannelSettings::default_for(c)))
                .collect(),
            review: ReviewSettings::default(),
            funding: FundingPolicy::default(),
            daily_refund_limit: DailyRefundLimit::default(),
            evidence: EvidenceSettings::default(),
        }
    }
}

/// A partial change of one channel's settings; omitted fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettingsPatch {
    pub fee_rate_ppm: Option<i64>,
    /// A number sets the cap, `null` removes it, omitted keeps it.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub fee_cap_fen: Option<Option<i64>>,
    pub refund_window_days: Option<i64>,
    pub fee_refund: Option<FeeRefundPolicy>,
    /// Arrival rules of the channel (both destinations): an object sets them, `null`
    /// returns to the acquirer's defaults, omitted keeps them.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<Object>)]
    pub arrival: Option<Option<ChannelArrival>>,
}

/// A partial change of the review thresholds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSettingsPatch {
    pub large_amount_fen: Option<i64>,
    pub late_refund_days: Option<i64>,
    pub refund_ratio_percent: Option<i64>,
}

/// Settings as the API accepts them: everything optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantSettingsPatch {
    #[serde(default)]
    pub channels: BTreeMap<Channel, ChannelSettingsPatch>,
    pub review: Option<ReviewSettingsPatch>,
    pub funding: Option<FundingPolicy>,
    pub daily_refund_limit: Option<DailyRefundLimitPatch>,
    pub evidence: Option<EvidenceSettingsPatch>,
}

/// A change of the evidence rules: a number (fen) sets a threshold, `null` removes it,
/// omitted keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSettingsPatch {
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub require_id_check_above: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    pub require_voucher_above: Option<Option<i64>>,
}

/// A setting outside its allowed range; `field` is the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidSetting {
    pub field: String,
    pub problem: String,
}

/// Tells a field that is present (maybe `null`) from one that is omitted (`None` by default).
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn check_range(field: String, value: i64, min: i64, max: i64) -> Result<i64, InvalidSetting> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(InvalidSetting {
            field,
            problem: format!("must be between {min} and {max}, got {value}"),
        })
    }
}

fn check_arrival(field: String, rule: ArrivalRule) -> Result<(), InvalidSetting> {
    let (value, max) = match rule {
        ArrivalRule::Hours(h) => (h, ARRIVAL_HOURS_MAX),
        ArrivalRule::BusinessDays(d) => (d, ARRIVAL_BUSINESS_DAYS_MAX),
    };
    let min = u32::from(matches!(rule, ArrivalRule::Hours(_)));
    check_range(field, i64::from(value), i64::from(min), i64::from(max)).map(|_| ())
}

impl MerchantSettings {
    /// The arrival rules of this merchant: its own per channel where set, else `defaults`.
    pub fn arrival_rules(&self, defaults: &ArrivalRules) -> ArrivalRules {
        let mut rules = *defaults;
        for (channel, settings) in &self.channels {
            if let Some(own) = settings.arrival {
                *rules.channel_mut(*channel) = own;
            }
        }
        rules
    }

    /// The settings of `channel` (always present: every channel has defaults).
    pub fn channel(&self, channel: Channel) -> ChannelSettings {
        self.channels
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| ChannelSettings::default_for(channel))
    }

    /// Applies a patch, refusing out-of-range values; nothing changes on error.
    pub fn apply(&self, patch: &MerchantSettingsPatch) -> Result<MerchantSettings, InvalidSetting> {
        let mut next = self.clone();
        for (channel, change) in &patch.channels {
            let mut current = next.channel(*channel);
            let path = |name: &str| format!("settings.channels.{}.{name}", channel.id());
            if let Some(rate) = change.fee_rate_ppm {
                current.fee_rate_ppm =
                    check_range(path("fee_rate_ppm"), rate, 0, FEE_RATE_PPM_MAX)?;
            }
            if let Some(cap) = change.fee_cap_fen {
                current.fee_cap_fen = match cap {
                    None => None,
                    Some(cap) => Some(check_range(path("fee_cap_fen"), cap, 0, i64::MAX)?),
                };
            }
            if let Some(days) = change.refund_window_days {
                current.refund_window_days =
                    check_range(path("refund_window_days"), days, 1, REFUND_WINDOW_DAYS_MAX)?;
            }
            if let Some(policy) = change.fee_refund {
                current.fee_refund = policy;
            }
            if let Some(arrival) = change.arrival {
                if let Some(rules) = arrival {
                    check_arrival(path("arrival.balance"), rules.balance)?;
                    check_arrival(path("arrival.bank_card"), rules.bank_card)?;
                }
                current.arrival = arrival;
            }
            next.channels.insert(*channel, current);
        }
        if let Some(funding) = patch.funding {
            next.funding = funding;
        }
        if let Some(limit) = &patch.daily_refund_limit {
            if let Some(amount) = limit.amount_fen {
                next.daily_refund_limit.amount_fen = match amount {
                    None => None,
                    Some(v) => Some(check_range(
                        "settings.daily_refund_limit.amount_fen".into(),
                        v,
                        1,
                        i64::MAX,
                    )?),
                };
            }
            if let Some(count) = limit.count {
                next.daily_refund_limit.count = match count {
                    None => None,
                    Some(v) => Some(check_range(
                        "settings.daily_refund_limit.count".into(),
                        v,
                        1,
                        1_000_000,
                    )?),
                };
            }
        }
        if let Some(evidence) = &patch.evidence {
            let threshold = |name: &str, v: Option<i64>| match v {
                None => Ok(None),
                Some(v) => {
                    check_range(format!("settings.evidence.{name}"), v, 0, i64::MAX).map(Some)
                }
            };
            if let Some(v) = evidence.require_id_check_above {
                next.evidence.require_id_check_above = threshold("require_id_check_above", v)?;
            }
            if let Some(v) = evidence.require_voucher_above {
                next.evidence.require_voucher_above = threshold("require_voucher_above", v)?;
            }
        }
        if let Some(review) = &patch.review {
            if let Some(v) = review.large_amount_fen {
                next.review.large_amount_fen =
                    check_range("settings.review.large_amount_fen".into(), v, 1, i64::MAX)?;
            }
            if let Some(v) = review.late_refund_days {
                next.review.late_refund_days = check_range(
                    "settings.review.late_refund_days".into(),
                    v,
                    0,
                    REFUND_WINDOW_DAYS_MAX,
                )?;
            }
            if let Some(v) = review.refund_ratio_percent {
                next.review.refund_ratio_percent =
                    check_range("settings.review.refund_ratio_percent".into(), v, 0, 100)?;
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_every_channel() {
        let settings = MerchantSettings::default();
        for channel in Channel::ALL {
            assert_eq!(
                settings.channel(channel),
                ChannelSettings::default_for(channel)
            );
        }
        assert_eq!(settings.review.large_amount_fen, 500_000);
        assert_eq!(settings.review.late_refund_days, 30);
        assert_eq!(settings.review.refund_ratio_percent, 50);
    }

    #[test]
    fn patch_changes_only_named_fields() {
        let patch: MerchantSettingsPatch = serde_json::from_str(
            r#"{"channels":{"wechat":{"fee_rate_ppm":2000}},"review":{"large_amount_fen":100}}"#,
        )
        .unwrap_or_default();
        let next = MerchantSettings::default().apply(&patch);
        let Ok(next) = next else {
            panic!("valid patch refused: {next:?}")
        };
        assert_eq!(next.channel(Channel::Wechat).fee_rate_ppm, 2_000);
        assert_eq!(next.channel(Channel::Wechat).refund_window_days, 365);
        assert_eq!(next.channel(Channel::Alipay).fee_rate_ppm, 3_800);
        assert_eq!(next.review.large_amount_fen, 100);
    }

    #[test]
    fn out_of_range_rate_is_refused_with_its_path() {
        let mut patch = MerchantSettingsPatch::default();
        patch.channels.insert(
            Channel::DebitCard,
            ChannelSettingsPatch {
                fee_rate_ppm: Some(200_000),
                ..Default::default()
            },
        );
        let err = MerchantSettings::default().apply(&patch);
        assert_eq!(
            err.map_err(|e| e.field),
            Err("settings.channels.debit_card.fee_rate_ppm".to_string())
        );
    }

    #[test]
    fn null_cap_removes_the_cap_and_omitted_keeps_it() {
        let keep: MerchantSettingsPatch =
            serde_json::from_str(r#"{"channels":{"debit_card":{}}}"#).unwrap_or_default();
        let kept = MerchantSettings::default()
            .apply(&keep)
            .map(|s| s.channel(Channel::DebitCard).fee_cap_fen);
        assert_eq!(kept, Ok(Some(2_500)));
        let patch: MerchantSettingsPatch =
            serde_json::from_str(r#"{"channels":{"debit_card":{"fee_cap_fen":null}}}"#)
                .unwrap_or_default();
        assert_eq!(
            patch
                .channels
                .get(&Channel::DebitCard)
                .map(|c| c.fee_cap_fen),
            Some(Some(None))
        );
        let next = MerchantSettings::default()
            .apply(&patch)
            .map(|s| s.channel(Channel::DebitCard).fee_cap_fen);
        assert_eq!(next, Ok(None));
    }

    #[test]
    fn the_daily_limit_allows_exactly_up_to_it() {
        let limit = DailyRefundLimit {
            amount_fen: Some(10_000),
            count: Some(3),
        };
        assert_eq!(limit.check(2, 9_000, 1_000), Ok(()));
        assert_eq!(
            limit.check(2, 9_000, 1_001),
            Err(DailyLimitExceeded::Amount {
                limit_fen: 10_000,
                used_fen: 9_000
            })
        );
        assert_eq!(
            limit.check(3, 0, 1),
            Err(DailyLimitExceeded::Count { limit: 3, used: 3 })
        );
        assert_eq!(
            DailyRefundLimit::default().check(i64::MAX, i64::MAX, 1),
            Ok(())
        );
    }

    #[test]
    fn arrival_rules_are_checked_and_override_the_defaults() {
        let patch: MerchantSettingsPatch = serde_json::from_str(
            r#"{"channels":{"wechat":{"arrival":{"balance":{"hours":6},"bank_card":{"business_days":1}}}}}"#,
        )
        .unwrap_or_default();
        let next = MerchantSettings::default().apply(&patch);
        let Ok(next) = next else {
            panic!("valid patch refused: {next:?}")
        };
        let rules = next.arrival_rules(&ArrivalRules::default());
        assert_eq!(rules.wechat.balance, ArrivalRule::Hours(6));
        assert_eq!(rules.wechat.bank_card, ArrivalRule::BusinessDays(1));
        assert_eq!(rules.alipay, ArrivalRules::default().alipay);
        let zero: MerchantSettingsPatch = serde_json::from_str(
            r#"{"channels":{"alipay":{"arrival":{"balance":{"hours":0},"bank_card":{"hours":1}}}}}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            MerchantSettings::default()
                .apply(&zero)
                .map_err(|e| e.field),
            Err("settings.channels.alipay.arrival.balance".to_string())
        );
        // Back to the defaults with null.
        let reset: MerchantSettingsPatch =
            serde_json::from_str(r#"{"channels":{"wechat":{"arrival":null}}}"#).unwrap_or_default();
        let back = next
            .apply(&reset)
            .map(|s| s.channel(Channel::Wechat).arrival);
        assert_eq!(back, Ok(None));
    }

    #[test]
    fn evidence_thresholds_are_set_removed_and_checked() {
        let set: MerchantSettingsPatch = serde_json::from_str(
            r#"{"evidence":{"require_id_check_above":100000,"require_voucher_above":0}}"#,
        )
        .unwrap_or_default();
        let next = MerchantSettings::default().apply(&set).map(|s| s.evidence);
        assert_eq!(
            next,
            Ok(EvidenceSettings {
                require_id_check_above: Some(100_000),
                require_voucher_above: Some(0),
            })
        );
        let remove: MerchantSettingsPatch =
            serde_json::from_str(r#"{"evidence":{"require_voucher_above":null}}"#)
                .unwrap_or_default();
        let after = MerchantSettings::default()
            .apply(&set)
            .and_then(|s| s.apply(&remove))
            .map(|s| s.evidence);
        assert_eq!(
            after,
            Ok(EvidenceSettings {
                require_id_check_above: Some(100_000),
                require_voucher_above: None,
            })
        );
        let negative: MerchantSettingsPatch =
            serde_json::from_str(r#"{"evidence":{"require_id_check_above":-1}}"#)
                .unwrap_or_default();
        assert_eq!(
            MerchantSettings::default()
                .apply(&negative)
                .map_err(|e| e.field),
            Err("settings.evidence.require_id_check_above".to_string())
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let parsed: Result<MerchantSettingsPatch, _> = serde_json::from_str(r#"{"chanels":{}}"#);
        assert!(parsed.is_err());
    }
}
