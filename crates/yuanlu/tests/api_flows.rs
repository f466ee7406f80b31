//! The refund flows over HTTP against the real binary: the README walk-through, scoping of
//! merchant keys, review, voids and the simulated clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use reqwest::Method;
use serde_json::{Value, json};

const SIMULATED_START: &str = "2026-01-05T10:00:00+08:00";

fn simulated() -> Options {
    Options {
        clock: Some(format!("simulated={SIMULATED_START}")),
        ..Options::default()
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

fn ids(page: &Resp) -> Vec<String> {
    page.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {}", page.text))
        .iter()
        .map(id)
        .collect()
}

async fn get_ok(server: &Server, path: &str, key: &str) -> Resp {
    let r = server.get(path, key).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r
}

/// Follows `starting_after` from the first page to the last with `limit=1`.
async fn all_pages(server: &Server, path_and_query: &str, key: &str) -> Vec<String> {
    let separator = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("{path_and_query}{separator}limit=1");
        if let Some(after) = &after {
            path.push_str(&format!("&starting_after={after}"));
        }
        let page = get_ok(server, &path, key).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 1, "limit=1 gave {}", page.text);
        let has_more = page.body["has_more"].as_bool().unwrap();
        if let Some(last) = page_ids.last() {
            seen.push(last.clone());
            after = Some(last.clone());
        }
        if !has_more {
            break;
        }
        assert!(
            !page_ids.is_empty(),
            "has_more on an empty page: {}",
            page.text
        );
        assert!(seen.len() < 1_000, "pagination does not end");
    }
    seen
}

/// The README walk-through, on whichever backend the server runs.
async fn walk_through(server: &Server) {
    // The acquirer onboards a merchant; the answer carries its supervisor key once.
    let created = server
        .post(
            "/v1/merchants",
            ADMIN_KEY,
            &json!({ "name": "Lakeside Noodles 湖畔面馆" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let merchant_id = created.str("id");
    assert!(merchant_id.starts_with("mch_"), "{merchant_id}");
    let key = created.str("api_key");
    assert_eq!(
        created.body["settings"]["channels"]["wechat"]["fee_rate_ppm"],
        json!(3800),
        "{}",
        created.text
    );
    let merchant = get_ok(server, &format!("/v1/merchants/{merchant_id}"), &key).await;
    assert_eq!(merchant.str("name"), "Lakeside Noodles 湖畔面馆");
    assert!(
        merchant.body.get("api_key").is_none(),
        "the key is shown once: {}",
        merchant.text
    );

    // A WeChat payment of 100.00 CNY: fee 0.38 % = 38 fen.
    let payment = server
        .payment_with(
            &key,
            json!({
                "channel": "wechat",
                "amount": 10_000,
                "currency": "CNY",
                "terminal_id": "T-0001",
                "payer": { "wallet_account": "13812345678", "bank": "China Merchants Bank" },
                "voucher": { "batch_no": "000001", "trace_no": "000123", "rrn": "601234567890" },
            }),
        )
        .await;
    let payment_id = id(&payment);
    assert!(payment_id.starts_with("pay_"), "{payment_id}");
    assert_eq!(payment["fee"], json!(38), "{payment}");
    assert_eq!(payment["refundable"], json!(10_000), "{payment}");
    assert_eq!(payment["amount_refunded"], json!(0), "{payment}");
    assert_eq!(
        payment["payer"]["account"],
        json!("138****5678"),
        "{payment}"
    );
    assert_eq!(payment["currency"], json!("CNY"), "{payment}");

    // Three partial refunds return 13 + 12 + 13 fen of the fee.
    let mut refunds = Vec::new();
    for (n, (amount, fee)) in [(3_333, 13), (3_333, 12), (3_334, 13)]
        .into_iter()
        .enumerate()
    {
        let r = server
            .refund(&key, &payment_id, amount, &format!("WT-{}", n + 1))
            .await;
        assert_eq!(r.status, 201, "refund {n}: {}", r.text);
        assert!(r.str("id").starts_with("rf_"), "{}", r.text);
        assert_eq!(r.i64("amount"), amount, "{}", r.text);
        assert_eq!(r.i64("fee_refunded"), fee, "refund {n}: {}", r.text);
        assert_eq!(r.str("type"), "refund", "{}", r.text);
        assert_eq!(r.str("currency"), "CNY");
        refunds.push(r);
    }
    // The first stays within half of today's sales and is queued at once; the next two
    // would take today's refunds above 50 % of today's sales (`refund_ratio`), which only
    // the acquirer may approve.
    assert_eq!(refunds[0].str("status"), "queued", "{}", refunds[0].text);
    assert!(refunds[0].body["review"].is_null(), "{}", refunds[0].text);
    for r in &refunds[1..] {
        assert_eq!(r.str("status"), "pending_review", "{}", r.text);
        assert_eq!(
            r.body["review"]["reasons"],
            json!(["refund_ratio"]),
            "{}",
            r.text
        );
        assert_eq!(
            r.body["review"]["required_by"],
            json!("acquirer"),
            "{}",
            r.text
        );
    }

    // Reading a refund back tells where it is and where the money goes.
    let first_id = refunds[0].str("id");
    let first = get_ok(server, &format!("/v1/refunds/{first_id}"), &key).await;
    assert!(
        ["queued", "processing", "succeeded"].contains(&first.str("status").as_str()),
        "{}",
        first.text
    );
    assert_eq!(first.str("type"), "refund");
    assert_eq!(first.i64("fee_refunded"), 13);
    assert_eq!(first.str("payment_id"), payment_id);
    assert_eq!(first.str("merchant_refund_no"), "WT-1");
    assert_eq!(first.str("reason"), "customer_cancel");
    assert!(first.body.get("review").is_some(), "{}", first.text);
    assert!(
        first.body.get("expected_arrival_by").is_some(),
        "{}",
        first.text
    );
    let timeline = first.body["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty(), "{}", first.text);
    assert_eq!(
        timeline[0]["event"],
        json!("refund.created"),
        "{}",
        first.text
    );
    assert!(
        timeline[0]["actor"]
            .as_str()
            .unwrap()
            .contains(&merchant_id),
        "{}",
        first.text
    );
    assert_eq!(
        first.body["destination"]["channel"],
        json!("wechat"),
        "{}",
        first.text
    );
    // Until the channel answers, the payer's masked wallet; once it has paid, the account
    // the channel reports crediting (the simulator names the same wallet by its last four).
    // The dispatch workers run, so either may be read here.
    let account = first.body["destination"]["account"].as_str().unwrap_or("");
    if first.str("status") == "succeeded" {
        assert!(account.ends_with("5678"), "{}", first.text);
    } else {
        assert_eq!(account, "138****5678", "{}", first.text);
    }
    assert!(
        !first.body["destination"]["description"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{}",
        first.text
    );
    let third = get_ok(
        server,
        &format!("/v1/refunds/{}", refunds[2].str("id")),
        &key,
    )
    .await;
    assert_eq!(third.str("status"), "pending_review");
    assert_eq!(third.body["review"]["required_by"], json!("acquirer"));
    assert!(
        third.body["next_step"]["description"].is_string(),
        "{}",
        third.text
    );

    // The payment counts refunds under way: nothing is refundable any more.
    let paid = get_ok(server, &format!("/v1/payments/{payment_id}"), &key).await;
    let refunded = paid.i64("amount_refunded");
    let in_flight = paid.i64("amount_in_flight");
    assert_eq!(refunded + in_flight, 10_000, "{}", paid.text);
    assert_eq!(paid.i64("refundable"), 0, "{}", paid.text);
    assert_eq!(
        paid.body["refunds"].as_array().unwrap().len(),
        3,
        "{}",
        paid.text
    );
    let over = server.refund(&key, &payment_id, 1, "WT-4").await;
    over.assert_problem(422, "amount_exceeds_refundable", "a fourth refund");

    // An idempotent repeat answers 200 with the same refund and changes nothing; with or
    // without the amount.
    let again = server.refund(&key, &payment_id, 3_333, "WT-1").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("id"), first_id);
    let again = server
        .post(
            "/v1/refunds",
            &key,
            &json!({ "payment_id": payment_id, "reason": "customer_cancel", "merchant_refund_no": "WT-1" }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("id"), first_id);
    // The same number with another amount or another payment is a conflict.
    let conflict = server.refund(&key, &payment_id, 100, "WT-1").await;
    conflict.assert_problem(409, "merchant_refund_no_conflict", "another amount");
    let other_payment = server.payment(&key, "alipay", 50_000).await;
    let conflict = server
        .refund(&key, &id(&other_payment), 3_333, "WT-1")
        .await;
    conflict.assert_problem(409, "merchant_refund_no_conflict", "another payment");
    let paid_again = get_ok(server, &format!("/v1/payments/{payment_id}"), &key).await;
    assert_eq!(
        paid_again.i64("amount_in_flight") + paid_again.i64("amount_refunded"),
        in_flight + refunded
    );
    assert_eq!(paid_again.body["refunds"].as_array().unwrap().len(), 3);

    // Lists: filters, newest first, cursor pagination.
    let all = get_ok(server, "/v1/refunds", &key).await;
    assert_eq!(all.body["has_more"], json!(false), "{}", all.text);
    let all_ids = ids(&all);
    let mut expected: Vec<String> = refunds.iter().map(|r| r.str("id")).collect();
    expected.reverse();
    assert_eq!(all_ids, expected, "newest first");
    let by_payment = get_ok(
        server,
        &format!("/v1/refunds?payment_id={payment_id}"),
        &key,
    )
    .await;
    assert_eq!(ids(&by_payment), expected);
    // The first refund is queued, or further along once workers dispatch it: list by the
    // status it has, and count the answer only if it still had that status afterwards
    // (statuses only move forward, so it had it during the list too).
    let mut listed_by_status = false;
    for _ in 0..50 {
        let path = format!("/v1/refunds/{first_id}");
        let before = get_ok(server, &path, &key).await.str("status");
        let same_status = get_ok(server, &format!("/v1/refunds?status={before}"), &key).await;
        if get_ok(server, &path, &key).await.str("status") == before {
            assert_eq!(ids(&same_status), vec![first_id.clone()], "status {before}");
            listed_by_status = true;
            break;
        }
    }
    assert!(listed_by_status, "the first refund kept changing status");
    let pending = get_ok(server, "/v1/refunds?status=pending_review", &key).await;
    assert_eq!(ids(&pending), expected[..2].to_vec());
    let wechat = get_ok(server, "/v1/refunds?channel=wechat", &key).await;
    assert_eq!(ids(&wechat).len(), 3);
    let alipay = get_ok(server, "/v1/refunds?channel=alipay", &key).await;
    assert!(ids(&alipay).is_empty(), "{}", alipay.text);
    let created_at: DateTime<Utc> = first.str("created_at").parse().unwrap();
    let before = (created_at - Duration::hours(1)).to_rfc3339();
    let after = (created_at + Duration::days(1)).to_rfc3339();
    let enc = |s: &str| s.replace('+', "%2B");
    let from_before = get_ok(
        server,
        &format!("/v1/refunds?created_from={}", enc(&before)),
        &key,
    )
    .await;
    assert_eq!(ids(&from_before).len(), 3);
    let from_after = get_ok(
        server,
        &format!("/v1/refunds?created_from={}", enc(&after)),
        &key,
    )
    .await;
    assert!(ids(&from_after).is_empty(), "{}", from_after.text);
    let to_before = get_ok(
        server,
        &format!("/v1/refunds?created_to={}", enc(&before)),
        &key,
    )
    .await;
    assert!(ids(&to_before).is_empty(), "{}", to_before.text);
    let shanghai = get_ok(
        server,
        &format!(
            "/v1/refunds?created_from={}&status=pending_review",
            enc(&(created_at - Duration::hours(1))
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
                .to_rfc3339())
        ),
        &key,
    )
    .await;
    assert_eq!(ids(&shanghai), expected[..2].to_vec());
    let first_page = get_ok(server, "/v1/refunds?limit=1", &key).await;
    assert_eq!(
        first_page.body["has_more"],
        json!(true),
        "{}",
        first_page.text
    );
    assert_eq!(ids(&first_page), expected[..1].to_vec());
    assert_eq!(all_pages(server, "/v1/refunds", &key).await, expected);
    assert_eq!(
        all_pages(
            server,
            &format!("/v1/refunds?payment_id={payment_id}"),
            &key
        )
        .await,
        expected
    );
    let last_page = get_ok(
        server,
        &format!("/v1/refunds?limit=2&starting_after={}", expected[0]),
        &key,
    )
    .await;
    assert_eq!(ids(&last_page), expected[1..].to_vec());
    assert_eq!(last_page.body["has_more"], json!(false));
    let payments = all_pages(server, "/v1/payments", &key).await;
    assert_eq!(payments, vec![id(&other_payment), payment_id.clone()]);

    // The admin sees the same refund, and the audit chain is intact.
    let as_admin = get_ok(server, &format!("/v1/refunds/{first_id}"), ADMIN_KEY).await;
    assert_eq!(as_admin.str("id"), first_id);
    let audit = get_ok(server, "/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
    assert!(audit.body["first_bad"].is_null(), "{}", audit.text);
    assert!(audit.i64("entries") >= 6, "{}", audit.text);
}

#[tokio::test]
async fn the_readme_walk_through_works_end_to_end() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    walk_through(&server).await;
}

#[tokio::test]
async fn the_readme_walk_through_works_on_postgresql() {
    let Some(schema) = PgSchema::create("the_readme_walk_through_works_on_postgresql").await else {
        return;
    };
    let dir = common::data_dir();
    {
        let server = Server::start_with(
            dir.path(),
            &Options {
                database_url: Some(schema.url()),
                ..Options::default()
            },
        );
        walk_through(&server).await;
    }
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_merchant_key_never_sees_or_touches_another_merchants_data() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    let (a_id, a_key) = server.merchant("Merchant A").await;
    let (b_id, b_key) = server.merchant("Merchant B").await;
    let a_payment = id(&server.payment(&a_key, "wechat", 20_000).await);
    let a_refund = server.refund(&a_key, &a_payment, 1_000, "A-1").await;
    assert_eq!(a_refund.status, 201, "{}", a_refund.text);
    let a_refund = a_refund.str("id");
    let b_payment = id(&server.payment(&b_key, "alipay", 30_000).await);
    let b_refund = server.refund(&b_key, &b_payment, 2_000, "B-1").await;
    assert_eq!(b_refund.status, 201, "{}", b_refund.text);
    let b_refund = b_refund.str("id");

    // Reads of A's things with B's key are "not found", never "forbidden".
    server
        .get(&format!("/v1/payments/{a_payment}"), &b_key)
        .await
        .assert_problem(404, "payment_not_found", "B reads A's payment");
    server
        .get(&format!("/v1/refunds/{a_refund}"), &b_key)
        .await
        .assert_problem(404, "not_found", "B reads A's refund");
    server
        .get(&format!("/v1/merchants/{a_id}"), &b_key)
        .await
        .assert_problem(404, "not_found", "B reads merchant A");
    // Writes too.
    server
        .refund(&b_key, &a_payment, 100, "B-steal")
        .await
        .assert_problem(404, "payment_not_found", "B refunds A's payment");
    // The same merchant_refund_no as A's in B's own namespace is fine.
    let b_same_no = server.refund(&b_key, &b_payment, 100, "A-1").await;
    assert_eq!(
        b_same_no.status, 201,
        "numbers are per merchant: {}",
        b_same_no.text
    );
    for action in ["approve", "reject", "cancel"] {
        server
            .post(
                &format!("/v1/refunds/{a_refund}/{action}"),
                &b_key,
                &json!({ "note": "mine now" }),
            )
            .await
            .assert_problem(404, "not_found", &format!("B {action}s A's refund"));
    }
    server
        .post(
            &format!("/v1/refunds/{a_refund}/return"),
            &b_key,
            &json!({ "tracking_no": "SF1" }),
        )
        .await
        .assert_problem(404, "not_found", "B records A's return");
    server
        .post(
            &format!("/v1/merchants/{a_id}/keys"),
            &b_key,
            &json!({ "role": "supervisor" }),
        )
        .await
        .assert_problem(404, "not_found", "B issues A a key");
    let foreign = server
        .post(
            "/v1/payments",
            &b_key,
            &json!({ "merchant_id": a_id, "channel": "wechat", "amount": 100, "currency": "CNY" }),
        )
        .await;
    assert!(
        [400, 403, 404].contains(&foreign.status),
        "B records a payment for A: {}",
        foreign.text
    );
    foreign.assert_problem_shape("B records a payment for A");

    // Lists never show the other merchant's data.
    let b_refunds = all_pages(&server, "/v1/refunds", &b_key).await;
    assert!(!b_refunds.contains(&a_refund), "{b_refunds:?}");
    assert!(b_refunds.contains(&b_refund));
    let filtered = get_ok(
        &server,
        &format!("/v1/refunds?payment_id={a_payment}"),
        &b_key,
    )
    .await;
    assert!(ids(&filtered).is_empty(), "{}", filtered.text);
    let b_payments = all_pages(&server, "/v1/payments", &b_key).await;
    assert_eq!(b_payments, vec![b_payment.clone()]);
    let a_payments = all_pages(&server, "/v1/payments", &a_key).await;
    assert_eq!(a_payments, vec![a_payment.clone()]);
    // A cursor past every id still shows only B's.
    let after = get_ok(
        &server,
        "/v1/refunds?starting_after=rf_zzzzzzzzzzzzzzzzzzzzzzzzzz",
        &b_key,
    )
    .await;
    let after_ids: HashSet<String> = ids(&after).into_iter().collect();
    assert!(!after_ids.contains(&a_refund), "{}", after.text);
    // The admin sees both.
    let admin_refunds = all_pages(&server, "/v1/refunds", ADMIN_KEY).await;
    assert!(admin_refunds.contains(&a_refund) && admin_refunds.contains(&b_refund));

    // Merchant keys cannot use admin endpoints.
    server.get("/v1/audit/verify", &b_key).await.assert_problem(
        403,
        "forbidden",
        "merchant verifies the audit log",
    );
    server
        .post(
            "/v1/merchants",
            &b_key,
            &json!({ "name": "B's shell company" }),
        )
        .await
        .assert_problem(403, "forbidden", "merchant onboards a merchant");
    let b_merchant = get_ok(&server, &format!("/v1/merchants/{b_id}"), &b_key).await;
    assert_eq!(b_merchant.str("id"), b_id);

    // A's refund is untouched.
    let untouched = get_ok(&server, &format!("/v1/refunds/{a_refund}"), &a_key).await;
    assert!(
        ["queued", "processing", "succeeded"].contains(&untouched.str("status").as_str()),
        "{}",
        untouched.text
    );
    let a_paid = get_ok(&server, &format!("/v1/payments/{a_payment}"), &a_key).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        a_paid.i64("amount_in_flight") + a_paid.i64("amount_refunded"),
        1_000,
        "{}",
        a_paid.text
    );
}

#[tokio::test]
async fn reviews_are_given_by_whom_the_rules_require() {
    let dir = common::data_dir();
    // No dispatch workers: the test cancels approved (queued) refunds, which a worker could
    // otherwise pay first on a loaded machine.
    let server = Server::start_with(
        dir.path(),
        &common::Options {
            args: vec!["--dispatch-workers".into(), "0".into()],
            ..Default::default()
        },
    );
    // A refund ratio of 100 % keeps `refund_ratio` out of the way of the rules under test.
    let (merchant_id, supervisor) = server
        .merchant_with(json!({ "name": "Review Mart", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let staff = server
        .post(
            &format!("/v1/merchants/{merchant_id}/keys"),
            &supervisor,
            &json!({ "role": "staff" }),
        )
        .await;
    assert_eq!(staff.status, 201, "{}", staff.text);
    assert_eq!(staff.str("role"), "staff");
    let staff = staff.str("api_key");

    // A large refund waits for the acquirer.
    let big = id(&server.payment(&supervisor, "wechat", 800_000).await);
    let large = server.refund(&staff, &big, 500_000, "RV-LARGE").await;
    assert_eq!(large.status, 201, "{}", large.text);
    assert_eq!(large.str("status"), "pending_review", "{}", large.text);
    assert_eq!(
        large.body["review"]["reasons"],
        json!(["large_amount"]),
        "{}",
        large.text
    );
    assert_eq!(
        large.body["review"]["required_by"],
        json!("acquirer"),
        "{}",
        large.text
    );
    let large_id = large.str("id");
    server
        .post(
            &format!("/v1/refunds/{large_id}/approve"),
            &supervisor,
            &json!({ "note": "ok" }),
        )
        .await
        .assert_problem(403, "forbidden", "supervisor approves a large refund");
    server
        .post(
            &format!("/v1/refunds/{large_id}/reject"),
            &supervisor,
            &json!({ "note": "no" }),
        )
        .await
        .assert_problem(403, "forbidden", "supervisor rejects a large refund");
    let approved = server
        .post(
            &format!("/v1/refunds/{large_id}/approve"),
            ADMIN_KEY,
            &json!({ "note": "checked the voucher" }),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.str("status"), "queued", "{}", approved.text);
    assert_eq!(
        approved.body["review"]["note"],
        json!("checked the voucher")
    );
    assert!(
        approved.body["review"]["reviewed_by"].is_string(),
        "{}",
        approved.text
    );
    let events: Vec<&str> = approved.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["refund.created", "refund.approved"],
        "{}",
        approved.text
    );
    // Just under the threshold needs no review.
    let small = server
        .refund(&staff, &big, 499_999 - 200_000, "RV-SMALL")
        .await;
    assert_eq!(small.str("status"), "queued", "{}", small.text);

    // A member payment's refund may be approved by a merchant supervisor, not by staff.
    let member = id(&server
        .payment_with(
            &supervisor,
            json!({ "channel": "alipay", "amount": 50_000, "currency": "CNY", "member": true }),
        )
        .await);
    let m1 = server.refund(&staff, &member, 10_000, "RV-M1").await;
    assert_eq!(m1.status, 201, "{}", m1.text);
    assert_eq!(m1.str("status"), "pending_review", "{}", m1.text);
    assert_eq!(
        m1.body["review"]["reasons"],
        json!(["preauth_or_member"]),
        "{}",
        m1.text
    );
    assert_eq!(
        m1.body["review"]["required_by"],
        json!("merchant"),
        "{}",
        m1.text
    );
    let m1_id = m1.str("id");
    server
        .post(
            &format!("/v1/refunds/{m1_id}/approve"),
            &staff,
            &json!({ "note": "ok" }),
        )
        .await
        .assert_problem(403, "forbidden", "staff approves");
    server
        .post(
            &format!("/v1/refunds/{m1_id}/reject"),
            &staff,
            &json!({ "note": "no" }),
        )
        .await
        .assert_problem(403, "forbidden", "staff rejects");
    let approved = server
        .post(
            &format!("/v1/refunds/{m1_id}/approve"),
            &supervisor,
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.str("status"), "queued", "{}", approved.text);
    // Approving twice is not a transition.
    server
        .post(
            &format!("/v1/refunds/{m1_id}/approve"),
            &supervisor,
            &json!({}),
        )
        .await
        .assert_problem(409, "invalid_transition", "approve twice");

    // A pre-authorisation completion is reviewed the same way.
    let preauth = id(&server
        .payment_with(&supervisor, json!({ "channel": "credit_card", "amount": 30_000, "currency": "CNY", "kind": "preauth_completion" }))
        .await);
    let p1 = server.refund(&staff, &preauth, 1_000, "RV-P1").await;
    assert_eq!(p1.str("status"), "pending_review", "{}", p1.text);
    assert_eq!(
        p1.body["review"]["reasons"],
        json!(["preauth_or_member"]),
        "{}",
        p1.text
    );

    // Rejecting needs a note; a rejection releases the money.
    let m2 = server.refund(&staff, &member, 5_000, "RV-M2").await;
    let m2_id = m2.str("id");
    server
        .post(
            &format!("/v1/refunds/{m2_id}/reject"),
            &supervisor,
            &json!({}),
        )
        .await
        .assert_problem(400, "validation_error", "reject without a note");
    let before = get_ok(&server, &format!("/v1/payments/{member}"), &supervisor).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        before.i64("amount_in_flight") + before.i64("amount_refunded"),
        15_000,
        "{}",
        before.text
    );
    let rejected = server
        .post(
            &format!("/v1/refunds/{m2_id}/reject"),
            &supervisor,
            &json!({ "note": "goods not returned" }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.str("status"), "rejected");
    assert_eq!(rejected.body["review"]["note"], json!("goods not returned"));
    let after = get_ok(&server, &format!("/v1/payments/{member}"), &supervisor).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        after.i64("amount_in_flight") + after.i64("amount_refunded"),
        10_000,
        "{}",
        after.text
    );
    assert_eq!(after.i64("refundable"), 40_000, "{}", after.text);
    server
        .post(
            &format!("/v1/refunds/{m2_id}/cancel"),
            &supervisor,
            &json!({}),
        )
        .await
        .assert_problem(409, "invalid_transition", "cancel a rejected refund");

    // Cancel after approval works once; the money is released.
    let canceled = server
        .post(
            &format!("/v1/refunds/{m1_id}/cancel"),
            &staff,
            &json!({ "note": "customer changed mind" }),
        )
        .await;
    assert_eq!(canceled.status, 200, "{}", canceled.text);
    assert_eq!(canceled.str("status"), "canceled");
    server
        .post(&format!("/v1/refunds/{m1_id}/cancel"), &staff, &json!({}))
        .await
        .assert_problem(409, "invalid_transition", "cancel twice");
    server
        .post(
            &format!("/v1/refunds/{m1_id}/approve"),
            ADMIN_KEY,
            &json!({}),
        )
        .await
        .assert_problem(409, "invalid_transition", "approve a canceled refund");
    let released = get_ok(&server, &format!("/v1/payments/{member}"), &supervisor).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        released.i64("amount_in_flight") + released.i64("amount_refunded"),
        0,
        "{}",
        released.text
    );
    assert_eq!(released.i64("refundable"), 50_000, "{}", released.text);
    // The admin may cancel too.
    let by_admin = server
        .post(
            &format!("/v1/refunds/{large_id}/cancel"),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(by_admin.str("status"), "canceled", "{}", by_admin.text);

    // A consumer's request waits for review, which the merchant may give.
    let consumer = server
        .post(
            "/v1/refunds",
            &staff,
            &json!({ "payment_id": big, "amount": 100, "reason": "quality_issue", "merchant_refund_no": "RV-C1", "requested_by": { "role": "consumer", "name": "Ms Wang" } }),
        )
        .await;
    assert_eq!(consumer.status, 201, "{}", consumer.text);
    assert_eq!(
        consumer.body["review"]["reasons"],
        json!(["consumer_request"]),
        "{}",
        consumer.text
    );
    assert_eq!(
        consumer.body["review"]["required_by"],
        json!("merchant"),
        "{}",
        consumer.text
    );

    let audit = get_ok(&server, "/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
}

#[tokio::test]
async fn goods_that_left_the_shop_come_back_before_the_money_does() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    let (_, key) = server
        .merchant_with(json!({ "name": "POS Machines Online", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let shipped = id(&server
        .payment_with(&key, json!({ "channel": "alipay", "amount": 29_900, "currency": "CNY", "order": { "merchant_order_no": "ORD-1", "shipping_status": "shipped" } }))
        .await);
    let r = server.refund(&key, &shipped, 29_900, "GR-1").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.str("status"), "awaiting_return", "{}", r.text);
    let back = server
        .post(
            &format!("/v1/refunds/{}/return", r.str("id")),
            &key,
            &json!({ "tracking_no": "SF1234567890" }),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.str("status"), "queued", "{}", back.text);
    assert_eq!(back.str("tracking_no"), "SF1234567890");
    server
        .post(
            &format!("/v1/refunds/{}/return", r.str("id")),
            &key,
            &json!({ "tracking_no": "SF1234567890" }),
        )
        .await
        .assert_problem(409, "invalid_transition", "return twice");
    // An unshipped order never waits for a return.
    let unshipped = id(&server
        .payment_with(&key, json!({ "channel": "alipay", "amount": 29_900, "currency": "CNY", "order": { "merchant_order_no": "ORD-2", "shipping_status": "unshipped" } }))
        .await);
    let r = server
        .post("/v1/refunds", &key, &json!({ "payment_id": unshipped, "reason": "not_shipped", "merchant_refund_no": "GR-2" }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.str("status"), "queued", "{}", r.text);
    assert_eq!(
        r.i64("amount"),
        29_900,
        "omitted amount is the whole refundable amount"
    );
}

#[tokio::test]
async fn a_card_payment_refunded_in_full_the_same_day_is_a_void() {
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), &simulated());
    let (_, key) = server
        .merchant_with(json!({ "name": "Void Bakery", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "credit_card", "amount": 10_000, "currency": "CNY", "payer": { "card_last4": "0403", "bank": "China Merchants Bank" } }),
        )
        .await;
    assert_eq!(payment["fee"], json!(60), "{payment}");
    assert_eq!(payment["payer"]["account"], json!("**** 0403"), "{payment}");
    let payment_id = id(&payment);
    let void = server.refund(&key, &payment_id, 10_000, "VOID-1").await;
    assert_eq!(void.status, 201, "{}", void.text);
    assert_eq!(void.str("type"), "void", "{}", void.text);
    assert_eq!(void.str("status"), "succeeded", "{}", void.text);
    assert_eq!(
        void.i64("fee_refunded"),
        60,
        "a void returns the whole fee: {}",
        void.text
    );
    assert_eq!(
        void.body["destination"]["account"],
        json!("**** 0403"),
        "{}",
        void.text
    );
    let events: Vec<&str> = void.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"refund.void_completed"), "{}", void.text);
    let voided = get_ok(&server, &format!("/v1/payments/{payment_id}"), &key).await;
    assert_eq!(voided.body["voided"], json!(true), "{}", voided.text);
    assert_eq!(voided.i64("amount_refunded"), 10_000, "{}", voided.text);
    assert_eq!(voided.i64("amount_in_flight"), 0, "{}", voided.text);
    assert_eq!(voided.i64("refundable"), 0, "{}", voided.text);
    server
        .refund(&key, &payment_id, 1, "VOID-2")
        .await
        .assert_problem(422, "payment_voided", "refund a voided payment");
    // The repeat of the void is still the void.
    let again = server.refund(&key, &payment_id, 10_000, "VOID-1").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("id"), void.str("id"));

    // A partial refund, and the rest after it, are refunds, not voids. Another sale funds
    // them: the card fee is not returned, so the refunds debit more than the payment's net.
    server.payment(&key, "alipay", 100_000).await;
    let partial = id(&server.payment(&key, "debit_card", 10_000).await);
    let first = server.refund(&key, &partial, 4_000, "PART-1").await;
    assert_eq!(first.str("type"), "refund", "{}", first.text);
    assert_eq!(
        first.i64("fee_refunded"),
        0,
        "card fees are not returned: {}",
        first.text
    );
    let rest = server.refund(&key, &partial, 6_000, "PART-2").await;
    assert_eq!(rest.str("type"), "refund", "{}", rest.text);
    // Wallet payments are never voided.
    let wallet = id(&server.payment(&key, "wechat", 10_000).await);
    let full = server.refund(&key, &wallet, 10_000, "WALLET-1").await;
    assert_eq!(full.str("type"), "refund", "{}", full.text);
    assert_eq!(full.i64("fee_refunded"), 38, "{}", full.text);
    // A UnionPay QR payment is voided like a card.
    let qr = id(&server.payment(&key, "unionpay_qr", 10_000).await);
    let qr_void = server.refund(&key, &qr, 10_000, "QR-1").await;
    assert_eq!(qr_void.str("type"), "void", "{}", qr_void.text);

    // A large void waits for the acquirer, then completes at once on approval.
    let large = id(&server.payment(&key, "credit_card", 600_000).await);
    let pending = server.refund(&key, &large, 600_000, "VOID-L").await;
    assert_eq!(pending.str("type"), "void", "{}", pending.text);
    assert_eq!(pending.str("status"), "pending_review", "{}", pending.text);
    let approved = server
        .post(
            &format!("/v1/refunds/{}/approve", pending.str("id")),
            ADMIN_KEY,
            &json!({ "note": "ok" }),
        )
        .await;
    assert_eq!(approved.str("status"), "succeeded", "{}", approved.text);
    let large_paid = get_ok(&server, &format!("/v1/payments/{large}"), &key).await;
    assert_eq!(
        large_paid.body["voided"],
        json!(true),
        "{}",
        large_paid.text
    );

    // The next day a full card refund is a refund.
    let next_day = id(&server.payment(&key, "credit_card", 10_000).await);
    let advanced = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 24 * 3600 }),
        )
        .await;
    assert_eq!(advanced.status, 200, "{}", advanced.text);
    let late = server.refund(&key, &next_day, 10_000, "NEXT-1").await;
    assert_eq!(late.status, 201, "{}", late.text);
    assert_eq!(late.str("type"), "refund", "{}", late.text);
    assert_eq!(late.i64("fee_refunded"), 0, "{}", late.text);
}

#[tokio::test]
async fn the_simulated_clock_moves_forward_and_windows_close() {
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), &simulated());
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(SIMULATED_START)
        .unwrap()
        .into();
    let now = get_ok(&server, "/v1/admin/clock", ADMIN_KEY).await;
    assert_eq!(
        now.str("now").parse::<DateTime<Utc>>().unwrap(),
        start,
        "{}",
        now.text
    );
    let (_, key) = server.merchant("Clockwork Cafe").await;
    let card = server.payment(&key, "credit_card", 10_000).await;
    assert_eq!(
        card["captured_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        start,
        "{card}"
    );
    let card = id(&card);
    let wallet = id(&server.payment(&key, "wechat", 10_000).await);

    let moved = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 3600 }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        moved.str("now").parse::<DateTime<Utc>>().unwrap(),
        start + Duration::hours(1),
        "{}",
        moved.text
    );
    for (body, name) in [
        (json!({ "seconds": 0 }), "zero"),
        (json!({ "seconds": -60 }), "backwards"),
        (json!({ "seconds": "60" }), "a string"),
        (json!({ "seconds": 1.5 }), "a float"),
        (json!({}), "missing"),
        (json!({ "seconds": 60, "minutes": 1 }), "unknown field"),
        (
            json!({ "seconds": 400 * 366 * 24 * 3600_i64 }),
            "four centuries",
        ),
    ] {
        server
            .post("/v1/admin/clock/advance", ADMIN_KEY, &body)
            .await
            .assert_problem(400, "validation_error", &format!("advance {name}"));
    }
    server
        .post("/v1/admin/clock/advance", &key, &json!({ "seconds": 60 }))
        .await
        .assert_problem(403, "forbidden", "a merchant moves the clock");
    server
        .call(
            Method::POST,
            "/v1/admin/clock/advance",
            None,
            Some(&json!({ "seconds": 60 })),
        )
        .await
        .assert_problem(401, "unauthorized", "nobody moves the clock");

    // Under the simulated clock a merchant may back-date a capture, never into the future.
    let backdated = server
        .payment_with(
            &key,
            json!({ "channel": "alipay", "amount": 5_000, "currency": "CNY", "captured_at": (start - Duration::days(2)).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        backdated["captured_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        start - Duration::days(2)
    );
    server
        .post(
            "/v1/payments",
            &key,
            &json!({ "channel": "alipay", "amount": 5_000, "currency": "CNY", "captured_at": (start + Duration::days(2)).to_rfc3339() }),
        )
        .await
        .assert_problem(400, "validation_error", "a capture in the future");

    // 181 days later the card's 180-day window has closed; WeChat's 365 days have not,
    // but the refund is late and waits for the acquirer.
    let moved = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 181 * 24 * 3600 - 3600 }),
        )
        .await;
    assert_eq!(
        moved.str("now").parse::<DateTime<Utc>>().unwrap(),
        start + Duration::days(181),
        "{}",
        moved.text
    );
    let expired = server.refund(&key, &card, 1_000, "LATE-CARD").await;
    expired.assert_problem(422, "refund_window_expired", "a card refund after 181 days");
    let late = server.refund(&key, &wallet, 1_000, "LATE-WALLET").await;
    assert_eq!(late.status, 201, "{}", late.text);
    assert_eq!(late.str("status"), "pending_review", "{}", late.text);
    let reasons = late.body["review"]["reasons"].as_array().unwrap();
    assert!(reasons.contains(&json!("late_refund")), "{}", late.text);
    assert_eq!(
        late.body["review"]["required_by"],
        json!("acquirer"),
        "{}",
        late.text
    );
    assert_eq!(
        late.str("created_at").parse::<DateTime<Utc>>().unwrap(),
        start + Duration::days(181)
    );
}

#[tokio::test]
async fn the_clock_endpoints_do_not_exist_on_the_real_clock() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 60 }),
        )
        .await
        .assert_problem(404, "not_found", "advance the real clock");
    server
        .get("/v1/admin/clock", ADMIN_KEY)
        .await
        .assert_problem(404, "not_found", "read the real clock");
    let (_, key) = server.merchant("Real Time Ramen").await;
    let payment = server.payment(&key, "credit_card", 1_000).await;
    let captured: DateTime<Utc> = payment["captured_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (Utc::now() - captured).num_seconds().abs() < 300,
        "{payment}"
    );
}

/// Many concurrent refunds of one payment: the payment is never overdrawn, every answer is
/// a creation or `amount_exceeds_refundable`, and the counters equal the refunds stored.
async fn concurrent_refunds(server: &Server) {
    const REQUESTS: usize = 30;
    const AMOUNT: i64 = 1_000;
    let (_, key) = server
        .merchant_with(json!({ "name": "Rush Hour", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    // Room for 12 refunds of 1 000 fen only.
    let payment_id = id(&server.payment(&key, "alipay", 12 * AMOUNT + 500).await);
    let mut tasks = Vec::new();
    for n in 0..REQUESTS {
        let (http, url, key, payment_id) = (
            server.http.clone(),
            server.url("/v1/refunds"),
            key.clone(),
            payment_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({ "payment_id": payment_id, "amount": AMOUNT, "reason": "duplicate_charge", "merchant_refund_no": format!("RUSH-{n}") });
            Resp::from(http.post(url).bearer_auth(key).json(&body).send().await.unwrap()).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            201 => created += 1,
            _ => r.assert_problem(422, "amount_exceeds_refundable", "a concurrent refund"),
        }
    }
    assert_eq!(created, 12, "exactly the refundable amount is refunded");
    let paid = get_ok(server, &format!("/v1/payments/{payment_id}"), &key).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        paid.i64("amount_in_flight") + paid.i64("amount_refunded"),
        12 * AMOUNT,
        "{}",
        paid.text
    );
    assert_eq!(paid.i64("refundable"), 500, "{}", paid.text);
    assert_eq!(paid.body["refunds"].as_array().unwrap().len(), 12);

    // The same merchant_refund_no sent concurrently makes one refund; the others get it back.
    let other = id(&server.payment(&key, "wechat", 100_000).await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, url, key, other) = (
            server.http.clone(),
            server.url("/v1/refunds"),
            key.clone(),
            other.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({ "payment_id": other, "amount": 700, "reason": "customer_cancel", "merchant_refund_no": "SAME-1" });
            Resp::from(http.post(url).bearer_auth(key).json(&body).send().await.unwrap()).await
        }));
    }
    let mut statuses = Vec::new();
    let mut refund_ids = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
        statuses.push(r.status);
        refund_ids.insert(r.str("id"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(refund_ids.len(), 1);
    let paid = get_ok(server, &format!("/v1/payments/{other}"), &key).await;
    // Queued refunds may already have been paid by the dispatch workers.
    assert_eq!(
        paid.i64("amount_in_flight") + paid.i64("amount_refunded"),
        700,
        "{}",
        paid.text
    );

    // The same number for two different payments at once: one wins, the others conflict.
    let (p1, p2) = (
        id(&server.payment(&key, "wechat", 10_000).await),
        id(&server.payment(&key, "wechat", 10_000).await),
    );
    let mut tasks = Vec::new();
    for n in 0..10 {
        let (http, url, key) = (server.http.clone(), server.url("/v1/refunds"), key.clone());
        let payment = if n % 2 == 0 { p1.clone() } else { p2.clone() };
        tasks.push(tokio::spawn(async move {
            let body = json!({ "payment_id": payment, "amount": 100, "reason": "customer_cancel", "merchant_refund_no": "SPLIT-1" });
            Resp::from(http.post(url).bearer_auth(key).json(&body).send().await.unwrap()).await
        }));
    }
    let mut winners = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            200 | 201 => {
                winners.insert(r.str("id"));
            }
            _ => r.assert_problem(409, "merchant_refund_no_conflict", "the same number twice"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let audit = get_ok(server, "/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
}

#[tokio::test]
async fn concurrent_refunds_never_overdraw_a_payment() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    concurrent_refunds(&server).await;
}

#[tokio::test]
async fn concurrent_refunds_never_overdraw_a_payment_on_postgresql() {
    let Some(schema) =
        PgSchema::create("concurrent_refunds_never_overdraw_a_payment_on_postgresql").await
    else {
        return;
    };
    let dir = common::data_dir();
    {
        let server = Server::start_with(
            dir.path(),
            &Options {
                database_url: Some(schema.url()),
                ..Options::default()
            },
        );
        concurrent_refunds(&server).await;
    }
    schema.drop_schema().await;
}

/// A void that waits for review has reversed nothing yet: the payment is not voided until
/// the void completes, and a further refund is refused for the amount, not as voided.
#[tokio::test]

async fn a_void_waiting_for_review_does_not_void_the_payment_yet() {
    let dir = common::data_dir();
    let server = Server::start_with(dir.path(), &simulated());
    let (_, key) = server
        .merchant_with(json!({ "name": "Pending Void", "settings": { "review": { "refund_ratio_percent": 100 } } }))
        .await;
    let payment_id = id(&server.payment(&key, "credit_card", 600_000).await);
    let void = server.refund(&key, &payment_id, 600_000, "PV-1").await;
    assert_eq!(void.str("type"), "void", "{}", void.text);
    assert_eq!(void.str("status"), "pending_review", "{}", void.text);
    let payment = get_ok(&server, &format!("/v1/payments/{payment_id}"), &key).await;
    assert_eq!(
        payment.body["voided"],
        json!(false),
        "not voided before the void completes: {}",
        payment.text
    );
    server
        .refund(&key, &payment_id, 1, "PV-2")
        .await
        .assert_problem(
            422,
            "amount_exceeds_refundable",
            "a refund beside a pending void",
        );
}
