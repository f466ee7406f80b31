//! The words of an SMS. [`SmsFacts`] is what happened, as data (which message, the
//! merchant, the amount, where the money went, by when); [`SmsFacts::render`] writes it
//! through the `sms.ftl` message files of `yuanlu-words`, so the engine holds no sentence.
//! Consumers are reached on mainland numbers: the sender renders [`SMS_LANG`].

use chrono::{Datelike, NaiveDate};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::money::format_cny;
use yuanlu_domain::refund::RefundType;
use yuanlu_domain::time::{from_micros, shanghai_date};
use yuanlu_store::{PaymentRow, RefundRow};
use yuanlu_words::{Arg, Lang, Words};

use super::SmsKind;

/// The language of the SMS the notify sender records.
pub const SMS_LANG: Lang = Lang::Zh;

/// Where a refund's money went, with no more of an account than its last digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsDestination {
    /// The bank account the consumer gave the operator (a reroute).
    GivenAccount,
    /// The account the channel reported, as it reported it.
    Received(String),
    /// The card paid with: its bank and last four digits when known.
    Card {
        debit: bool,
        bank: String,
        last4: Option<String>,
    },
    UnionpayQr,
    Wechat,
    Alipay,
}

impl SmsDestination {
    fn of(refund: &RefundRow, payment: &PaymentRow) -> Self {
        if refund.reroute_account.is_some() {
            return SmsDestination::GivenAccount;
        }
        if let Some(account) = refund.received_account.as_deref().filter(|a| !a.is_empty()) {
            return SmsDestination::Received(account.to_string());
        }
        let card = |debit| SmsDestination::Card {
            debit,
            bank: payment.payer_bank.clone().unwrap_or_default(),
            last4: payment
                .payer_account
                .as_deref()
                .and_then(|a| a.strip_prefix("**** "))
                .map(str::to_string),
        };
        match refund.channel {
            Channel::CreditCard => card(false),
            Channel::DebitCard => card(true),
            Channel::UnionpayQr => SmsDestination::UnionpayQr,
            Channel::Wechat => SmsDestination::Wechat,
            Channel::Alipay => SmsDestination::Alipay,
        }
    }

    fn render(&self, words: &Words, lang: Lang) -> String {
        match self {
            SmsDestination::GivenAccount => words.text(lang, "sms-to-given-account", &[]),
            SmsDestination::Received(account) => account.clone(),
            SmsDestination::Card { debit, bank, last4 } => {
                let last4 = last4
                    .as_deref()
                    .map(|digits| {
                        words.text(lang, "sms-card-last4", &[("digits", Arg::Str(digits))])
                    })
                    .unwrap_or_default();
                let id = if *debit {
                    "sms-to-debit-card"
                } else {
                    "sms-to-credit-card"
                };
                words.text(
                    lang,
                    id,
                    &[("bank", Arg::Str(bank)), ("last4", Arg::Str(&last4))],
                )
            }
            SmsDestination::UnionpayQr => words.text(lang, "sms-to-unionpay-qr", &[]),
            SmsDestination::Wechat => words.text(lang, "sms-to-wechat", &[]),
            SmsDestination::Alipay => words.text(lang, "sms-to-alipay", &[]),
        }
    }
}

/// What an SMS about a refund says, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsFacts {
    pub kind: SmsKind,
    pub merchant: String,
    pub amount_fen: i64,
    /// A void (消费撤销) rather than a refund.
    pub void: bool,
    pub destination: SmsDestination,
    /// The date (Asia/Shanghai) the money is expected by: on acceptance the expected
    /// arrival; on arrival only while it is still ahead (a card's statement credit).
    pub expected_by: Option<NaiveDate>,
}

impl SmsFacts {
    /// The facts of the `kind` SMS about `refund` at `now_us`.
    pub fn of(
        merchant_name: &str,
        refund: &RefundRow,
        payment: &PaymentRow,
        kind: SmsKind,
        now_us: i64,
    ) -> Self {
        let expected = refund
            .expected_arrival_by_us
            .filter(|by| kind == SmsKind::Accepted || *by > now_us);
        SmsFacts {
            kind,
            merchant: merchant_name.to_string(),
            amount_fen: refund.amount_fen,
            void: refund.refund_type == RefundType::Void,
            destination: SmsDestination::of(refund, payment),
            expected_by: expected.map(|us| shanghai_date(from_micros(us))),
        }
    }

    /// The text in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        let words = Words::get();
        let amount = format_cny(self.amount_fen);
        let date = self.expected_by.map(|d| {
            let (year, month, day) = (
                d.year().to_string(),
                d.month().to_string(),
                d.day().to_string(),
            );
            let iso = d.format("%Y-%m-%d").to_string();
            words.text(
                lang,
                "sms-date",
                &[
                    ("year", Arg::Str(&year)),
                    ("month", Arg::Str(&month)),
                    ("day", Arg::Str(&day)),
                    ("iso", Arg::Str(&iso)),
                ],
            )
        });
        let who = [
            ("merchant", Arg::Str(&self.merchant)),
            ("amount", Arg::Str(&amount)),
        ];
        match self.kind {
            SmsKind::Accepted => match &date {
                Some(date) => words.text(
                    lang,
                    "sms-accepted-by",
                    &[who[0], who[1], ("date", Arg::Str(date))],
                ),
                None => words.text(lang, "sms-accepted", &who),
            },
            SmsKind::Arrived => {
                let destination = self.destination.render(words, lang);
                let id = if self.void {
                    "sms-arrived-void"
                } else {
                    "sms-arrived-refund"
                };
                let head = words.text(
                    lang,
                    id,
                    &[who[0], who[1], ("destination", Arg::Str(&destination))],
                );
                match &date {
                    Some(date) => words.text(
                        lang,
                        "sms-arrived-by",
                        &[("head", Arg::Str(&head)), ("date", Arg::Str(date))],
                    ),
                    None => words.text(lang, "sms-arrived-done", &[("head", Arg::Str(&head))]),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: SmsKind, void: bool, destination: SmsDestination) -> SmsFacts {
        SmsFacts {
            kind,
            merchant: "Lakala Noodles".to_string(),
            amount_fen: 2_345,
            void,
            destination,
            expected_by: NaiveDate::from_ymd_opt(2026, 11, 3),
        }
    }

    #[test]
    fn the_chinese_texts_are_the_ones_consumers_have_always_had() {
        let card = SmsDestination::Card {
            debit: false,
            bank: "招商银行".to_string(),
            last4: Some("0403".to_string()),
        };
        assert_eq!(
            facts(SmsKind::Arrived, true, card).render(Lang::Zh),
            "【原路】您在Lakala Noodles的消费23.45元已撤销，款项已退回至原支付招商银行信用卡（尾号0403），预计2026年11月3日前入账。"
        );
        let mut arrived = facts(SmsKind::Arrived, false, SmsDestination::Wechat);
        arrived.expected_by = None;
        assert_eq!(
            arrived.render(Lang::Zh),
            "【原路】您在Lakala Noodles的退款23.45元已退回至微信零钱或原支付银行卡。"
        );
        let mut accepted = facts(SmsKind::Accepted, false, SmsDestination::GivenAccount);
        accepted.expected_by = None;
        assert_eq!(
            accepted.render(Lang::Zh),
            "【原路】您在Lakala Noodles的退款23.45元已受理，到账后将短信通知您。"
        );
    }

    #[test]
    fn english_says_the_same_facts() {
        let text = facts(SmsKind::Accepted, false, SmsDestination::Alipay).render(Lang::En);
        assert_eq!(
            text,
            "[Yuanlu] Your refund of CNY 23.45 at Lakala Noodles was accepted; it arrives by 2026-11-03."
        );
    }
}
