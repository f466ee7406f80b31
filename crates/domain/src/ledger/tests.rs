use super::*;

#[test]
fn account_ids_round_trip() {
    let mut accounts = vec![
        Account::MerchantUnsettled("mch_1".into()),
        Account::MerchantCarried("mch:with:colons".into()),
        Account::FeeIncome,
        Account::MerchantPayouts,
    ];
    for c in Channel::ALL {
        accounts.push(Account::ChannelClearing(c));
        accounts.push(Account::RefundsInFlight(c));
    }
    for a in accounts {
        assert_eq!(Account::parse(&a.id()), Some(a.clone()), "{a}");
    }
    for bad in [
        "",
        "merchant_unsettled:",
        "channel_clearing:paypal",
        "fee_income:x",
        "cash",
    ] {
        assert_eq!(Account::parse(bad), None, "{bad}");
    }
}

#[test]
fn reversed_posting_still_balances() {
    let p = payment_captured("m", Channel::Wechat, 10_000, 38);
    assert!(p.is_ok_and(|p| p.reversed().check().is_ok()));
}
