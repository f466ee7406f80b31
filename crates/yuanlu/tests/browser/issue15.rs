//! Issue 15's pages in the browser: the console's evidence thresholds, the merchant's refund
//! page held for the sale voucher and released by the upload, and the consumer's status
//! page with the deduction ("you get …") and the arrival buttons ("received" /
//! "not received"), in Chinese at phone width and in English at desktop width.

use fantoccini::Locator;
use serde_json::json;

use super::{
    ADMIN, CASHIER, EXPECTED_DAY, ONE_BROWSER, START, accepted_refund, add_user, browser, click,
    fill, look_up, shot, sign_in, sign_out, start_driver, text_of,
};
use crate::common::{self, ADMIN_KEY, Options, Server};

/// A 1×1 PNG: what the server checks is the content (its signature), not the name.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\rIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_evidence_upload_deduction_and_arrival() {
    if !super::browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            clock: Some(START.into()),
            ..Options::default()
        },
    );
    let (merchant, key) = server.merchant("Noodle Bar 面馆").await;
    add_user(&server, CASHIER, "cashier", Some(&merchant));
    add_user(&server, ADMIN, "admin", None);
    let (_driver, port) = start_driver();
    let c = browser(port).await;
    // Tall windows: each picture holds the whole page, at desktop and at phone width.
    c.set_window_size(1100, 1400).await.unwrap();

    // The acquirer requires the sale voucher above 30.00 and an ID check above 500.00.
    sign_in(&c, &server, ADMIN).await;
    c.goto(&server.url(&format!("/console/merchants/{merchant}")))
        .await
        .unwrap();
    assert_eq!(text_of(&c, "#voucher-above").await, "—", "none yet");
    fill(&c, "#set-voucher-above", "30").await;
    fill(&c, "#set-id-check-above", "500").await;
    click(&c, "#change-settings-submit").await;
    let voucher_above = text_of(&c, "#voucher-above").await;
    assert!(voucher_above.contains("30.00"), "{voucher_above}");
    let id_check_above = text_of(&c, "#id-check-above").await;
    assert!(id_check_above.contains("500.00"), "{id_check_above}");
    let settings = server
        .get(&format!("/v1/merchants/{merchant}"), ADMIN_KEY)
        .await
        .body;
    assert_eq!(
        settings["settings"]["evidence"],
        json!({ "require_voucher_above": 3_000, "require_id_check_above": 50_000 }),
        "{settings}"
    );
    shot(&c, "console-merchant-evidence").await;
    sign_out(&c).await;

    // The till asks for 40.00 back, less a 5.00 handling fee agreed with the consumer: above
    // the voucher threshold, so it waits for the voucher.
    let payment = server
        .payment_with(
            &key,
            json!({
                "channel": "debit_card", "amount": 10_000, "currency": "CNY",
                "payer": { "card_last4": "0403", "bank": "China Merchants Bank" },
                "voucher": { "rrn": "600512349999", "trace_no": "000456" },
                "phone": "13900006666"
            }),
        )
        .await;
    let created = server
        .post(
            "/v1/refunds",
            &key,
            &json!({
                "payment_id": payment["id"], "amount": 4_000, "reason": "quality_issue",
                "merchant_refund_no": "R-EVIDENCE-1",
                "deductions": [{ "kind": "handling_fee", "amount": 500, "reason": "拆封" }],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.str("status"), "pending_review", "{}", created.text);
    assert_eq!(created.body["evidence"]["missing"], json!(["sale_voucher"]));
    let refund_id = created.str("id");

    // The cashier sees what it waits for, uploads the voucher's photo and records an ID check.
    sign_in(&c, &server, CASHIER).await;
    c.goto(&server.url(&format!("/merchant/refunds/{refund_id}")))
        .await
        .unwrap();
    assert_eq!(text_of(&c, "#status").await, "待审核");
    let missing = text_of(&c, "#evidence-missing").await;
    assert!(missing.contains("签购单"), "{missing}");
    let next = text_of(&c, "#next-step").await;
    assert!(next.contains("补充证明材料"), "not yet for review: {next}");
    assert_eq!(text_of(&c, "#evidence-list").await, "", "nothing yet");
    c.set_window_size(1100, 1700).await.unwrap();
    shot(&c, "merchant-refund-evidence-missing").await;
    let photo = dir.path().join("voucher.png");
    std::fs::write(&photo, PNG).unwrap();
    c.find(Locator::Css("#evidence-kind option[value=sale_voucher]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#evidence-file"))
        .await
        .unwrap()
        .send_keys(photo.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#evidence-submit").await;
    let listed = text_of(&c, "#evidence-list").await;
    assert!(
        listed.contains("签购单")
            && listed.contains("image/png")
            && listed.contains(&format!("{} B", PNG.len())),
        "{listed}"
    );
    assert!(
        c.find(Locator::Css("#evidence-missing")).await.is_err(),
        "no longer waiting"
    );
    assert_ne!(text_of(&c, "#status").await, "待审核", "released");
    fill(&c, "#id-check-by", "li.cashier").await;
    fill(&c, "#id-check-digits", "002x").await;
    click(&c, "#id-check-submit").await;
    let listed = text_of(&c, "#evidence-list").await;
    assert!(
        listed.contains("身份核实") && listed.contains("**** 002X"),
        "{listed}"
    );
    let timeline = text_of(&c, "#timeline").await;
    assert!(
        timeline.contains("证明材料已齐") && !timeline.contains("refund."),
        "the release in words: {timeline}"
    );
    let evidence = server
        .get(&format!("/v1/refunds/{refund_id}/evidence"), &key)
        .await
        .body;
    assert_eq!(evidence["data"][0]["kind"], "sale_voucher", "{evidence}");
    assert_eq!(
        evidence["data"][0]["content_type"], "image/png",
        "{evidence}"
    );
    assert_eq!(evidence["data"][0]["size_bytes"], PNG.len(), "{evidence}");
    assert_eq!(evidence["data"][1]["kind"], "id_check", "{evidence}");
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    shot(&c, "merchant-refund-evidence").await;
    sign_out(&c).await;
    let refund = accepted_refund(&server, &key, &refund_id).await;
    assert_eq!(refund["consumer_amount"], 3_500, "{refund}");

    // The consumer, on a phone, in Chinese: 35.00 of the 40.00, why, and the two buttons.
    c.set_window_size(375, 1500).await.unwrap();
    look_up(&c, &server, "zh", "R-EVIDENCE-1", "6666").await;
    let amount = text_of(&c, "#amount").await;
    assert!(amount.contains("40.00"), "{amount}");
    let you_get = text_of(&c, "#you-get").await;
    assert!(
        you_get.contains("35.00") && you_get.contains("手续费 5.00 元：拆封"),
        "{you_get}"
    );
    assert_eq!(text_of(&c, "#arrival-yes").await, "已收到");
    assert_eq!(text_of(&c, "#arrival-no").await, "未收到");
    shot(&c, "consumer-status-deduction-phone").await;
    // "Not received" before the expected day: noted, wait until then, no case.
    click(&c, "#arrival-no").await;
    let notice = text_of(&c, "#notice").await;
    assert!(
        notice.contains("已记录") && notice.contains(EXPECTED_DAY),
        "{notice}"
    );
    let timeline = text_of(&c, "#timeline").await;
    assert!(
        timeline.contains("消费者告知尚未收到退款") && !timeline.contains("event-"),
        "the answer in words: {timeline}"
    );
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    shot(&c, "consumer-arrival-wait-phone").await;
    let cases = server.get("/v1/cases", &key).await.body;
    assert_eq!(cases["data"], json!([]), "no case before the day: {cases}");

    // In English on a desktop, the money came: "Received".
    c.set_window_size(1100, 1400).await.unwrap();
    look_up(&c, &server, "en", "R-EVIDENCE-1", "6666").await;
    let you_get = text_of(&c, "#you-get").await;
    assert!(
        you_get.contains("35.00") && you_get.contains("40.00"),
        "{you_get}"
    );
    assert!(
        you_get.starts_with("Sent back to you:") && you_get.contains("handling fee"),
        "in English, the merchant's reason as written: {you_get}"
    );
    assert_eq!(text_of(&c, "#arrival-yes").await, "Received");
    click(&c, "#arrival-yes").await;
    assert_eq!(
        text_of(&c, "#notice").await,
        "Thank you: you told us the money arrived."
    );
    let timeline = text_of(&c, "#timeline").await;
    assert!(
        timeline.contains("Confirmed as received")
            && timeline.contains("the consumer confirmed the money arrived"),
        "{timeline}"
    );
    assert!(
        c.find(Locator::Css("#arrival")).await.is_err(),
        "\"received\" is final: no buttons after it"
    );
    shot(&c, "consumer-status-arrival-en").await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("sha256") && !page.contains("002X") && !page.contains(&merchant),
        "no evidence or ids on the consumer's page"
    );
    c.close().await.unwrap();
}
