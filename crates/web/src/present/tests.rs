//! The renderer, every event kind, step and place in both languages. The English is the
//! API's default text (what the engine wrote before the words moved here); the Chinese is
//! checked for its key words and for no untranslated message id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::refund::RefundStatus;
use yuanlu_domain::review::RequiredReviewer;
use yuanlu_domain::settlement::{
    PaymentLine, RefundLine, RefundLineKind, SettlementInput, VoidLine, settle,
};
use yuanlu_engine::timeline::{Destination, EventFacts, MoneyAt, NextStep, Route, Step};
use yuanlu_words::Lang;

use super::{refund, statement};

fn note(n: &str) -> Option<String> {
    Some(n.to_string())
}

/// Every event kind with what it says in English and words its Chinese must hold.
fn events() -> Vec<(EventFacts, Option<RefundStatus>, &'static str, &'static str)> {
    use EventFacts::*;
    vec![
        (
            Created {
                amount: Some(1_000),
                requested_by_name: note("cashier Li"),
                requested_by_role: note("merchant"),
                review_reasons: vec![],
            },
            Some(RefundStatus::Queued),
            "refund of 10.00 CNY asked for by cashier Li (merchant) · approved automatically (no review needed)",
            "cashier Li（商户）申请退款 10.00 元，无需审核，已自动批准",
        ),
        (
            Created {
                amount: Some(250_000),
                requested_by_name: None,
                requested_by_role: note("merchant"),
                review_reasons: vec!["large_amount".into(), "refund_ratio".into()],
            },
            Some(RefundStatus::PendingReview),
            "refund of 2500.00 CNY asked for by the merchant · waits for review (large_amount,refund_ratio)",
            "商户申请退款 2500.00 元，等待审核（大额退款、今日退款占销售比例过高）",
        ),
        (
            Created {
                amount: Some(500),
                requested_by_name: None,
                requested_by_role: None,
                review_reasons: vec![],
            },
            Some(RefundStatus::AwaitingReturn),
            "refund of 5.00 CNY asked for by the merchant · waits for the goods to come back",
            "等待商品退回",
        ),
        (
            Approved {
                note: note("known customer"),
            },
            Some(RefundStatus::Queued),
            "approved: known customer",
            "已批准：known customer",
        ),
        (Rejected { note: None }, None, "rejected", "已拒绝"),
        (
            Canceled { note: None },
            None,
            "canceled before it was sent",
            "发送前已取消",
        ),
        (
            GoodsReturned {
                tracking_no: note("SF1234"),
            },
            None,
            "the merchant recorded the returned goods (tracking number SF1234)",
            "商户已登记退回的商品（快递单号 SF1234）",
        ),
        (
            GoodsReturned { tracking_no: None },
            None,
            "the merchant recorded the returned goods",
            "商户已登记退回的商品",
        ),
        (
            VoidCompleted,
            None,
            "voided (撤销) at the acquirer: the payment and its whole fee were reversed",
            "已在收单机构撤销",
        ),
        (
            BecameRefund {
                business_date: note("2026-11-20"),
                settled: true,
                fee_refunded: Some(0),
            },
            None,
            "void window passed (business date 2026-11-20 was settled); becomes a refund (退货) sent to the channel, returning 0.00 CNY of the fee",
            "营业日 2026-11-20 已结算",
        ),
        (
            BecameRefund {
                business_date: note("2026-11-20"),
                settled: false,
                fee_refunded: Some(150),
            },
            None,
            "void window passed (business date 2026-11-20 is over); becomes a refund (退货) sent to the channel, returning 1.50 CNY of the fee",
            "营业日 2026-11-20 已结束），转为退货发往支付渠道，退还手续费 1.50 元",
        ),
        (
            Sent {
                channel: Some(Channel::Wechat),
                rerouted_to: None,
            },
            Some(RefundStatus::Processing),
            "sent to WeChat Pay along the original route",
            "已按原路发送至微信支付",
        ),
        (
            Sent {
                channel: None,
                rerouted_to: None,
            },
            None,
            "sent to the channel along the original route",
            "已按原路发送至支付渠道",
        ),
        (
            Sent {
                channel: Some(Channel::Wechat),
                rerouted_to: note("招商银行 **** 0403"),
            },
            None,
            "sent again, to 招商银行 **** 0403 (rerouted by the acquirer)",
            "已改道，重新发送至 招商银行 **** 0403",
        ),
        (
            Accepted,
            None,
            "accepted by the channel; waiting for its confirmation",
            "渠道已受理",
        ),
        (
            Succeeded {
                received_account: note("支付用户零钱"),
            },
            None,
            "refunded by the channel to 支付用户零钱",
            "渠道已退款至 支付用户零钱",
        ),
        (
            Succeeded {
                received_account: None,
            },
            None,
            "refunded by the channel",
            "渠道已退款",
        ),
        (
            Abnormal {
                note: note("account closed"),
            },
            None,
            "the channel could not refund along the original route: account closed",
            "渠道无法按原路退款：account closed",
        ),
        (
            OutcomeUnknown { note: None },
            None,
            "no definitive answer from the channel; held for an operator, who decides after a final query",
            "渠道未给出明确结果",
        ),
        (
            Failed {
                note: note("declined"),
            },
            None,
            "failed: declined",
            "退款失败：declined",
        ),
        (
            Rerouted { note: None },
            None,
            "rerouted by the acquirer",
            "收单机构已改道",
        ),
        (
            PaidByMerchant {
                note: note("paid by the merchant directly (in cash)"),
            },
            None,
            "refunded: paid by the merchant directly (in cash)",
            "已退款：paid by the merchant directly (in cash)",
        ),
        (
            PaidByMerchant { note: None },
            None,
            "refunded: paid by the merchant directly",
            "已退款：由商户直接付给消费者",
        ),
        (
            Rated { rating: 4 },
            None,
            "the consumer rated it 4/5",
            "消费者评分 4/5",
        ),
    ]
}

fn untranslated(text: &str) -> bool {
    text.contains("tl-") || text.contains("st-")
}

#[test]
fn every_event_kind_is_said_in_english_as_before_and_in_chinese() {
    for (facts, status, en, zh) in events() {
        let said_en = refund::event(Lang::En, &facts, "refund.x", status);
        assert_eq!(said_en, en, "{facts:?}");
        let said_zh = refund::event(Lang::Zh, &facts, "refund.x", status);
        assert!(said_zh.contains(zh), "{facts:?}: {said_zh}");
        assert!(!untranslated(&said_zh), "{said_zh}");
    }
    let other = refund::event(Lang::Zh, &EventFacts::Other, "refund.later_kind", None);
    assert_eq!(other, "refund.later_kind");
}

/// Events without facts of their own (the evidence release, the consumer's answer about
/// arrival) are said in words, not by their stored name; every refund event has a title
/// (`event-…`, the pages' `ctx.event`) in both languages.
#[test]
fn events_without_facts_and_every_title_are_in_words() {
    use yuanlu_engine::arrival::{NOT_RECEIVED_ACTION, RECEIVED_ACTION};
    use yuanlu_engine::timeline::action::*;
    for (event, en, zh) in [
        (
            EVIDENCE_COMPLETE,
            "the evidence the merchant requires is complete",
            "证明材料已齐",
        ),
        (
            RECEIVED_ACTION,
            "the consumer confirmed the money arrived",
            "消费者确认已收到",
        ),
        (
            NOT_RECEIVED_ACTION,
            "the consumer said the money has not arrived",
            "消费者告知尚未收到",
        ),
    ] {
        let said_en = refund::event(Lang::En, &EventFacts::Other, event, None);
        assert!(said_en.starts_with(en), "{event}: {said_en}");
        let said_zh = refund::event(Lang::Zh, &EventFacts::Other, event, None);
        assert!(said_zh.contains(zh), "{event}: {said_zh}");
    }
    let words = yuanlu_words::Words::get();
    for event in [
        CREATED,
        APPROVED,
        REJECTED,
        CANCELED,
        GOODS_RETURNED,
        VOID_COMPLETED,
        BECAME_REFUND,
        SENT,
        ACCEPTED,
        SUCCEEDED,
        ABNORMAL,
        OUTCOME_UNKNOWN,
        FAILED,
        REROUTED,
        PAID_BY_MERCHANT,
        RATED,
        EVIDENCE_COMPLETE,
        RECEIVED_ACTION,
        NOT_RECEIVED_ACTION,
    ] {
        let title = format!("event-{}", event.replace('.', "-"));
        for lang in [Lang::En, Lang::Zh] {
            assert!(words.has(lang, &title), "no {title} in {lang:?}");
        }
    }
}

fn card() -> Destination {
    Destination {
        channel: Channel::DebitCard,
        account: Some("**** 0403".into()),
        bank: Some("ICBC".into()),
        route: Route::Original,
    }
}

#[test]
fn places_and_where_the_money_is() {
    assert_eq!(
        refund::destination(Lang::En, &card()),
        "the debit card it was paid with (ICBC **** 0403)"
    );
    assert_eq!(
        refund::destination(Lang::Zh, &card()),
        "付款所用的借记卡（ICBC **** 0403）"
    );
    let wallet = Destination {
        channel: Channel::Alipay,
        account: None,
        bank: None,
        route: Route::Original,
    };
    assert_eq!(
        refund::destination(Lang::En, &wallet),
        "the Alipay balance, Huabei or bank card it was paid from"
    );
    let merchant = Destination {
        route: Route::Merchant,
        ..wallet.clone()
    };
    assert_eq!(
        refund::destination(Lang::En, &merchant),
        "paid by the merchant directly"
    );
    assert_eq!(refund::destination(Lang::Zh, &merchant), "由商户直接付款");
    let reported = Destination {
        account: Some("余额".into()),
        route: Route::Reported,
        ..wallet
    };
    assert_eq!(refund::destination(Lang::Zh, &reported), "余额");

    let place_en = refund::destination(Lang::En, &card());
    let cases = [
        (
            MoneyAt::HeldForRefund,
            "still with the merchant's account at the acquirer; held for this refund",
            "冻结",
        ),
        (
            MoneyAt::WithChannel {
                channel: Channel::Alipay,
            },
            "sent to Alipay; not yet confirmed",
            "已发送至支付宝",
        ),
        (
            MoneyAt::Reversed,
            "the payment was reversed before settlement; nothing was taken from the payer",
            "冲正",
        ),
        (
            MoneyAt::PaidByMerchant,
            "paid to the consumer by the merchant directly; the amount held for it went back to the merchant's balance",
            "商户已直接付给消费者",
        ),
        (
            MoneyAt::Credited,
            "credited to the debit card it was paid with (ICBC **** 0403)",
            "已退回至付款所用的借记卡",
        ),
        (
            MoneyAt::HeldForReroute,
            "returned by the channel (the original route is closed); held by the acquirer until rerouted",
            "等待改道",
        ),
        (
            MoneyAt::HeldOutcomeUnknown,
            "held by the acquirer; the channel may still pay it, so it stays held until an operator decides",
            "操作员",
        ),
        (
            MoneyAt::StaysWithMerchant,
            "stays with the merchant; nothing was refunded",
            "未退款",
        ),
    ];
    let place_zh = refund::destination(Lang::Zh, &card());
    for (money, en, zh) in cases {
        assert_eq!(refund::money_at(Lang::En, Some(money), &place_en), en);
        let said = refund::money_at(Lang::Zh, Some(money), &place_zh);
        assert!(said.contains(zh), "{money:?}: {said}");
        assert!(!untranslated(&said), "{said}");
    }
    assert_eq!(refund::money_at(Lang::Zh, None, &place_zh), "");
}

#[test]
fn every_next_step_in_both_languages() {
    let by = Utc.with_ymd_and_hms(2026, 11, 25, 15, 59, 59).single();
    let place_en = refund::destination(Lang::En, &card());
    let place_zh = refund::destination(Lang::Zh, &card());
    let steps = [
        (
            Step::RecordReturn,
            None,
            "the merchant records the returned goods with their tracking number",
            "快递单号",
        ),
        (
            Step::Review {
                reviewer: RequiredReviewer::Acquirer,
            },
            None,
            "a reviewer at the acquirer approves or rejects it",
            "收单机构审核",
        ),
        (
            Step::Review {
                reviewer: RequiredReviewer::Merchant,
            },
            None,
            "a merchant supervisor (or the acquirer) approves or rejects it",
            "商户主管",
        ),
        (
            Step::Send {
                channel: Channel::Wechat,
            },
            None,
            "it is sent to WeChat Pay along the original route",
            "按原路发送至微信支付",
        ),
        (
            Step::Confirm {
                channel: Channel::DebitCard,
            },
            None,
            "debit card confirms it",
            "由借记卡确认",
        ),
        (
            Step::Confirm {
                channel: Channel::Wechat,
            },
            by,
            "WeChat Pay confirms it, and the money reaches the debit card it was paid with (ICBC **** 0403) by 2026-11-25 23:59 (Asia/Shanghai)",
            "由微信支付确认，款项将于 2026-11-25 23:59（北京时间） 前退回至付款所用的借记卡（ICBC **** 0403）",
        ),
        (
            Step::Reroute,
            None,
            "an operator reroutes it to a bank account given by the consumer, or back to the merchant",
            "改道",
        ),
    ];
    for (step, by, en, zh) in steps {
        let next = NextStep { step, by };
        assert_eq!(refund::next_step(Lang::En, &next, &place_en), en);
        let said = refund::next_step(Lang::Zh, &next, &place_zh);
        assert!(said.contains(zh), "{step:?}: {said}");
        assert!(!untranslated(&said), "{said}");
    }
}

/// A day with a sale, a void, a refund with and without a fee, and credit-backs, on a
/// carried debt: every line kind and every sentence of the summary.
fn busy_statement() -> yuanlu_domain::settlement::Statement {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap_or_default();
    let at = yuanlu_domain::time::shanghai_day_bounds(date).0 + chrono::Duration::hours(10);
    let input = SettlementInput {
        merchant_id: "mch_1".into(),
        business_date: date,
        opening_carried_fen: -20_000,
        payments: vec![PaymentLine {
            payment_id: "pay_1".into(),
            channel: Channel::CreditCard,
            amount_fen: 100_000,
            fee_fen: 600,
            captured_at: at,
        }],
        voids: vec![VoidLine {
            refund_id: "rf_v".into(),
            payment_id: "pay_0".into(),
            channel: Channel::DebitCard,
            amount_fen: 5_000,
            fee_fen: 30,
        }],
        refunds: vec![
            RefundLine {
                refund_id: "rf_a".into(),
                payment_id: "pay_9".into(),
                channel: Channel::Wechat,
                amount_fen: 3_000,
                fee_refunded_fen: 18,
                kind: RefundLineKind::Debited,
            },
            RefundLine {
                refund_id: "rf_b".into(),
                payment_id: "pay_9".into(),
                channel: Channel::Wechat,
                amount_fen: 1_000,
                fee_refunded_fen: 0,
                kind: RefundLineKind::Debited,
            },
            RefundLine {
                refund_id: "rf_c".into(),
                payment_id: "pay_8".into(),
                channel: Channel::Alipay,
                amount_fen: 2_000,
                fee_refunded_fen: 12,
                kind: RefundLineKind::CreditedBack,
            },
            RefundLine {
                refund_id: "rf_d".into(),
                payment_id: "pay_8".into(),
                channel: Channel::Alipay,
                amount_fen: 700,
                fee_refunded_fen: 0,
                kind: RefundLineKind::CreditedBack,
            },
        ],
        deductions: Vec::new(),
    };
    let calendar = yuanlu_domain::calendar::BusinessCalendar::default();
    match settle(&input, &calendar) {
        Ok(s) => s,
        Err(e) => panic!("settles: {e}"),
    }
}

#[test]
fn statement_lines_and_summary_in_english_are_the_settled_words_and_in_chinese_too() {
    let s = busy_statement();
    assert_eq!(s.lines.len(), 6);
    for line in &s.lines {
        assert_eq!(statement::line(Lang::En, line), line.english());
        let zh = statement::line(Lang::Zh, line);
        assert!(zh.contains("元") && zh.contains(&line.reference), "{zh}");
        assert!(!untranslated(&zh), "{zh}");
    }
    assert_eq!(statement::summary(Lang::En, &s), s.explain());
    let zh = statement::summary(Lang::Zh, &s);
    assert_eq!(zh.len(), s.explain().len());
    assert!(zh[0].contains("结算单"), "{zh:?}");
    assert!(zh.iter().any(|l| l.contains("原因是")), "{zh:?}");
    assert!(zh.iter().all(|l| !untranslated(l)), "{zh:?}");
}

#[test]
fn a_line_settled_before_its_payment_was_recorded_keeps_its_english() {
    let mut line = busy_statement().lines[0].clone();
    line.captured_at = None;
    line.payment_id = None;
    line.explanation = "as settled".into();
    assert_eq!(statement::line(Lang::Zh, &line), "as settled");
}

/// The refund page and the consumer's page say the timeline in the reader's language.
#[test]
fn pages_show_the_timeline_in_the_readers_language() {
    use askama::Template;
    use yuanlu_domain::refund::{RefundReason, RefundType, RequesterRole};
    use yuanlu_engine::timeline::TimelineEvent;
    use yuanlu_engine::views::{Refund, RequestedBy};

    use crate::pages::consumer::status::StatusPage;
    use crate::pages::ctx::Ctx;
    use crate::pages::merchant::refunds::RefundPage;
    use crate::present::views;

    let at = Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).single().unwrap();
    let refund = Refund {
        id: "rf_1".into(),
        merchant_id: "mch_1".into(),
        payment_id: "pay_1".into(),
        merchant_refund_no: "R-1".into(),
        channel: Channel::DebitCard,
        refund_type: RefundType::Refund,
        status: RefundStatus::Queued,
        amount: 1_200,
        currency: "CNY",
        fee_refunded: 7,
        consumer_amount: 1_200,
        deductions: vec![],
        reason: RefundReason::CustomerCancel,
        note: None,
        requested_by: RequestedBy {
            role: RequesterRole::Merchant,
            name: Some("cashier Li".into()),
        },
        review: None,
        destination: card(),
        tracking_no: None,
        failure_reason: None,
        expected_arrival_by: None,
        created_at: at,
        updated_at: at,
        timeline: vec![
            TimelineEvent {
                at,
                event: "refund.created".into(),
                status: Some(RefundStatus::PendingReview),
                actor: "staff:usr_1".into(),
                facts: EventFacts::Created {
                    amount: Some(1_200),
                    requested_by_name: note("cashier Li"),
                    requested_by_role: note("merchant"),
                    review_reasons: vec!["preauth_or_member".into()],
                },
                money_at: Some(MoneyAt::HeldForRefund),
            },
            TimelineEvent {
                at,
                event: "refund.approved".into(),
                status: Some(RefundStatus::Queued),
                actor: "staff:usr_2".into(),
                facts: EventFacts::Approved {
                    note: note("checked the receipt"),
                },
                money_at: Some(MoneyAt::HeldForRefund),
            },
        ],
        next_step: Some(NextStep {
            step: Step::Send {
                channel: Channel::DebitCard,
            },
            by: None,
        }),
        evidence: Default::default(),
    };
    // The merchant's refund page lists the evidence (an ID check by its last four characters
    // only) and offers the upload and ID check forms.
    let evidence = vec![
        yuanlu_engine::evidence::Evidence {
            id: "ev_1".into(),
            merchant_id: "mch_1".into(),
            subject_type: yuanlu_engine::evidence::SubjectType::Refund,
            subject_id: "rf_1".into(),
            kind: yuanlu_domain::evidence::EvidenceKind::IdCheck,
            sha256: "ab".repeat(32),
            content_type: None,
            size_bytes: 40,
            id_check: Some(yuanlu_domain::evidence::IdCheck {
                checked_by: "cashier Li".into(),
                document_type: yuanlu_domain::evidence::DocumentType::ResidentIdCard,
                last_digits: "002X".into(),
            }),
            created_by: "merchant:mch_1".into(),
            created_at: at,
        },
        yuanlu_engine::evidence::Evidence {
            id: "ev_2".into(),
            kind: yuanlu_domain::evidence::EvidenceKind::SaleVoucher,
            content_type: Some(yuanlu_domain::evidence::FileType::Jpeg),
            id_check: None,
            sha256: "cd".repeat(32),
            ..evidence_base(at)
        },
    ];
    let staff = |lang: Lang| {
        RefundPage {
            ctx: Ctx::bare(lang),
            base: "/merchant",
            refund: views::Refund::of(lang, refund.clone()),
            can_review: false,
            can_cancel: false,
            names: crate::pages::actors::ActorNames::default(),
            evidence: evidence.clone(),
        }
        .render()
        .unwrap()
    };
    let zh = staff(Lang::Zh);
    for words in [
        "证明材料",
        "居民身份证 **** 002X · cashier Li",
        "签购单",
        "/merchant/refunds/rf_1/evidence/ev_2",
        "SHA-256 cdcdcdcdcdcd",
        "enctype=\"multipart/form-data\"",
        "id=\"id-check\"",
    ] {
        assert!(zh.contains(words), "{words}: {zh}");
    }
    for words in [
        "cashier Li（商户）申请退款 12.00 元，等待审核（预授权完成或会员交易）",
        "已批准：checked the receipt",
        "仍在收单机构的商户账户中",
        "按原路发送至借记卡",
        "付款所用的借记卡（ICBC **** 0403）",
    ] {
        assert!(zh.contains(words), "{words}: {zh}");
    }
    assert!(!zh.contains("asked for by"), "{zh}");
    let en = staff(Lang::En);
    assert!(
        en.contains("refund of 12.00 CNY asked for by cashier Li (merchant) · waits for review (preauth_or_member)"),
        "{en}"
    );

    let consumer = yuanlu_engine::audience::consumer_view(&refund, "Noodles");
    let mut page = StatusPage::form(Ctx::bare(Lang::Zh));
    page.refund = Some(views::ConsumerRefund::of(Lang::Zh, consumer));
    let html = page.render().unwrap();
    assert!(html.contains("商户申请退款 12.00 元，等待审核"), "{html}");
    assert!(!html.contains("cashier Li") && !html.contains("checked the receipt"));
    assert!(html.contains("已批准"), "{html}");
}

fn evidence_base(at: chrono::DateTime<Utc>) -> yuanlu_engine::evidence::Evidence {
    yuanlu_engine::evidence::Evidence {
        id: String::new(),
        merchant_id: "mch_1".into(),
        subject_type: yuanlu_engine::evidence::SubjectType::Refund,
        subject_id: "rf_1".into(),
        kind: yuanlu_domain::evidence::EvidenceKind::ReceiptPhoto,
        sha256: String::new(),
        content_type: None,
        size_bytes: 17,
        id_check: None,
        created_by: "merchant:mch_1".into(),
        created_at: at,
    }
}
