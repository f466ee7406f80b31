//! parse(write(x)) == x for statements each format can express, and for generated ones.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use yuanlu_domain::time::shanghai_day_bounds;
use yuanlu_reconcile::{
    DiscrepancySpec, LineKind, LineStatus, Statement, StatementChannel, StatementLine, Totals,
};

fn statuses(channel: StatementChannel, kind: LineKind) -> Vec<LineStatus> {
    use LineStatus::*;
    match (channel, kind) {
        (StatementChannel::Wechat, LineKind::Payment) => vec![Succeeded, Closed],
        (StatementChannel::Alipay, _) => vec![Succeeded],
        (StatementChannel::Card, _) => vec![Succeeded, Processing, Failed],
        _ => vec![Succeeded, Processing, Failed, Closed],
    }
}

/// A line `channel`'s format can express, at `seconds` into the business day.
fn line(channel: StatementChannel) -> impl Strategy<Value = (StatementLine, u32, u32)> {
    let kind = prop_oneof![Just(LineKind::Payment), Just(LineKind::Refund)];
    kind.prop_flat_map(move |kind| {
        let prefix = if kind == LineKind::Payment {
            "pay_"
        } else {
            "rf_"
        };
        let our_ref = "[0-9A-Z]{1,26}".prop_map(move |s| format!("{prefix}{s}"));
        let carries_payment = kind == LineKind::Refund
            && matches!(channel, StatementChannel::Wechat | StatementChannel::Alipay);
        let payment_ref = if carries_payment {
            prop::option::of("pay_[0-9A-Z]{1,26}").boxed()
        } else {
            Just(None).boxed()
        };
        (
            our_ref,
            prop::option::of("[0-9A-Za-z]{1,32}"),
            payment_ref,
            0i64..1_000_000_000_000,
            prop::sample::select(statuses(channel, kind)),
            prop::option::of("[0-9A-Za-z_*@.,\"中文]{1,20}"),
            0u32..86_400,
            0u32..1_000,
        )
            .prop_map(
                move |(
                    our_ref,
                    channel_txn_id,
                    payment_ref,
                    amount_fen,
                    status,
                    account,
                    secs,
                    ms,
                )| {
                    let line = StatementLine {
                        line_no: 0,
                        kind,
                        channel_txn_id,
                        our_ref,
                        payment_ref,
                        amount_fen,
                        status,
                        occurred_at: chrono::DateTime::UNIX_EPOCH,
                        account,
                    };
                    let ms = if channel == StatementChannel::Yuanlu {
                        ms
                    } else {
                        0
                    };
                    (line, secs, ms)
                },
            )
    })
}

fn statement(channel: StatementChannel) -> impl Strategy<Value = Statement> {
    let min = usize::from(channel == StatementChannel::Wechat);
    (0i64..1_400, prop::collection::vec(line(channel), min..20)).prop_map(move |(day, raw)| {
        let business_date = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(day);
        let (start, _) = shanghai_day_bounds(business_date);
        let first = yuanlu_reconcile::first_line(channel);
        let lines: Vec<StatementLine> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (mut line, secs, ms))| {
                line.line_no = first + i as u64;
                line.occurred_at = start
                    + Duration::seconds(i64::from(secs))
                    + Duration::milliseconds(i64::from(ms));
                line
            })
            .collect();
        let declared_totals =
            (channel != StatementChannel::Yuanlu).then(|| Totals::of(&lines).unwrap());
        Statement {
            channel,
            business_date,
            lines,
            declared_totals,
        }
    })
}

fn any_statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        statement(StatementChannel::Wechat),
        statement(StatementChannel::Alipay),
        statement(StatementChannel::Card),
        statement(StatementChannel::Yuanlu),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parse_of_write_is_identity(statement in any_statement()) {
        let bytes = yuanlu_reconcile::write(&statement);
        let parsed = yuanlu_reconcile::parse(statement.channel, &bytes, &mut |_| {});
        prop_assert_eq!(parsed, Ok(statement));
    }

    #[test]
    fn generated_files_parse_to_the_generated_statement(
        channel in prop::sample::select(StatementChannel::ALL.to_vec()),
        seed in any::<u64>(),
        n in 1usize..200,
    ) {
        let generated = yuanlu_reconcile::generate(n, seed, &DiscrepancySpec::each(channel, 2));
        let parsed = yuanlu_reconcile::parse(channel, &generated.bytes, &mut |_| {});
        prop_assert_eq!(parsed, Ok(generated.statement));
    }
}
