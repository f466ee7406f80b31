//! Bad input never gets a 500: every malformed, mistyped, oversized or hostile request is
//! answered with a 4xx `application/problem+json` carrying `type, title, status, detail,
//! code`, and the right status and code. One table of cases per endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use reqwest::Method;
use serde_json::{Value, json};

/// A full primary account number, as a cashier might paste it.
const PAN: &str = "6225880212340403";
const PAN_SPACED: &str = "6225 8802 1234 0403";

#[derive(Clone)]
enum Key {
    Admin,
    Merchant,
    Staff,
    None,
    /// A raw `Authorization` header value.
    Header(String),
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    /// Bytes with an optional content type.
    Raw(Option<&'static str>, Vec<u8>),
}

/// Expected status meaning "any 4xx".
const ANY_4XX: u16 = 0;

struct Case {
    name: String,
    method: Method,
    path: String,
    key: Key,
    body: Body,
    status: u16,
    /// The problem's code, where the contract fixes it.
    code: Option<&'static str>,
}

fn case(
    name: impl Into<String>,
    method: Method,
    path: impl Into<String>,
    key: Key,
    body: Body,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        key,
        body,
        status,
        code,
    }
}

/// The world the cases run against.
struct World {
    server: Server,
    merchant_id: String,
    key: String,
    staff_key: String,
    payment_id: String,
    /// A `queued` refund (nothing to review).
    queued_refund_id: String,
    /// A `pending_review` refund.
    pending_refund_id: String,
    /// The PostgreSQL schema the server runs in (dropped after the server is gone).
    _schema: Option<PgSchema>,
    _dir: tempfile::TempDir,
}

/// Where a test's server keeps its data: every test runs on both.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test once per backend: SQLite always, PostgreSQL (a fresh schema) when
/// `YUANLU_TEST_DATABASE_URL` is set.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// The world on `backend`; `None` (the test is skipped) for PostgreSQL when no database is
/// configured.
async fn world(backend: Backend) -> Option<World> {
    let dir = common::data_dir();
    let schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgSchema::create("api_bad_input").await?),
    };
    let options = Options {
        database_url: schema.as_ref().map(PgSchema::url),
        ..Default::default()
    };
    let server = Server::start_with(dir.path(), &options);
    let (merchant_id, key) = server.merchant("Bad Input Teahouse").await;
    let staff = server
        .post(
            &format!("/v1/merchants/{merchant_id}/keys"),
            &key,
            &json!({ "role": "staff" }),
        )
        .await;
    assert_eq!(staff.status, 201, "{}", staff.text);
    let staff_key = staff.str("api_key");
    let payment = server.payment(&key, "wechat", 1_000_000).await;
    let payment_id = payment["id"].as_str().unwrap().to_string();
    let queued = server.refund(&key, &payment_id, 100, "BAD-Q-1").await;
    assert_eq!(queued.status, 201, "{}", queued.text);
    assert_eq!(queued.str("status"), "queued");
    let member = server
        .payment_with(
            &key,
            json!({ "channel": "alipay", "amount": 20_000, "currency": "CNY", "member": true }),
        )
        .await;
    let pending = server
        .refund(&key, member["id"].as_str().unwrap(), 500, "BAD-P-1")
        .await;
    assert_eq!(pending.status, 201, "{}", pending.text);
    assert_eq!(pending.str("status"), "pending_review");
    Some(World {
        merchant_id,
        key,
        staff_key,
        payment_id,
        queued_refund_id: queued.str("id"),
        pending_refund_id: pending.str("id"),
        server,
        _schema: schema,
        _dir: dir,
    })
}

async fn send(world: &World, case: &Case) -> Resp {
    let mut req = world
        .server
        .http
        .request(case.method.clone(), world.server.url(&case.path));
    req = match &case.key {
        Key::Admin => req.bearer_auth(ADMIN_KEY),
        Key::Merchant => req.bearer_auth(&world.key),
        Key::Staff => req.bearer_auth(&world.staff_key),
        Key::None => req,
        Key::Header(value) => req.header(reqwest::header::AUTHORIZATION, value.as_str()),
    };
    req = match &case.body {
        Body::None => req,
        Body::Json(value) => req.json(value),
        Body::Raw(content_type, bytes) => {
            let req = match content_type {
                Some(ct) => req.header(reqwest::header::CONTENT_TYPE, *ct),
                None => req,
            };
            req.body(bytes.clone())
        }
    };
    world.server.send(req).await
}

/// Runs every case and reports all failures at once.
async fn run(world: &World, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        let r = send(world, case).await;
        let context = format!("{} {} [{}]", case.method, case.path, case.name);
        if r.status >= 500 {
            failures.push(format!(
                "{context}: {} (a 5xx for bad input): {}",
                r.status, r.text
            ));
            continue;
        }
        let status_ok = if case.status == ANY_4XX {
            (400..500).contains(&r.status)
        } else {
            r.status == case.status
        };
        if !status_ok {
            failures.push(format!(
                "{context}: expected {}, got {} {}",
                case.status, r.status, r.text
            ));
            continue;
        }
        if let Some(wrong) = r.problem_shape_error() {
            failures.push(format!("{context}: {wrong}"));
            continue;
        }
        if let Some(code) = case.code
            && r.code() != code
        {
            failures.push(format!("{context}: expected code {code}, got {}", r.text));
        }
    }
    // The server survived all of it and its audit chain is intact.
    let health = world.server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.text);
    let audit = world.server.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.text);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn oversized_json(field: &str) -> Vec<u8> {
    let filler = "x".repeat(70 * 1024);
    serde_json::to_vec(&json!({ field: filler })).unwrap()
}

fn deeply_nested() -> Vec<u8> {
    let depth = 5_000;
    let mut body = "[".repeat(depth);
    body.push_str(&"]".repeat(depth));
    body.into_bytes()
}

/// Cases every JSON-taking endpoint shares: body syntax, size, content type and auth.
fn common_body_cases(method: Method, path: &str, key: Key) -> Vec<Case> {
    let m = || method.clone();
    let p = || path.to_string();
    let json_ct = Some("application/json");
    vec![
        case(
            "malformed JSON",
            m(),
            p(),
            key.clone(),
            Body::Raw(json_ct, b"{\"name\": ".to_vec()),
            400,
            Some("validation_error"),
        ),
        case(
            "a JSON array",
            m(),
            p(),
            key.clone(),
            Body::Json(json!([1, 2, 3])),
            400,
            Some("validation_error"),
        ),
        case(
            "JSON null",
            m(),
            p(),
            key.clone(),
            Body::Raw(json_ct, b"null".to_vec()),
            400,
            Some("validation_error"),
        ),
        case(
            "a JSON string",
            m(),
            p(),
            key.clone(),
            Body::Json(json!("refund please")),
            400,
            Some("validation_error"),
        ),
        case(
            "invalid UTF-8",
            m(),
            p(),
            key.clone(),
            Body::Raw(json_ct, b"{\"note\": \"\xff\xfe\"}".to_vec()),
            400,
            Some("validation_error"),
        ),
        case(
            "nesting 5000 deep",
            m(),
            p(),
            key.clone(),
            Body::Raw(json_ct, deeply_nested()),
            400,
            Some("validation_error"),
        ),
        case(
            "a body over 64 KiB",
            m(),
            p(),
            key.clone(),
            Body::Raw(json_ct, oversized_json("note")),
            413,
            None,
        ),
        case(
            "text/plain",
            m(),
            p(),
            key.clone(),
            Body::Raw(Some("text/plain"), b"{\"note\":\"x\"}".to_vec()),
            415,
            None,
        ),
        case(
            "form encoded",
            m(),
            p(),
            key.clone(),
            Body::Raw(
                Some("application/x-www-form-urlencoded"),
                b"note=x".to_vec(),
            ),
            415,
            None,
        ),
        case(
            "no content type",
            m(),
            p(),
            key.clone(),
            Body::Raw(None, b"{\"note\":\"x\"}".to_vec()),
            415,
            None,
        ),
        case(
            "no bearer key",
            m(),
            p(),
            Key::None,
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
        case(
            "a wrong bearer key",
            m(),
            p(),
            Key::Header("Bearer ylk_not_a_real_key".into()),
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
        case(
            "an empty bearer key",
            m(),
            p(),
            Key::Header("Bearer ".into()),
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
        case(
            "basic auth",
            m(),
            p(),
            Key::Header(format!("Basic {ADMIN_KEY}")),
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
        case(
            "the key without a scheme",
            m(),
            p(),
            Key::Header(ADMIN_KEY.into()),
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
        case(
            "a 10 KB key",
            m(),
            p(),
            Key::Header(format!("Bearer {}", "k".repeat(10_000))),
            Body::Json(json!({})),
            401,
            Some("unauthorized"),
        ),
    ]
}

async fn post_merchants_answers_every_bad_body_with_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let path = "/v1/merchants";
    let post = |name: &str, body: Value, status: u16, code: Option<&'static str>| {
        case(
            name,
            Method::POST,
            path,
            Key::Admin,
            Body::Json(body),
            status,
            code,
        )
    };
    let mut cases = common_body_cases(Method::POST, path, Key::Admin);
    cases.extend([
        post("missing name", json!({}), 400, Some("validation_error")),
        post("name is a number", json!({ "name": 42 }), 400, Some("validation_error")),
        post("name is null", json!({ "name": null }), 400, Some("validation_error")),
        post("name is empty", json!({ "name": "   " }), 400, Some("validation_error")),
        post("name of 201 characters", json!({ "name": "茶".repeat(201) }), 400, Some("validation_error")),
        post("unknown field", json!({ "name": "x", "colour": "red" }), 400, Some("validation_error")),
        case("duplicate field", Method::POST, path, Key::Admin, Body::Raw(Some("application/json"), br#"{"name":"x","name":"y"}"#.to_vec()), 400, Some("validation_error")),
        post("settings as an array", json!({ "name": "x", "settings": [] }), 400, Some("validation_error")),
        post("settings is a string", json!({ "name": "x", "settings": "cheap" }), 400, Some("validation_error")),
        post("unknown channel in settings", json!({ "name": "x", "settings": { "channels": { "bitcoin": {} } } }), 400, Some("validation_error")),
        post("unknown settings field", json!({ "name": "x", "settings": { "channels": { "wechat": { "fee": 1 } } } }), 400, Some("validation_error")),
        post("negative fee rate", json!({ "name": "x", "settings": { "channels": { "wechat": { "fee_rate_ppm": -1 } } } }), 400, Some("validation_error")),
        post("fee rate above 10 %", json!({ "name": "x", "settings": { "channels": { "wechat": { "fee_rate_ppm": 100_001 } } } }), 400, Some("validation_error")),
        post("fee rate as float", json!({ "name": "x", "settings": { "channels": { "wechat": { "fee_rate_ppm": 0.5 } } } }), 400, Some("validation_error")),
        post("zero refund window", json!({ "name": "x", "settings": { "channels": { "alipay": { "refund_window_days": 0 } } } }), 400, Some("validation_error")),
        post("unknown fee refund policy", json!({ "name": "x", "settings": { "channels": { "alipay": { "fee_refund": "some" } } } }), 400, Some("validation_error")),
        post("ratio above 100 %", json!({ "name": "x", "settings": { "review": { "refund_ratio_percent": 101 } } }), 400, Some("validation_error")),
        post("zero large amount", json!({ "name": "x", "settings": { "review": { "large_amount_fen": 0 } } }), 400, Some("validation_error")),
        case("a merchant key", Method::POST, path, Key::Merchant, Body::Json(json!({ "name": "x" })), 403, Some("forbidden")),
        case("a staff key", Method::POST, path, Key::Staff, Body::Json(json!({ "name": "x" })), 403, Some("forbidden")),
    ]);
    // Keys of a merchant.
    let keys = format!("/v1/merchants/{}/keys", w.merchant_id);
    cases.extend([
        case(
            "unknown role",
            Method::POST,
            keys.clone(),
            Key::Admin,
            Body::Json(json!({ "role": "owner" })),
            400,
            Some("validation_error"),
        ),
        case(
            "role is a number",
            Method::POST,
            keys.clone(),
            Key::Admin,
            Body::Json(json!({ "role": 1 })),
            400,
            Some("validation_error"),
        ),
        case(
            "missing role",
            Method::POST,
            keys.clone(),
            Key::Admin,
            Body::Json(json!({})),
            400,
            Some("validation_error"),
        ),
        case(
            "staff issues keys",
            Method::POST,
            keys.clone(),
            Key::Staff,
            Body::Json(json!({ "role": "staff" })),
            403,
            Some("forbidden"),
        ),
        case(
            "unknown merchant",
            Method::POST,
            "/v1/merchants/mch_nope/keys",
            Key::Admin,
            Body::Json(json!({ "role": "staff" })),
            404,
            Some("not_found"),
        ),
        case(
            "unknown merchant",
            Method::GET,
            "/v1/merchants/mch_nope",
            Key::Admin,
            Body::None,
            404,
            Some("not_found"),
        ),
        case(
            "no key",
            Method::GET,
            format!("/v1/merchants/{}", w.merchant_id),
            Key::None,
            Body::None,
            401,
            Some("unauthorized"),
        ),
    ]);
    run(&w, cases).await;
}

async fn post_payments_answers_every_bad_body_with_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let path = "/v1/payments";
    let base = || json!({ "channel": "wechat", "amount": 1000, "currency": "CNY" });
    let with = |field: &str, value: Value| {
        let mut body = base();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let post = |name: &str, body: Value, status: u16, code: Option<&'static str>| {
        case(
            name,
            Method::POST,
            path,
            Key::Merchant,
            Body::Json(body),
            status,
            code,
        )
    };
    let mut cases = common_body_cases(Method::POST, path, Key::Merchant);
    cases.extend([
        post(
            "amount as a string",
            with("amount", json!("1000")),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as a float",
            with("amount", json!(10.5)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as 1000.0",
            with("amount", json!(1000.0)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "negative amount",
            with("amount", json!(-1000)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "zero amount",
            with("amount", json!(0)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount null",
            with("amount", Value::Null),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as an object",
            with("amount", json!({ "fen": 1 })),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount beyond u64",
            with(
                "amount",
                serde_json::from_str("99999999999999999999").unwrap(),
            ),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount above the maximum",
            with("amount", json!(10_000_000_001_i64)),
            400,
            Some("invalid_amount"),
        ),
        post("missing amount", without("amount"), 400, None),
        post(
            "missing channel",
            without("channel"),
            400,
            Some("validation_error"),
        ),
        post(
            "missing currency",
            without("currency"),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown channel",
            with("channel", json!("bitcoin")),
            400,
            Some("validation_error"),
        ),
        post(
            "channel as a number",
            with("channel", json!(3)),
            400,
            Some("validation_error"),
        ),
        post(
            "currency USD",
            with("currency", json!("USD")),
            400,
            Some("validation_error"),
        ),
        post(
            "currency lowercase cny",
            with("currency", json!("cny")),
            400,
            Some("validation_error"),
        ),
        post(
            "currency as a number",
            with("currency", json!(156)),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown field",
            with("tip", json!(100)),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown kind",
            with("kind", json!("refund")),
            400,
            Some("validation_error"),
        ),
        post(
            "member as a string",
            with("member", json!("yes")),
            400,
            Some("validation_error"),
        ),
        post(
            "terminal_id as a number",
            with("terminal_id", json!(7)),
            400,
            Some("validation_error"),
        ),
        post(
            "terminal_id of 65 characters",
            with("terminal_id", json!("T".repeat(65))),
            400,
            Some("validation_error"),
        ),
        post(
            "terminal_id with a control character",
            with("terminal_id", json!("T-1\u{7}")),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in terminal_id",
            with("terminal_id", json!(PAN)),
            400,
            Some("validation_error"),
        ),
        post(
            "card_last4 of five digits",
            with("payer", json!({ "card_last4": "12345" })),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number as card_last4",
            with("payer", json!({ "card_last4": PAN })),
            400,
            Some("validation_error"),
        ),
        post(
            "card_last4 as a number",
            with("payer", json!({ "card_last4": 403 })),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number as wallet account",
            with("payer", json!({ "wallet_account": PAN_SPACED })),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in payer.bank",
            with("payer", json!({ "bank": format!("CMB {PAN}") })),
            400,
            Some("validation_error"),
        ),
        post(
            "card and wallet both",
            with(
                "payer",
                json!({ "card_last4": "0403", "wallet_account": "13812345678" }),
            ),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown payer field",
            with("payer", json!({ "pan": PAN })),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in voucher.rrn",
            with("voucher", json!({ "rrn": PAN_SPACED })),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in voucher.trace_no",
            with("voucher", json!({ "trace_no": "6225-8802-1234-0403" })),
            400,
            Some("validation_error"),
        ),
        post(
            "voucher as a string",
            with("voucher", json!("000123")),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown shipping status",
            with(
                "order",
                json!({ "merchant_order_no": "O-1", "shipping_status": "lost" }),
            ),
            400,
            Some("validation_error"),
        ),
        post(
            "order without shipping status",
            with("order", json!({ "merchant_order_no": "O-1" })),
            400,
            Some("validation_error"),
        ),
        post(
            "empty order number",
            with(
                "order",
                json!({ "merchant_order_no": " ", "shipping_status": "shipped" }),
            ),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number as order number",
            with(
                "order",
                json!({ "merchant_order_no": PAN, "shipping_status": "shipped" }),
            ),
            400,
            Some("validation_error"),
        ),
        post(
            "short phone",
            with("phone", json!("12345")),
            400,
            Some("validation_error"),
        ),
        post(
            "phone as a number",
            with("phone", json!(13812345678_i64)),
            400,
            Some("validation_error"),
        ),
        post(
            "captured_at not a date",
            with("captured_at", json!("yesterday")),
            400,
            Some("validation_error"),
        ),
        post(
            "captured_at on the real clock",
            with("captured_at", json!("2026-01-01T00:00:00Z")),
            400,
            Some("validation_error"),
        ),
        post(
            "merchant_id of another merchant",
            with("merchant_id", json!("mch_someone_else")),
            400,
            Some("validation_error"),
        ),
        case(
            "admin without merchant_id",
            Method::POST,
            path,
            Key::Admin,
            Body::Json(base()),
            400,
            Some("validation_error"),
        ),
        case(
            "admin with an unknown merchant",
            Method::POST,
            path,
            Key::Admin,
            Body::Json(with("merchant_id", json!("mch_nope"))),
            404,
            Some("not_found"),
        ),
    ]);
    cases.extend([
        case(
            "unknown payment",
            Method::GET,
            "/v1/payments/pay_nope",
            Key::Merchant,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "unknown payment (admin)",
            Method::GET,
            "/v1/payments/pay_nope",
            Key::Admin,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "a refund id as payment id",
            Method::GET,
            format!("/v1/payments/{}", w.queued_refund_id),
            Key::Merchant,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "an injection as payment id",
            Method::GET,
            "/v1/payments/pay_x'%20OR%20'1'='1",
            Key::Merchant,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "a 10 KB payment id",
            Method::GET,
            format!("/v1/payments/{}", "p".repeat(10_000)),
            Key::Merchant,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "NUL in payment id",
            Method::GET,
            "/v1/payments/pay_%00",
            Key::Merchant,
            Body::None,
            404,
            Some("payment_not_found"),
        ),
        case(
            "no key",
            Method::GET,
            format!("/v1/payments/{}", w.payment_id),
            Key::None,
            Body::None,
            401,
            Some("unauthorized"),
        ),
    ]);
    run(&w, cases).await;
}

async fn post_refunds_answers_every_bad_body_with_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let path = "/v1/refunds";
    let payment_id = w.payment_id.clone();
    let base = move || {
        json!({
            "payment_id": payment_id,
            "amount": 100,
            "reason": "customer_cancel",
            "merchant_refund_no": "BAD-R-1",
        })
    };
    let with = |field: &str, value: Value| {
        let mut body = base();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let post = |name: &str, body: Value, status: u16, code: Option<&'static str>| {
        case(
            name,
            Method::POST,
            path,
            Key::Merchant,
            Body::Json(body),
            status,
            code,
        )
    };
    let mut cases = common_body_cases(Method::POST, path, Key::Merchant);
    cases.extend([
        post(
            "amount as a string",
            with("amount", json!("100")),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as a float",
            with("amount", json!(0.5)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as 100.0",
            with("amount", json!(100.0)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "negative amount",
            with("amount", json!(-100)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "zero amount",
            with("amount", json!(0)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount as a boolean",
            with("amount", json!(true)),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount beyond i64",
            with(
                "amount",
                serde_json::from_str("9223372036854775808").unwrap(),
            ),
            400,
            Some("invalid_amount"),
        ),
        post(
            "amount above the payment",
            with("amount", json!(999_999_999)),
            422,
            Some("amount_exceeds_refundable"),
        ),
        post(
            "missing payment_id",
            without("payment_id"),
            400,
            Some("validation_error"),
        ),
        post(
            "missing reason",
            without("reason"),
            400,
            Some("validation_error"),
        ),
        post(
            "missing merchant_refund_no",
            without("merchant_refund_no"),
            400,
            Some("validation_error"),
        ),
        post(
            "payment_id as a number",
            with("payment_id", json!(12)),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown reason",
            with("reason", json!("changed_my_mind")),
            400,
            Some("validation_error"),
        ),
        post(
            "reason as a number",
            with("reason", json!(1)),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown field",
            with("currency", json!("CNY")),
            400,
            Some("validation_error"),
        ),
        post(
            "empty merchant_refund_no",
            with("merchant_refund_no", json!("")),
            400,
            Some("validation_error"),
        ),
        post(
            "merchant_refund_no with a space",
            with("merchant_refund_no", json!("R 1")),
            400,
            Some("validation_error"),
        ),
        post(
            "merchant_refund_no of 65 characters",
            with("merchant_refund_no", json!("R".repeat(65))),
            400,
            Some("validation_error"),
        ),
        post(
            "merchant_refund_no in Chinese",
            with("merchant_refund_no", json!("退款一")),
            400,
            Some("validation_error"),
        ),
        post(
            "merchant_refund_no as a number",
            with("merchant_refund_no", json!(1)),
            400,
            Some("validation_error"),
        ),
        post(
            "reason other without note",
            with("reason", json!("other")),
            400,
            Some("validation_error"),
        ),
        post(
            "note as a number",
            with("note", json!(5)),
            400,
            Some("validation_error"),
        ),
        post(
            "note of 501 characters",
            with("note", json!("n".repeat(501))),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in note",
            with("note", json!(format!("card {PAN} was charged twice"))),
            400,
            Some("validation_error"),
        ),
        post(
            "full spaced card number in note",
            with("note", json!(format!("card {PAN_SPACED}"))),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown requester role",
            with("requested_by", json!({ "role": "robot" })),
            400,
            Some("validation_error"),
        ),
        post(
            "requested_by as a string",
            with("requested_by", json!("cashier Li")),
            400,
            Some("validation_error"),
        ),
        post(
            "full card number in requested_by.name",
            with("requested_by", json!({ "name": PAN })),
            400,
            Some("validation_error"),
        ),
        post(
            "unknown payment",
            with("payment_id", json!("pay_nope")),
            404,
            Some("payment_not_found"),
        ),
        post(
            "a refund id as payment",
            with("payment_id", json!(w.queued_refund_id.clone())),
            404,
            Some("payment_not_found"),
        ),
        case(
            "the admin key",
            Method::POST,
            path,
            Key::Admin,
            Body::Json(base()),
            403,
            Some("forbidden"),
        ),
    ]);
    run(&w, cases).await;
    // None of it left a refund behind.
    let payment = w
        .server
        .get(&format!("/v1/payments/{}", w.payment_id), &w.key)
        .await;
    // The queued refund's 100 fen: in flight, or refunded once the workers sent it.
    assert_eq!(
        payment.i64("amount_in_flight") + payment.i64("amount_refunded"),
        100,
        "{}",
        payment.text
    );
    assert_eq!(payment.body["refunds"].as_array().unwrap().len(), 1);
}

async fn refund_actions_answer_every_bad_body_with_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let mut cases = Vec::new();
    for action in ["approve", "reject", "cancel", "return"] {
        let path = format!("/v1/refunds/{}/{action}", w.pending_refund_id);
        let json_case = |name: &str, body: Value, status: u16, code: Option<&'static str>| {
            case(
                format!("{action}: {name}"),
                Method::POST,
                path.clone(),
                Key::Merchant,
                Body::Json(body),
                status,
                code,
            )
        };
        for mut c in common_body_cases(Method::POST, &path, Key::Merchant) {
            c.name = format!("{action}: {}", c.name);
            cases.push(c);
        }
        if action == "return" {
            cases.extend([
                json_case(
                    "missing tracking_no",
                    json!({}),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "tracking_no as a number",
                    json!({ "tracking_no": 5 }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "empty tracking_no",
                    json!({ "tracking_no": "  " }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "tracking_no of 65 characters",
                    json!({ "tracking_no": "S".repeat(65) }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "full card number as tracking_no",
                    json!({ "tracking_no": PAN }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "unknown field",
                    json!({ "tracking_no": "SF1", "carrier": "SF" }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "not awaiting return",
                    json!({ "tracking_no": "SF123" }),
                    409,
                    Some("invalid_transition"),
                ),
                case(
                    "return: the admin key",
                    Method::POST,
                    path.clone(),
                    Key::Admin,
                    Body::Json(json!({ "tracking_no": "SF123" })),
                    403,
                    Some("forbidden"),
                ),
                case(
                    "return: unknown refund",
                    Method::POST,
                    "/v1/refunds/rf_nope/return",
                    Key::Merchant,
                    Body::Json(json!({ "tracking_no": "SF123" })),
                    404,
                    Some("not_found"),
                ),
            ]);
        } else {
            cases.extend([
                json_case(
                    "note as a number",
                    json!({ "note": 1 }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "note as an array",
                    json!({ "note": ["ok"] }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "unknown field",
                    json!({ "note": "ok", "force": true }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "note of 501 characters",
                    json!({ "note": "n".repeat(501) }),
                    400,
                    Some("validation_error"),
                ),
                json_case(
                    "full card number in note",
                    json!({ "note": format!("card {PAN}") }),
                    400,
                    Some("validation_error"),
                ),
                case(
                    format!("{action}: unknown refund"),
                    Method::POST,
                    format!("/v1/refunds/rf_nope/{action}"),
                    Key::Merchant,
                    Body::Json(json!({ "note": "ok" })),
                    404,
                    Some("not_found"),
                ),
                case(
                    format!("{action}: unknown refund (admin)"),
                    Method::POST,
                    format!("/v1/refunds/rf_nope/{action}"),
                    Key::Admin,
                    Body::Json(json!({ "note": "ok" })),
                    404,
                    Some("not_found"),
                ),
            ]);
        }
    }
    let pending = |action: &str| format!("/v1/refunds/{}/{action}", w.pending_refund_id);
    let queued = |action: &str| format!("/v1/refunds/{}/{action}", w.queued_refund_id);
    cases.extend([
        case(
            "reject without a note",
            Method::POST,
            pending("reject"),
            Key::Merchant,
            Body::Json(json!({})),
            400,
            Some("validation_error"),
        ),
        case(
            "reject with an empty body",
            Method::POST,
            pending("reject"),
            Key::Merchant,
            Body::Raw(None, Vec::new()),
            400,
            Some("validation_error"),
        ),
        case(
            "reject with a blank note",
            Method::POST,
            pending("reject"),
            Key::Merchant,
            Body::Json(json!({ "note": "   " })),
            400,
            Some("validation_error"),
        ),
        case(
            "staff approves",
            Method::POST,
            pending("approve"),
            Key::Staff,
            Body::Json(json!({ "note": "ok" })),
            403,
            Some("forbidden"),
        ),
        case(
            "staff rejects",
            Method::POST,
            pending("reject"),
            Key::Staff,
            Body::Json(json!({ "note": "no" })),
            403,
            Some("forbidden"),
        ),
        case(
            "approve a queued refund",
            Method::POST,
            queued("approve"),
            Key::Admin,
            Body::Json(json!({ "note": "ok" })),
            409,
            Some("invalid_transition"),
        ),
        case(
            "reject a queued refund",
            Method::POST,
            queued("reject"),
            Key::Admin,
            Body::Json(json!({ "note": "no" })),
            409,
            Some("invalid_transition"),
        ),
        case(
            "GET on approve",
            Method::GET,
            pending("approve"),
            Key::Merchant,
            Body::None,
            405,
            None,
        ),
        case(
            "unknown action",
            Method::POST,
            pending("explode"),
            Key::Merchant,
            Body::Json(json!({})),
            404,
            Some("not_found"),
        ),
    ]);
    run(&w, cases).await;
    // Nothing moved.
    let r = w
        .server
        .get(&format!("/v1/refunds/{}", w.pending_refund_id), &w.key)
        .await;
    assert_eq!(r.str("status"), "pending_review", "{}", r.text);
    let r = w
        .server
        .get(&format!("/v1/refunds/{}", w.queued_refund_id), &w.key)
        .await;
    // Queued, or further along once workers dispatch it; never canceled by a bad request.
    assert!(
        ["queued", "processing", "succeeded"].contains(&r.str("status").as_str()),
        "{}",
        r.text
    );
}

async fn lists_refuse_bad_filters_and_page_sizes_with_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let get = |path: &str, status: u16, code: Option<&'static str>| {
        case(
            path,
            Method::GET,
            path,
            Key::Merchant,
            Body::None,
            status,
            code,
        )
    };
    let mut cases = Vec::new();
    for list in ["/v1/payments", "/v1/refunds"] {
        for query in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "limit=",
            "limit=99999999999999999999",
        ] {
            cases.push(get(
                &format!("{list}?{query}"),
                400,
                Some("validation_error"),
            ));
        }
        cases.push(case(
            format!("{list} without a key"),
            Method::GET,
            list,
            Key::None,
            Body::None,
            401,
            Some("unauthorized"),
        ));
        cases.push(case(
            format!("{list} with a wrong key"),
            Method::GET,
            list,
            Key::Header("Bearer nope-nope-nope".into()),
            Body::None,
            401,
            Some("unauthorized"),
        ));
        cases.push(case(
            format!("DELETE {list}"),
            Method::DELETE,
            list,
            Key::Merchant,
            Body::None,
            405,
            None,
        ));
    }
    for query in [
        "status=done",
        "status=QUEUED",
        "status=",
        "channel=bitcoin",
        "channel=WECHAT",
        "created_from=yesterday",
        "created_from=2026-01-01",
        "created_from=2026-13-01T00:00:00Z",
        "created_to=tomorrow",
        "overdue=maybe",
        "limit=1&limit=2",
    ] {
        cases.push(get(
            &format!("/v1/refunds?{query}"),
            400,
            Some("validation_error"),
        ));
    }
    cases.extend([
        get("/v1/refunds/rf_nope", 404, Some("not_found")),
        get(
            &format!("/v1/refunds/{}", w.payment_id),
            404,
            Some("not_found"),
        ),
        get(
            "/v1/refunds/rf_%27%3B%20DROP%20TABLE%20refunds%3B--",
            404,
            Some("not_found"),
        ),
        case(
            "the admin reads an unknown refund",
            Method::GET,
            "/v1/refunds/rf_nope",
            Key::Admin,
            Body::None,
            404,
            Some("not_found"),
        ),
        get("/v1/nope", 404, Some("not_found")),
        // `/` is the pages' entry (a redirect to /login); an unknown path is still a problem.
        get("/nope", 404, Some("not_found")),
        get("/v2/refunds", 404, Some("not_found")),
        case(
            "unknown route without a key",
            Method::GET,
            "/v1/nope",
            Key::None,
            Body::None,
            404,
            Some("not_found"),
        ),
        case(
            "PUT /v1/merchants",
            Method::PUT,
            "/v1/merchants",
            Key::Admin,
            Body::Json(json!({})),
            405,
            None,
        ),
        case(
            "DELETE a refund",
            Method::DELETE,
            format!("/v1/refunds/{}", w.queued_refund_id),
            Key::Merchant,
            Body::None,
            405,
            None,
        ),
        case(
            "PATCH a payment",
            Method::PATCH,
            format!("/v1/payments/{}", w.payment_id),
            Key::Merchant,
            Body::Json(json!({})),
            405,
            None,
        ),
        case(
            "POST /healthz",
            Method::POST,
            "/healthz",
            Key::None,
            Body::None,
            405,
            None,
        ),
    ]);
    run(&w, cases).await;
}

async fn a_path_id_that_is_not_utf8_gets_a_problem(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let cases = vec![
        case(
            "refund id %FF",
            Method::GET,
            "/v1/refunds/%FF",
            Key::Merchant,
            Body::None,
            ANY_4XX,
            None,
        ),
        case(
            "payment id %C0%AF",
            Method::GET,
            "/v1/payments/%C0%AF",
            Key::Merchant,
            Body::None,
            ANY_4XX,
            None,
        ),
        case(
            "approve id %FF",
            Method::POST,
            "/v1/refunds/%FF/approve",
            Key::Merchant,
            Body::Json(json!({})),
            ANY_4XX,
            None,
        ),
    ];
    run(&w, cases).await;
}

async fn a_full_card_number_in_the_merchant_name_is_refused(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let cases = vec![case(
        "card number in name",
        Method::POST,
        "/v1/merchants",
        Key::Admin,
        Body::Json(json!({ "name": format!("Shop {PAN}") })),
        400,
        Some("validation_error"),
    )];
    run(&w, cases).await;
}

/// Trailing data after the JSON value is malformed input, not something to ignore: the
/// request below would otherwise approve, cancel or create things.
async fn trailing_data_after_the_json_body_is_refused(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let json_ct = Some("application/json");
    let approve = format!("/v1/refunds/{}/approve", w.pending_refund_id);
    let cases = vec![
        case(
            "merchant with trailing garbage",
            Method::POST,
            "/v1/merchants",
            Key::Admin,
            Body::Raw(json_ct, br#"{"name":"x"} trailing"#.to_vec()),
            400,
            Some("validation_error"),
        ),
        case(
            "two JSON objects",
            Method::POST,
            "/v1/payments",
            Key::Merchant,
            Body::Raw(
                json_ct,
                br#"{"channel":"wechat","amount":100,"currency":"CNY"}{"amount":1}"#.to_vec(),
            ),
            400,
            Some("validation_error"),
        ),
        case(
            "approve with two bodies",
            Method::POST,
            approve,
            Key::Merchant,
            Body::Raw(json_ct, b"{} {}".to_vec()),
            400,
            Some("validation_error"),
        ),
    ];
    run(&w, cases).await;
}

/// A URL too long to read is refused with a 4xx before it reaches the router. hyper answers
/// `414 URI Too Long` itself, without a problem body (documented in docs/decisions.md).
async fn an_overlong_url_is_refused_with_414(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    // Raw bytes: HTTP clients refuse to build a URL this long.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = w.server.url("").trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /v1/refunds/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(status_line.starts_with("HTTP/1.1 414"), "{status_line}");
}

/// The WeChat trade bill of docs/statements.md, with `{nul}` where a NUL goes.
const WECHAT_BILL: &str = concat!(
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n",
    "`2026-03-01 09:30:15,`wx2421b1c4370ec43b,`1900000109,`0,`POS-0001,`4200002026030100000000000001,`pay_01JNQ0000000000000000001,`oUpF8uMuAJO{nul}_M2pxb1Q9zNjWeS6o,`MICROPAY,`SUCCESS,`CMB_DEBIT,`CNY,`123.45,`0.00,`0,`0,`0.00,`0.00,`,`,`咖啡豆,`,`0.47,`0.38%,`123.45,`0.00,`\n",
    "`2026-03-01 14:15:02,`wx2421b1c4370ec43b,`1900000109,`0,`POS-0001,`4200002026030100000000000001,`pay_01JNQ0000000000000000001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MICROPAY,`REFUND,`CMB_DEBIT,`CNY,`0.00,`0.00,`50300000012026030100000000001,`rf_01JNQ0000000000000000002,`23.45,`0.00,`ORIGINAL,`SUCCESS,`咖啡豆,`,`-0.09,`0.38%,`0.00,`23.45,`\n",
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n",
    "`2,`123.45,`23.45,`0.00,`0.38,`123.45,`23.45\n",
);

/// Control characters spelled in a path, a query or JSON: NUL (which PostgreSQL refuses in
/// text), another C0 control, DEL and a C1 control (NEL).
const PATH_CONTROLS: [&str; 4] = ["%00", "%01", "%7F", "%C2%85"];
const JSON_CONTROLS: [&str; 4] = ["\u{0}", "\u{1b}", "\u{7f}", "\u{85}"];

/// NUL and other control characters never reach the database: a path id holding one names
/// nothing (404 `not_found`), any other text holding one is a 400 `validation_error`; on
/// PostgreSQL this was a 500. Every path parameter, query parameter and JSON text field,
/// the public lookup and feedback included.
async fn control_characters_are_refused_at_the_edge(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (m, rf, pay) = (&w.merchant_id, &w.queued_refund_id, &w.payment_id);
    let pending = &w.pending_refund_id;
    let mut cases = Vec::new();
    for bad in PATH_CONTROLS {
        // Path ids: 404 whatever the key (the public ones need none).
        let ids: Vec<(Method, String, Key, Body)> = vec![
            (
                Method::GET,
                format!("/v1/refunds/rf_{bad}"),
                Key::Merchant,
                Body::None,
            ),
            (
                Method::GET,
                format!("/v1/refunds/{bad}"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::GET,
                format!("/v1/payments/pay_{bad}"),
                Key::Merchant,
                Body::None,
            ),
            (
                Method::GET,
                format!("/v1/merchants/mch_{bad}"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::POST,
                format!("/v1/merchants/mch_{bad}/keys"),
                Key::Admin,
                Body::Json(json!({ "role": "staff" })),
            ),
            (
                Method::GET,
                format!("/v1/merchants/mch_{bad}/webhook"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::PUT,
                format!("/v1/merchants/mch_{bad}/webhook"),
                Key::Admin,
                Body::Json(json!({ "url": "https://example.com/hook" })),
            ),
            (
                Method::POST,
                format!("/v1/refunds/rf_{bad}/approve"),
                Key::Merchant,
                Body::Json(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/refunds/rf_{bad}/reject"),
                Key::Merchant,
                Body::Json(json!({ "note": "no" })),
            ),
            (
                Method::POST,
                format!("/v1/refunds/rf_{bad}/cancel"),
                Key::Merchant,
                Body::Json(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/refunds/rf_{bad}/return"),
                Key::Merchant,
                Body::Json(json!({ "tracking_no": "SF1" })),
            ),
            (
                Method::POST,
                format!("/v1/refunds/rf_{bad}/reroute"),
                Key::Admin,
                Body::Json(json!({ "to": "merchant" })),
            ),
            (
                Method::GET,
                format!("/v1/cases/case_{bad}"),
                Key::Merchant,
                Body::None,
            ),
            (
                Method::POST,
                format!("/v1/cases/case_{bad}/resolve"),
                Key::Merchant,
                Body::Json(json!({ "resolution": "done" })),
            ),
            (
                Method::POST,
                format!("/v1/cases/case_{bad}/assign"),
                Key::Admin,
                Body::Json(json!({ "owner": "ops" })),
            ),
            (
                Method::GET,
                format!("/v1/reconciliations/recon_{bad}"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::GET,
                format!("/v1/reconciliations/recon_{bad}/exceptions"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::GET,
                format!("/v1/reconciliation-exceptions/rex_{bad}"),
                Key::Admin,
                Body::None,
            ),
            (
                Method::POST,
                format!("/v1/reconciliation-exceptions/rex_{bad}/resolve"),
                Key::Admin,
                Body::Json(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/channels/wechat{bad}/notify"),
                Key::None,
                Body::Json(json!({})),
            ),
            (
                Method::GET,
                format!("/v1/public/refunds/by-id/rf_{bad}?reference={pay}"),
                Key::None,
                Body::None,
            ),
            (
                Method::POST,
                format!("/v1/public/refunds/rf_{bad}/feedback"),
                Key::None,
                Body::Json(json!({ "rating": 5, "reference": pay })),
            ),
        ];
        for (method, path, key, body) in ids {
            // As for any unknown id of that kind.
            let code = if path.starts_with("/v1/payments/") {
                "payment_not_found"
            } else {
                "not_found"
            };
            cases.push(case(
                format!("id with {bad}"),
                method,
                path,
                key,
                body,
                404,
                Some(code),
            ));
        }
        // Texts in the path and the query: 400.
        let texts: Vec<(String, Key)> = vec![
            (
                format!("/v1/public/refunds/BAD-Q-1{bad}?phone_last4=0403"),
                Key::None,
            ),
            (
                format!("/v1/public/refunds/BAD-Q-1?phone_last4=04{bad}3"),
                Key::None,
            ),
            (
                format!("/v1/public/refunds/by-id/{rf}?reference={pay}{bad}"),
                Key::None,
            ),
            (format!("/v1/refunds?payment_id=pay_{bad}"), Key::Merchant),
            (
                format!("/v1/refunds?starting_after=rf_{bad}"),
                Key::Merchant,
            ),
            (format!("/v1/refunds?channel=wechat{bad}"), Key::Merchant),
            (
                format!("/v1/payments?starting_after=pay_{bad}"),
                Key::Merchant,
            ),
            (format!("/v1/cases?refund_id=rf_{bad}"), Key::Merchant),
            (
                format!("/v1/notifications/sms?refund_id=rf_{bad}"),
                Key::Merchant,
            ),
            (
                format!("/v1/notifications/webhooks?starting_after={bad}"),
                Key::Merchant,
            ),
            (
                format!("/v1/reports/refunds?from=2026-01-01{bad}"),
                Key::Merchant,
            ),
            (
                format!("/v1/reports/refunds?merchant_id=mch_{bad}"),
                Key::Admin,
            ),
            (
                format!("/v1/settlements?business_date=2026-01-01{bad}"),
                Key::Admin,
            ),
            (
                format!("/v1/reconciliations/recon_x/exceptions?status={bad}"),
                Key::Admin,
            ),
            (format!("/v1/refunds?{bad}=1"), Key::Merchant),
        ];
        for (path, key) in texts {
            cases.push(case(
                format!("text with {bad}"),
                Method::GET,
                path,
                key,
                Body::None,
                400,
                Some("validation_error"),
            ));
        }
    }
    for bad in JSON_CONTROLS {
        let text = |t: &str| format!("{t}{bad}x");
        let bodies: Vec<(Method, String, Key, Value)> = vec![
            (
                Method::POST,
                "/v1/merchants".into(),
                Key::Admin,
                json!({ "name": text("Tea") }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "wechat", "amount": 100, "currency": "CNY", "terminal_id": text("T1") }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "wechat", "amount": 100, "currency": "CNY", "phone": text("1381234") }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "debit_card", "amount": 100, "currency": "CNY", "payer": { "bank": text("ICBC"), "card_last4": "0403" } }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "wechat", "amount": 100, "currency": "CNY", "payer": { "wallet_account": text("wx") } }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "debit_card", "amount": 100, "currency": "CNY", "voucher": { "rrn": text("1234") } }),
            ),
            (
                Method::POST,
                "/v1/payments".into(),
                Key::Merchant,
                json!({ "channel": "wechat", "amount": 100, "currency": "CNY", "order": { "merchant_order_no": text("O-1"), "shipping_status": "not_shipped" } }),
            ),
            (
                Method::POST,
                "/v1/refunds".into(),
                Key::Merchant,
                json!({ "payment_id": pay, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": text("R-1") }),
            ),
            (
                Method::POST,
                "/v1/refunds".into(),
                Key::Merchant,
                json!({ "payment_id": format!("{pay}{bad}"), "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "R-2" }),
            ),
            (
                Method::POST,
                "/v1/refunds".into(),
                Key::Merchant,
                json!({ "payment_id": pay, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "R-3", "note": text("n") }),
            ),
            (
                Method::POST,
                "/v1/refunds".into(),
                Key::Merchant,
                json!({ "payment_id": pay, "amount": 1, "reason": "customer_cancel", "merchant_refund_no": "R-4", "requested_by": { "name": text("Li") } }),
            ),
            (
                Method::POST,
                format!("/v1/refunds/{pending}/approve"),
                Key::Merchant,
                json!({ "note": text("ok") }),
            ),
            (
                Method::POST,
                format!("/v1/refunds/{pending}/reject"),
                Key::Merchant,
                json!({ "note": text("no") }),
            ),
            (
                Method::POST,
                format!("/v1/refunds/{rf}/cancel"),
                Key::Merchant,
                json!({ "note": text("stop") }),
            ),
            (
                Method::POST,
                format!("/v1/refunds/{rf}/return"),
                Key::Merchant,
                json!({ "tracking_no": text("SF") }),
            ),
            (
                Method::POST,
                format!("/v1/refunds/{rf}/reroute"),
                Key::Admin,
                json!({ "to": "bank_account", "account": { "number": text("6222"), "bank": "ICBC" } }),
            ),
            (
                Method::PUT,
                format!("/v1/merchants/{m}/webhook"),
                Key::Merchant,
                json!({ "url": text("https://example.com/") }),
            ),
            (
                Method::POST,
                "/v1/cases".into(),
                Key::Merchant,
                json!({ "refund_id": rf, "kind": "not_arrived", "description": text("late") }),
            ),
            (
                Method::POST,
                "/v1/cases".into(),
                Key::Merchant,
                json!({ "refund_id": rf, "kind": "not_arrived", "description": "late", "contact": text("138") }),
            ),
            (
                Method::POST,
                "/v1/settlements/run".into(),
                Key::Admin,
                json!({ "business_date": text("2026-01-01") }),
            ),
            (
                Method::POST,
                format!("/v1/public/refunds/{rf}/feedback"),
                Key::None,
                json!({ "rating": 5, "reference": pay, "comment": text("great") }),
            ),
            (
                Method::POST,
                format!("/v1/public/refunds/{rf}/feedback"),
                Key::None,
                json!({ "rating": 5, "reference": text(pay) }),
            ),
            (
                Method::POST,
                "/v1/public/cases".into(),
                Key::None,
                json!({ "refund_id": rf, "reference": pay, "kind": "not_arrived", "description": text("late") }),
            ),
            (
                Method::POST,
                "/v1/public/cases".into(),
                Key::None,
                json!({ "merchant_refund_no": text("BAD-Q-1"), "phone_last4": "0403", "kind": "not_arrived", "description": "late" }),
            ),
            (
                Method::POST,
                "/v1/public/cases".into(),
                Key::None,
                json!({ "refund_id": rf, "reference": pay, "kind": "not_arrived", "description": "late", "contact": text("138") }),
            ),
        ];
        for (method, path, key, body) in bodies {
            cases.push(case(
                format!("JSON text with {}", bad.escape_unicode()),
                method,
                path,
                key,
                Body::Json(body),
                400,
                Some("validation_error"),
            ));
        }
    }
    // A statement file with a NUL: refused before any of it is stored.
    let bill = WECHAT_BILL.replace("{nul}", "\0").into_bytes();
    cases.push(case(
        "a statement with a NUL",
        Method::POST,
        "/v1/reconciliations?channel=wechat",
        Key::Admin,
        Body::Raw(Some("text/csv"), bill),
        400,
        Some("validation_error"),
    ));
    run(&w, cases).await;
    // Without the NUL the same file is imported (so the refusal above was for the NUL).
    let clean = WECHAT_BILL.replace("{nul}", "").into_bytes();
    let imported = w
        .server
        .send(
            w.server
                .http
                .post(w.server.url("/v1/reconciliations?channel=wechat"))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "text/csv")
                .body(clean),
        )
        .await;
    assert!([200, 201].contains(&imported.status), "{}", imported.text);
    // A line break is a control character too (as the engine's text rules say).
    let r = w
        .server
        .post("/v1/merchants", ADMIN_KEY, &json!({ "name": "Two\nLines" }))
        .await;
    r.assert_problem(400, "validation_error", "a line break in a name");
    assert_eq!(r.body["field"], json!("name"), "{}", r.text);
}

on_both_backends!(
    post_merchants_answers_every_bad_body_with_a_problem,
    post_payments_answers_every_bad_body_with_a_problem,
    post_refunds_answers_every_bad_body_with_a_problem,
    refund_actions_answer_every_bad_body_with_a_problem,
    lists_refuse_bad_filters_and_page_sizes_with_a_problem,
    a_path_id_that_is_not_utf8_gets_a_problem,
    a_full_card_number_in_the_merchant_name_is_refused,
    trailing_data_after_the_json_body_is_refused,
    an_overlong_url_is_refused_with_414,
    control_characters_are_refused_at_the_edge,
);
