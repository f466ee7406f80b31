//! The OpenAPI document describes issue 16's lists and exports (items 1, 2 and 9).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_new_lists_and_exports_are_described() {
    let doc = serde_json::to_value(yuanlu_web::app::openapi(false)).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, params) in [
        (
            "/v1/settlements",
            &[
                "merchant_id",
                "from",
                "to",
                "limit",
                "starting_after",
                "business_date",
            ][..],
        ),
        ("/v1/settlements/{id}", &["id"][..]),
        (
            "/v1/reconciliations",
            &["channel", "from", "to", "limit", "starting_after"][..],
        ),
        (
            "/v1/reconciliation-exceptions",
            &[
                "status",
                "channel",
                "merchant_id",
                "limit",
                "starting_after",
            ][..],
        ),
        (
            "/v1/exports/refunds",
            &["format", "status", "channel", "created_from"][..],
        ),
        (
            "/v1/exports/settlements",
            &["format", "merchant_id", "from", "to"][..],
        ),
        ("/v1/exports/reconciliations", &["format", "channel"][..]),
        (
            "/v1/exports/reconciliation-exceptions",
            &["format", "status"][..],
        ),
    ] {
        let get = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"))["get"];
        let description = get["description"].as_str().or(get["summary"].as_str());
        assert!(
            description.is_some_and(|d| !d.is_empty()),
            "{path} has no description"
        );
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for param in params {
            assert!(names.contains(param), "{path} lacks {param}: {names:?}");
        }
    }
    let queued = &doc["components"]["schemas"]["QueuedException"];
    let text = queued.to_string();
    for field in ["age_seconds", "amount", "business_date", "channel"] {
        assert!(
            text.contains(field),
            "QueuedException lacks {field}: {queued}"
        );
    }
}
