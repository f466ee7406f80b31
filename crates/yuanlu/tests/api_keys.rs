//! API key management through the real binary: merchant keys listed, revoked and rotated
//! over HTTP; the `YUANLU_ADMIN_KEY` key stored at start, rotated away, and refused (not
//! revived) on the next start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{ADMIN_KEY, Options, Server};

#[tokio::test]
async fn keys_are_listed_revoked_and_rotated_over_http() {
    let dir = common::data_dir();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir);
    let (merchant_id, boss_key) = server.merchant("Key shop").await;
    let keys_path = format!("/v1/merchants/{merchant_id}/keys");
    let staff = server
        .post(&keys_path, &boss_key, &json!({ "role": "staff" }))
        .await;
    assert_eq!(staff.status, 201, "{}", staff.text);
    let (staff_id, staff_key) = (staff.str("id"), staff.str("api_key"));
    assert_eq!(server.get("/v1/payments", &staff_key).await.status, 200);

    // The list: prefix, last use, never the secret.
    let list = server.get(&keys_path, &boss_key).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for key in data {
        let prefix = key["prefix"].as_str().unwrap();
        assert!(prefix.starts_with("ylk_") && prefix.len() == 12, "{key}");
        assert!(key["last_used_at"].is_string(), "used once already: {key}");
        assert_eq!(key["status"], "active");
    }
    assert!(!list.text.contains(&boss_key) && !list.text.contains(&staff_key));
    // Staff cannot manage keys.
    assert_eq!(server.get(&keys_path, &staff_key).await.status, 403);
    let staff_rotates = server
        .post(
            &format!("/v1/keys/{staff_id}/rotate"),
            &staff_key,
            &json!({}),
        )
        .await;
    assert_eq!(staff_rotates.status, 403, "{}", staff_rotates.text);

    // Revoked: 401 on the very next request.
    let revoked = server
        .post(
            &format!("/v1/keys/{staff_id}/revoke"),
            &boss_key,
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    let refused = server.get("/v1/payments", &staff_key).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "unauthorized");

    // Rotation bounds, then a rotation with no grace.
    let boss_id = data.iter().find(|k| k["role"] == "supervisor").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let too_long = server
        .post(
            &format!("/v1/keys/{boss_id}/rotate"),
            &boss_key,
            &json!({ "grace_seconds": 604_801 }),
        )
        .await;
    assert_eq!(too_long.status, 400, "{}", too_long.text);
    assert_eq!(too_long.body["field"], "grace_seconds");
    let rotated = server
        .post(
            &format!("/v1/keys/{boss_id}/rotate"),
            &boss_key,
            &json!({ "grace_seconds": 0 }),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    assert_eq!(rotated.body["previous"]["id"], boss_id.as_str());
    let new_boss = rotated.str("api_key");
    assert_eq!(server.get("/v1/payments", &boss_key).await.status, 401);
    assert_eq!(server.get(&keys_path, &new_boss).await.status, 200);

    // Each change is on the merchant's chain, which verifies.
    let verify = server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
    // The OpenAPI document describes the new endpoints.
    let doc = server.call(Method::GET, "/openapi.json", None, None).await;
    for path in [
        "/v1/merchants/{id}/keys",
        "/v1/keys/{id}/revoke",
        "/v1/keys/{id}/rotate",
        "/v1/admin/keys",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing");
    }
}

#[tokio::test]
async fn a_rotated_admin_key_does_not_come_back_on_restart() {
    let dir = common::data_dir();
    let data_dir = dir.path().join("data");
    let mut server = Server::start(&data_dir);
    let admin_keys = server.get("/v1/admin/keys", ADMIN_KEY).await;
    assert_eq!(admin_keys.status, 200, "{}", admin_keys.text);
    let listed: &Value = &admin_keys.body["data"][0];
    assert_eq!(listed["origin"], "environment");
    assert_eq!(listed["role"], "admin");
    let env_key_id = listed["id"].as_str().unwrap().to_string();
    // The only admin key cannot be revoked.
    let last = server
        .post(
            &format!("/v1/keys/{env_key_id}/revoke"),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(
        (last.status, last.body["code"].as_str()),
        (409, Some("conflict"))
    );
    let rotated = server
        .post(
            &format!("/v1/keys/{env_key_id}/rotate"),
            ADMIN_KEY,
            &json!({ "grace_seconds": 0 }),
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let new_admin = rotated.str("api_key");
    assert_eq!(server.get("/v1/admin/keys", ADMIN_KEY).await.status, 401);
    assert_eq!(server.get("/v1/admin/keys", &new_admin).await.status, 200);
    server.kill();

    // YUANLU_ADMIN_KEY still holds the rotated key: the server refuses to start.
    let mut cmd = common::command();
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data_dir);
    let (status, stderr) = common::expect_refusal(cmd);
    assert!(!status.success());
    assert!(
        stderr.contains("YUANLU_ADMIN_KEY") && stderr.contains(&env_key_id),
        "{stderr}"
    );

    // With the new key in YUANLU_ADMIN_KEY it starts, and the old key stays dead.
    let server = Server::start_with(
        &data_dir,
        &Options {
            env: vec![("YUANLU_ADMIN_KEY".into(), new_admin.clone())],
            ..Options::default()
        },
    );
    assert_eq!(server.get("/v1/admin/keys", &new_admin).await.status, 200);
    assert_eq!(server.get("/v1/admin/keys", ADMIN_KEY).await.status, 401);
    let verify = server.get("/v1/audit/verify", &new_admin).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}
