//! `/docs`: the API reference, Swagger UI built into the binary, rendering `/openapi.json`;
//! and the payment search filters it documents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Server;

#[tokio::test]
async fn docs_serve_the_reference_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // `/docs` leads to `/docs/` (followed), an HTML page of Swagger UI.
    let page = server.http.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.url().path().ends_with("/docs/"), "{}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Its scripts come from this server, not a CDN.
    assert!(!html.contains("src=\"http"), "{html}");
    assert!(!html.contains("href=\"http"), "{html}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let r = server
            .http
            .get(server.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        assert!(r.bytes().await.unwrap().len() > 1_000, "{asset} is empty");
    }
    // The viewer is pointed at the server's own document.
    let init = server
        .http
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");

    // The document describes the payment search filters.
    let doc: serde_json::Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = doc["paths"]["/v1/payments"]["get"]["parameters"].to_string();
    for name in [
        "business_date",
        "captured_from",
        "captured_to",
        "amount",
        "last4",
        "rrn",
        "trace_no",
        "terminal_id",
        "order_no",
    ] {
        assert!(params.contains(&format!("\"{name}\"")), "{name}: {params}");
    }
}

#[tokio::test]
async fn payment_filters_are_checked_at_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (_, key) = server.merchant("Filter shop").await;
    let sale = server
        .post(
            "/v1/payments",
            &key,
            &serde_json::json!({ "channel": "debit_card", "amount": 4_200, "currency": "CNY",
                "terminal_id": "T09", "payer": { "card_last4": "0403" },
                "voucher": { "trace_no": "000777", "rrn": "998877665544" } }),
        )
        .await;
    assert_eq!(sale.status, 201, "{}", sale.text);
    let found = server
        .get("/v1/payments?last4=0403&amount=4200&rrn=998877665544", &key)
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["data"][0]["id"], sale.body["id"]);
    let none = server.get("/v1/payments?trace_no=000778", &key).await;
    assert_eq!(none.body["data"].as_array().unwrap().len(), 0);
    for (query, field) in [
        ("last4=12", "last4"),
        ("last4=abcd", "last4"),
        ("amount=12.50", "amount"),
        ("amount=0", "amount"),
        ("business_date=2026-13-01", "business_date"),
        ("captured_from=yesterday", "captured_from"),
        (
            "business_date=2026-11-20&captured_to=2026-11-21T00:00:00Z",
            "business_date",
        ),
        ("limit=0", "limit"),
    ] {
        let r = server.get(&format!("/v1/payments?{query}"), &key).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.str("code"), "validation_error", "{query}");
        assert_eq!(r.str("field"), field, "{query}: {}", r.text);
    }
}
