//! `yuanlu pos`, a POS terminal simulator, and `serve --pos-listen`, the POS host's wiring.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use yuanlu_engine::Engine;
use yuanlu_iso8583::Message;
use yuanlu_poshost::client::{ClientError, Original, TerminalClient};
use yuanlu_words::{Arg, Lang, Words, yuan};

type CommandResult = Result<ExitCode, String>;

/// Starts the POS host on `address`; it stops when `shutdown` turns true.
pub async fn serve_host(
    address: SocketAddr,
    engine: &Engine,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address} (--pos-listen): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    println!("pos host listening on tcp://{bound}");
    Ok(tokio::spawn(yuanlu_poshost::serve(
        listener,
        yuanlu_poshost::Host::new(engine.clone()),
        yuanlu_poshost::HostConfig::default(),
        shutdown.clone(),
    )))
}

#[derive(Debug, Clone, Args)]
pub struct PosArgs {
    /// The POS host, `HOST:PORT` (what `serve --pos-listen` printed).
    #[arg(long, env = "YUANLU_POS_HOST")]
    pub host: String,
    /// Field 41, 8 characters, as registered with `POST /v1/terminals`.
    #[arg(long)]
    pub terminal_id: String,
    /// Field 42, 15 characters.
    #[arg(long)]
    pub merchant_no: String,
    /// The terminal master key (32 hex), from `POST /v1/terminals`. Never a flag: flags
    /// show in `ps`.
    #[arg(long = "tmk-env", hide = true, default_value = "YUANLU_POS_TMK")]
    pub tmk_var: String,
    /// The batch to sign on with.
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// The first trace number (STAN) of this session; a later session continues after the
    /// last one used, since the host answers a repeated trace with its first answer.
    #[arg(long, default_value_t = 1)]
    pub trace_start: u32,
    /// The card number; receipts show it masked.
    #[arg(long, default_value = "6222021234567890")]
    pub card: String,
    /// What the receipt shows as 商户名称.
    #[arg(long, default_value = "yuanlu test shop")]
    pub merchant_name: String,
    /// Receipt language: `zh` or `en`.
    #[arg(long, default_value = "zh")]
    pub lang: String,
    /// Steps, in order: `sale:FEN`, `void:N`, `refund:N:FEN`, `reverse:N` (N: the Nth sale
    /// of this session), `settle`.
    #[arg(required = true)]
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Sale(i64),
    Void(usize),
    Refund(usize, i64),
    Reverse(usize),
    Settle,
}

fn parse_step(text: &str) -> Result<Step, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("{text}: {s} is not a number"))
    };
    let idx = |s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{text}: {s} is not a sale number (1, 2, …)"))
    };
    match parts.as_slice() {
        ["sale", amount] => Ok(Step::Sale(num(amount)?)),
        ["void", n] => Ok(Step::Void(idx(n)?)),
        ["refund", n, amount] => Ok(Step::Refund(idx(n)?, num(amount)?)),
        ["reverse", n] => Ok(Step::Reverse(idx(n)?)),
        ["settle"] => Ok(Step::Settle),
        _ => Err(format!(
            "{text}: use sale:FEN, void:N, refund:N:FEN, reverse:N or settle"
        )),
    }
}

/// A sale of this session: what was sent, what came back.
struct SaleRecord {
    request: Message,
    answer: Message,
    amount: i64,
}

/// What the receipt shows beyond the answer.
struct Slip<'a> {
    kind: &'a str,
    amount: i64,
    original: Option<&'a Original>,
}

// Long on purpose: the `yuanlu pos` subcommands, one short arm each.
pub async fn run(args: PosArgs) -> CommandResult {
    let steps = args
        .steps
        .iter()
        .map(|s| parse_step(s))
        .collect::<Result<Vec<_>, _>>()?;
    let lang = Lang::parse(&args.lang).ok_or("--lang: zh or en")?;
    let tmk = std::env::var(&args.tmk_var)
        .map_err(|_| format!("set {} to the terminal's TMK (32 hex)", args.tmk_var))?;
    let fail = |e: ClientError| e.to_string();
    let mut t = TerminalClient::connect(
        &args.host,
        &args.terminal_id,
        &args.merchant_no,
        &tmk,
        args.batch,
    )
    .await
    .map_err(fail)?;
    for _ in 1..args.trace_start.max(1) {
        t.next_trace();
    }
    let answer = t.sign_on().await.map_err(fail)?;
    let printer = Printer { args: &args, lang };
    printer.print(
        &answer,
        &Slip {
            kind: "sign-on",
            amount: 0,
            original: None,
        },
    );
    if answer.get_str(39) != Some("00") {
        return Ok(ExitCode::FAILURE);
    }
    let mut sales: Vec<SaleRecord> = Vec::new();
    let mut totals = ((0i64, 0i64), (0i64, 0i64));
    let sale_at = |sales: &Vec<SaleRecord>, n: usize| -> Result<usize, String> {
        (n <= sales.len())
            .then_some(n - 1)
            .ok_or(format!("there is no sale {n} yet"))
    };
    for step in steps {
        let approved = |m: &Message| m.get_str(39) == Some("00");
        match step {
            Step::Sale(amount) => {
                let request = t.sale(&args.card, amount).map_err(fail)?;
                let answer = t.exchange(request.clone()).await.map_err(fail)?;
                printer.print(
                    &answer,
                    &Slip {
                        kind: "sale",
                        amount,
                        original: None,
                    },
                );
                if approved(&answer) {
                    totals.0 = (totals.0.0 + amount, totals.0.1 + 1);
                }
                sales.push(SaleRecord {
                    request,
                    answer,
                    amount,
                });
            }
            Step::Void(n) => {
                let i = sale_at(&sales, n)?;
                let original = Original::of(&sales[i].answer, &t.batch_no);
                let request = t
                    .void(&args.card, sales[i].amount, &original)
                    .map_err(fail)?;
                let answer = t.exchange(request).await.map_err(fail)?;
                printer.print(
                    &answer,
                    &Slip {
                        kind: "void",
                        amount: sales[i].amount,
                        original: Some(&original),
                    },
                );
                if approved(&answer) {
                    totals.0 = (totals.0.0 - sales[i].amount, totals.0.1 - 1);
                }
            }
            Step::Refund(n, amount) => {
                let i = sale_at(&sales, n)?;
                let original = Original::of(&sales[i].answer, &t.batch_no);
                let request = t.refund(&args.card, amount, &original).map_err(fail)?;
                let answer = t.exchange(request).await.map_err(fail)?;
                printer.print(
                    &answer,
                    &Slip {
                        kind: "refund",
                        amount,
                        original: Some(&original),
                    },
                );
                if approved(&answer) {
                    totals.1 = (totals.1.0 + amount, totals.1.1 + 1);
                }
            }
            Step::Reverse(n) => {
                let i = sale_at(&sales, n)?;
                let request = t.reversal(&sales[i].request).map_err(fail)?;
                let answer = t.exchange(request).await.map_err(fail)?;
                let original = Original::of(&sales[i].answer, &t.batch_no);
                printer.print(
                    &answer,
                    &Slip {
                        kind: "reversal",
                        amount: sales[i].amount,
                        original: Some(&original),
                    },
                );
                if approved(&answer) && approved(&sales[i].answer) {
                    totals.0 = (totals.0.0 - sales[i].amount, totals.0.1 - 1);
                }
            }
            Step::Settle => {
                let request = t.settlement(totals.0, totals.1).map_err(fail)?;
                let answer = t.exchange(request).await.map_err(fail)?;
                printer.print(
                    &answer,
                    &Slip {
                        kind: "settlement",
                        amount: totals.0.0,
                        original: None,
                    },
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct Printer<'a> {
    args: &'a PosArgs,
    lang: Lang,
}

impl Printer<'_> {
    fn word(&self, id: &str) -> String {
        Words::get().text(self.lang, id, &[])
    }

    fn line(&self, id: &str, value: &str) {
        println!("{:<12} {value}", self.word(id));
    }

    fn print(&self, answer: &Message, slip: &Slip<'_>) {
        let text = |f: u8| answer.get_str(f).unwrap_or_default().to_string();
        println!(
            "---------------- {} ----------------",
            self.word("receipt-title")
        );
        self.line("receipt-merchant-name", &self.args.merchant_name);
        self.line("receipt-terminal-id", &self.args.terminal_id);
        self.line(
            "receipt-type",
            &self.word(&format!("receipt-type-{}", slip.kind)),
        );
        if slip.kind != "sign-on" {
            let pan = &self.args.card;
            let masked = if pan.len() >= 10 && pan.is_ascii() {
                format!("{}******{}", &pan[..6], &pan[pan.len() - 4..])
            } else {
                "****".to_string()
            };
            self.line("receipt-card", &masked);
        }
        let field60 = text(60);
        self.line("receipt-batch-no", field60.get(2..8).unwrap_or_default());
        self.line("receipt-trace-no", &text(11));
        if answer.get(37).is_some() {
            self.line("receipt-rrn", &text(37));
        }
        if answer.get(38).is_some() {
            self.line("receipt-auth-code", &text(38));
        }
        if let Some(original) = slip.original {
            self.line("receipt-original-trace-no", &original.trace_no);
            self.line("receipt-original-rrn", &original.rrn);
        }
        if slip.kind != "sign-on" {
            self.line("receipt-amount", &format!("RMB {}", yuan(slip.amount)));
        }
        self.line("receipt-datetime", &format!("{} {}", text(13), text(12)));
        let code = text(39);
        let response = if code == "00" {
            self.word("receipt-approved")
        } else {
            Words::get().text(self.lang, "receipt-declined", &[("code", Arg::Str(&code))])
        };
        self.line("receipt-response", &response);
        if slip.kind == "settlement" {
            let balanced = text(48).as_bytes().get(30) == Some(&b'1');
            let id = if balanced {
                "receipt-settlement-balanced"
            } else {
                "receipt-settlement-unbalanced"
            };
            println!("{}", self.word(id));
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_step("sale:1000"), Ok(Step::Sale(1000)));
        assert_eq!(parse_step("refund:2:300"), Ok(Step::Refund(2, 300)));
        assert_eq!(parse_step("settle"), Ok(Step::Settle));
        assert!(parse_step("void:0").is_err());
        assert!(parse_step("dance").is_err());
    }
}

#[cfg(test)]
mod receipt_words {
    use yuanlu_words::{Lang, Words};

    #[test]
    fn receipt_words_exist_in_both_languages() {
        assert_eq!(
            Words::get().text(Lang::Zh, "receipt-terminal-id", &[]),
            "终端号"
        );
        assert_eq!(
            Words::get().text(Lang::En, "receipt-terminal-id", &[]),
            "TERMINAL NO."
        );
    }
}
