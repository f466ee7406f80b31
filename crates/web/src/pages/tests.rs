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
