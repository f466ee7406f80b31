//! The console's reconciliation, merchant and key pages and the consumer's card lookup
//! render in both languages with every word resolved and a CSRF token in every posted form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use askama::Template;
use chrono::{TimeZone, Utc};
use yuanlu_domain::settings::MerchantSettings;
use yuanlu_engine::keys::{ApiKey, KeyRole, KeyStatus};
use yuanlu_engine::reconciliation::{
    ClassSummary, ReconException, ReconSummary, ReconciliationView,
};
use yuanlu_engine::staff::{StaffRole, StaffUser};
use yuanlu_engine::views::{CreatedApiKey, Merchant};
use yuanlu_words::Lang;

use super::console::merchants::{ChannelRow, ListPage, MerchantPage, NewKeyPage};
use super::console::recon::{ReconPage, UploadPage};
use super::consumer::status::StatusPage;
use super::ctx::Ctx;
use super::tests::{assert_no_ids, signed_in};

fn merchant() -> Merchant {
    Merchant {
        id: "mch_1".into(),
        name: "Tea House 茶馆".into(),
        settings: MerchantSettings::default(),
        balances: Default::default(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap(),
    }
}

fn recon() -> ReconciliationView {
    let class = |class: &str, count| ClassSummary {
        class: class.into(),
        count,
        channel_amount: 100,
        our_amount: 100,
    };
    ReconciliationView {
        id: "recon_1".into(),
        channel: "yuanlu".into(),
        business_date: "2026-01-05".into(),
        file_sha256: "ab".into(),
        lines: 2,
        records: 1,
        status: "open".into(),
        exceptions: 1,
        open_exceptions: 1,
        report: ReconSummary {
            lines: 2,
            records: 1,
            payments_reconciled: false,
            unlisted_not_succeeded: 0,
            classes: [
                "matched",
                "amount_mismatch",
                "missing_in_channel",
                "unexpected_in_channel",
                "duplicate_in_channel",
                "status_mismatch",
                "credited_after_refund",
            ]
            .into_iter()
            .map(|c| class(c, 1))
            .collect(),
        },
        created_by: "acquirer:admin".into(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 6, 2, 0, 0).unwrap(),
        already_imported: false,
    }
}

fn exception(status: &str) -> ReconException {
    ReconException {
        id: "rex_1".into(),
        reconciliation_id: "recon_1".into(),
        merchant_id: None,
        class: "unexpected_in_channel".into(),
        kind: "refund".into(),
        line_no: Some(3),
        our_ref: None,
        channel_txn_id: Some("X1".into()),
        our_amount: None,
        channel_amount: Some(500),
        detail: "not ours".into(),
        status: status.into(),
        resolution_note: (status == "resolved").then(|| "checked".to_string()),
        resolved_by: None,
        resolved_at: None,
        created_at: Utc.with_ymd_and_hms(2026, 1, 6, 2, 0, 0).unwrap(),
    }
}

fn key(status: KeyStatus) -> ApiKey {
    ApiKey {
        id: "key_1".into(),
        merchant_id: Some("mch_1".into()),
        role: KeyRole::Staff,
        prefix: Some("ylk_1a2b".into()),
        origin: Some("api".into()),
        status,
        created_at: Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap(),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
    }
}

fn pages(lang: Lang) -> Vec<(&'static str, String)> {
    let admin = || signed_in(lang, StaffRole::Admin);
    let mut found = StatusPage::form(Ctx::bare(lang));
    found.number = "R-1".into();
    vec![
        ("status-card", found.render().unwrap()),
        (
            "recon-upload",
            UploadPage {
                ctx: admin(),
                channels: vec!["wechat", "alipay", "card", "yuanlu"],
                limit_mib: 32,
            }
            .render()
            .unwrap(),
        ),
        (
            "recon-upload-reviewer",
            UploadPage {
                ctx: signed_in(lang, StaffRole::Reviewer),
                channels: vec!["yuanlu"],
                limit_mib: 32,
            }
            .render()
            .unwrap(),
        ),
        (
            "reconciliation",
            ReconPage {
                ctx: admin(),
                recon: recon(),
                exceptions: vec![exception("open"), exception("resolved")],
                again: true,
            }
            .render()
            .unwrap(),
        ),
        (
            "merchants",
            ListPage {
                ctx: admin(),
                merchants: vec![merchant()],
                funding: vec!["require_balance", "carry_forward"],
            }
            .render()
            .unwrap(),
        ),
        (
            "merchant",
            MerchantPage {
                ctx: admin(),
                merchant: merchant(),
                channels: vec![
                    ChannelRow {
                        channel: "debit_card",
                        fee_percent: "0.38%".into(),
                        fee_cap_fen: Some(2_000),
                        refund_window_days: 180,
                        fee_refund: "proportional",
                    },
                    ChannelRow {
                        channel: "wechat",
                        fee_percent: "0.60%".into(),
                        fee_cap_fen: None,
                        refund_window_days: 365,
                        fee_refund: "none",
                    },
                ],
                keys: [
                    KeyStatus::Active,
                    KeyStatus::Expiring,
                    KeyStatus::Expired,
                    KeyStatus::Revoked,
                ]
                .into_iter()
                .map(key)
                .collect(),
                staff: vec![StaffUser {
                    id: "usr_1".into(),
                    username: "li.cashier".into(),
                    role: StaffRole::Cashier,
                    merchant_id: Some("mch_1".into()),
                }],
                staff_roles: vec!["cashier", "supervisor"],
            }
            .render()
            .unwrap(),
        ),
        (
            "new-key",
            NewKeyPage {
                ctx: admin(),
                merchant_id: "mch_1".into(),
                merchant_name: "Tea House".into(),
                key: CreatedApiKey {
                    id: "key_1".into(),
                    merchant_id: Some("mch_1".into()),
                    role: KeyRole::Supervisor,
                    api_key: "ylk_secret".into(),
                },
                onboarded: true,
            }
            .render()
            .unwrap(),
        ),
    ]
}

#[test]
fn console_pages_render_in_both_languages_without_missing_words() {
    for lang in Lang::ALL {
        for (name, html) in pages(lang) {
            assert!(html.contains(&format!("lang=\"{}\"", lang.tag())), "{name}");
            assert_no_ids(name, &html);
            let forms = html.matches("method=\"post\"").count();
            let tokens = html.matches("name=\"csrf\"").count();
            assert!(tokens >= forms, "{name}: {forms} forms, {tokens} tokens");
        }
    }
}

#[test]
fn the_upload_is_a_multipart_form_for_admins_only() {
    let pages = pages(Lang::En);
    let html = |name: &str| &pages.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(html("recon-upload").contains("enctype=\"multipart/form-data\""));
    assert!(!html("recon-upload-reviewer").contains("recon-upload-submit"));
    assert!(html("status-card").contains("id=\"kind-card\""));
    assert!(html("new-key").contains("ylk_secret"));
}
