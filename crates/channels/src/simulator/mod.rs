//! Channel simulators: HTTP servers that speak each channel's shape (see [`crate::wechat`],
//! [`crate::alipay`], [`crate::card`]), keep their own books, and inject faults.
//!
//! - Books ([`books`]): one record per refund number; a repeated execute returns the stored
//!   record and never pays twice. "Paid" means the refund reached SUCCESS. Amounts ≤ 0, above
//!   the payment, or cumulative refunds above the payment are refused for good.
//! - Faults ([`FaultConfig`]), each decided by a hash of (seed, the order in which the
//!   simulator first met the refund number, fault name), so a resend meets the same world and
//!   the same seed with the same sequence of calls replays the same faults:
//!   - `error`: a transient error before booking, nothing recorded (decided per attempt, so
//!     a retry may pass, as with a busy channel);
//!   - `lost`: book (and pay, when it succeeds at once), then never answer — only on the
//!     execute that books the number; the client's timeout turns it into an unknown outcome;
//!   - `abnormal`: ABNORMAL / CARD_CLOSED / ACQ.BUYER_ACCOUNT_ABNORMAL, nothing paid; an
//!     account given as `reroute_account` is never abnormal, and a repeat with one settles
//!     the booked refund to it, paying once;
//!   - `slow`: PROCESSING now, SUCCESS after `confirm_delay_ms` (a background task), then
//!     callbacks;
//!   - latency: a per-number pause in `[latency_ms_min, latency_ms_max]` before answering.
//! - Callbacks ([`callbacks`]): signed, for each status change, to the request's notify URL
//!   or the simulator's; possibly duplicated, possibly followed by a stale earlier status;
//!   retried a few times, then dropped.
//! - Requests without a valid signature get 401.
//! - `GET /sim/books` answers the books as JSON, `GET /sim/statement` the channel's statement
//!   ([`statement`]). They reveal every merchant's refunds, so they answer only a bearer
//!   token: the simulator's secret or, in `yuanlu serve`, the admin key (401 otherwise). The
//!   books keep reroute accounts masked (`6222********1234`), as a channel's published
//!   records would.
//! - Times (booked, paid, a statement's default date) come from the configured [`Clock`]: in
//!   `yuanlu serve` the server's own, so a simulated clock reaches the channel's answers.
//!   A separate `yuanlu simulate` process runs on the real clock.

pub mod books;
pub mod callbacks;
pub mod faults;

mod alipay;
mod card;
mod statement;
mod wechat;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use yuanlu_domain::clock::{Clock, SystemClock};

pub use books::{BookEntry, BooksSnapshot, SimStatus};
pub use faults::{FaultConfig, FaultSpecError};

use books::{Books, ExecuteCall, Execution, FollowUp};
use faults::stable_hash;

use crate::signing;

/// Largest request body a simulator reads.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Which channel a simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimChannel {
    Wechat,
    Alipay,
    Card,
}

impl SimChannel {
    pub const ALL: [SimChannel; 3] = [SimChannel::Wechat, SimChannel::Alipay, SimChannel::Card];

    pub fn name(self) -> &'static str {
        match self {
            SimChannel::Wechat => "wechat",
            SimChannel::Alipay => "alipay",
            SimChannel::Card => "card",
        }
    }

    pub fn parse(name: &str) -> Option<SimChannel> {
        SimChannel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The simulator that plays a payment channel.
    pub fn for_channel(channel: yuanlu_domain::channel::Channel) -> SimChannel {
        use yuanlu_domain::channel::Channel;
        match channel {
            Channel::Wechat => SimChannel::Wechat,
            Channel::Alipay => SimChannel::Alipay,
            Channel::CreditCard | Channel::DebitCard | Channel::UnionpayQr => SimChannel::Card,
        }
    }

    /// The header carrying signatures, both ways.
    pub fn signature_header(self) -> &'static str {
        match self {
            SimChannel::Wechat => crate::wechat::SIGNATURE_HEADER,
            SimChannel::Alipay => crate::alipay::SIGNATURE_HEADER,
            SimChannel::Card => crate::card::SIGNATURE_HEADER,
        }
    }
}

/// How a simulator behaves.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// Shared with the connector: verifies requests, signs callbacks.
    pub secret: String,
    pub faults: FaultConfig,
    /// Callbacks go here when a request names no notify URL.
    pub notify_url: Option<String>,
    /// Tolerated clock difference on request signatures.
    pub max_skew_secs: i64,
    /// Where the simulator's times come from.
    pub clock: Arc<dyn Clock>,
    /// Who else may read the books (the server's admin keys), besides the secret.
    pub books_reader: Option<Arc<dyn BooksReader>>,
}

/// Decides whether a bearer key other than the simulator's secret may read the books; the
/// server checks its stored admin keys (revocation and rotation included).
#[async_trait::async_trait]
pub trait BooksReader: Send + Sync {
    async fn may_read(&self, bearer: &str) -> bool;
}

impl SimulatorConfig {
    pub fn new(secret: impl Into<String>) -> Self {
        SimulatorConfig {
            secret: secret.into(),
            faults: FaultConfig::none(),
            notify_url: None,
            max_skew_secs: signing::DEFAULT_MAX_SKEW_SECS,
            clock: Arc::new(SystemClock),
            books_reader: None,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Lets the keys `reader` accepts read the books too.
    pub fn with_books_reader(mut self, reader: Arc<dyn BooksReader>) -> Self {
        self.books_reader = Some(reader);
        self
    }

    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_notify_url(mut self, notify_url: impl Into<String>) -> Self {
        self.notify_url = Some(notify_url.into());
        self
    }
}

impl std::fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("secret", &"<redacted>")
            .field("faults", &self.faults)
            .field("notify_url", &self.notify_url)
            .field("max_skew_secs", &self.max_skew_secs)
            .field("simulated_clock", &self.clock.is_simulated())
            .finish_non_exhaustive()
    }
}

/// Shared state behind a simulator's routes.
pub(crate) struct SimState {
    channel: SimChannel,
    config: SimulatorConfig,
    books: Mutex<Books>,
    callback_client: reqwest::Client,
    /// Bounds concurrent callback deliveries; beyond it callbacks are dropped (allowed:
    /// the dispatch side also queries).
    callback_slots: Arc<Semaphore>,
}

/// Access to a running simulator's books.
#[derive(Clone)]
pub struct SimulatorHandle {
    state: Arc<SimState>,
}

impl SimulatorHandle {
    pub fn channel(&self) -> SimChannel {
        self.state.channel
    }

    pub fn snapshot(&self) -> BooksSnapshot {
        self.state.lock_books().snapshot()
    }

    pub fn total_paid_fen(&self) -> i64 {
        self.state.lock_books().total_paid_fen()
    }

    pub fn entry(&self, refund_no: &str) -> Option<BookEntry> {
        self.state.lock_books().entry(refund_no).cloned()
    }
}

/// A simulator's routes and a handle on its books. Nest it anywhere: request signatures
/// cover the path below the simulator's base URL.
pub fn router(channel: SimChannel, config: SimulatorConfig) -> (Router, SimulatorHandle) {
    let state = Arc::new(SimState::new(channel, config));
    let routes = match channel {
        SimChannel::Wechat => wechat::routes(),
        SimChannel::Alipay => alipay::routes(),
        SimChannel::Card => card::routes(),
    };
    // What reveals the books needs a bearer key; the channel's own endpoints, signatures.
    let books = Router::new()
        .route("/sim/books", get(books_json))
        .route("/sim/statement", get(statement::statement))
        .route("/sim/statement/injected", get(statement::injected))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_reader,
        ));
    let router = routes
        .merge(books)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state.clone());
    (router, SimulatorHandle { state })
}

/// Serves a simulator on `listener` until the task is dropped or the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    channel: SimChannel,
    config: SimulatorConfig,
) -> std::io::Result<()> {
    let (router, _handle) = router(channel, config);
    axum::serve(listener, router).await
}

async fn books_json(State(state): State<Arc<SimState>>) -> Json<BooksSnapshot> {
    Json(state.lock_books().snapshot())
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Lets through a request bearing the simulator's secret or the admin key; 401 problem
/// otherwise. Compared as SHA-256 digests, so the comparison leaks nothing about the keys.
async fn require_reader(
    State(state): State<Arc<SimState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_string());
    let allowed = match presented {
        None => false,
        Some(token) if sha256_hex(&token) == sha256_hex(&state.config.secret) => true,
        Some(token) => match &state.config.books_reader {
            Some(reader) => reader.may_read(&token).await,
            None => false,
        },
    };
    if allowed {
        return next.run(request).await;
    }
    let problem = serde_json::json!({
        "type": "https://yuanlu.dev/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "code": "unauthorized",
        "detail": "the simulator's books need its secret or the admin key as a bearer token",
    });
    let mut response = (axum::http::StatusCode::UNAUTHORIZED, Json(problem)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Answers a request whose response the fault "lost": the client waits until its timeout.
/// The task ends when the connection closes or the server stops.
pub(crate) async fn never_answer() -> Response {
    std::future::pending::<()>().await;
    ().into_response()
}

impl SimState {
    fn new(channel: SimChannel, config: SimulatorConfig) -> Self {
        SimState {
            channel,
            config,
            books: Mutex::new(Books::default()),
            callback_client: callbacks::client(),
            callback_slots: Arc::new(Semaphore::new(callbacks::MAX_CONCURRENT_DELIVERIES)),
        }
    }

    fn lock_books(&self) -> MutexGuard<'_, Books> {
        // Nothing panics while holding the lock; if something ever did, the books are
        // still consistent (each update is a single assignment sequence), so keep going.
        self.books
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn channel(&self) -> SimChannel {
        self.channel
    }

    /// The simulator's "now" (booking and payment times).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.config.clock.now()
    }

    pub(crate) fn faults(&self) -> &FaultConfig {
        &self.config.faults
    }

    pub(crate) fn entry(&self, refund_no: &str) -> Option<BookEntry> {
        self.lock_books().entry(refund_no).cloned()
    }

    /// Checks the request's signature over method, path and body.
    pub(crate) fn authentic(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> bool {
        let Some(header) = headers
            .get(self.channel.signature_header())
            .and_then(|value| value.to_str().ok())
        else {
            return false;
        };
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path(), |p| p.as_str());
        let message = signing::request_message(method.as_str(), path, body);
        signing::verify(
            self.config.secret.as_bytes(),
            header,
            &message,
            signing::transport_now_unix(),
            self.config.max_skew_secs,
        )
        .is_ok()
    }

    /// The per-number latency fault.
    pub(crate) async fn pause(&self, refund_no: &str) {
        let dice_key = self.lock_books().dice_key(refund_no);
        let latency_ms = self.config.faults.latency_ms(&dice_key);
        if latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
    }

    /// A stable channel-side id for a refund number: `prefix` plus 20 digits.
    pub(crate) fn channel_id(&self, prefix: &str, key: &str) -> String {
        let digest = stable_hash(self.config.faults.seed, key, "channel_id", 0);
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        format!("{prefix}{:020}", u64::from_be_bytes(head))
    }

    /// Executes against the books and starts whatever follows (callbacks, confirmation).
    pub(crate) fn execute(
        self: &Arc<Self>,
        call: &ExecuteCall,
        channel_refund_id: String,
    ) -> Execution {
        let (execution, follow_up) =
            self.lock_books()
                .execute(call, &self.config.faults, channel_refund_id, self.now());
        match follow_up {
            FollowUp::None => {}
            FollowUp::Notify(entry) => callbacks::spawn_for(self.clone(), entry),
            FollowUp::ConfirmLater(refund_no) => self.spawn_confirmation(refund_no),
        }
        execution
    }

    fn spawn_confirmation(self: &Arc<Self>, refund_no: String) {
        let state = self.clone();
        let delay = Duration::from_millis(self.config.faults.confirm_delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let now = state.now();
            let confirmed = state.lock_books().confirm(&refund_no, now);
            if let Some(entry) = confirmed {
                callbacks::spawn_for(state.clone(), entry);
            }
        });
    }
}
