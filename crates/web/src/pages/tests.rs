//! Every template renders in both languages with no message id left unresolved (a missing
//! message renders as its id, e.g. `sales-title`), and the page layer's promises hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use askama::Template;
use yuanlu_engine::audit::{AuditVerification, ChainHead};
use yuanlu_engine::staff::{StaffRole, StaffUser};
use yuanlu_words::{Lang, Words};

use super::charts::{Bar, Chart};
use super::console::ops::{AuditPage, ExceptionsPage};
use super::console::staff::StaffPage;
use super::consumer::status::StatusPage;
use super::ctx::Ctx;
use super::merchant::refunds::{ListFilter, ListPage, channels, statuses};
use super::merchant::sales::{SaleFilter, SalesPage};
use super::merchant::settlements::{CasesPage, StatementsPage};

pub(super) fn signed_in(lang: Lang, role: StaffRole) -> Ctx {
    let mut ctx = Ctx::bare(lang);
    ctx.csrf = "c".repeat(64);
    ctx.user = Some(StaffUser {
        id: "usr_1".into(),
        username: "li.cashier".into(),
        role,
        merchant_id: role.is_merchant_staff().then(|| "mch_1".to_string()),
    });
    ctx
}

/// Every `{{ ctx.t(..) }}` in the output resolved: no `word-word` message id is visible.
pub(super) fn assert_no_ids(name: &str, html: &str) {
    let words = Words::get();
    let visible: String = {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in html.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    };
    for token in visible.split_whitespace() {
        assert!(
            !words.has(Lang::En, token),
            "{name}: message id {token:?} shown instead of its words"
        );
    }
}

fn pages(lang: Lang) -> Vec<(&'static str, String)> {
    let merchant = || signed_in(lang, StaffRole::Supervisor);
    let admin = || signed_in(lang, StaffRole::Admin);
    let chart = Chart::new(
        "chart-per-day",
        "t".into(),
        vec![Bar {
            label: "01-05".into(),
            value: 2,
            shown: "2".into(),
        }],
    );
    assert!(chart.svg_markup().contains("<svg"));
    vec![
        (
            "status",
            StatusPage::form(Ctx::bare(lang)).render().unwrap(),
        ),
        (
            "sales",
            SalesPage {
                ctx: merchant(),
                filter: SaleFilter::default(),
                payments: vec![],
                searched: true,
            }
            .render()
            .unwrap(),
        ),
        (
            "refunds",
            ListPage {
                ctx: merchant(),
                title: "x".into(),
                base: "/merchant",
                action: "/merchant/refunds".into(),
                filter: ListFilter::default(),
                refunds: vec![],
                show_filters: true,
                statuses: statuses(),
                channels: channels(),
            }
            .render()
            .unwrap(),
        ),
        (
            "statements",
            StatementsPage {
                ctx: merchant(),
                date: "2026-01-05".into(),
                statements: vec![],
            }
            .render()
            .unwrap(),
        ),
        (
            "cases",
            CasesPage {
                ctx: admin(),
                base: "/console",
                cases: vec![],
                report: None,
            }
            .render()
            .unwrap(),
        ),
        (
            "staff",
            StaffPage {
                ctx: admin(),
                users: vec![],
                roles: vec!["cashier", "admin"],
            }
            .render()
            .unwrap(),
        ),
        (
            "exceptions",
            ExceptionsPage {
                ctx: admin(),
                reconciliation: String::new(),
                exceptions: vec![],
            }
            .render()
            .unwrap(),
        ),
        (
            "audit",
            AuditPage {
                ctx: admin(),
                audit: AuditVerification {
                    ok: true,
                    entries: 3,
                    chains: 1,
                    first_bad: None,
                    heads: vec![ChainHead {
                        chain: "system".into(),
                        seq: 3,
                        hash: "ab".into(),
                    }],
                },
            }
            .render()
            .unwrap(),
        ),
    ]
}

#[test]
fn every_template_renders_in_both_languages_without_missing_words() {
    for lang in Lang::ALL {
        for (name, html) in pages(lang) {
            assert!(html.contains(&format!("lang=\"{}\"", lang.tag())), "{name}");
            assert!(
                html.contains("id=\"lang-switch\""),
                "{name}: the language switch"
            );
            assert_no_ids(name, &html);
        }
    }
    let error = super::error::PageError::not_found(Lang::En);
    let response = axum::response::IntoResponse::into_response(error);
    assert_eq!(response.status(), 404);
}

#[test]
fn forms_carry_the_csrf_token() {
    for (name, html) in pages(Lang::Zh) {
        let forms = html.matches("method=\"post\"").count();
        let tokens = html.matches("name=\"csrf\"").count();
        assert!(
            tokens >= forms,
            "{name}: {forms} posted forms, {tokens} tokens"
        );
    }
}

/// The consumer's status page of a refund with deductions says what comes back and why,
/// before the channel pays ("you get") and after ("you got"), in both languages.
#[test]
fn the_status_page_says_what_the_consumer_gets_less_the_deductions() {
    use chrono::{TimeZone, Utc};
    use yuanlu_domain::channel::Channel;
    use yuanlu_domain::deduction::{Deduction, DeductionKind};
    use yuanlu_domain::refund::RefundStatus;
    use yuanlu_engine::audience::{ConsumerDestination, ConsumerRefund};
    use yuanlu_engine::timeline::Route;

    let refund = |status: RefundStatus| ConsumerRefund {
        id: "rf_1".into(),
        status,
        amount: 10_000,
        consumer_amount: 9_370,
        deductions: vec![
            Deduction {
                kind: DeductionKind::HandlingFee,
                amount_fen: 500,
                reason: "opened box".into(),
            },
            Deduction {
                kind: DeductionKind::Tax,
                amount_fen: 130,
                reason: "import tax".into(),
            },
        ],
        currency: "CNY",
        merchant_name: "Test shop".into(),
        channel: Channel::Wechat,
        destination: ConsumerDestination {
            account: None,
            bank: None,
            route: Route::Original,
        },
        created_at: Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap(),
        expected_arrival_by: None,
        timeline: vec![],
        next_step: None,
    };
    let page = |lang: Lang, status: RefundStatus| {
        StatusPage {
            ctx: Ctx::bare(lang),
            number: "D-1".into(),
            refund: Some(crate::present::views::ConsumerRefund::of(
                lang,
                refund(status),
            )),
            ticket: String::new(),
            late: false,
            ended: false,
            answerable: false,
            notice: None,
        }
        .render()
        .unwrap()
    };
    let en = page(Lang::En, RefundStatus::Processing);
    assert!(
        en.contains(
            "You get 93.70 (100.00 requested, less 5.00 handling fee: opened box, 1.30 tax: import tax)."
        ),
        "{en}"
    );
    assert_no_ids("status with deductions", &en);
    let zh = page(Lang::Zh, RefundStatus::Processing);
    assert!(
        zh.contains(
            "您将收到 93.70 元（申请退款 100.00 元，扣除 手续费 5.00 元：opened box；税费 1.30 元：import tax）。"
        ),
        "{zh}"
    );
    let after = page(Lang::En, RefundStatus::Succeeded);
    assert!(
        after.contains("Sent back to you: 93.70 (100.00 requested"),
        "{after}"
    );
    let zh_after = page(Lang::Zh, RefundStatus::Succeeded);
    assert!(zh_after.contains("渠道已退还 93.70 元"), "{zh_after}");
}

/// After the channel's success the status page offers "received" / "not received" as one
/// posted form (no script), with the ticket and the CSRF token; before it, nothing.
#[test]
fn the_status_page_asks_whether_the_money_arrived_once_the_channel_paid() {
    use chrono::{TimeZone, Utc};
    use yuanlu_domain::channel::Channel;
    use yuanlu_domain::refund::RefundStatus;
    use yuanlu_engine::audience::{ConsumerDestination, ConsumerRefund};
    use yuanlu_engine::timeline::Route;

    for lang in Lang::ALL {
        for (status, answerable) in [
            (RefundStatus::Succeeded, true),
            (RefundStatus::Processing, false),
        ] {
            let refund = ConsumerRefund {
                id: "rf_1".into(),
                status,
                amount: 2_500,
                consumer_amount: 2_500,
                deductions: vec![],
                currency: "CNY",
                merchant_name: "Test shop".into(),
                channel: Channel::DebitCard,
                destination: ConsumerDestination {
                    account: Some("**** 0403".into()),
                    bank: None,
                    route: Route::Original,
                },
                created_at: Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap(),
                expected_arrival_by: None,
                timeline: vec![],
                next_step: None,
            };
            let mut ctx = Ctx::bare(lang);
            ctx.csrf = "c".repeat(64);
            let html = StatusPage {
                ctx,
                number: String::new(),
                refund: Some(crate::present::views::ConsumerRefund::of(lang, refund)),
                ticket: "tk_1".into(),
                late: false,
                ended: status == RefundStatus::Succeeded,
                answerable,
                notice: None,
            }
            .render()
            .unwrap();
            assert_eq!(
                html.contains("action=\"/status/arrival\""),
                answerable,
                "{lang:?} {status:?}"
            );
            assert!(
                !html.contains("id=\"you-get\""),
                "no deductions, no sentence"
            );
            if answerable {
                for id in ["arrival-yes", "arrival-no"] {
                    assert!(html.contains(&format!("id=\"{id}\"")), "{lang:?}: {id}");
                }
                assert!(html.contains("name=\"received\" value=\"yes\""));
                assert!(html.contains("name=\"received\" value=\"no\""));
                let words = if lang == Lang::Zh {
                    ["钱到账了吗？", "已收到", "未收到"]
                } else {
                    ["Has the money arrived?", "Received", "Not received"]
                };
                for word in words {
                    assert!(html.contains(word), "{lang:?}: {word}");
                }
                assert_no_ids("status arrival", &html);
            }
        }
    }
}
