//! Issue 11's remaining page promises over plain HTTP (the browser test drives the same
//! pages in Chromium):
//!
//! - the public lookup takes the card's last four digits as well as the phone's
//!   (`card_last4`, additive), with the same lock on wrong guesses, on SQLite and
//!   PostgreSQL;
//! - the status page's ticket (rating, "open a case") survives a restart and works on a
//!   second server sharing the database and key, and expires after 30 minutes;
//! - the console's statement upload refuses what the API refuses, and bad input to the new
//!   console forms is a 4xx page, never a 500.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_KEY, Options, PgSchema, Resp, Server, cookie};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::json;

/// Monday 5 January 2026, 10:00 in Shanghai.
const START: &str = "simulated=2026-01-05T10:00:00+08:00";
const ACCOUNT_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A card sale (card 0403, phone 8888) and its refund numbered `no`; a member sale, so the
/// refund waits for review. Returns the merchant key and the refund id.
async fn card_refund(server: &Server, no: &str) -> (String, String) {
    let (_merchant, key) = server.merchant("Card Shop").await;
    let payment = server
        .payment_with(
            &key,
            json!({ "channel": "debit_card", "amount": 10_000, "currency": "CNY", "member": true,
                    "payer": { "card_last4": "0403", "bank": "ICBC" },
                    "voucher": { "rrn": "600512345678" }, "phone": "13900008888" }),
        )
        .await;
    let r = server
        .refund(&key, payment["id"].as_str().unwrap(), 3_000, no)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (key, r.str("id"))
}

async fn public(server: &Server, query: &str) -> Resp {
    let r = http()
        .get(server.url(&format!("/v1/public/refunds/{query}")))
        .send()
        .await
        .unwrap();
    Resp::from(r).await
}

async fn lookup_by_card(server: &Server) {
    let (_key, id) = card_refund(server, "C-1").await;
    let r = public(server, "C-1?card_last4=0403").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.str("id"), id);
    assert!(
        !r.text.contains("pay_"),
        "no payment id in the consumer view"
    );
    assert_eq!(public(server, "C-1?phone_last4=8888").await.status, 200);
    public(server, "C-1?card_last4=0403&phone_last4=8888")
        .await
        .assert_problem(400, "validation_error", "both kinds of digits");
    let r = public(server, "C-1?card_last4=04a3").await;
    r.assert_problem(400, "validation_error", "malformed card digits");
    assert_eq!(r.body["field"], "card_last4");
    let r = public(server, "C-1").await;
    r.assert_problem(400, "validation_error", "no digits");
    assert_eq!(r.body["field"], "phone_last4");
    // Wrong card digits count like wrong phone digits: the fifth locks the refund.
    for n in 0..5 {
        public(server, &format!("C-1?card_last4={:04}", 1000 + n))
            .await
            .assert_problem(404, "not_found", "wrong card digits");
    }
    public(server, "C-1?card_last4=0403").await.assert_problem(
        429,
        "rate_limited",
        "locked after five wrong guesses",
    );
    public(server, "C-1?phone_last4=8888").await.assert_problem(
        429,
        "rate_limited",
        "locked for the phone too",
    );
}

#[tokio::test]
async fn the_public_lookup_takes_the_card_last_four_on_sqlite() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    lookup_by_card(&server).await;
}

#[tokio::test]
async fn the_public_lookup_takes_the_card_last_four_on_postgres() {
    let Some(schema) = PgSchema::create("pages_console_card").await else {
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
        lookup_by_card(&server).await;
    }
    schema.drop_schema().await;
}

/// The anonymous CSRF cookie and token of the status page.
async fn anonymous(server: &Server) -> (String, String) {
    let page = http().get(server.url("/status")).send().await.unwrap();
    let csrf = cookie(&page, "yl_csrf").expect("a CSRF cookie");
    (format!("yl_csrf={csrf}"), csrf)
}

async fn post_form(server: &Server, path: &str, cookies: &str, body: String) -> (u16, String) {
    let r = http()
        .post(server.url(path))
        .header(COOKIE, cookies)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn hidden(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// Looks the canceled refund up by card on `server` and returns the rating form's ticket.
async fn ticket_from(server: &Server) -> String {
    let (cookies, csrf) = anonymous(server).await;
    let (status, html) = post_form(
        server,
        "/status?lang=en",
        &cookies,
        format!("csrf={csrf}&number=T-1&kind=card&last4=0403"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"rate\""), "an ended refund can be rated");
    let ticket = hidden(&html, "ticket");
    assert!(
        !ticket.contains("600512345678"),
        "the reference is not readable"
    );
    ticket
}

async fn rate(server: &Server, ticket: &str, rating: u8) -> (u16, String) {
    let (cookies, csrf) = anonymous(server).await;
    let ticket = ticket.replace(':', "%3A");
    post_form(
        server,
        "/status/feedback?lang=en",
        &cookies,
        format!("csrf={csrf}&ticket={ticket}&rating={rating}"),
    )
    .await
}

/// A refund that ended (canceled), so its status page offers a rating.
async fn ended_refund(server: &Server) {
    let (key, id) = card_refund(server, "T-1").await;
    let r = server
        .post(&format!("/v1/refunds/{id}/cancel"), &key, &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_status_ticket_survives_a_restart_and_expires_after_30_minutes() {
    let dir = common::data_dir();
    let options = Options {
        clock: Some(START.into()),
        ..Options::default()
    };
    let mut server = Server::start_with(dir.path(), &options);
    ended_refund(&server).await;
    let ticket = ticket_from(&server).await;
    // A forged or altered ticket is refused, in the reader's language.
    let mut altered = ticket.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let (status, html) = rate(&server, &altered, 5).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("expired"), "{html}");
    // The server restarts (same data directory, so the same key): the ticket still works.
    server.kill();
    let server = Server::start_with(dir.path(), &options);
    let (status, html) = rate(&server, &ticket, 4).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"notice\""), "{html}");
    // A new ticket, 31 minutes later, is refused as expired.
    let later = ticket_from(&server).await;
    let r = server
        .post(
            "/v1/admin/clock/advance",
            ADMIN_KEY,
            &json!({ "seconds": 31 * 60 }),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    let (status, html) = rate(&server, &later, 4).await;
    assert_eq!(status, 400, "{html}");
}

#[tokio::test]
async fn the_status_ticket_works_on_a_second_server_sharing_postgres_and_key() {
    let Some(schema) = PgSchema::create("pages_console_ticket").await else {
        return;
    };
    let (dir_a, dir_b) = (common::data_dir(), common::data_dir());
    {
        let options = Options {
            database_url: Some(schema.url()),
            env: vec![("YUANLU_ACCOUNT_KEY".into(), ACCOUNT_KEY.into())],
            ..Options::default()
        };
        let a = Server::start_with(dir_a.path(), &options);
        let b = Server::start_with(dir_b.path(), &options);
        ended_refund(&a).await;
        let ticket = ticket_from(&a).await;
        let (status, html) = rate(&b, &ticket, 5).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("id=\"notice\""), "{html}");
    }
    schema.drop_schema().await;
}

/// Signs `username` in over HTTP; returns (cookies, session CSRF token).
async fn sign_in(server: &Server, username: &str, password: &str) -> (String, String) {
    let (anon, csrf) = anonymous(server).await;
    let r = http()
        .post(server.url("/login"))
        .header(COOKIE, &anon)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&username={username}&password={password}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = cookie(&r, "yl_session").expect("a session");
    let cookies = format!("yl_session={session}; {anon}");
    let page = http()
        .get(server.url("/console/merchants"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (cookies, hidden(&page, "csrf"))
}

fn add_user(server: &Server, username: &str, role: &str, password: &str) {
    let mut cmd = common::command();
    cmd.args(["users", "add", "--data-dir"])
        .arg(&server.data_dir);
    cmd.args(["--username", username, "--role", role]);
    cmd.env("YUANLU_USER_PASSWORD", password);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A multipart body as a browser sends it.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----yuanluTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const STATEMENT: &str = "#business_date=2026-01-05\n\
kind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account\n\
refund,UQ260105000001,,500,succeeded,2026-01-05T10:30:00+08:00,\n";

#[tokio::test]
async fn console_upload_merchants_and_keys_over_http_and_bad_input_is_never_a_500() {
    let dir = common::data_dir();
    let server = Server::start_with(
        dir.path(),
        &Options {
            clock: Some(START.into()),
            ..Options::default()
        },
    );
    add_user(&server, "ops.admin", "admin", "admin-pass-2026-x");
    add_user(&server, "zhao.reviewer", "reviewer", "reviewer-pass-2026");
    let (cookies, token) = sign_in(&server, "ops.admin", "admin-pass-2026-x").await;
    let upload = |content_type: String, body: Vec<u8>, cookies: String| {
        let server = &server;
        async move {
            let r = http()
                .post(server.url("/console/reconciliations?lang=en"))
                .header(COOKIE, cookies)
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            (status, location, r.text().await.unwrap())
        }
    };

    // The upload imports through the same use case as the API: one unexpected line.
    let (ct, body) = multipart(&[
        ("csrf", None, token.as_bytes()),
        ("channel", None, b"yuanlu"),
        ("file", Some("bill.csv"), STATEMENT.as_bytes()),
    ]);
    let (status, location, text) = upload(ct.clone(), body.clone(), cookies.clone()).await;
    assert_eq!(status, 303, "{text}");
    let location = location.unwrap();
    let recon_id = location.rsplit('/').next().unwrap().to_string();
    let api = server
        .get(&format!("/v1/reconciliations/{recon_id}"), ADMIN_KEY)
        .await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body["open_exceptions"], 1);
    // The same file again is the same reconciliation.
    let (status, again, _) = upload(ct, body, cookies.clone()).await;
    assert_eq!(status, 303);
    assert!(again.unwrap().ends_with("?again=1"));
    let page = http()
        .get(server.url(&location))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("UQ260105000001"), "{page}");
    let exception = page
        .split("/console/exceptions/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // An empty note is refused as the API refuses it; a note resolves it.
    let (status, html) = post_form(
        &server,
        &format!("/console/exceptions/{exception}/resolve"),
        &cookies,
        format!("csrf={token}&reconciliation={recon_id}&note="),
    )
    .await;
    assert_eq!(status, 400, "{html}");
    let (status, _) = post_form(
        &server,
        &format!("/console/exceptions/{exception}/resolve"),
        &cookies,
        format!("csrf={token}&reconciliation={recon_id}&note=a+test+line"),
    )
    .await;
    assert_eq!(status, 303);
    let api = server
        .get(&format!("/v1/reconciliations/{recon_id}"), ADMIN_KEY)
        .await;
    assert_eq!(api.body["open_exceptions"], 0);

    // Refused uploads: each a 4xx page, the parser's line named as the API names it.
    let bad_uploads: Vec<(String, Vec<u8>, &str)> = vec![
        {
            let (ct, b) = multipart(&[
                ("csrf", None, token.as_bytes()),
                ("channel", None, b"yuanlu"),
                ("file", Some("bad.csv"), b"kind,nope\nx\n"),
            ]);
            (ct, b, "line")
        },
        {
            let (ct, b) = multipart(&[
                ("csrf", None, token.as_bytes()),
                ("channel", None, b"bitcoin"),
                ("file", Some("bill.csv"), STATEMENT.as_bytes()),
            ]);
            (ct, b, "Statement format")
        },
        {
            let (ct, b) = multipart(&[
                ("csrf", None, token.as_bytes()),
                ("channel", None, b"yuanlu"),
                ("file", Some("empty.csv"), b""),
            ]);
            (ct, b, "Statement file")
        },
        {
            let (ct, b) = multipart(&[
                ("csrf", None, token.as_bytes()),
                ("channel", None, b"yuanlu"),
                ("file", Some("nul.csv"), b"kind\0x\n"),
            ]);
            (ct, b, "control character")
        },
        {
            let (ct, b) = multipart(&[
                ("csrf", None, b"forged"),
                ("channel", None, b"yuanlu"),
                ("file", Some("bill.csv"), STATEMENT.as_bytes()),
            ]);
            (ct, b, "")
        },
        (
            "multipart/form-data; boundary=abc".to_string(),
            b"not multipart at all".to_vec(),
            "Statement file",
        ),
        (
            "application/x-www-form-urlencoded".to_string(),
            b"csrf=x&channel=yuanlu".to_vec(),
            "Statement file",
        ),
    ];
    for (ct, body, says) in bad_uploads {
        let (status, _, html) = upload(ct.clone(), body, cookies.clone()).await;
        assert!((400..500).contains(&status), "{ct}: {status} {html}");
        assert!(html.contains("<html"), "an HTML page");
        assert!(html.contains(says), "{says:?} in {html}");
    }
    // Over the page's limit: 413 from the declared length, before the body is read (sent
    // by hand: a client still writing the body would see the early answer as a broken pipe).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = server.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /console/reconciliations?lang=en HTTP/1.1\r\nHost: {address}\r\n\
             Cookie: {cookies}\r\nContent-Type: multipart/form-data; boundary=x\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            33 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("yuanlu reconcile"), "{answer}");
    }
    // A reviewer may look but not upload.
    let (reviewer, reviewer_token) = sign_in(&server, "zhao.reviewer", "reviewer-pass-2026").await;
    let (ct, body) = multipart(&[
        ("csrf", None, reviewer_token.as_bytes()),
        ("channel", None, b"yuanlu"),
        ("file", Some("bill2.csv"), b"x"),
    ]);
    let (status, _, _) = upload(ct, body, reviewer).await;
    assert_eq!(status, 403);

    // Onboarding: the key is shown once; the merchant is listed with its threshold.
    let (status, html) = post_form(
        &server,
        "/console/merchants?lang=en",
        &cookies,
        format!(
            "csrf={token}&name=Noodle+Bar+%E9%9D%A2%E9%A6%86&large_amount=800&funding=carry_forward"
        ),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let key = html
        .split("id=\"new-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(key.starts_with("ylk"), "{key}");
    let me = server.get("/v1/payments", &key).await;
    assert_eq!(me.status, 200, "the shown key works: {}", me.text);
    let merchant = html
        .split("/console/merchants/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let api = server
        .get(&format!("/v1/merchants/{merchant}"), ADMIN_KEY)
        .await;
    assert_eq!(api.body["settings"]["review"]["large_amount_fen"], 80_000);
    assert_eq!(api.body["settings"]["funding"], "carry_forward");
    // A staff key, then its rotation: each shown once, and the old one stops now.
    let (status, html) = post_form(
        &server,
        &format!("/console/merchants/{merchant}/keys"),
        &cookies,
        format!("csrf={token}&role=staff"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let listed = server
        .get(&format!("/v1/merchants/{merchant}/keys"), ADMIN_KEY)
        .await;
    let staff_key_id = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "staff")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, html) = post_form(
        &server,
        &format!("/console/keys/{staff_key_id}/rotate"),
        &cookies,
        format!("csrf={token}&grace=0"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"new-key\""));
    let page = http()
        .get(server.url(&format!("/console/merchants/{merchant}?lang=en")))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Expired") || page.contains("Expiring"),
        "{page}"
    );
    assert!(!page.contains(&key), "a key is never shown again");

    // Settings change on the console: versioned and audited as the API's PATCH; an empty
    // field keeps its value.
    let (status, _) = post_form(
        &server,
        &format!("/console/merchants/{merchant}/settings"),
        &cookies,
        format!("csrf={token}&large_amount=1200.50&funding=&daily_amount=3000&daily_count=7"),
    )
    .await;
    assert_eq!(
        status, 303,
        "the form sends the admin back to the merchant's page"
    );
    let api = server
        .get(&format!("/v1/merchants/{merchant}"), ADMIN_KEY)
        .await;
    assert_eq!(api.body["settings"]["review"]["large_amount_fen"], 120_050);
    assert_eq!(api.body["settings"]["funding"], "carry_forward", "kept");
    assert_eq!(
        api.body["settings"]["daily_refund_limit"],
        json!({ "amount_fen": 300_000, "count": 7 })
    );
    let versions = server
        .get(
            &format!("/v1/merchants/{merchant}/settings/versions"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(versions.status, 200, "{}", versions.text);
    assert_eq!(
        versions.body.as_array().map(Vec::len),
        Some(2),
        "{}",
        versions.text
    );
    let page = http()
        .get(server.url(&format!("/console/merchants/{merchant}?lang=zh")))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("每日退款限额"), "{page}");

    // Bad input to the new forms: 4xx pages, never a 500.
    let key_path = |action: &str| format!("/console/keys/{staff_key_id}/{action}");
    let posts: Vec<(String, String)> = vec![
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name="),
        ),
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name=%00"),
        ),
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name=x&large_amount=-5"),
        ),
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name=x&large_amount=1e9"),
        ),
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name=x&funding=bogus"),
        ),
        (
            "/console/merchants".to_string(),
            "csrf=forged&name=x".to_string(),
        ),
        (
            "/console/merchants".to_string(),
            format!("csrf={token}&name={}", "x".repeat(300)),
        ),
        (
            format!("/console/merchants/{merchant}/keys"),
            format!("csrf={token}&role=admin"),
        ),
        (
            "/console/merchants/mch_nope/keys".to_string(),
            format!("csrf={token}&role=staff"),
        ),
        (
            "/console/merchants/..%2F/keys".to_string(),
            format!("csrf={token}&role=staff"),
        ),
        (
            "/console/keys/key_nope/rotate".to_string(),
            format!("csrf={token}"),
        ),
        (key_path("rotate"), format!("csrf={token}&grace=999999999")),
        (key_path("rotate"), format!("csrf={token}&grace=soon")),
        (key_path("explode"), format!("csrf={token}")),
        (
            "/console/keys/key_nope/revoke".to_string(),
            format!("csrf={token}"),
        ),
        (
            "/console/refunds/rf_nope/reroute".to_string(),
            format!("csrf={token}&to=bank_account&account_number=123&bank=ICBC"),
        ),
        (
            "/console/refunds/rf_nope/reroute".to_string(),
            format!("csrf={token}&to=moon"),
        ),
        (
            "/console/refunds/rf_nope/reroute".to_string(),
            format!("csrf={token}&to=bank_account&account_number=%00"),
        ),
        (
            "/console/refunds/rf_nope/reroute".to_string(),
            format!("csrf={token}&to=merchant&method=barter"),
        ),
        (
            format!("/console/merchants/{merchant}/settings"),
            format!("csrf={token}&large_amount=abc"),
        ),
        (
            format!("/console/merchants/{merchant}/settings"),
            format!("csrf={token}&daily_count=-3"),
        ),
        (
            format!("/console/merchants/{merchant}/settings"),
            format!("csrf={token}&daily_count=1e99"),
        ),
        (
            format!("/console/merchants/{merchant}/settings"),
            format!("csrf={token}&funding=bogus"),
        ),
        (
            format!("/console/merchants/{merchant}/settings"),
            "csrf=forged&daily_count=3".to_string(),
        ),
        (
            "/console/merchants/mch_nope/settings".to_string(),
            format!("csrf={token}&daily_count=3"),
        ),
        (
            "/console/staff".to_string(),
            format!("csrf={token}&username=x&role=root"),
        ),
        (
            "/console/staff".to_string(),
            format!(
                "csrf={token}&username=li&role=cashier&merchant=..%2F&password=long-enough-pass"
            ),
        ),
        (
            "/console/exceptions/rex_nope/resolve".to_string(),
            format!("csrf={token}&note=x"),
        ),
    ];
    for (path, body) in posts {
        let (status, html) = post_form(&server, &path, &cookies, body.clone()).await;
        assert!((400..500).contains(&status), "POST {path} {body}: {status}");
        assert!(html.contains("<html"), "POST {path}: an HTML page");
    }
    for path in [
        "/console/merchants/mch_nope",
        "/console/merchants/%00",
        "/console/reconciliations/recon_nope",
        "/console/reconciliations/..%2F..%2Fetc",
    ] {
        let r = http()
            .get(server.url(path))
            .header(COOKIE, &cookies)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "GET {path}: {status}");
    }
    let (anon, csrf) = anonymous(&server).await;
    for body in [
        format!("csrf={csrf}&number=R1&kind=card&last4=12"),
        format!("csrf={csrf}&number=R1&kind=fax&last4=1234"),
        format!("csrf={csrf}&number=R1&kind=card&last4=%00"),
    ] {
        let (status, html) = post_form(&server, "/status", &anon, body.clone()).await;
        assert!(
            (400..500).contains(&status),
            "POST /status {body}: {status}"
        );
        assert!(html.contains("<html"));
    }
}
