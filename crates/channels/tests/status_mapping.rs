//! Each channel's statuses and codes, mapped onto ours: one table per channel. The expected
//! values are written as exhaustive `match`es, so a new variant fails to compile here until
//! someone decides what it means.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::http::StatusCode;
use yuanlu_channels::alipay::{
    self, AlipayCode, AlipayRefundStatus, AlipaySubCode, CodeVerdict, FundChange, RefundAnswer,
};
use yuanlu_channels::card::{self, CardStatus, ResponseCode};
use yuanlu_channels::wechat::{self, WechatErrorCode, WechatEventType, WechatStatus};
use yuanlu_channels::{
    AlipayConnector, CardConnector, ChannelOutcome, ConnectorConfig, ConnectorError,
    RefundConnector, RefundRequest, WechatConnector,
};
use yuanlu_domain::channel::Channel;

fn kind(result: &Result<ChannelOutcome, ConnectorError>) -> &'static str {
    match result {
        Ok(ChannelOutcome::Processing { .. }) => "processing",
        Ok(ChannelOutcome::Succeeded { .. }) => "succeeded",
        Ok(ChannelOutcome::Abnormal { .. }) => "abnormal",
        Ok(ChannelOutcome::Failed { .. }) => "failed",
        Err(ConnectorError::Transient(_)) => "transient",
        Err(ConnectorError::Unknown(_)) => "unknown",
        Err(ConnectorError::Final(_)) => "final",
    }
}

const TIME_RFC3339: &str = "2026-03-05T14:03:00+08:00";

#[test]
fn wechat_statuses() {
    fn expected(status: WechatStatus) -> &'static str {
        match status {
            WechatStatus::Success => "succeeded",
            WechatStatus::Processing => "processing",
            WechatStatus::Closed => "failed",
            WechatStatus::Abnormal => "abnormal",
        }
    }
    for status in WechatStatus::ALL {
        assert_eq!(WechatStatus::parse(status.as_str()), Some(status));
        let outcome = wechat::outcome_from_status(
            status,
            "5000001",
            Some("支付用户零钱"),
            Some(TIME_RFC3339),
        );
        assert_eq!(kind(&outcome), expected(status), "{status:?}");
    }
    // SUCCESS needs a readable success_time.
    let no_time = wechat::outcome_from_status(WechatStatus::Success, "5000001", None, None);
    assert_eq!(kind(&no_time), "unknown");
    let bad_time =
        wechat::outcome_from_status(WechatStatus::Success, "5000001", None, Some("yesterday"));
    assert_eq!(kind(&bad_time), "unknown");
}

#[test]
fn wechat_error_codes() {
    fn expected(code: WechatErrorCode) -> &'static str {
        match code {
            WechatErrorCode::SystemError
            | WechatErrorCode::FrequencyLimited
            | WechatErrorCode::BizErrNeedRetry => "transient",
            WechatErrorCode::UserAccountAbnormal => "abnormal",
            WechatErrorCode::InvalidRequest
            | WechatErrorCode::ParamError
            | WechatErrorCode::NotEnough
            | WechatErrorCode::SignError
            | WechatErrorCode::NoAuth
            | WechatErrorCode::MchNotExists
            | WechatErrorCode::ResourceNotExists => "final",
        }
    }
    for code in WechatErrorCode::ALL {
        assert_eq!(WechatErrorCode::parse(code.as_str()), Some(code));
        assert_eq!(
            kind(&wechat::outcome_from_error_code(code, "msg")),
            expected(code),
            "{code:?}"
        );
        let body = format!(r#"{{"code":"{}","message":"msg"}}"#, code.as_str());
        assert_eq!(
            kind(&wechat::outcome_from_error(400, body.as_bytes())),
            expected(code)
        );
    }
    for (status, body, expected) in [
        (401, r#"{"code":"SIGN_ERROR","message":"x"}"#, "final"),
        (500, r#"{"code":"NEW_CODE","message":"x"}"#, "unknown"),
        (502, "<html>bad gateway</html>", "unknown"),
        (503, "", "transient"),
        (429, "", "transient"),
    ] {
        assert_eq!(
            kind(&wechat::outcome_from_error(status, body.as_bytes())),
            expected,
            "{status} {body}"
        );
    }
}

#[test]
fn wechat_unknown_status_and_events() {
    let refund: wechat::wire::Refund = serde_json::from_value(serde_json::json!({
        "refund_id": "5000001", "out_refund_no": "rf_1", "status": "REFUNDING_SOMEHOW",
        "create_time": TIME_RFC3339,
        "amount": {"refund": 1, "total": 2, "payer_refund": 1, "currency": "CNY"}
    }))
    .unwrap();
    assert_eq!(kind(&wechat::outcome_from_refund(&refund)), "unknown");
    for event in WechatEventType::ALL {
        assert_eq!(WechatEventType::parse(event.as_str()), Some(event));
        assert_eq!(WechatEventType::for_status(event.status()), event);
    }
    assert_eq!(WechatEventType::parse("REFUND.WHATEVER"), None);
}

#[test]
fn alipay_codes() {
    fn expected(code: AlipayCode) -> &'static str {
        match code {
            AlipayCode::Success => "success",
            AlipayCode::ServiceUnavailable => "transient",
            AlipayCode::InsufficientAuthorization
            | AlipayCode::MissingParameter
            | AlipayCode::InvalidParameter
            | AlipayCode::InsufficientPermissions => "final",
            // Needs its sub-code: without one the answer is not understood.
            AlipayCode::BusinessFailed => "unknown",
        }
    }
    for code in AlipayCode::ALL {
        assert_eq!(AlipayCode::parse(code.as_str()), Some(code));
        let verdict = match alipay::code_verdict(code.as_str(), None, "msg") {
            Ok(CodeVerdict::Success) => "success",
            Ok(CodeVerdict::Outcome(outcome)) => kind(&Ok(outcome)),
            Err(error) => kind(&Err(error)),
        };
        assert_eq!(verdict, expected(code), "{code:?}");
    }
    assert!(matches!(
        alipay::code_verdict("99999", None, ""),
        Err(ConnectorError::Unknown(_))
    ));
    assert!(matches!(
        alipay::code_verdict("40004", Some("ACQ.SOMETHING_NEW"), ""),
        Err(ConnectorError::Unknown(_))
    ));
}

#[test]
fn alipay_sub_codes() {
    fn expected(sub: AlipaySubCode) -> &'static str {
        match sub {
            AlipaySubCode::SystemError => "transient",
            AlipaySubCode::BuyerAccountAbnormal | AlipaySubCode::BuyerError => "abnormal",
            AlipaySubCode::InvalidParameter
            | AlipaySubCode::TradeNotExist
            | AlipaySubCode::TradeNotAllowRefund
            | AlipaySubCode::TradeHasFinished
            | AlipaySubCode::TradeStatusError
            | AlipaySubCode::RefundAmtNotEqualTotal
            | AlipaySubCode::RefundFeeError
            | AlipaySubCode::SellerBalanceNotEnough
            | AlipaySubCode::DiscordantRepeatRequest
            | AlipaySubCode::ReasonTradeBeenFreezen => "final",
        }
    }
    for sub in AlipaySubCode::ALL {
        assert_eq!(AlipaySubCode::parse(sub.as_str()), Some(sub));
        let response = alipay::wire::RefundResponse {
            code: "40004".into(),
            msg: "Business Failed".into(),
            sub_code: Some(sub.as_str().into()),
            ..Default::default()
        };
        let result = match alipay::read_refund_response(&response) {
            Ok(RefundAnswer::Outcome(outcome)) => Ok(outcome),
            Ok(RefundAnswer::NeedsQuery { .. }) => panic!("a failure never needs the query"),
            Err(error) => Err(error),
        };
        assert_eq!(kind(&result), expected(sub), "{sub:?}");
    }
}

fn refund_success(fund_change: &str) -> alipay::wire::RefundResponse {
    alipay::wire::RefundResponse {
        code: "10000".into(),
        msg: "Success".into(),
        fund_change: Some(fund_change.into()),
        refund_fee: Some("12.34".into()),
        trade_no: Some("2026000001".into()),
        gmt_refund_pay: Some("2026-03-05 14:03:00".into()),
        ..Default::default()
    }
}

#[test]
fn alipay_fund_change() {
    assert_eq!(FundChange::parse("Y"), Some(FundChange::Yes));
    assert_eq!(FundChange::parse("N"), Some(FundChange::No));
    assert!(matches!(
        alipay::read_refund_response(&refund_success("Y")),
        Ok(RefundAnswer::Outcome(ChannelOutcome::Succeeded { .. }))
    ));
    assert_eq!(
        alipay::read_refund_response(&refund_success("N")),
        Ok(RefundAnswer::NeedsQuery {
            trade_no: "2026000001".into()
        })
    );
    assert!(matches!(
        alipay::read_refund_response(&refund_success("maybe")),
        Err(ConnectorError::Unknown(_))
    ));
    let malformed_fee = alipay::wire::RefundResponse {
        refund_fee: Some("12.345".into()),
        ..refund_success("Y")
    };
    assert!(matches!(
        alipay::read_refund_response(&malformed_fee),
        Err(ConnectorError::Unknown(_))
    ));
}

#[test]
fn alipay_refund_statuses_and_query() {
    fn expected(status: AlipayRefundStatus) -> &'static str {
        match status {
            AlipayRefundStatus::RefundSuccess => "succeeded",
            AlipayRefundStatus::RefundProcessing => "processing",
            AlipayRefundStatus::RefundAbnormal => "abnormal",
        }
    }
    for status in AlipayRefundStatus::ALL {
        assert_eq!(AlipayRefundStatus::parse(status.as_str()), Some(status));
        let outcome = alipay::outcome_from_status(
            status,
            Some("2026000001"),
            Some("2026-03-05 14:03:00"),
            None,
        );
        assert_eq!(kind(&outcome), expected(status));
    }
    let found = alipay::wire::QueryResponse {
        code: "10000".into(),
        msg: "Success".into(),
        trade_no: Some("2026000001".into()),
        refund_amount: Some("12.34".into()),
        refund_status: Some("REFUND_SUCCESS".into()),
        gmt_refund_pay: Some("2026-03-05 14:03:00".into()),
        ..Default::default()
    };
    assert_eq!(
        kind(&alipay::read_query_response(&found, 1_234).map(Option::unwrap)),
        "succeeded"
    );
    let nothing = alipay::wire::QueryResponse {
        code: "10000".into(),
        msg: "Success".into(),
        ..Default::default()
    };
    assert_eq!(alipay::read_query_response(&nothing, 1_234), Ok(None));
    for (field_change, expected) in [
        (("12.34", Some("REFUND_LATER")), "unknown"),
        (("12.3x", Some("REFUND_SUCCESS")), "unknown"),
        (("99.00", Some("REFUND_SUCCESS")), "unknown"),
        (("12.34", None), "succeeded"),
    ] {
        let ((amount, status), expected) = (field_change, expected);
        let response = alipay::wire::QueryResponse {
            refund_amount: Some(amount.into()),
            refund_status: status.map(str::to_string),
            ..found.clone()
        };
        let result = alipay::read_query_response(&response, 1_234).map(|o| o.unwrap());
        assert_eq!(kind(&result), expected, "{amount} {status:?}");
    }
}

#[test]
fn card_status_by_response_code() {
    fn expected(status: CardStatus, code: ResponseCode) -> &'static str {
        match (status, code) {
            (CardStatus::Approved, ResponseCode::Approved00) => "succeeded",
            (CardStatus::Approved, _) => "unknown",
            (CardStatus::Pending, _) => "processing",
            (
                CardStatus::Declined,
                ResponseCode::IssuerUnavailable91 | ResponseCode::SystemMalfunction96,
            ) => "transient",
            (
                CardStatus::Declined,
                ResponseCode::DoNotHonour05
                | ResponseCode::InvalidTransaction12
                | ResponseCode::InvalidAmount13
                | ResponseCode::InvalidCard14,
            ) => "final",
            (CardStatus::Declined, ResponseCode::Approved00) => "unknown",
            (CardStatus::CardClosed, _) => "abnormal",
        }
    }
    for status in CardStatus::ALL {
        assert_eq!(CardStatus::parse(status.as_str()), Some(status));
        for code in ResponseCode::ALL {
            assert_eq!(ResponseCode::parse(code.as_str()), Some(code));
            let record = card::wire::RefundRecord {
                refund_ref: "rf_1".into(),
                network_ref: Some("CN1".into()),
                status: status.as_str().into(),
                response_code: code.as_str().into(),
                message: code.message().into(),
                received_account: Some("**** 0403".into()),
                settled_at: Some("2026-03-05T06:03:00Z".into()),
            };
            assert_eq!(
                kind(&card::outcome_from_record(&record)),
                expected(status, code),
                "{status:?} {code:?}"
            );
        }
    }
}

#[test]
fn card_declines_say_what_to_do() {
    for code in [ResponseCode::DoNotHonour05, ResponseCode::InvalidCard14] {
        let record = card::wire::RefundRecord {
            refund_ref: "rf_1".into(),
            network_ref: None,
            status: "DECLINED".into(),
            response_code: code.as_str().into(),
            message: code.message().into(),
            received_account: None,
            settled_at: None,
        };
        let Err(ConnectorError::Final(reason)) = card::outcome_from_record(&record) else {
            panic!("{code:?} should be final");
        };
        assert!(
            reason.contains(code.as_str()) && reason.contains("refund"),
            "{reason}"
        );
    }
    let unknown = card::wire::RefundRecord {
        refund_ref: "rf_1".into(),
        network_ref: None,
        status: "ON_HOLD".into(),
        response_code: "00".into(),
        message: String::new(),
        received_account: None,
        settled_at: None,
    };
    assert_eq!(kind(&card::outcome_from_record(&unknown)), "unknown");
    let odd_code = card::wire::RefundRecord {
        status: "DECLINED".into(),
        response_code: "77".into(),
        ..unknown
    };
    assert_eq!(kind(&card::outcome_from_record(&odd_code)), "unknown");
}

/// A server that answers every request with the same body: what a channel might say
/// tomorrow. The connectors must report it as unknown, never panic.
async fn fixed_answer(body: serde_json::Value) -> String {
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { (StatusCode::OK, axum::Json(body)) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn request(channel: Channel) -> RefundRequest {
    RefundRequest {
        refund_id: "rf_future".into(),
        payment_id: "pay_future".into(),
        channel,
        amount_fen: 1_234,
        payment_amount_fen: 10_000,
        payer_account: None,
        reroute_account: None,
    }
}

#[tokio::test]
async fn unknown_answers_over_http_are_unknown_outcomes() {
    let wechat_url = fixed_answer(serde_json::json!({
        "refund_id": "5000001", "out_refund_no": "rf_future", "status": "NEW_STATUS",
        "create_time": TIME_RFC3339,
        "amount": {"refund": 1234, "total": 10000, "payer_refund": 1234, "currency": "CNY"}
    }))
    .await;
    let alipay_url = fixed_answer(serde_json::json!({
        "alipay_trade_refund_response": {"code": "10000", "msg": "Success", "fund_change": "P", "trade_no": "1"}
    }))
    .await;
    let card_url = fixed_answer(serde_json::json!({
        "refund_ref": "rf_future", "status": "APPROVED", "response_code": "A1", "message": "?"
    }))
    .await;
    let garbage_url = fixed_answer(serde_json::json!(["not", "a", "refund"])).await;
    let connectors: Vec<(Box<dyn RefundConnector>, Channel)> = vec![
        (
            Box::new(WechatConnector::new(ConnectorConfig::new(&wechat_url, "s")).unwrap()),
            Channel::Wechat,
        ),
        (
            Box::new(AlipayConnector::new(ConnectorConfig::new(&alipay_url, "s")).unwrap()),
            Channel::Alipay,
        ),
        (
            Box::new(CardConnector::new(ConnectorConfig::new(&card_url, "s")).unwrap()),
            Channel::DebitCard,
        ),
        (
            Box::new(CardConnector::new(ConnectorConfig::new(&garbage_url, "s")).unwrap()),
            Channel::DebitCard,
        ),
    ];
    for (connector, channel) in connectors {
        let result = connector.execute(&request(channel)).await;
        assert!(
            matches!(result, Err(ConnectorError::Unknown(_))),
            "{}: {result:?}",
            connector.channel_name()
        );
    }
}
