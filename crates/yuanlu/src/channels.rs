//! Which channel each refund goes to: the simulators (in this process by default, or a
//! separate `yuanlu simulate` process), or a real channel configured by environment.
//!
//! Per channel, `YUANLU_{WECHAT,ALIPAY,CARD}_URL` and `..._SECRET` (or `..._SECRET_FILE`, a
//! file holding it; at least 16 bytes) point the connector at a real endpoint (see
//! docs/channels.md); otherwise it goes to the simulator. The in-process simulators are
//! mounted only when no real channel is configured: a server that moves real money never
//! also runs fake channels that "pay" without paying. With a real channel, every other
//! channel must be real too, or go to a separate `yuanlu simulate` (`--simulator-url`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use yuanlu_channels::simulator::{self, FaultConfig, SimChannel, SimulatorConfig};
use yuanlu_channels::{
    AlipayConnector, CardConnector, ConnectorConfig, RefundConnector, WechatConnector,
};
use yuanlu_domain::channel::Channel;
use yuanlu_domain::clock::Clock;
use yuanlu_engine::dispatch::ChannelSet;
use yuanlu_engine::ids::new_secret_key;

use crate::cli::ChannelArgs;

/// Where the simulator secret comes from (or `--simulator-secret-file`).
pub const SIMULATOR_SECRET_VAR: &str = "YUANLU_SIMULATOR_SECRET";

/// The three simulated channels and the path each is served under.
pub const SIMULATED: [(SimChannel, &str); 3] = [
    (SimChannel::Wechat, "wechat"),
    (SimChannel::Alipay, "alipay"),
    (SimChannel::Card, "card"),
];

/// The connectors, and the in-process simulators to mount at `/sim` (if used).
pub struct Wiring {
    pub channels: ChannelSet,
    pub simulators: Option<Router>,
    /// For the start-up message.
    pub description: String,
}

/// What the in-process simulators share with the server: its clock (their booking and
/// payment times) and who besides the simulator's secret may read their books (a working
/// admin key, checked against the stored keys on every request, so a revoked or rotated
/// admin key behaves there as on the API).
pub struct InProcess {
    pub clock: Arc<dyn Clock>,
    pub books_reader: Arc<dyn simulator::BooksReader>,
}

/// One router serving the three simulators under `/wechat`, `/alipay`, `/card`. Without
/// `in_process` (a `yuanlu simulate` process) they run on the real clock.
pub fn simulator_router(
    secret: &str,
    faults: &FaultConfig,
    notify_base: Option<&str>,
    in_process: Option<&InProcess>,
) -> Router {
    let mut router = Router::new();
    for (channel, path) in SIMULATED {
        let mut config = SimulatorConfig::new(secret).with_faults(faults.clone());
        if let Some(base) = notify_base {
            config = config.with_notify_url(format!("{base}/v1/channels/{path}/notify"));
        }
        if let Some(shared) = in_process {
            config = config
                .with_clock(shared.clock.clone())
                .with_books_reader(shared.books_reader.clone());
        }
        router = router.nest(&format!("/{path}"), simulator::router(channel, config).0);
    }
    router
}

/// Builds the connectors for a server listening at `self_url` (`http://127.0.0.1:8080`);
/// `extra_roots` (`--ca-file`) are trusted for HTTPS channels besides the system's roots.
pub fn wire(
    args: &ChannelArgs,
    self_url: &str,
    extra_roots: &[reqwest::Certificate],
    in_process: &InProcess,
) -> Result<Wiring, String> {
    let faults = FaultConfig::from_spec(args.sim_faults.as_deref().unwrap_or("none"))
        .map_err(|e| format!("--sim-faults: {e}"))?;
    let mut real: Vec<&str> = Vec::new();
    for (_, path) in SIMULATED {
        if real_channel(path)?.is_some() {
            real.push(path);
        }
    }
    let all_real = real.len() == SIMULATED.len();
    if !real.is_empty() && !all_real && args.simulator_url.is_none() {
        return Err(format!(
            "a real channel is configured ({}), so the in-process simulators are off: \
             configure the other channels too (YUANLU_<CHANNEL>_URL and _SECRET) or send them \
             to a separate `yuanlu simulate` with --simulator-url",
            real.join(", ")
        ));
    }
    let (simulator_base, secret, simulators, description) = match &args.simulator_url {
        Some(url) => {
            let secret = crate::secrets::read(
                SIMULATOR_SECRET_VAR,
                args.simulator_secret_file.as_deref(),
                "--simulator-secret-file",
            )?
            .ok_or("--simulator-url needs YUANLU_SIMULATOR_SECRET or --simulator-secret-file")?;
            (
                url.trim_end_matches('/').to_string(),
                secret,
                None,
                format!("simulators at {url}"),
            )
        }
        None if !real.is_empty() => (
            String::new(),
            String::new(),
            None,
            format!("real channels ({})", real.join(", ")),
        ),
        None => {
            let secret = new_secret_key("sim");
            let router = simulator_router(&secret, &faults, Some(self_url), Some(in_process));
            let faults_text = args.sim_faults.as_deref().unwrap_or("none");
            (
                format!("{self_url}/sim"),
                secret,
                Some(router),
                format!("simulators in this process (faults: {faults_text})"),
            )
        }
    };
    let timeout = Duration::from_millis(args.channel_timeout_ms);
    let config_for = |path: &str| -> Result<ConnectorConfig, String> {
        let (base, secret) = match real_channel(path)? {
            Some(real) => real,
            None => (format!("{simulator_base}/{path}"), secret.clone()),
        };
        Ok(ConnectorConfig::new(base, secret)
            .with_timeout(timeout)
            .with_notify_url(format!("{self_url}/v1/channels/{path}/notify"))
            .with_extra_roots(extra_roots.to_vec()))
    };
    let error =
        |e: yuanlu_channels::ConnectorBuildError| format!("cannot build a channel connector: {e}");
    let wechat: Arc<dyn RefundConnector> =
        Arc::new(WechatConnector::new(config_for("wechat")?).map_err(error)?);
    let alipay: Arc<dyn RefundConnector> =
        Arc::new(AlipayConnector::new(config_for("alipay")?).map_err(error)?);
    let card: Arc<dyn RefundConnector> =
        Arc::new(CardConnector::new(config_for("card")?).map_err(error)?);
    let channels = ChannelSet::default()
        .with(&[Channel::Wechat], wechat)
        .with(&[Channel::Alipay], alipay)
        .with(
            &[Channel::CreditCard, Channel::DebitCard, Channel::UnionpayQr],
            card,
        );
    Ok(Wiring {
        channels,
        simulators,
        description,
    })
}

/// A real channel's `(url, secret)` from `YUANLU_<CHANNEL>_URL` and `_SECRET` or
/// `_SECRET_FILE`; `None` when no URL is set (the simulator is used). A URL without a
/// secret, or a secret without a URL, is refused rather than quietly simulated.
fn real_channel(path: &str) -> Result<Option<(String, String)>, String> {
    let upper = path.to_uppercase();
    let url_var = format!("YUANLU_{upper}_URL");
    let secret_var = format!("YUANLU_{upper}_SECRET");
    let file_var = format!("{secret_var}_FILE");
    let file = std::env::var_os(&file_var).map(std::path::PathBuf::from);
    let secret = crate::secrets::read(&secret_var, file.as_deref(), &file_var)?;
    match (std::env::var(&url_var).ok(), secret) {
        (Some(url), Some(secret)) => Ok(Some((url, secret))),
        (Some(_), None) => Err(format!("{url_var} needs {secret_var} or {file_var}")),
        (None, Some(_)) => Err(format!("{secret_var} is set but {url_var} is not")),
        (None, None) => Ok(None),
    }
}
