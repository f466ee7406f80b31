//! Issue 16, items 1, 2 and 9 through the real binary, on SQLite and PostgreSQL: two
//! `yuanlu serve` processes on one database, each with the settlement scheduler on (the
//! default `--settle-at 02:00`) and a simulated clock. Moving the clocks over days that no
//! one settled makes the schedulers settle them, each exactly once; then the statement
//! history pages without gaps or doubles, filters by merchant and date, keeps merchants
//! apart; reconciliations and the exception queue list and page; and the lists download
//! as CSV (BOM, Chinese) and XLSX (read back).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Options, PgSchema, Resp, Server};
use serde_json::{Value, json};

const START: &str = "simulated=2026-01-05T10:00:00+08:00";

async fn advance(servers: &[&Server], days: i64) {
    for server in servers {
        let moved = server
            .post(
                "/v1/admin/clock/advance",
                ADMIN_KEY,
                &json!({ "seconds": days * 86_400 }),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
}

/// Every item of a list, walked `limit` at a time with `starting_after`.
async fn walk(server: &Server, path: &str, key: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(after) = &after {
            url.push_str(&format!("&starting_after={after}"));
        }
        let page = server.get(&url, key).await;
        assert_eq!(page.status, 200, "{url}: {}", page.text);
        let data = page.body["data"].as_array().unwrap().clone();
        assert!(data.len() <= limit, "{url}: more than the limit");
        let has_more = page.body["has_more"].as_bool().unwrap();
        after = data.last().map(|i| i["id"].as_str().unwrap().to_string());
        items.extend(data);
        if !has_more {
            return items;
        }
        assert!(after.is_some(), "{url}: has_more with an empty page");
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Polls the statement list until it holds `want` statements (deadline 60 s).
async fn wait_statements(server: &Server, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = server
            .get("/v1/settlements?from=2026-01-01&limit=100", ADMIN_KEY)
            .await;
        assert_eq!(list.status, 200, "{}", list.text);
        let data = list.body["data"].as_array().unwrap().clone();
        if data.len() >= want {
            return data;
        }
        assert!(
            Instant::now() < deadline,
            "{want} statements not written in time: {:?}",
            data.iter()
                .map(|s| format!("{} {}", s["merchant_id"], s["business_date"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn raw(server: &Server, path: &str, key: &str) -> reqwest::Response {
    server
        .http
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn import(server: &Server, date: &str, txn: &str) -> Resp {
    let file = format!(
        "#business_date={date}\nkind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account\n\
         payment,{txn},,1234,succeeded,{date}T11:00:00+08:00,\n"
    );
    let r = server
        .send(
            server
                .http
                .post(server.url("/v1/reconciliations?channel=yuanlu"))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "text/csv")
                .body(file),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r
}

async fn run(database_url: Option<String>) {
    let dir = common::data_dir();
    let options = Options {
        database_url,
        clock: Some(START.to_string()),
        args: vec!["--dispatch-workers".into(), "0".into()],
        ..Options::default()
    };
    let one = Server::start_with(dir.path(), &options);
    let two = Server::start_with(dir.path(), &options);
    let (a, a_key) = one.merchant("一号面馆").await;
    let (b, b_key) = two.merchant("二号超市").await;

    // Mon 2026-01-05: sales of both; Tue: more, and a refund with Chinese text; Wed: A.
    let first = one.payment(&a_key, "wechat", 10_000).await;
    two.payment(&a_key, "alipay", 20_000).await;
    one.payment(&b_key, "wechat", 5_000).await;
    advance(&[&one, &two], 1).await;
    two.payment(&a_key, "wechat", 3_000).await;
    one.payment(&b_key, "alipay", 4_000).await;
    let refund = one
        .post(
            "/v1/refunds",
            &a_key,
            &json!({ "payment_id": first["id"], "amount": 2_000, "reason": "customer_cancel",
                     "merchant_refund_no": "R-0001", "note": "顾客取消订单，退回部分" }),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    advance(&[&one, &two], 1).await;
    one.payment(&a_key, "wechat", 6_000).await;
    // Two days at once: Monday to Wednesday (and an empty Thursday) are due on Friday.
    advance(&[&one, &two], 2).await;
    let statements = wait_statements(&one, 5).await;
    assert_eq!(
        statements.len(),
        5,
        "A: Monday to Wednesday, B: Monday and Tuesday"
    );

    // Exactly once and balanced, seen from both servers.
    for server in [&one, &two] {
        let check = server.get("/v1/ledger/check", ADMIN_KEY).await;
        assert_eq!(check.body["balanced"], json!(true), "{}", check.text);
    }
    let verify = one.get("/v1/audit/verify", ADMIN_KEY).await;
    assert_eq!(verify.body["ok"], json!(true), "{}", verify.text);
    let keys: BTreeSet<(String, String)> = statements
        .iter()
        .map(|s| {
            (
                s["merchant_id"].as_str().unwrap().to_string(),
                s["business_date"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 5, "one statement per merchant and date");

    // Newest business date first, and paging neither skips nor repeats.
    let dates: Vec<&str> = statements
        .iter()
        .map(|s| s["business_date"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(dates, sorted);
    for limit in [1, 2, 3] {
        let walked = walk(&two, "/v1/settlements?from=2026-01-01", ADMIN_KEY, limit).await;
        assert_eq!(ids(&walked), ids(&statements), "limit {limit}");
    }

    // Filters: merchant, date range, the old one-date form.
    let of_a = walk(
        &one,
        &format!("/v1/settlements?merchant_id={a}"),
        ADMIN_KEY,
        2,
    )
    .await;
    assert_eq!(of_a.len(), 3);
    assert!(of_a.iter().all(|s| s["merchant_id"] == json!(a)));
    let from_tue = walk(&one, "/v1/settlements?from=2026-01-06", ADMIN_KEY, 100).await;
    assert_eq!(from_tue.len(), 3, "A Tue, A Wed, B Tue");
    let monday = walk(&one, "/v1/settlements?to=2026-01-05", ADMIN_KEY, 100).await;
    assert_eq!(monday.len(), 2);
    let one_date = one
        .get("/v1/settlements?business_date=2026-01-06", ADMIN_KEY)
        .await;
    assert_eq!(
        one_date.body["data"].as_array().unwrap().len(),
        2,
        "{}",
        one_date.text
    );
    one.get("/v1/settlements?from=2026-01-07&to=2026-01-05", ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "from after to");
    one.get("/v1/settlements?from=yesterday", ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "a bad date");

    // A merchant sees its own history only.
    let own = walk(&one, "/v1/settlements", &a_key, 1).await;
    assert_eq!(ids(&own), ids(&of_a));
    let other = one
        .get(&format!("/v1/settlements?merchant_id={b}"), &a_key)
        .await;
    assert_eq!(other.body["data"], json!([]), "{}", other.text);
    let b_statement = statements
        .iter()
        .find(|s| s["merchant_id"] == json!(b))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    one.get(&format!("/v1/settlements/{b_statement}"), &a_key)
        .await
        .assert_problem(404, "not_found", "another merchant's statement");
    one.get(
        &format!("/v1/settlements?starting_after={b_statement}"),
        &a_key,
    )
    .await
    .assert_problem(400, "validation_error", "a cursor of another merchant");
    let got = two
        .get(&format!("/v1/settlements/{b_statement}"), &b_key)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.str("merchant_id"), b);
    assert!(
        got.body["explanation"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );

    // Reconciliations by channel and date, and one queue of exceptions.
    let mon = import(&one, "2026-01-05", "UQX1").await;
    let tue = import(&two, "2026-01-06", "UQX2").await;
    let recons = walk(&one, "/v1/reconciliations", ADMIN_KEY, 1).await;
    assert_eq!(ids(&recons), vec![tue.str("id"), mon.str("id")]);
    let by_date = walk(
        &one,
        "/v1/reconciliations?from=2026-01-06&channel=yuanlu",
        ADMIN_KEY,
        5,
    )
    .await;
    assert_eq!(ids(&by_date), vec![tue.str("id")]);
    let none = walk(&one, "/v1/reconciliations?channel=wechat", ADMIN_KEY, 5).await;
    assert!(none.is_empty());
    one.get("/v1/reconciliations?channel=paypal", ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "an unknown channel");
    one.get("/v1/reconciliations", &a_key).await.assert_problem(
        403,
        "forbidden",
        "a merchant lists reconciliations",
    );
    let opened = mon.i64("exceptions") + tue.i64("exceptions");
    assert!(opened >= 2, "each file has a line yuanlu never saw");
    let queue = walk(
        &two,
        "/v1/reconciliation-exceptions?status=open",
        ADMIN_KEY,
        1,
    )
    .await;
    assert_eq!(queue.len() as i64, opened);
    let unique: BTreeSet<String> = ids(&queue).into_iter().collect();
    assert_eq!(unique.len(), queue.len(), "no exception twice");
    let unexpected: Vec<&Value> = queue
        .iter()
        .filter(|e| e["channel_txn_id"] == json!("UQX1") || e["channel_txn_id"] == json!("UQX2"))
        .collect();
    assert_eq!(unexpected.len(), 2, "{queue:?}");
    for e in &unexpected {
        assert_eq!(e["channel"], json!("yuanlu"));
        assert_eq!(e["amount"], json!(1234));
        assert!(e["age_seconds"].as_i64().unwrap() >= 0);
        assert!(
            e["business_date"]
                .as_str()
                .unwrap()
                .starts_with("2026-01-0")
        );
    }
    let first_id = unexpected[0]["id"].as_str().unwrap();
    let resolved = one
        .post(
            &format!("/v1/reconciliation-exceptions/{first_id}/resolve"),
            ADMIN_KEY,
            &json!({ "note": "渠道补单" }),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    let still_open = walk(
        &one,
        "/v1/reconciliation-exceptions?status=open",
        ADMIN_KEY,
        100,
    )
    .await;
    assert_eq!(still_open.len() as i64, opened - 1);
    let done = walk(
        &one,
        "/v1/reconciliation-exceptions?status=resolved",
        ADMIN_KEY,
        100,
    )
    .await;
    assert_eq!(ids(&done), vec![first_id.to_string()]);

    // CSV: a byte order mark, Chinese headers and text, one line per item.
    let csv = raw(&one, "/v1/exports/refunds", &a_key).await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = csv.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with("退款编号,商户编号"), "{text}");
    assert!(
        text.contains(",R-0001,") && text.contains(",顾客取消订单，退回部分,"),
        "{text}"
    );
    assert!(text.contains(",20.00,"), "amounts in yuan: {text}");
    assert_eq!(text.lines().count(), 2, "header and one refund: {text}");
    let of_b = raw(&one, "/v1/exports/refunds", &b_key)
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&of_b).contains("R-0001"),
        "B sees A's refund"
    );

    let csv = raw(
        &one,
        &format!("/v1/exports/settlements?merchant_id={a}"),
        ADMIN_KEY,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert!(
        text.lines().next().unwrap().contains("入户金额(元)"),
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        4,
        "header and A's 3 statements: {text}"
    );
    let exceptions = raw(
        &one,
        "/v1/exports/reconciliation-exceptions?status=resolved",
        ADMIN_KEY,
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&exceptions).contains("渠道补单"));
    let recon_csv = raw(
        &one,
        "/v1/exports/reconciliations?channel=yuanlu",
        ADMIN_KEY,
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&recon_csv).lines().count(), 3);

    // A large export spans several pages of the walk: 150 more exceptions in one import.
    let mut big = String::from(
        "#business_date=2026-01-07\nkind,channel_txn_id,our_ref,amount_fen,status,occurred_at,account\n",
    );
    for n in 0..150 {
        big.push_str(&format!(
            "payment,BIG{n:04},,{},succeeded,2026-01-07T12:00:00+08:00,\n",
            100 + n
        ));
    }
    let imported = one
        .send(
            one.http
                .post(one.url("/v1/reconciliations?channel=yuanlu"))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "text/csv")
                .body(big),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    let open_now = walk(
        &one,
        "/v1/reconciliation-exceptions?status=open",
        ADMIN_KEY,
        100,
    )
    .await;
    assert_eq!(
        open_now.len() as i64,
        opened - 1 + imported.i64("exceptions")
    );
    let csv = raw(
        &two,
        "/v1/exports/reconciliation-exceptions?status=open",
        ADMIN_KEY,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    let exported: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(
        exported,
        ids(&open_now),
        "every open exception once, in queue order"
    );
    let xlsx = raw(
        &two,
        "/v1/exports/reconciliation-exceptions?status=open&format=xlsx",
        ADMIN_KEY,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.to_vec())).unwrap();
    use calamine::Reader;
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(sheet.rows().count(), open_now.len() + 1);

    // XLSX opens and holds the same rows.
    let xlsx = raw(&two, "/v1/exports/settlements?format=xlsx", ADMIN_KEY).await;
    assert_eq!(xlsx.status(), 200);
    let bytes = xlsx.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an XLSX is a zip");
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows.len(), 6, "header and 5 statements");
    assert_eq!(rows[0][0].to_string(), "结算单编号");
    assert_eq!(
        rows[1][0].to_string(),
        statements[0]["id"].as_str().unwrap()
    );
    one.get("/v1/exports/settlements?format=pdf", ADMIN_KEY)
        .await
        .assert_problem(400, "validation_error", "an unknown format");
    one.get("/v1/exports/reconciliations", &a_key)
        .await
        .assert_problem(403, "forbidden", "a merchant exports reconciliations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_settle_on_schedule_and_list_and_export_on_sqlite() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_settle_on_schedule_and_list_and_export_on_postgresql() {
    let Some(schema) =
        PgSchema::create("two_servers_settle_on_schedule_and_list_and_export_on_postgresql").await
    else {
        return;
    };
    run(Some(schema.url())).await;
    schema.drop_schema().await;
}
