//! Shared helpers of the end-to-end tests: start the real `yuanlu` binary on a free port
//! with its own data directory, talk to it over HTTP, and kill it on drop.
//!
//! Readiness is the `yuanlu listening on http://…` line on the child's stdout: no sleeps,
//! and a deadline ([`STARTUP_DEADLINE`]) so a hung start fails with its stderr shown.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// The admin key every test server runs with (`YUANLU_ADMIN_KEY`).
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_yuanlu")
}

/// A command for the binary with a clean environment: no `YUANLU_*` from the caller's
/// shell leaks into a test, and the admin key is fixed.
pub fn command() -> Command {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("YUANLU_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("YUANLU_ADMIN_KEY", ADMIN_KEY);
    cmd.env("YUANLU_LOG", "warn");
    cmd
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--database-url`; SQLite under the data dir when absent.
    pub database_url: Option<String>,
    /// `--clock` value, e.g. `simulated=2026-01-05T10:00:00+08:00`.
    pub clock: Option<String>,
    /// More arguments after `serve …`, e.g. `["--simulator-url", "http://…"]`.
    pub args: Vec<String>,
    /// More environment variables for the child (after the clean-up of `YUANLU_*`).
    pub env: Vec<(String, String)>,
}

/// A running `yuanlu serve`. Killed (SIGKILL) and reaped on drop.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    stderr_path: PathBuf,
    /// What the server printed up to its listening line (e.g. the `--metrics-listen` address).
    pub startup_output: String,
}

impl Server {
    /// Starts a server on SQLite in `data_dir`.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &Options::default())
    }

    /// Starts a server and returns once it printed its listening line.
    pub fn start_with(data_dir: &Path, options: &Options) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let stderr_path = data_dir.join(format!(
            "server-stderr-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = command();
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(url) = &options.database_url {
            cmd.arg("--database-url").arg(url);
        }
        if let Some(clock) = &options.clock {
            cmd.arg("--clock").arg(clock);
        }
        cmd.args(&options.args);
        for (key, value) in &options.env {
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("spawn yuanlu serve");
        let (base, seen) = await_listening(
            &mut child,
            "yuanlu listening on ",
            "yuanlu serve",
            Some(&stderr_path),
        );
        Server {
            child: Some(child),
            base,
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            stderr_path,
            startup_output: seen,
        }
    }

    /// SIGKILL and reap: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with an optional bearer key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Resp::from(req.send().await.unwrap()).await
    }

    /// Sends a prepared request (raw bodies, odd headers).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        Resp::from(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Admin creates a merchant; returns `(merchant_id, supervisor_key)`.
    pub async fn merchant(&self, name: &str) -> (String, String) {
        self.merchant_with(json!({ "name": name })).await
    }

    pub async fn merchant_with(&self, body: Value) -> (String, String) {
        let r = self.post("/v1/merchants", ADMIN_KEY, &body).await;
        assert_eq!(r.status, 201, "create merchant: {}", r.text);
        (r.str("id"), r.str("api_key"))
    }

    /// A merchant key records a payment; returns the payment.
    pub async fn payment(&self, key: &str, channel: &str, amount: i64) -> Value {
        self.payment_with(
            key,
            json!({ "channel": channel, "amount": amount, "currency": "CNY" }),
        )
        .await
    }

    pub async fn payment_with(&self, key: &str, body: Value) -> Value {
        let r = self.post("/v1/payments", key, &body).await;
        assert_eq!(r.status, 201, "record payment {body}: {}", r.text);
        r.body
    }

    /// Asks for a refund and returns the raw answer.
    pub async fn refund(&self, key: &str, payment_id: &str, amount: i64, no: &str) -> Resp {
        self.post(
            "/v1/refunds",
            key,
            &json!({
                "payment_id": payment_id,
                "amount": amount,
                "reason": "customer_cancel",
                "merchant_refund_no": no,
            }),
        )
        .await
    }

    /// Waits for the process to exit by itself (for commands that end); killed and the
    /// test failed if it has not within [`STARTUP_DEADLINE`].
    pub fn wait(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        Some(wait_within(&mut child, STARTUP_DEADLINE, "yuanlu serve"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `yuanlu simulate` (the three channel simulators in a process of their own, so
/// their books outlive server restarts). Killed (SIGKILL) and reaped on drop.
pub struct Simulator {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`; the channels are under `/wechat`, `/alipay`, `/card`.
    pub base: String,
    /// Shared with the servers (`--simulator-secret-file`).
    pub secret: String,
    /// A file holding `secret`, for `yuanlu serve --simulator-secret-file`.
    pub secret_file: PathBuf,
    pub http: reqwest::Client,
    stderr_path: PathBuf,
}

impl Simulator {
    /// Starts `YUANLU_SIMULATOR_SECRET=SECRET yuanlu simulate --listen 127.0.0.1:0 --faults
    /// FAULTS` and returns once it printed its listening line. Its stderr goes to a file in
    /// `log_dir`.
    pub fn start(log_dir: &Path, secret: &str, faults: &str) -> Simulator {
        std::fs::create_dir_all(log_dir).unwrap();
        let stderr_path = log_dir.join(format!("simulator-stderr-{}.log", unique("")));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = command();
        let secret_file = log_dir.join(format!("simulator-secret-{}", unique("")));
        std::fs::write(&secret_file, secret).unwrap();
        cmd.env("YUANLU_SIMULATOR_SECRET", secret)
            .arg("simulate")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--faults")
            .arg(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("spawn yuanlu simulate");
        let (base, _seen) = await_listening(
            &mut child,
            "yuanlu simulators listening on ",
            "yuanlu simulate",
            Some(&stderr_path),
        );
        Simulator {
            child: Some(child),
            base,
            secret: secret.to_string(),
            secret_file,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            stderr_path,
        }
    }

    /// The arguments that point `yuanlu serve` at this simulator.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--simulator-url".to_string(),
            self.base.clone(),
            "--simulator-secret-file".to_string(),
            self.secret_file.display().to_string(),
        ]
    }

    /// One channel's books (`wechat`, `alipay` or `card`): `GET /<channel>/sim/books`, with
    /// the simulator's secret as bearer key.
    pub async fn books(&self, channel: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/{channel}/sim/books", self.base))
            .bearer_auth(&self.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "books of {channel}");
        response.json().await.unwrap()
    }

    /// What the simulator wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An answer: status, content type, body as text and as JSON (`Null` if not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub async fn from(response: reqwest::Response) -> Resp {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            text,
            body,
        }
    }

    /// A string field of the body.
    pub fn str(&self, field: &str) -> String {
        self.body
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string {field:?} in {}", self.text))
            .to_string()
    }

    /// An integer field of the body.
    pub fn i64(&self, field: &str) -> i64 {
        self.body
            .get(field)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("no integer {field:?} in {}", self.text))
    }

    /// The problem's `code`, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with every required member and the given status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str, context: &str) {
        assert_eq!(
            self.status, status,
            "{context}: expected {status} {code}, got {} {}",
            self.status, self.text
        );
        self.assert_problem_shape(context);
        assert_eq!(self.code(), code, "{context}: wrong code in {}", self.text);
    }

    /// Asserts the problem shape only: content type and `type,title,status,detail,code`.
    #[track_caller]
    pub fn assert_problem_shape(&self, context: &str) {
        if let Some(wrong) = self.problem_shape_error() {
            panic!("{context}: {wrong}");
        }
    }

    /// What is wrong with this answer as an RFC 9457 problem, if anything.
    pub fn problem_shape_error(&self) -> Option<String> {
        if !self.content_type.starts_with("application/problem+json") {
            return Some(format!(
                "content type {:?} is not application/problem+json (status {}, body {:?})",
                self.content_type, self.status, self.text
            ));
        }
        for member in ["type", "title", "detail", "code"] {
            if self.body.get(member).and_then(Value::as_str).is_none() {
                return Some(format!("problem without string {member:?}: {}", self.text));
            }
        }
        if self.body.get("status").and_then(Value::as_u64) != Some(u64::from(self.status)) {
            return Some(format!(
                "problem status member differs from the HTTP status {}: {}",
                self.status, self.text
            ));
        }
        None
    }
}

/// A fresh temporary data directory.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("yuanlu-e2e-")
        .tempdir()
        .unwrap()
}

/// A short random suffix for unique names (no external crates: time and a counter).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh PostgreSQL schema for one test. Dropped by [`PgSchema::drop_schema`] at the end
/// of a test, or on drop if the test panicked before it.
pub struct PgSchema {
    pub base_url: String,
    pub schema: String,
    dropped: bool,
}

impl PgSchema {
    /// `None` (after saying so) when `YUANLU_TEST_DATABASE_URL` is unset outside CI; under
    /// CI that panics (`yuanlu_testkit::postgres_url`).
    pub async fn create(test: &str) -> Option<PgSchema> {
        let base_url = yuanlu_testkit::postgres_url(test)?;
        let schema = unique("t_");
        execute(&base_url, &format!("CREATE SCHEMA {schema}")).await;
        Some(PgSchema {
            base_url,
            schema,
            dropped: false,
        })
    }

    /// The URL that puts the server in this schema.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base_url, self.schema
        )
    }

    /// Drops the schema; call it after the servers using it are gone.
    pub async fn drop_schema(mut self) {
        execute(&self.base_url, &self.drop_sql()).await;
        self.dropped = true;
    }

    fn drop_sql(&self) -> String {
        format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A test panicked: drop the schema on a runtime of its own (we may be inside one).
        let (url, sql) = (self.base_url.clone(), self.drop_sql());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(execute(&url, &sql));
        })
        .join();
    }
}

async fn execute(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Runs a command that must refuse to start: its exit status and what it wrote to stderr.
/// If it prints a `… listening on …` line instead, it is killed and the test fails.
pub fn expect_refusal(mut cmd: Command) -> (ExitStatus, String) {
    let stderr_path = std::env::temp_dir().join(unique("yuanlu-refusal-stderr-"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()));
    let mut child = cmd.spawn().unwrap();
    let lines = stdout_lines(&mut child);
    let give_up_at = Instant::now() + STARTUP_DEADLINE;
    loop {
        let left = give_up_at.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(" listening on ") => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("expected a refusal to start, but it listens: {line}");
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "expected a refusal to start, but it neither exited nor listened within {STARTUP_DEADLINE:?}\nstderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    (status, stderr)
}

/// Spawns a command that serves, and returns it with its base URL once it printed its
/// `… listening on http://…` line (no sleeps). Kill it when done.
pub fn spawn_listening(mut cmd: Command) -> (Child, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let (base, _seen) = await_listening(&mut child, " listening on ", "the command", None);
    (child, base)
}

/// How long a child may take to print its listening line (or, for a refusal, to exit): far
/// beyond a healthy start on a loaded 2-core machine, so only a hang reaches it.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Reads the child's stdout until a line containing `marker`, and returns the URL after it
/// and everything printed so far; stdout keeps being drained afterwards, so the child never
/// blocks on a full pipe. Fails the test — killing the child and showing what it printed,
/// stderr included — if the child exits first or says nothing within [`STARTUP_DEADLINE`].
pub fn await_listening(
    child: &mut Child,
    marker: &str,
    what: &str,
    stderr_path: Option<&Path>,
) -> (String, String) {
    await_listening_within(child, marker, what, stderr_path, STARTUP_DEADLINE)
}

/// [`await_listening`] with a deadline of the caller's choosing.
pub fn await_listening_within(
    child: &mut Child,
    marker: &str,
    what: &str,
    stderr_path: Option<&Path>,
    deadline: Duration,
) -> (String, String) {
    let lines = stdout_lines(child);
    let give_up_at = Instant::now() + deadline;
    let mut seen = String::new();
    loop {
        let left = give_up_at.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                if let Some((_, rest)) = line.trim().split_once(marker.trim()) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return (url.trim_end_matches('/').to_string(), seen);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "{what} printed no {marker:?} line within {deadline:?}; killed ({status:?})\nstdout:\n{seen}\nstderr:\n{}",
                    read_log(stderr_path)
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                panic!(
                    "{what} exited ({status:?}) before listening\nstdout:\n{seen}\nstderr:\n{}",
                    read_log(stderr_path)
                );
            }
        }
    }
}

/// The child's stdout, line by line, from a thread that reads it to the end (and drops what
/// nobody receives any more).
fn stdout_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let _ = sender.send(line);
                }
            }
        }
    });
    receiver
}

/// Waits for a child to exit; kills it and fails the test past `deadline`. A bounded poll:
/// the deadline is a guard against a hang, never what a test measures.
pub fn wait_within(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let give_up_at = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= give_up_at {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {deadline:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command that ends (`yuanlu settle`, `yuanlu calendar`, …) with a deadline: its
/// exit status, stdout and stderr. Fails the test, showing what it printed, past `deadline`.
pub fn output_within(mut cmd: Command, deadline: Duration) -> std::process::Output {
    use std::io::Read;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let give_up_at = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= give_up_at {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).to_string();
            panic!("{cmd:?} did not exit within {deadline:?}; killed\nstderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_log(path: Option<&Path>) -> String {
    path.map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_else(|| "(not captured)".to_string())
}

/// The value of cookie `name` set by `response`, as a browser would keep it.
pub fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_string())
        })
}
