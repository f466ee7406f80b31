//! Staff accounts and sessions of the pages on both backends: adding (rules, unique names,
//! merchant staff need a merchant, only the admin adds), signing in (right password only),
//! sessions found by their token until signed out, and the principal a session acts as.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use yuanlu_engine::EngineError;
use yuanlu_engine::auth::{MerchantRole, Principal};
use yuanlu_engine::staff::{AddUser, StaffRole};

fn user(name: &str, role: StaffRole, merchant: Option<&str>) -> AddUser {
    AddUser {
        username: name.into(),
        role,
        merchant_id: merchant.map(str::to_string),
        password: "a-long-password-1".into(),
    }
}

contract!(staff_sign_in_and_act_as_their_role, |h| {
    let shop = h.merchant().await;
    let mid = shop.merchant_scope().unwrap().to_string();
    let admin = Some(&Principal::Admin);
    let cashier = h
        .engine
        .add_staff_user(admin, user("li.cashier", StaffRole::Cashier, Some(&mid)))
        .await
        .unwrap();
    h.engine
        .add_staff_user(None, user("ops.admin", StaffRole::Admin, None))
        .await
        .unwrap();

    // The rules: unique names, merchant staff with a merchant, acquirer staff without.
    let again = h
        .engine
        .add_staff_user(admin, user("li.cashier", StaffRole::Cashier, Some(&mid)))
        .await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
    for bad in [
        user("no.shop", StaffRole::Supervisor, None),
        user("ops.two", StaffRole::Reviewer, Some(&mid)),
        user("ghost.shop", StaffRole::Cashier, Some("mch_nope")),
        user("X", StaffRole::Admin, None),
    ] {
        let answer = h.engine.add_staff_user(admin, bad).await;
        assert_eq!(answer.unwrap_err().code(), "validation_error");
    }
    let by_merchant = h
        .engine
        .add_staff_user(Some(&shop), user("sneaky", StaffRole::Admin, None))
        .await;
    assert_eq!(by_merchant.unwrap_err().code(), "forbidden");

    // Sign-in: the right password only, and the session acts as a merchant staff key.
    assert!(
        h.engine
            .sign_in("li.cashier", "wrong-password-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.engine
            .sign_in("nobody", "a-long-password-1")
            .await
            .unwrap()
            .is_none()
    );
    let session = h
        .engine
        .sign_in("li.cashier", "a-long-password-1")
        .await
        .unwrap()
        .expect("the right password signs in");
    let found = h
        .engine
        .staff_session(&session.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, cashier);
    assert_eq!(found.csrf_token, session.csrf_token);
    assert_eq!(
        found.user.principal(),
        Principal::Merchant {
            merchant_id: mid.clone(),
            key_id: cashier.id.clone(),
            role: MerchantRole::Staff
        }
    );
    assert!(
        h.engine
            .staff_session("f".repeat(64).as_str())
            .await
            .unwrap()
            .is_none()
    );
    h.engine.sign_out(&session.token).await.unwrap();
    assert!(
        h.engine
            .staff_session(&session.token)
            .await
            .unwrap()
            .is_none()
    );

    // The token is stored hashed, the password as Argon2id.
    let stored = h
        .fetch_text("SELECT password_hash FROM staff_users WHERE username = 'li.cashier'")
        .await;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let staff = h.engine.list_staff_users(&shop).await.unwrap();
    assert_eq!(staff.len(), 1, "a merchant sees its own staff only");
    assert_eq!(
        h.engine
            .list_staff_users(&Principal::Admin)
            .await
            .unwrap()
            .len(),
        2
    );
});
