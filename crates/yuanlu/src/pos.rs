//! `yuanlu pos`, a POS terminal simulator, and `serve --pos-listen`, the POS host's wiring.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use yuanlu_engine::Engine;
use yuanlu_iso8583::Message;
use yuanlu_poshost::client::{ClientError, Original, TerminalClient};
use yuanlu_poshost::upload::UploadLine;
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
    /// of this session), `preauth:FEN`, `preauth-void:N`, `complete:N:FEN`,
    /// `complete-void:N` (N: the Nth pre-authorisation), `settle`, `upload`.
    #[arg(required = true)]
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Sale(i64),
    Void(usize),
    Refund(usize, i64),
    Reverse(usize),
    PreAuth(i64),
    PreAuthVoid(usize),
    Complete(usize, i64),
    CompleteVoid(usize),
    Settle,
    Upload,
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
            .ok_or_else(|| format!("{text}: {s} is not a sale or pre-auth number (1, 2, …)"))
    };
    match parts.as_slice() {
        ["sale", amount] => Ok(Step::Sale(num(amount)?)),
        ["void", n] => Ok(Step::Void(idx(n)?)),
        ["refund", n, amount] => Ok(Step::Refund(idx(n)?, num(amount)?)),
        ["reverse", n] => Ok(Step::Reverse(idx(n)?)),
        ["preauth", amount] => Ok(Step::PreAuth(num(amount)?)),
        ["preauth-void", n] => Ok(Step::PreAuthVoid(idx(n)?)),
        ["complete", n, amount] => Ok(Step::Complete(idx(n)?, num(amount)?)),
        ["complete-void", n] => Ok(Step::CompleteVoid(idx(n)?)),
        ["settle"] => Ok(Step::Settle),
        ["upload"] => Ok(Step::Upload),
        _ => Err(format!(
            "{text}: use sale:FEN, void:N, refund:N:FEN, reverse:N, preauth:FEN, \
             preauth-void:N, complete:N:FEN, complete-void:N, settle or upload"
        )),
    }
}

/// A sale or pre-authorisation of this session: what was sent, what came back.
struct Record {
    request: Message,
    answer: Message,
    amount: i64,
}

/// A pre-authorisation and its completion, if any.
struct PreAuthRecord {
    auth: Record,
    completion: Option<Record>,
}

/// What the receipt shows beyond the answer.
struct Slip<'a> {
    kind: &'a str,
    amount: i64,
    original: Option<&'a Original>,
}

/// The terminal's side of a session: its records and the batch totals it settles with.
struct Session<'a> {
    args: &'a PosArgs,
    t: TerminalClient,
    printer: Printer<'a>,
    sales: Vec<Record>,
    preauths: Vec<PreAuthRecord>,
    /// Debit (amount, count) and credit (amount, count), as settlement sends them.
    totals: ((i64, i64), (i64, i64)),
    /// The approved requests that move money, as batch upload sends them.
    lines: Vec<UploadLine>,
}

fn fail(e: ClientError) -> String {
    e.to_string()
}

fn approved(m: &Message) -> bool {
    m.get_str(39) == Some("00")
}

fn nth<T>(items: &[T], n: usize, what: &str) -> Result<usize, String> {
    (n <= items.len())
        .then_some(n - 1)
        .ok_or(format!("there is no {what} {n} yet"))
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
    if !approved(&answer) {
        return Ok(ExitCode::FAILURE);
    }
    let mut session = Session {
        args: &args,
        t,
        printer,
        sales: Vec::new(),
        preauths: Vec::new(),
        totals: ((0, 0), (0, 0)),
        lines: Vec::new(),
    };
    for step in steps {
        session.step(step).await?;
    }
    Ok(ExitCode::SUCCESS)
}

impl Session<'_> {
    async fn send(&mut self, request: Message, slip: &Slip<'_>) -> Result<Message, String> {
        let answer = self.t.exchange(request).await.map_err(fail)?;
        self.printer.print(&answer, slip);
        Ok(answer)
    }

    fn add_line(&mut self, answer: &Message, amount: i64) {
        if approved(answer) {
            self.lines.push(UploadLine {
                trace_no: answer.get_str(11).unwrap_or_default().to_string(),
                pan: self.args.card.clone(),
                amount_fen: amount,
            });
        }
    }

    fn debit(&mut self, answer: &Message, amount: i64, count: i64) {
        if approved(answer) {
            self.totals.0 = (self.totals.0.0 + amount, self.totals.0.1 + count);
        }
    }

    // Long on purpose: one arm per transaction kind of the scripted day, each a request,
    // its answer and the receipt line it prints, read side by side like the terminal's menu.
    async fn step(&mut self, step: Step) -> Result<(), String> {
        let card = self.args.card.clone();
        match step {
            Step::Sale(amount) => {
                let request = self.t.sale(&card, amount).map_err(fail)?;
                let slip = Slip {
                    kind: "sale",
                    amount,
                    original: None,
                };
                let answer = self.send(request.clone(), &slip).await?;
                self.debit(&answer, amount, 1);
                self.add_line(&answer, amount);
                self.sales.push(Record {
                    request,
                    answer,
                    amount,
                });
            }
            Step::Void(n) => {
                let i = nth(&self.sales, n, "sale")?;
                let amount = self.sales[i].amount;
                let original = Original::of(&self.sales[i].answer, &self.t.batch_no);
                let request = self.t.void(&card, amount, &original).map_err(fail)?;
                let slip = Slip {
                    kind: "void",
                    amount,
                    original: Some(&original),
                };
                let answer = self.send(request, &slip).await?;
                self.debit(&answer, -amount, -1);
                self.add_line(&answer, amount);
            }
            Step::Refund(n, amount) => {
                let i = nth(&self.sales, n, "sale")?;
                let original = Original::of(&self.sales[i].answer, &self.t.batch_no);
                let request = self.t.refund(&card, amount, &original).map_err(fail)?;
                let slip = Slip {
                    kind: "refund",
                    amount,
                    original: Some(&original),
                };
                let answer = self.send(request, &slip).await?;
                if approved(&answer) {
                    self.totals.1 = (self.totals.1.0 + amount, self.totals.1.1 + 1);
                }
                self.add_line(&answer, amount);
            }
            Step::Reverse(n) => {
                let i = nth(&self.sales, n, "sale")?;
                let amount = self.sales[i].amount;
                let request = self.t.reversal(&self.sales[i].request).map_err(fail)?;
                let original = Original::of(&self.sales[i].answer, &self.t.batch_no);
                let slip = Slip {
                    kind: "reversal",
                    amount,
                    original: Some(&original),
                };
                let answer = self.send(request, &slip).await?;
                if approved(&answer) && approved(&self.sales[i].answer) {
                    self.totals.0 = (self.totals.0.0 - amount, self.totals.0.1 - 1);
                    let trace = self.sales[i]
                        .answer
                        .get_str(11)
                        .unwrap_or_default()
                        .to_string();
                    self.lines.retain(|l| l.trace_no != trace);
                }
            }
            Step::PreAuth(amount) => {
                let request = self.t.preauth(&card, amount).map_err(fail)?;
                let slip = Slip {
                    kind: "preauth",
                    amount,
                    original: None,
                };
                let answer = self.send(request.clone(), &slip).await?;
                self.preauths.push(PreAuthRecord {
                    auth: Record {
                        request,
                        answer,
                        amount,
                    },
                    completion: None,
                });
            }
            Step::PreAuthVoid(n) => {
                let i = nth(&self.preauths, n, "pre-authorisation")?;
                let amount = self.preauths[i].auth.amount;
                let original = Original::of(&self.preauths[i].auth.answer, &self.t.batch_no);
                let request = self
                    .t
                    .preauth_void(&card, amount, &original)
                    .map_err(fail)?;
                let slip = Slip {
                    kind: "preauth-void",
                    amount,
                    original: Some(&original),
                };
                self.send(request, &slip).await?;
            }
            Step::Complete(n, amount) => {
                let i = nth(&self.preauths, n, "pre-authorisation")?;
                let original = Original::of(&self.preauths[i].auth.answer, &self.t.batch_no);
                let request = self.t.completion(&card, amount, &original).map_err(fail)?;
                let slip = Slip {
                    kind: "completion",
                    amount,
                    original: Some(&original),
                };
                let answer = self.send(request.clone(), &slip).await?;
                self.debit(&answer, amount, 1);
                self.add_line(&answer, amount);
                if approved(&answer) {
                    self.preauths[i].completion = Some(Record {
                        request,
                        answer,
                        amount,
                    });
                }
            }
            Step::CompleteVoid(n) => {
                let i = nth(&self.preauths, n, "pre-authorisation")?;
                let Some(done) = &self.preauths[i].completion else {
                    return Err(format!("pre-authorisation {n} has no completion yet"));
                };
                let amount = done.amount;
                let original = Original::of(&done.answer, &self.t.batch_no);
                let request = self
                    .t
                    .completion_void(&card, amount, &original)
                    .map_err(fail)?;
                let slip = Slip {
                    kind: "completion-void",
                    amount,
                    original: Some(&original),
                };
                let answer = self.send(request, &slip).await?;
                self.debit(&answer, -amount, -1);
                self.add_line(&answer, amount);
                if approved(&answer) {
                    self.preauths[i].completion = None;
                }
            }
            Step::Settle => {
                let request = self
                    .t
                    .settlement(self.totals.0, self.totals.1)
                    .map_err(fail)?;
                let slip = Slip {
                    kind: "settlement",
                    amount: self.totals.0.0,
                    original: None,
                };
                self.send(request, &slip).await?;
            }
            Step::Upload => {
                let lines = self.lines.clone();
                for chunk in lines.chunks(yuanlu_poshost::upload::LINES_MAX) {
                    let request = self.t.batch_upload(chunk).map_err(fail)?;
                    let amount = chunk.iter().map(|l| l.amount_fen).sum();
                    let slip = Slip {
                        kind: "batch-upload",
                        amount,
                        original: None,
                    };
                    self.send(request, &slip).await?;
                }
            }
        }
        Ok(())
    }
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
        if slip.kind == "batch-upload" {
            self.upload_results(&text(48));
        }
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

    /// Field 48 of a batch upload's answer: the count, then per line its trace and a
    /// result digit (0 agrees).
    fn upload_results(&self, field: &str) {
        let words = Words::get();
        let lines: Vec<(&str, &str)> = (0..field.len().saturating_sub(2) / 7)
            .filter_map(|i| {
                let line = field.get(2 + i * 7..2 + (i + 1) * 7)?;
                Some((line.get(..6)?, line.get(6..)?))
            })
            .collect();
        let agree = lines.iter().filter(|(_, r)| *r == "0").count();
        let count = i64::try_from(agree).unwrap_or(0);
        println!(
            "{}",
            words.text(
                self.lang,
                "receipt-upload-matches",
                &[("count", Arg::Num(count))]
            )
        );
        for (trace, result) in lines.iter().filter(|(_, r)| *r != "0") {
            let why = words.text(self.lang, &format!("receipt-upload-why-{result}"), &[]);
            println!(
                "{}",
                words.text(
                    self.lang,
                    "receipt-upload-differs",
                    &[("trace", Arg::Str(trace)), ("why", Arg::Str(&why))]
                )
            );
        }
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
        assert_eq!(parse_step("preauth:5000"), Ok(Step::PreAuth(5000)));
        assert_eq!(parse_step("complete:1:4800"), Ok(Step::Complete(1, 4800)));
        assert_eq!(parse_step("complete-void:1"), Ok(Step::CompleteVoid(1)));
        assert_eq!(parse_step("preauth-void:2"), Ok(Step::PreAuthVoid(2)));
        assert_eq!(parse_step("upload"), Ok(Step::Upload));
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
