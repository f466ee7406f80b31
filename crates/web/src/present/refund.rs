//! A refund's timeline, next step, where its money is and where it goes back to, in the
//! reader's language, from the engine's data (`yuanlu_engine::timeline`).

use chrono::{DateTime, Utc};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::review::RequiredReviewer;
use yuanlu_engine::arrival;
use yuanlu_engine::timeline::{Destination, EventFacts, MoneyAt, NextStep, Route, Step, action};
use yuanlu_words::{Arg, Lang};

use super::{cny, say};

/// An instant as people in China read it: `2026-11-25 23:59 (Asia/Shanghai)`.
pub fn shanghai_time(lang: Lang, instant: DateTime<Utc>) -> String {
    let time = instant
        .with_timezone(&yuanlu_domain::time::shanghai())
        .format("%Y-%m-%d %H:%M")
        .to_string();
    say(lang, "tl-time-shanghai", &[("time", Arg::Str(&time))])
}

/// A channel's name: `WeChat Pay`, `微信支付`.
pub fn channel_name(lang: Lang, channel: Channel) -> String {
    say(lang, "tl-channel", &[("channel", Arg::Str(channel.id()))])
}

fn with_note(lang: Lang, text: String, note: &Option<String>) -> String {
    match note {
        Some(note) => say(
            lang,
            "tl-with-note",
            &[("text", Arg::Str(&text)), ("note", Arg::Str(note))],
        ),
        None => text,
    }
}

fn joined(lang: Lang, first: &str, second: &str) -> String {
    say(
        lang,
        "tl-joined",
        &[("first", Arg::Str(first)), ("second", Arg::Str(second))],
    )
}

/// Where the money goes back to, in words: `the debit card it was paid with (ICBC **** 0403)`.
/// `account` and `bank` are what the reader may see of it.
pub fn destination_parts(
    lang: Lang,
    channel: Channel,
    account: Option<&str>,
    bank: Option<&str>,
    route: Route,
) -> String {
    match route {
        Route::Merchant => say(lang, "tl-dest-paid-by-merchant", &[]),
        Route::Reported => account.unwrap_or_default().to_string(),
        Route::Original => {
            let place = say(lang, "tl-dest", &[("channel", Arg::Str(channel.id()))]);
            match (bank, account) {
                (Some(bank), Some(account)) => say(
                    lang,
                    "tl-dest-bank-account",
                    &[
                        ("place", Arg::Str(&place)),
                        ("bank", Arg::Str(bank)),
                        ("account", Arg::Str(account)),
                    ],
                ),
                (None, Some(account)) => say(
                    lang,
                    "tl-dest-account",
                    &[("place", Arg::Str(&place)), ("account", Arg::Str(account))],
                ),
                _ => place,
            }
        }
    }
}

/// [`destination_parts`] of a refund's whole destination.
pub fn destination(lang: Lang, d: &Destination) -> String {
    destination_parts(
        lang,
        d.channel,
        d.account.as_deref(),
        d.bank.as_deref(),
        d.route,
    )
}

/// Where the money is; empty for an event that leaves no status. `destination` is the
/// refund's, in words ([`destination`]).
pub fn money_at(lang: Lang, money: Option<MoneyAt>, destination: &str) -> String {
    let Some(money) = money else {
        return String::new();
    };
    match money {
        MoneyAt::HeldForRefund => say(lang, "tl-money-held", &[]),
        MoneyAt::WithChannel { channel } => say(
            lang,
            "tl-money-with-channel",
            &[("channel", Arg::Str(&channel_name(lang, channel)))],
        ),
        MoneyAt::Reversed => say(lang, "tl-money-reversed", &[]),
        MoneyAt::PaidByMerchant => say(lang, "tl-money-paid-by-merchant", &[]),
        MoneyAt::Credited => say(
            lang,
            "tl-money-credited",
            &[("destination", Arg::Str(destination))],
        ),
        MoneyAt::HeldForReroute => say(lang, "tl-money-held-for-reroute", &[]),
        MoneyAt::HeldOutcomeUnknown => say(lang, "tl-money-held-unknown", &[]),
        MoneyAt::StaysWithMerchant => say(lang, "tl-money-stays", &[]),
    }
}

/// Who asked for a refund: `Li (merchant)`, `the merchant`.
fn requester(lang: Lang, name: Option<&str>, role: Option<&str>) -> String {
    let role = role.map(|r| say(lang, "tl-role", &[("role", Arg::Str(r))]));
    match (name, role.as_deref()) {
        (Some(name), Some(role)) => say(
            lang,
            "tl-who-name-role",
            &[("name", Arg::Str(name)), ("role", Arg::Str(role))],
        ),
        (None, Some(role)) => say(lang, "tl-who-role", &[("role", Arg::Str(role))]),
        (Some(name), None) => say(lang, "tl-who-name", &[("name", Arg::Str(name))]),
        (None, None) => say(lang, "tl-who-merchant", &[]),
    }
}

// Long on purpose: one arm per timeline event, each one message; a translator reads them
// next to `timeline.ftl` in the same order.
/// What happened, in one sentence. `event` is the entry's name (said as it is for events
/// this version does not know), `status` the refund's status after it.
pub fn event(lang: Lang, facts: &EventFacts, event: &str, status: Option<RefundStatus>) -> String {
    let plain = |id: &str| say(lang, id, &[]);
    match facts {
        EventFacts::Created {
            amount,
            requested_by_name,
            requested_by_role,
            review_reasons,
        } => {
            let who = requester(
                lang,
                requested_by_name.as_deref(),
                requested_by_role.as_deref(),
            );
            let amount = amount.map(cny).unwrap_or_default();
            let asked = say(
                lang,
                "tl-created",
                &[("amount", Arg::Str(&amount)), ("who", Arg::Str(&who))],
            );
            let then = match status {
                Some(RefundStatus::Queued) => Some(plain("tl-then-queued")),
                Some(RefundStatus::PendingReview) if review_reasons.is_empty() => {
                    Some(plain("tl-then-review"))
                }
                Some(RefundStatus::PendingReview) => {
                    let reasons: Vec<String> = review_reasons
                        .iter()
                        .map(|r| say(lang, "tl-review-reason", &[("reason", Arg::Str(r))]))
                        .collect();
                    let reasons = reasons.join(&plain("tl-list-separator"));
                    Some(say(
                        lang,
                        "tl-then-review-reasons",
                        &[("reasons", Arg::Str(&reasons))],
                    ))
                }
                Some(RefundStatus::AwaitingReturn) => Some(plain("tl-then-return")),
                _ => None,
            };
            match then {
                Some(then) => joined(lang, &asked, &then),
                None => asked,
            }
        }
        EventFacts::Approved { note } => with_note(lang, plain("tl-approved"), note),
        EventFacts::Rejected { note } => with_note(lang, plain("tl-rejected"), note),
        EventFacts::Canceled { note } => with_note(lang, plain("tl-canceled"), note),
        EventFacts::GoodsReturned { tracking_no } => match tracking_no {
            Some(t) => say(
                lang,
                "tl-goods-returned-tracking",
                &[("tracking", Arg::Str(t))],
            ),
            None => plain("tl-goods-returned"),
        },
        EventFacts::VoidCompleted => plain("tl-void-completed"),
        EventFacts::BecameRefund {
            business_date,
            settled,
            fee_refunded,
        } => {
            let id = if *settled {
                "tl-became-refund-settled"
            } else {
                "tl-became-refund-over"
            };
            let fee = fee_refunded.map(cny).unwrap_or_default();
            say(
                lang,
                id,
                &[
                    ("date", Arg::Str(business_date.as_deref().unwrap_or("?"))),
                    ("fee", Arg::Str(&fee)),
                ],
            )
        }
        EventFacts::Sent {
            rerouted_to: Some(to),
            ..
        } => say(lang, "tl-sent-rerouted", &[("to", Arg::Str(to))]),
        EventFacts::Sent { channel, .. } => {
            let name = match channel {
                Some(c) => channel_name(lang, *c),
                None => plain("tl-channel-unknown"),
            };
            say(lang, "tl-sent", &[("channel", Arg::Str(&name))])
        }
        EventFacts::Accepted => plain("tl-accepted"),
        EventFacts::Succeeded { received_account } => match received_account {
            Some(account) => say(lang, "tl-succeeded-to", &[("account", Arg::Str(account))]),
            None => plain("tl-succeeded"),
        },
        EventFacts::Abnormal { note } => with_note(lang, plain("tl-abnormal"), note),
        EventFacts::OutcomeUnknown { note } => with_note(lang, plain("tl-outcome-unknown"), note),
        EventFacts::Failed { note } => with_note(lang, plain("tl-failed"), note),
        EventFacts::Rerouted { note } => with_note(lang, plain("tl-rerouted"), note),
        EventFacts::PaidByMerchant { note } => match note {
            Some(note) => say(
                lang,
                "tl-paid-by-merchant-note",
                &[("note", Arg::Str(note))],
            ),
            None => plain("tl-paid-by-merchant"),
        },
        EventFacts::Rated { rating } => say(
            lang,
            "tl-rated",
            &[("rating", Arg::Str(&rating.to_string()))],
        ),
        // Events that carry no facts of their own: said by their name.
        EventFacts::Other => match event {
            action::EVIDENCE_COMPLETE => plain("tl-evidence-complete"),
            arrival::RECEIVED_ACTION => plain("tl-arrival-confirmed"),
            arrival::NOT_RECEIVED_ACTION => plain("tl-arrival-denied"),
            _ => event.to_string(),
        },
    }
}

/// What happens next, in one sentence; `destination` is the refund's, in words.
pub fn next_step(lang: Lang, next: &NextStep, destination: &str) -> String {
    match next.step {
        Step::RecordReturn => say(lang, "tl-next-record-return", &[]),
        Step::Review {
            reviewer: RequiredReviewer::Acquirer,
        } => say(lang, "tl-next-review-acquirer", &[]),
        Step::Review { .. } => say(lang, "tl-next-review-merchant", &[]),
        Step::Send { channel } => say(
            lang,
            "tl-next-send",
            &[("channel", Arg::Str(&channel_name(lang, channel)))],
        ),
        Step::Confirm { channel } => {
            let name = channel_name(lang, channel);
            match next.by {
                Some(by) => say(
                    lang,
                    "tl-next-confirm-by",
                    &[
                        ("channel", Arg::Str(&name)),
                        ("destination", Arg::Str(destination)),
                        ("by", Arg::Str(&shanghai_time(lang, by))),
                    ],
                ),
                None => say(lang, "tl-next-confirm", &[("channel", Arg::Str(&name))]),
            }
        }
        Step::Reroute => say(lang, "tl-next-reroute", &[]),
    }
}

/// What the consumer gets of a refund with deductions, and why, in one sentence: "You get
/// 95.00 (100.00 requested, less 5.00 handling fee: opened box)." — "Sent back to you: …" once the
/// channel paid it. `None` without deductions (the amount says it all).
pub fn amount_said(
    lang: Lang,
    status: RefundStatus,
    amount_fen: i64,
    consumer_fen: i64,
    deductions: &[yuanlu_domain::deduction::Deduction],
) -> Option<String> {
    if deductions.is_empty() {
        return None;
    }
    let items: Vec<String> = deductions
        .iter()
        .map(|d| {
            say(
                lang,
                "refund-deduction-item",
                &[
                    ("amount", Arg::Str(&cny(d.amount_fen))),
                    (
                        "kind",
                        Arg::Str(&super::statement::deduction_kind(lang, d.kind)),
                    ),
                    ("reason", Arg::Str(&d.reason)),
                ],
            )
        })
        .collect();
    let id = if status == RefundStatus::Succeeded {
        "refund-you-got"
    } else {
        "refund-you-get"
    };
    Some(say(
        lang,
        id,
        &[
            ("consumer", Arg::Str(&cny(consumer_fen))),
            ("amount", Arg::Str(&cny(amount_fen))),
            (
                "deductions",
                Arg::Str(&items.join(&say(lang, "refund-deduction-separator", &[]))),
            ),
        ],
    ))
}
