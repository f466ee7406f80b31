//! The OpenAPI document describes the reroute body, with the optional fields of a reroute
//! to the merchant (who paid the consumer directly).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_reroute_body_documents_the_merchant_paid_fields() {
    let doc = serde_json::to_value(yuanlu_web::app::openapi(false)).unwrap();
    let schema = &doc["components"]["schemas"]["RerouteInput"];
    let properties = schema["properties"]
        .as_object()
        .expect("RerouteInput properties");
    for field in ["to", "account", "method", "paid_by", "note"] {
        assert!(properties.contains_key(field), "{field} missing: {schema}");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(required, ["to"], "only `to` is required: {schema}");
    let method = properties["method"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(method.contains("bank_transfer"), "{method}");
}
