//! The API's prose in the reader's language: `?lang=zh` or `Accept-Language: zh-CN` give a
//! Chinese timeline, next step and destination; without either the text stays the English
//! it always was; codes, field names and the structured facts never change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Server;
use serde_json::Value;

fn created(body: &Value) -> String {
    let first = &body["timeline"][0];
    assert_eq!(first["event"], "refund.created", "{body}");
    assert_eq!(first["facts"]["kind"], "created", "{body}");
    assert_eq!(first["facts"]["amount"], 1_000, "{body}");
    first["description"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn timelines_speak_chinese_when_asked_and_english_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (_, key) = server.merchant("Lang shop").await;
    let payment = server.payment(&key, "wechat", 10_000).await;
    let payment_id = payment["id"].as_str().unwrap().to_string();
    let made = server.refund(&key, &payment_id, 1_000, "LANG-1").await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert!(
        created(&made.body).starts_with("refund of 10.00 CNY asked for by"),
        "{}",
        made.text
    );
    let id = made.str("id");

    // Default: English, as before.
    let plain = server.get(&format!("/v1/refunds/{id}"), &key).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(created(&plain.body).starts_with("refund of 10.00 CNY asked for by"));
    // Dispatch may already have the channel's account: then that is the destination.
    if plain.body["destination"]["route"] == "original" {
        assert!(
            plain.body["destination"]["description"]
                .as_str()
                .unwrap()
                .starts_with("the WeChat balance or bank card"),
            "{}",
            plain.text
        );
    }

    // `?lang=zh`.
    let zh = server.get(&format!("/v1/refunds/{id}?lang=zh"), &key).await;
    assert_eq!(zh.status, 200, "{}", zh.text);
    let said = created(&zh.body);
    assert!(said.contains("申请退款 10.00 元"), "{said}");
    let place = zh.body["destination"]["description"].as_str().unwrap();
    assert!(!place.is_ascii(), "{}", zh.text);
    assert_eq!(
        zh.body["status"], plain.body["status"],
        "codes do not change"
    );
    if let Some(next) = zh.body["next_step"]["description"].as_str() {
        assert!(!next.is_ascii(), "{next}");
    }
    for event in zh.body["timeline"].as_array().unwrap() {
        let money = event["money_at"].as_str().unwrap();
        assert!(money.is_empty() || !money.is_ascii(), "{money}");
    }

    // `Accept-Language: zh-CN`, on the single read and on the list.
    let asked = server
        .send(
            server
                .http
                .get(server.url(&format!("/v1/refunds/{id}")))
                .bearer_auth(&key)
                .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5"),
        )
        .await;
    assert_eq!(created(&asked.body), said);
    let list = server
        .send(
            server
                .http
                .get(server.url("/v1/refunds?limit=5"))
                .bearer_auth(&key)
                .header("Accept-Language", "zh-CN"),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(created(&list.body["data"][0]), said);

    // `?lang=en` beats the header.
    let en = server
        .send(
            server
                .http
                .get(server.url(&format!("/v1/refunds/{id}?lang=en")))
                .bearer_auth(&key)
                .header("Accept-Language", "zh-CN"),
        )
        .await;
    assert!(created(&en.body).starts_with("refund of 10.00 CNY"));

    // The consumer's lookup: Chinese too, and without who asked.
    let public = server
        .send(server.http.get(server.url(&format!(
            "/v1/public/refunds/by-id/{id}?reference={payment_id}&lang=zh"
        ))))
        .await;
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(
        created(&public.body),
        "商户申请退款 10.00 元，无需审核，已自动批准"
    );
    assert!(public.body["timeline"][0].get("actor").is_none());
    let public_en = server
        .send(server.http.get(server.url(&format!(
            "/v1/public/refunds/by-id/{id}?reference={payment_id}"
        ))))
        .await;
    assert_eq!(
        created(&public_en.body),
        "refund of 10.00 CNY asked for by the merchant · approved automatically (no review needed)"
    );

    // The document names the parameter.
    let doc = server
        .send(server.http.get(server.url("/openapi.json")))
        .await;
    let params = doc.body["paths"]["/v1/refunds/{id}"]["get"]["parameters"].to_string();
    assert!(params.contains("\"lang\""), "{params}");
}
