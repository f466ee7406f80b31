//! API key management on both backends: listing (prefix, last use, never the secret),
//! revocation (refused at once), rotation (old key works within its grace period only, on
//! the simulated clock), admin keys (registered at start-up, never revived), who may manage
//! which keys, and the audit entries every change leaves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use serde_json::json;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::clock::Clock;
use yuanlu_engine::keys::{AdminKeyRegistration, KeyStatus, RotateKey};
use yuanlu_engine::merchants::{CreateApiKey, CreateMerchant};
use yuanlu_engine::{Db, EngineError};
use yuanlu_web::api::bodies;

use crate::common::Harness;

/// A merchant: its id, its supervisor key (secret) and the principal that key stands for.
async fn shop(h: &Harness, name: &str) -> (String, String, Principal) {
    let input: CreateMerchant =
        serde_json::from_value::<bodies::CreateMerchant>(json!({ "name": name }))
            .unwrap()
            .into();
    let created = h
        .engine
        .create_merchant(&Principal::Admin, input)
        .await
        .unwrap();
    let who = h
        .engine
        .authenticate(&created.api_key)
        .await
        .unwrap()
        .expect("a new supervisor key works");
    (created.merchant.id, created.api_key, who)
}

/// A staff key of the merchant: (key id, secret, principal).
async fn staff(h: &Harness, boss: &Principal, merchant_id: &str) -> (String, String, Principal) {
    let created = h
        .engine
        .create_api_key(
            boss,
            merchant_id,
            CreateApiKey {
                role: MerchantRole::Staff,
            },
        )
        .await
        .unwrap();
    let who = h
        .engine
        .authenticate(&created.api_key)
        .await
        .unwrap()
        .unwrap();
    (created.id, created.api_key, who)
}

fn key_id(who: &Principal) -> String {
    match who {
        Principal::Merchant { key_id, .. } => key_id.clone(),
        Principal::Admin => panic!("not a merchant key"),
    }
}

/// `(action, subject_id, actor)` of a chain's entries, in order.
async fn audit_of(h: &Harness, chain: &str) -> Vec<(String, String, String)> {
    let sql = "SELECT action, subject_id, actor FROM audit_log WHERE chain = $1 ORDER BY seq";
    match &h.engine.db {
        Db::Sqlite(pool) => sqlx::query_as(sql)
            .bind(chain)
            .fetch_all(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql)
            .bind(chain)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

fn rotate(grace_seconds: i64) -> RotateKey {
    RotateKey {
        grace_seconds: Some(grace_seconds),
    }
}

contract!(a_revoked_key_is_refused_at_once, |h| {
    let (merchant_id, _, boss) = shop(&h, "Revoking shop").await;
    let (staff_id, staff_key, _) = staff(&h, &boss, &merchant_id).await;
    let revoked = h.engine.revoke_key(&boss, &staff_id).await.unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    assert!(h.engine.authenticate(&staff_key).await.unwrap().is_none());
    // Revoking again answers the key as it is and audits nothing more.
    let again = h.engine.revoke_key(&boss, &staff_id).await.unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
    let entries = audit_of(&h, &merchant_id).await;
    let revocations: Vec<_> = entries
        .iter()
        .filter(|(action, _, _)| action == "api_key.revoked")
        .collect();
    assert_eq!(revocations.len(), 1, "{entries:?}");
    assert_eq!(revocations[0].1, staff_id);
    assert_eq!(revocations[0].2, boss.actor());
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

contract!(a_rotated_key_works_within_its_grace_period_only, |h| {
    let (merchant_id, old_key, boss) = shop(&h, "Rotating shop").await;
    let old_id = key_id(&boss);
    let rotated = h
        .engine
        .rotate_key(&boss, &old_id, rotate(3600))
        .await
        .unwrap();
    assert_eq!(rotated.previous.status, KeyStatus::Expiring);
    assert_eq!(
        rotated.previous.replaced_by.as_deref(),
        Some(rotated.key.id.as_str())
    );
    assert_eq!(
        rotated.key.merchant_id.as_deref(),
        Some(merchant_id.as_str())
    );
    let new_who = h
        .engine
        .authenticate(&rotated.key.api_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_who.reviewer(), boss.reviewer(), "same role");
    h.clock.advance(Duration::seconds(3599));
    assert!(h.engine.authenticate(&old_key).await.unwrap().is_some());
    h.clock.advance(Duration::seconds(1));
    assert!(h.engine.authenticate(&old_key).await.unwrap().is_none());
    assert!(
        h.engine
            .authenticate(&rotated.key.api_key)
            .await
            .unwrap()
            .is_some()
    );
    // Grace 0: the old key stops at once.
    let again = h
        .engine
        .rotate_key(&new_who, &rotated.key.id, rotate(0))
        .await
        .unwrap();
    assert!(
        h.engine
            .authenticate(&rotated.key.api_key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.engine
            .authenticate(&again.key.api_key)
            .await
            .unwrap()
            .is_some()
    );
    // A rotated key is not rotated twice (the grace period could be stretched otherwise).
    let error = h
        .engine
        .rotate_key(&Principal::Admin, &old_id, rotate(60))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "conflict");
    let entries = audit_of(&h, &merchant_id).await;
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "merchant.created",
            "api_key.created",
            "api_key.created",
            "api_key.rotated",
            "api_key.created",
            "api_key.rotated"
        ]
    );
    assert_eq!(entries[3].1, old_id);
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

contract!(a_grace_period_outside_its_bounds_is_refused, |h| {
    let (_, _, boss) = shop(&h, "Bounded shop").await;
    let id = key_id(&boss);
    for grace in [-1, 7 * 24 * 3600 + 1] {
        let error = h
            .engine
            .rotate_key(&boss, &id, rotate(grace))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, EngineError::Validation { field, .. } if field == "grace_seconds"),
            "{error:?}"
        );
    }
    // The default is 24 h.
    let rotated = h
        .engine
        .rotate_key(&boss, &id, RotateKey::default())
        .await
        .unwrap();
    assert_eq!(
        rotated.previous.expires_at,
        Some(h.clock_now() + Duration::hours(24))
    );
});

contract!(the_list_shows_prefix_and_last_use_never_the_secret, |h| {
    let (merchant_id, key, boss) = shop(&h, "Listing shop").await;
    let (_, staff_key, _) = staff(&h, &boss, &merchant_id).await;
    let first_use = h.clock_now();
    let page = h
        .engine
        .list_merchant_keys(&boss, &merchant_id, 20, None)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    let mine = page.data.iter().find(|k| k.id == key_id(&boss)).unwrap();
    let prefix = mine.prefix.clone().unwrap();
    assert!(key.starts_with(&prefix) && prefix.len() < 20, "{prefix}");
    assert_eq!(mine.last_used_at, Some(first_use), "authenticated once");
    assert_eq!(mine.status, KeyStatus::Active);
    let text = serde_json::to_string(&page).unwrap();
    assert!(!text.contains(&key) && !text.contains(&staff_key));
    // Within a minute a use is not written again; after it, it is.
    h.clock.advance(Duration::seconds(30));
    h.engine.authenticate(&key).await.unwrap().unwrap();
    let listed = |page: yuanlu_engine::views::Page<yuanlu_engine::keys::ApiKey>| {
        page.data
            .into_iter()
            .find(|k| k.id == key_id(&boss))
            .unwrap()
            .last_used_at
    };
    let page = h
        .engine
        .list_merchant_keys(&Principal::Admin, &merchant_id, 20, None)
        .await
        .unwrap();
    assert_eq!(listed(page), Some(first_use));
    h.clock.advance(Duration::seconds(31));
    h.engine.authenticate(&key).await.unwrap().unwrap();
    let page = h
        .engine
        .list_merchant_keys(&boss, &merchant_id, 20, None)
        .await
        .unwrap();
    assert_eq!(listed(page), Some(h.clock_now()));
    // Pages: one key per page, newest first.
    let first = h
        .engine
        .list_merchant_keys(&boss, &merchant_id, 1, None)
        .await
        .unwrap();
    assert!(first.has_more);
    let second = h
        .engine
        .list_merchant_keys(&boss, &merchant_id, 1, Some(first.data[0].id.clone()))
        .await
        .unwrap();
    assert!(!second.has_more);
    assert_eq!(second.data[0].id, key_id(&boss));
});

contract!(staff_keys_cannot_manage_keys, |h| {
    let (merchant_id, _, boss) = shop(&h, "Staffed shop").await;
    let (staff_id, _, clerk) = staff(&h, &boss, &merchant_id).await;
    let forbidden = |result: Result<(), EngineError>| {
        assert_eq!(result.unwrap_err().code(), "forbidden");
    };
    forbidden(
        h.engine
            .list_merchant_keys(&clerk, &merchant_id, 20, None)
            .await
            .map(|_| ()),
    );
    forbidden(h.engine.revoke_key(&clerk, &staff_id).await.map(|_| ()));
    forbidden(
        h.engine
            .revoke_key(&clerk, &key_id(&boss))
            .await
            .map(|_| ()),
    );
    forbidden(
        h.engine
            .rotate_key(&clerk, &staff_id, rotate(0))
            .await
            .map(|_| ()),
    );
    forbidden(
        h.engine
            .create_api_key(
                &clerk,
                &merchant_id,
                CreateApiKey {
                    role: MerchantRole::Supervisor,
                },
            )
            .await
            .map(|_| ()),
    );
    forbidden(h.engine.list_admin_keys(&clerk, 20, None).await.map(|_| ()));
    forbidden(h.engine.create_admin_key(&clerk).await.map(|_| ()));
    // Nothing changed.
    let page = h
        .engine
        .list_merchant_keys(&boss, &merchant_id, 20, None)
        .await
        .unwrap();
    assert!(page.data.iter().all(|k| k.status == KeyStatus::Active));
});

contract!(a_merchant_cannot_touch_another_merchants_keys, |h| {
    let (_, _, a) = shop(&h, "Shop A").await;
    let (b_id, b_key, b) = shop(&h, "Shop B").await;
    let b_key_id = key_id(&b);
    let not_found = |result: Result<(), EngineError>| {
        assert_eq!(result.unwrap_err().code(), "not_found");
    };
    not_found(
        h.engine
            .list_merchant_keys(&a, &b_id, 20, None)
            .await
            .map(|_| ()),
    );
    not_found(h.engine.revoke_key(&a, &b_key_id).await.map(|_| ()));
    not_found(
        h.engine
            .rotate_key(&a, &b_key_id, rotate(0))
            .await
            .map(|_| ()),
    );
    not_found(h.engine.revoke_key(&a, "key_nonexistent").await.map(|_| ()));
    assert!(h.engine.authenticate(&b_key).await.unwrap().is_some());
    // An admin key is "not found" to a merchant supervisor too.
    h.engine
        .register_admin_key("contract-admin-key-0123456789", "environment")
        .await
        .unwrap();
    let admin_keys = h
        .engine
        .list_admin_keys(&Principal::Admin, 20, None)
        .await
        .unwrap();
    not_found(
        h.engine
            .revoke_key(&a, &admin_keys.data[0].id)
            .await
            .map(|_| ()),
    );
});

contract!(admin_keys_are_registered_rotated_and_never_revived, |h| {
    let env_key = "contract-admin-key-0123456789";
    let registered = h
        .engine
        .register_admin_key(env_key, "environment")
        .await
        .unwrap();
    let AdminKeyRegistration::Registered { id: env_id } = registered else {
        panic!("{registered:?}");
    };
    assert_eq!(
        h.engine
            .register_admin_key(env_key, "environment")
            .await
            .unwrap(),
        AdminKeyRegistration::Known { id: env_id.clone() }
    );
    assert_eq!(
        h.engine.authenticate(env_key).await.unwrap(),
        Some(Principal::Admin)
    );
    let listed = h
        .engine
        .list_admin_keys(&Principal::Admin, 20, None)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].origin.as_deref(), Some("environment"));
    assert_eq!(listed.data[0].prefix.as_deref(), Some("cont…"));
    assert_eq!(listed.data[0].merchant_id, None);
    // The last working admin key cannot be revoked: nobody could administer yuanlu then.
    let error = h
        .engine
        .revoke_key(&Principal::Admin, &env_id)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "conflict");
    let rotated = h
        .engine
        .rotate_key(&Principal::Admin, &env_id, rotate(0))
        .await
        .unwrap();
    assert!(rotated.key.api_key.starts_with("ylk_admin_"));
    assert_eq!(h.engine.authenticate(env_key).await.unwrap(), None);
    assert_eq!(
        h.engine.authenticate(&rotated.key.api_key).await.unwrap(),
        Some(Principal::Admin)
    );
    // The next start with the old key in YUANLU_ADMIN_KEY is refused, not revived.
    let again = h
        .engine
        .register_admin_key(env_key, "environment")
        .await
        .unwrap();
    assert!(
        matches!(&again, AdminKeyRegistration::Refused { id, .. } if *id == env_id),
        "{again:?}"
    );
    assert_eq!(h.engine.authenticate(env_key).await.unwrap(), None);
    // Another admin key, then the rotated one can be revoked.
    let spare = h.engine.create_admin_key(&Principal::Admin).await.unwrap();
    h.engine
        .revoke_key(&Principal::Admin, &rotated.key.id)
        .await
        .unwrap();
    assert_eq!(
        h.engine.authenticate(&rotated.key.api_key).await.unwrap(),
        None
    );
    let revoked_again = h
        .engine
        .register_admin_key(&rotated.key.api_key, "environment")
        .await
        .unwrap();
    assert!(matches!(
        revoked_again,
        AdminKeyRegistration::Refused { .. }
    ));
    assert!(
        h.engine
            .authenticate(&spare.api_key)
            .await
            .unwrap()
            .is_some()
    );
    // A merchant key in YUANLU_ADMIN_KEY is refused too.
    let (_, merchant_key, _) = shop(&h, "Not an admin").await;
    assert!(matches!(
        h.engine
            .register_admin_key(&merchant_key, "environment")
            .await
            .unwrap(),
        AdminKeyRegistration::Refused { .. }
    ));
    let entries = audit_of(&h, "system").await;
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|(action, _, actor)| (action.as_str(), actor.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("api_key.created", "system:startup"),
            ("api_key.created", "acquirer:admin"),
            ("api_key.rotated", "acquirer:admin"),
            ("api_key.created", "acquirer:admin"),
            ("api_key.revoked", "acquirer:admin"),
        ]
    );
    assert!(h.engine.verify_audit().await.unwrap().ok);
});

contract!(the_simulated_clock_decides_expiry, |h| {
    // Expiry follows the engine's clock, not the machine's: a grace period of a day is
    // over when the simulated clock has moved a day, whatever the wall clock says.
    let (_, key, boss) = shop(&h, "Clocked shop").await;
    h.engine
        .rotate_key(&boss, &key_id(&boss), rotate(86_400))
        .await
        .unwrap();
    assert!(h.engine.authenticate(&key).await.unwrap().is_some());
    let _ = h.clock.advance(Duration::days(1));
    assert!(h.engine.authenticate(&key).await.unwrap().is_none());
    assert!(h.clock.now() > common::start_instant());
});
