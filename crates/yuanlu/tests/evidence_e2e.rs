//! Proof and identity end to end through the real server (SQLite, and PostgreSQL when a
//! database is named): the merchant's evidence thresholds over the API, a refund held for
//! them, uploads checked by content and size at the edge, a whole ID number refused, the
//! release, the download, the file under `<data-dir>/evidence` by its SHA-256, the chain
//! verified, and nothing of it for another merchant, without a key, or on the consumer's
//! lookup.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_KEY, Options, PgSchema, Server};
use serde_json::json;

const CLOCK: &str = "simulated=2026-11-20T10:00:00+08:00";
const VOUCHER: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00the sale voucher";
const RRN: &str = "556677889900";

fn upload(
    server: &Server,
    refund_id: &str,
    key: &str,
    kind: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    server
        .http
        .post(server.url(&format!("/v1/refunds/{refund_id}/evidence?kind={kind}")))
        .bearer_auth(key)
        .header("Content-Type", content_type)
        .body(body)
}

async fn a_refund_waits_for_its_evidence(server: &Server, data_dir: &std::path::Path) {
    let (merchant_id, key) = server
        .merchant_with(json!({ "name": "Evidence Teahouse",
            "settings": { "evidence": { "require_voucher_above": 10_000 } } }))
        .await;
    // The acquirer adds the ID check threshold; GET shows both.
    let patched = server
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/merchants/{merchant_id}"),
            Some(ADMIN_KEY),
            Some(&json!({ "settings": { "evidence": { "require_id_check_above": 50_000 } } })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let merchant = server
        .get(&format!("/v1/merchants/{merchant_id}"), &key)
        .await;
    assert_eq!(
        merchant.body["settings"]["evidence"],
        json!({ "require_voucher_above": 10_000, "require_id_check_above": 50_000 }),
        "{}",
        merchant.text
    );
    server
        .payment_with(
            &key,
            json!({ "channel": "alipay", "amount": 5_000_000, "currency": "CNY" }),
        )
        .await;
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "wechat", "amount": 200_000, "currency": "CNY", "voucher": { "rrn": RRN } }),
        )
        .await;
    let payment_id = payment["id"].as_str().unwrap();
    let created = server.refund(&key, payment_id, 60_000, "EV-HTTP-1").await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["status"], "pending_review");
    assert_eq!(
        created.body["evidence"],
        json!({ "required": ["sale_voucher", "id_check"], "present": [], "missing": ["sale_voucher", "id_check"] })
    );
    let refund_id = created.str("id");
    server
        .post(
            &format!("/v1/refunds/{refund_id}/approve"),
            ADMIN_KEY,
            &json!({}),
        )
        .await
        .assert_problem(409, "evidence_required", "approval while held");

    // Refused at the edge or by content.
    server
        .send(upload(
            server,
            &refund_id,
            &key,
            "sale_voucher",
            "image/png",
            b"GIF89a\x01\x00".to_vec(),
        ))
        .await
        .assert_problem(415, "evidence_unsupported_type", "a GIF declared as PNG");
    server
        .send(upload(
            server,
            &refund_id,
            &key,
            "sale_voucher",
            "text/html",
            VOUCHER.to_vec(),
        ))
        .await
        .assert_problem(
            415,
            "evidence_unsupported_type",
            "a declared type outside the four",
        );
    let mut big = VOUCHER.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    server
        .send(upload(
            server,
            &refund_id,
            &key,
            "sale_voucher",
            "image/jpeg",
            big,
        ))
        .await
        .assert_problem(413, "evidence_too_large", "over 5 MiB");
    server
        .send(upload(
            server,
            &refund_id,
            &key,
            "selfie",
            "image/jpeg",
            VOUCHER.to_vec(),
        ))
        .await
        .assert_problem(400, "validation_error", "an unknown kind");
    let full = server
        .post(
            &format!("/v1/refunds/{refund_id}/evidence"),
            &key,
            &json!({ "kind": "id_check", "checked_by": "cashier Li",
                     "document_type": "resident_id_card", "last_digits": "11010519491231002X" }),
        )
        .await;
    full.assert_problem(400, "full_id_number_refused", "a whole ID number");
    assert!(!full.text.contains("19491231"), "{}", full.text);

    // The voucher, twice: one piece of evidence.
    let voucher = server
        .send(upload(
            server,
            &refund_id,
            &key,
            "sale_voucher",
            "image/jpeg",
            VOUCHER.to_vec(),
        ))
        .await;
    assert_eq!(voucher.status, 201, "{}", voucher.text);
    assert_eq!(voucher.body["content_type"], "image/jpeg");
    let again = server
        .send(upload(
            server,
            &refund_id,
            &key,
            "sale_voucher",
            "application/octet-stream",
            VOUCHER.to_vec(),
        ))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], voucher.body["id"]);
    let sha = voucher.str("sha256");
    let on_disk = std::fs::read(data_dir.join("evidence").join(&sha[..2]).join(&sha)).unwrap();
    assert_eq!(on_disk, VOUCHER);

    let check = server
        .post(
            &format!("/v1/refunds/{refund_id}/evidence"),
            &key,
            &json!({ "kind": "id_check", "checked_by": "cashier Li",
                     "document_type": "resident_id_card", "last_digits": "002X" }),
        )
        .await;
    assert_eq!(check.status, 201, "{}", check.text);
    assert_eq!(check.body["id_check"]["last_digits"], "002X");
    let released = server.get(&format!("/v1/refunds/{refund_id}"), &key).await;
    assert_eq!(released.body["status"], "queued", "{}", released.text);
    assert_eq!(released.body["evidence"]["missing"], json!([]));

    // Listed and downloaded by the merchant and the acquirer.
    let listed = server
        .get(&format!("/v1/refunds/{refund_id}/evidence"), ADMIN_KEY)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2));
    let evidence_id = voucher.str("id");
    let download = server
        .http
        .get(server.url(&format!(
            "/v1/refunds/{refund_id}/evidence/{evidence_id}/content"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let header = |name: &str| {
        download
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "image/jpeg");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-evidence-sha256"), sha);
    assert!(header("content-disposition").starts_with("attachment"));
    assert_eq!(download.bytes().await.unwrap().as_ref(), VOUCHER);

    // Nobody else.
    let (_, other_key) = server.merchant("Someone Else").await;
    server
        .get(&format!("/v1/refunds/{refund_id}/evidence"), &other_key)
        .await
        .assert_problem(404, "not_found", "another merchant's list");
    server
        .send(upload(
            server,
            &refund_id,
            &other_key,
            "receipt_photo",
            "image/jpeg",
            VOUCHER.to_vec(),
        ))
        .await
        .assert_problem(404, "not_found", "another merchant's upload");
    server
        .get(
            &format!("/v1/refunds/{refund_id}/evidence/{evidence_id}/content"),
            &other_key,
        )
        .await
        .assert_problem(404, "not_found", "another merchant's download");
    let anonymous = server
        .http
        .get(server.url(&format!("/v1/refunds/{refund_id}/evidence")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let public = server
        .http
        .get(server.url(&format!(
            "/v1/public/refunds/by-id/{refund_id}?reference={RRN}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    let public = public.text().await.unwrap();
    for secret in ["evidence", "sha256", &sha, "002X", "cashier"] {
        assert!(!public.contains(secret), "{secret} in {public}");
    }

    let verified = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(verified.body["ok"], true, "{}", verified.text);
    let openapi = server.get("/openapi.json", ADMIN_KEY).await;
    for path in [
        "/v1/refunds/{id}/evidence",
        "/v1/refunds/{id}/evidence/{evidence_id}/content",
        "/v1/cases/{id}/evidence",
    ] {
        assert!(
            openapi.body["paths"].get(path).is_some(),
            "{path} not in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn a_refund_waits_for_its_evidence_on_sqlite() {
    let dir = common::data_dir();
    let mut server = Server::start_with(
        dir.path(),
        &Options {
            clock: Some(CLOCK.into()),
            ..Options::default()
        },
    );
    a_refund_waits_for_its_evidence(&server, dir.path()).await;
    server.kill();
}

#[tokio::test]
async fn a_refund_waits_for_its_evidence_on_postgres() {
    let Some(schema) = PgSchema::create("a_refund_waits_for_its_evidence_on_postgres").await else {
        return;
    };
    let dir = common::data_dir();
    let mut server = Server::start_with(
        dir.path(),
        &Options {
            database_url: Some(schema.url()),
            clock: Some(CLOCK.into()),
            ..Options::default()
        },
    );
    a_refund_waits_for_its_evidence(&server, dir.path()).await;
    server.kill();
    schema.drop_schema().await;
}
