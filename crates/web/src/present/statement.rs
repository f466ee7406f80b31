//! A settlement statement explained in the reader's language: a short summary (the payout
//! date, the activity by kind, the equation from sales to the amount credited, why the
//! amount credited differs from the sales, any debt carried) and one sentence per line.

use yuanlu_domain::settlement::{LineKind, Statement, StatementLine};
use yuanlu_words::{Arg, Lang};

use super::refund::channel_name;
use super::{cny, say};

/// `1234.56` for either sign.
fn abs_cny(fen: i64) -> String {
    let text = cny(fen);
    text.strip_prefix('-').map(str::to_owned).unwrap_or(text)
}

/// `+994.00` or `−994.00` (with a minus sign, U+2212).
fn signed(fen: i64) -> String {
    let sign = if fen < 0 { '−' } else { '+' };
    format!("{sign}{}", abs_cny(fen))
}

/// One line of the statement in one sentence. A line settled before its payment and time
/// were recorded is said in English as it was settled.
pub fn line(lang: Lang, l: &StatementLine) -> String {
    let channel = channel_name(lang, l.channel);
    let (amount, fee, net) = (cny(l.amount_fen), cny(l.fee_fen), signed(l.net_fen));
    let common = |payment: &str| -> Vec<(&'static str, String)> {
        vec![
            ("channel", channel.clone()),
            ("payment", payment.to_string()),
            ("refund", l.reference.clone()),
            ("amount", amount.clone()),
            ("fee", fee.clone()),
            ("net", net.clone()),
        ]
    };
    let (id, mut args) = match (l.kind, &l.payment_id, l.captured_at) {
        (LineKind::Payment, _, Some(at)) => {
            let time = at
                .with_timezone(&yuanlu_domain::time::shanghai())
                .format("%H:%M")
                .to_string();
            let mut args = common(&l.reference);
            args.push(("time", time));
            ("st-line-payment", args)
        }
        (LineKind::Void, Some(p), _) => ("st-line-void", common(p)),
        (LineKind::Refund, Some(p), _) if l.fee_fen == 0 => ("st-line-refund-no-fee", common(p)),
        (LineKind::Refund, Some(p), _) => ("st-line-refund", common(p)),
        (LineKind::RefundCreditedBack, Some(p), _) if l.fee_fen == 0 => {
            ("st-line-credited-back-no-fee", common(p))
        }
        (LineKind::RefundCreditedBack, Some(p), _) => ("st-line-credited-back", common(p)),
        (LineKind::Deduction | LineKind::DeductionReleased, Some(p), _) => {
            let Some(d) = &l.deduction else {
                return l.english();
            };
            let mut args = common(p);
            args.push(("line", d.line_no.to_string()));
            args.push(("kind", deduction_kind(lang, d.kind)));
            args.push(("reason", d.reason.clone()));
            let id = if l.kind == LineKind::Deduction {
                "st-line-deduction"
            } else {
                "st-line-deduction-released"
            };
            (id, args)
        }
        _ => return l.english(),
    };
    args.sort_by_key(|(name, _)| *name);
    let args: Vec<(&str, Arg<'_>)> = args.iter().map(|(n, v)| (*n, Arg::Str(v))).collect();
    say(lang, id, &args)
}

/// A deduction's kind in the reader's words (手续费, handling fee, …).
pub fn deduction_kind(lang: Lang, kind: yuanlu_domain::deduction::DeductionKind) -> String {
    say(lang, "deduction-kind", &[("kind", Arg::Str(kind.id()))])
}

fn count(lang: Lang, id: &str, n: i64) -> String {
    say(lang, id, &[("count", Arg::Num(n))])
}

// Long on purpose: the statement's summary is one sentence per line of the statement, in
// the statement's order; splitting it would scatter one paragraph over several functions.
/// The statement's summary, one sentence a line.
pub fn summary(lang: Lang, s: &Statement) -> Vec<String> {
    let a = abs_cny;
    let weekday = say(
        lang,
        "st-weekday",
        &[("day", Arg::Str(&s.payout_date.format("%A").to_string()))],
    );
    let mut out = vec![say(
        lang,
        "st-head",
        &[
            ("merchant", Arg::Str(&s.merchant_id)),
            ("date", Arg::Str(&s.business_date.to_string())),
            ("weekday", Arg::Str(&weekday)),
            (
                "payout",
                Arg::Str(&s.payout_date.format("%Y-%m-%d").to_string()),
            ),
        ],
    )];
    out.push(say(
        lang,
        "st-sales",
        &[
            (
                "payments",
                Arg::Str(&count(lang, "st-payments", s.sales_count)),
            ),
            ("amount", Arg::Str(&a(s.sales_fen))),
            ("fees", Arg::Str(&a(s.fees_fen))),
        ],
    ));
    if s.voids_count > 0 {
        out.push(say(
            lang,
            "st-voids",
            &[
                (
                    "payments",
                    Arg::Str(&count(lang, "st-payments", s.voids_count)),
                ),
                ("amount", Arg::Str(&a(s.voids_fen))),
                ("fees", Arg::Str(&a(s.void_fees_returned_fen))),
            ],
        ));
    }
    if s.refunds_count > 0 {
        out.push(say(
            lang,
            "st-refunds-debited",
            &[
                (
                    "refunds",
                    Arg::Str(&count(lang, "st-refunds", s.refunds_count)),
                ),
                ("amount", Arg::Str(&a(s.refunds_fen))),
                ("fees", Arg::Str(&a(s.refund_fees_returned_fen))),
            ],
        ));
    }
    if s.credited_back_count > 0 {
        out.push(say(
            lang,
            "st-credited-back",
            &[
                (
                    "refunds",
                    Arg::Str(&count(lang, "st-refunds", s.credited_back_count)),
                ),
                ("amount", Arg::Str(&a(s.credited_back_fen))),
                ("fees", Arg::Str(&a(s.credited_back_fees_fen))),
            ],
        ));
    }
    if s.deductions_count > 0 || s.deductions_released_fen > 0 {
        out.push(say(
            lang,
            "st-deductions",
            &[
                (
                    "deductions",
                    Arg::Str(&count(lang, "st-deductions-count", s.deductions_count)),
                ),
                ("amount", Arg::Str(&a(s.deductions_fen))),
                ("released", Arg::Str(&a(s.deductions_released_fen))),
            ],
        ));
    }
    if s.opening_carried_fen < 0 {
        out.push(say(
            lang,
            "st-opening-debt",
            &[("amount", Arg::Str(&a(s.opening_carried_fen)))],
        ));
    }

    let mut terms = format!("{} {}", say(lang, "st-term-sales", &[]), a(s.sales_fen));
    for (op, name, amount) in [
        ('−', "st-term-fees", s.fees_fen),
        ('−', "st-term-voids", s.voids_fen),
        ('+', "st-term-void-fees", s.void_fees_returned_fen),
        ('−', "st-term-refunds", s.refunds_fen),
        ('+', "st-term-refund-fees", s.refund_fees_returned_fen),
        ('+', "st-term-credited-back", s.credited_back_fen),
        ('−', "st-term-credited-back-fees", s.credited_back_fees_fen),
        ('+', "st-term-deductions", s.deductions_fen),
        (
            '−',
            "st-term-deductions-released",
            s.deductions_released_fen,
        ),
        ('−', "st-term-carried", s.opening_carried_fen),
    ] {
        if amount != 0 {
            terms.push_str(&format!(" {op} {} {}", say(lang, name, &[]), a(amount)));
        }
    }
    let outcome = if s.total_fen > 0 {
        say(
            lang,
            "st-outcome-credited",
            &[
                ("amount", Arg::Str(&a(s.payout_fen))),
                ("date", Arg::Str(&s.payout_date.to_string())),
            ],
        )
    } else if s.total_fen == 0 {
        say(lang, "st-outcome-zero", &[])
    } else {
        say(
            lang,
            "st-outcome-negative",
            &[("amount", Arg::Str(&a(s.total_fen)))],
        )
    };
    out.push(say(
        lang,
        "st-equation",
        &[("terms", Arg::Str(&terms)), ("outcome", Arg::Str(&outcome))],
    ));

    if s.payout_fen != s.sales_fen {
        let reasons: Vec<String> = [
            ("st-why-fees", -s.fees_fen),
            ("st-why-voids", s.void_fees_returned_fen - s.voids_fen),
            ("st-why-refunds", s.refund_fees_returned_fen - s.refunds_fen),
            (
                "st-why-credited-back",
                s.credited_back_fen - s.credited_back_fees_fen,
            ),
            (
                "st-why-deductions",
                s.deductions_fen - s.deductions_released_fen,
            ),
            ("st-why-opening", s.opening_carried_fen),
            ("st-why-closing", -s.closing_carried_fen),
        ]
        .into_iter()
        .filter(|(_, fen)| *fen != 0)
        .map(|(name, fen)| format!("{} {}", say(lang, name, &[]), signed(fen)))
        .collect();
        out.push(say(
            lang,
            "st-why",
            &[
                ("payout", Arg::Str(&a(s.payout_fen))),
                ("sales", Arg::Str(&a(s.sales_fen))),
                (
                    "reasons",
                    Arg::Str(&reasons.join(&say(lang, "st-separator", &[]))),
                ),
            ],
        ));
    }
    if s.closing_carried_fen < 0 {
        out.push(say(
            lang,
            "st-owes",
            &[("amount", Arg::Str(&a(s.closing_carried_fen)))],
        ));
    }
    out
}
