//! The POS host through the real binary: `serve --pos-listen 127.0.0.1:0`, a terminal
//! registered over HTTP (TMK shown once), and `yuanlu pos` running a terminal's day against
//! it; the receipts it prints and the payments the API then shows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::json;

use crate::common::{ADMIN_KEY, Options, Server};

#[tokio::test]
async fn a_terminal_day_through_serve_and_yuanlu_pos() {
    let dir = common::data_dir();
    let data_dir = dir.path().join("data");
    let server = Server::start_with(
        &data_dir,
        &Options {
            args: vec!["--pos-listen".into(), "127.0.0.1:0".into()],
            ..Options::default()
        },
    );
    let pos_host = server
        .startup_output
        .lines()
        .find_map(|l| l.strip_prefix("pos host listening on tcp://"))
        .expect("the pos host address is printed")
        .trim()
        .to_string();
    let (merchant_id, merchant_key) = server.merchant("POS shop").await;
    let body = json!({ "merchant_id": merchant_id, "terminal_id": "10000001", "merchant_no": "898100012340001" });
    let forbidden = server.post("/v1/terminals", &merchant_key, &body).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    let created = server.post("/v1/terminals", ADMIN_KEY, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let tmk = created.str("tmk");
    assert_eq!(tmk.len(), 32);
    let again = server.post("/v1/terminals", ADMIN_KEY, &body).await;
    assert_eq!(again.status, 409, "registered twice: {}", again.text);
    let listed = server.get("/v1/terminals", &merchant_key).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&tmk), "the TMK is shown once");

    let run = |lang: &str, trace_start: &str, steps: &[&str]| {
        let mut cmd = common::command();
        cmd.args(["pos", "--host", &pos_host, "--terminal-id", "10000001"])
            .args(["--merchant-no", "898100012340001", "--lang", lang])
            .args(["--trace-start", trace_start])
            .args(steps)
            .env("YUANLU_POS_TMK", &tmk);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let zh = run(
        "zh",
        "1",
        &["sale:1000", "sale:2500", "void:2", "refund:1:300", "settle"],
    );
    for word in [
        "商户名称",
        "终端号",
        "批次号",
        "凭证号",
        "参考号",
        "原凭证号",
        "原参考号",
        "金额",
        "交易类型",
        "消费撤销",
        "退货",
        "对账平",
    ] {
        assert!(zh.contains(word), "{word} missing from:\n{zh}");
    }
    assert!(!zh.contains("交易失败"), "{zh}");
    let en = run("en", "100", &["sale:700", "reverse:1"]);
    for word in [
        "MERCHANT NAME",
        "TERMINAL NO.",
        "VOUCHER NO.",
        "REVERSAL",
        "APPROVED",
    ] {
        assert!(en.contains(word), "{word} missing from:\n{en}");
    }

    // Pre-authorisation on batch 2: a voided pre-auth, a completion voided, a completion
    // kept; settled balanced and uploaded line by line.
    let zh = run(
        "zh",
        "200",
        &[
            "--batch",
            "2",
            "preauth:5000",
            "preauth:3000",
            "preauth-void:2",
            "complete:1:4800",
            "complete-void:1",
            "complete:1:4000",
            "settle",
            "upload",
        ],
    );
    for word in [
        "预授权",
        "预授权撤销",
        "预授权完成",
        "预授权完成撤销",
        "对账平",
        "批上送：3 笔与主机一致",
    ] {
        assert!(zh.contains(word), "{word} missing from:\n{zh}");
    }
    assert!(!zh.contains("交易失败"), "{zh}");
    let en = run(
        "en",
        "300",
        &["--batch", "3", "preauth:100", "preauth-void:1"],
    );
    for word in ["PRE-AUTH", "PRE-AUTH VOID", "AUTH NO.", "APPROVED"] {
        assert!(en.contains(word), "{word} missing from:\n{en}");
    }
    assert!(!en.contains("DECLINED"), "{en}");

    let payments = server.get("/v1/payments", &merchant_key).await;
    assert_eq!(payments.status, 200);
    let data = payments.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 5, "3 sales, 2 completions: {}", payments.text);
    for p in data {
        assert_eq!(p["terminal_id"], "10000001");
        assert_eq!(p["voucher"]["rrn"].as_str().unwrap().len(), 12);
    }
    let refunded: i64 = data
        .iter()
        .map(|p| p["amount_refunded"].as_i64().unwrap() + p["amount_in_flight"].as_i64().unwrap())
        .sum();
    assert_eq!(
        refunded,
        2500 + 300 + 700 + 4800,
        "void, partial refund, the reversed sale and the voided completion"
    );
}
