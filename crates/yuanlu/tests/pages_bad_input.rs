//! No page answers 500 to bad input: malformed dates and amounts, impossible ids, control
//! characters, unknown actions, missing or forged CSRF tokens, the wrong role. Each gets a
//! 4xx page (or a redirect to sign in), in the reader's language.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, cookie};
use reqwest::header::{CONTENT_TYPE, COOKIE};

#[tokio::test]
async fn bad_input_to_pages_is_a_4xx_page_never_a_500() {
    let dir = common::data_dir();
    let server = Server::start(dir.path());
    let (merchant, _key) = server.merchant("Bad Input Shop").await;
    let mut cmd = common::command();
    cmd.args(["users", "add", "--data-dir"]).arg(dir.path());
    cmd.args([
        "--username",
        "li.cashier",
        "--role",
        "cashier",
        "--merchant",
        &merchant,
    ]);
    cmd.env("YUANLU_USER_PASSWORD", "cashier-pass-2026");
    assert!(cmd.output().unwrap().status.success());
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Sign in by hand: the anonymous CSRF cookie, then the session cookie.
    let login = http.get(server.url("/login")).send().await.unwrap();
    let csrf = cookie(&login, "yl_csrf").expect("a CSRF cookie");
    let anon = format!("yl_csrf={csrf}");
    let forged = http
        .post(server.url("/login"))
        .header(COOKIE, &anon)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("csrf=forged&username=li.cashier&password=cashier-pass-2026")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a forged CSRF token signs no one in");
    let wrong = http
        .post(server.url("/login"))
        .header(COOKIE, &anon)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&username=li.cashier&password=wrong-password"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(server.url("/login"))
        .header(COOKIE, &anon)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&username=li.cashier&password=cashier-pass-2026"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let session = cookie(&ok, "yl_session").expect("a session cookie");
    let signed_in = format!("yl_session={session}; {anon}");
    // The session's CSRF token is on its pages' forms.
    let page = http
        .get(server.url("/merchant"))
        .header(COOKIE, &signed_in)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    let gets = [
        "/merchant?date=2026-13-45",
        "/merchant?amount=-5",
        "/merchant?amount=1e9",
        "/merchant?last4=%00",
        "/merchant?date=%ff%fe",
        "/merchant/payments/%00",
        "/merchant/payments/pay_nope",
        "/merchant/payments/..%2F..%2Fetc",
        "/merchant/refunds?status=bogus",
        "/merchant/refunds?from=yesterday",
        "/merchant/refunds?channel=cash",
        "/merchant/refunds/rf_nope",
        "/merchant/settlements?date=2026-02-30",
        "/console",
        "/console/merchants",
        "/console/merchants/mch_nope",
        "/console/staff",
        "/console/reconciliations",
        "/console/reconciliations/recon_nope",
    ];
    for path in gets {
        let r = http
            .get(server.url(path))
            .header(COOKIE, &signed_in)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    // An unknown language is ignored, not an error.
    let r = http
        .get(server.url("/status?lang=xx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let posts = [
        (
            "/merchant/payments/pay_nope/preview",
            format!("csrf={token}&amount=abc&reason=customer_cancel"),
        ),
        (
            "/merchant/payments/pay_nope/refund",
            format!("csrf={token}&amount=1&reason=bogus"),
        ),
        (
            "/merchant/payments/pay_nope/refund",
            "csrf=forged&amount=1".to_string(),
        ),
        (
            "/merchant/refunds/rf_nope/approve",
            format!("csrf={token}&note=%00"),
        ),
        ("/merchant/refunds/rf_nope/explode", format!("csrf={token}")),
        (
            "/merchant/refunds/rf_nope/approve",
            format!("csrf={token}&note=ok"),
        ),
        ("/status", format!("csrf={csrf}&number=R1&last4=12")),
        ("/status", format!("csrf={csrf}&number=%00&last4=1234")),
        ("/status", format!("csrf={csrf}")),
        (
            "/status/feedback",
            format!("csrf={csrf}&ticket=nope&rating=9"),
        ),
        ("/status/case", format!("csrf={csrf}&ticket=nope")),
        (
            "/console/merchants",
            format!("csrf={token}&username=x&role=root"),
        ),
        ("/logout", "%%%".to_string()),
        // The console's forms refuse merchant staff (the console tests send them bad input
        // as an admin: tests/pages_console.rs).
        (
            "/console/staff",
            format!("csrf={token}&username=x&role=root"),
        ),
        (
            "/console/reconciliations",
            format!("csrf={token}&channel=yuanlu"),
        ),
        (
            "/console/merchants/mch_nope/keys",
            format!("csrf={token}&role=staff"),
        ),
        ("/console/keys/key_nope/rotate", format!("csrf={token}")),
        (
            "/console/refunds/rf_nope/reroute",
            format!("csrf={token}&to=bank_account&account_number=1&bank=x"),
        ),
        (
            "/status",
            format!("csrf={csrf}&number=R1&kind=card&last4=12"),
        ),
        (
            "/status",
            format!("csrf={csrf}&number=R1&kind=fax&last4=1234"),
        ),
    ];
    for (path, body) in posts {
        let cookies = if path.starts_with("/status") {
            anon.clone()
        } else {
            signed_in.clone()
        };
        let r = http
            .post(server.url(path))
            .header(COOKIE, cookies)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "POST {path} {body}: {status}");
        let text = r.text().await.unwrap();
        assert!(text.contains("<html"), "POST {path}: an HTML page");
    }
    // Signed out, a back-office page sends the visitor to sign in.
    let r = http
        .get(server.url("/merchant/refunds"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=/merchant/refunds")
    );
}
