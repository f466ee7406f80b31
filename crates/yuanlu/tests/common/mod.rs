//! Shared helpers of the end-to-end tests: start the real `yuanlu` binary on a free port
//! with its own data directory, talk to it over HTTP, and kill it on drop.
//!
//! Readiness is the `yuanlu listening on http://…` line on the child's stdout: no sleeps.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

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
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut seen = String::new();
        let base = loop {
            let mut line = String::new();
            let read = lines.read_line(&mut line).unwrap();
            if read == 0 {
                let status = child.wait().ok();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "yuanlu serve exited ({status:?}) before listening\nstdout:\n{seen}\nstderr:\n{log}"
                );
            }
            seen.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("yuanlu listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                break url.trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
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

    /// Waits for the process to exit by itself (for commands that end).
    pub fn wait(&mut self) -> Option<ExitStatus> {
        self.child.take().and_then(|mut c| c.wait().ok())
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
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut seen = String::new();
        let base = loop {
            let mut line = String::new();
            let read = lines.read_line(&mut line).unwrap();
            if read == 0 {
                let status = child.wait().ok();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "yuanlu simulate exited ({status:?}) before listening\nstdout:\n{seen}\nstderr:\n{log}"
                );
            }
            seen.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("yuanlu simulators listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                break url.trim_end_matches('/').to_string();
            }
        };
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
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
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains(" listening on ") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("expected a refusal to start, but it listens: {line}");
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
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let base = loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            let status = child.wait();
            panic!("exited before listening: {status:?}");
        }
        if let Some((_, rest)) = line.split_once(" listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = lines.read_to_end(&mut sink);
    });
    (child, base)
}
