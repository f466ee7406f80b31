//! Where webhooks may go, and the client that takes them there.
//!
//! A webhook URL is the merchant's input, and the server POSTs to it: without a policy it
//! reaches the server's own network (SSRF). So, unless `--allow-private-webhooks`:
//! - setting a URL resolves its host and refuses it when any address is not a public
//!   internet address ([`is_public_address`]) → `webhook_url_not_allowed`;
//! - every delivery resolves again through [`PublicOnlyResolver`], which hands the HTTP
//!   client only addresses it checked, so a name that re-resolves to `127.0.0.1` after it
//!   was set (DNS rebinding) is not connected to; URLs with an address literal are checked
//!   before anything is sent (the client does not resolve those).
//!
//! What a merchant sees of a failed delivery is one of a few words ([`delivery_error_words`]);
//! the detail (addresses, OS errors) goes to the server log only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::{EngineError, EngineResult};

/// How long the set-time lookup of a webhook host may take.
pub const SET_TIME_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a merchant is told about a refused URL (no addresses, so nothing is learned about
/// the server's network or DNS).
const NOT_ALLOWED: &str = "the URL must name a host on the public internet: its address is \
     loopback, private, link-local, shared (CGNAT), multicast or otherwise reserved, or it \
     does not resolve";

/// Whether `ip` is a unicast address of the public internet. Everything a server should
/// not reach on a merchant's say-so is refused: loopback, private (RFC 1918), shared/CGNAT
/// (100.64/10), link-local (169.254/16, fe80::/10, incl. cloud metadata), unspecified,
/// "this network" (0/8), multicast, broadcast, reserved (240/4), documentation and
/// benchmarking ranges, IETF assignments (192.0.0/24), IPv6 unique-local (fc00::/7) and
/// site-local (fec0::/10); IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that address.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network", incl. 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = embedded_v4(&ip) {
        return is_public_v4(v4);
    }
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (segments[0] & 0xff00) == 0xff00 // multicast
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard 100::/64
        // Everything else under ::/8 that is not an embedded IPv4 form is reserved.
        || (segments[0] & 0xff00) == 0;
    !refused
}

/// The IPv4 address an IPv6 address stands for: mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback() {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// The delivery was refused because the host's address is not public.
#[derive(Debug, thiserror::Error)]
#[error("address_not_allowed")]
pub struct AddressNotAllowed;

/// A DNS resolver for the webhook client that answers only with public addresses: a
/// name with any non-public address is refused as a whole (a rebinding name often mixes
/// both), so the client connects only to addresses this check saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() || !addresses.iter().all(|a| is_public_address(a.ip())) {
                tracing::warn!(%host, ?addresses, "webhook host resolves to a non-public address; not connecting");
                return Err(Box::new(AddressNotAllowed) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The webhook network policy of one engine: whether private targets are allowed, extra
/// trusted roots, and the HTTP client built from them (once).
#[derive(Default)]
pub struct WebhookNetwork {
    allow_private: bool,
    extra_roots: Vec<reqwest::Certificate>,
    client: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for WebhookNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNetwork")
            .field("allow_private", &self.allow_private)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl WebhookNetwork {
    /// `allow_private`: `--allow-private-webhooks` (tests, receivers on the acquirer's own
    /// network). `extra_roots`: certificates of `--ca-file`, trusted besides the system's.
    pub fn new(allow_private: bool, extra_roots: Vec<reqwest::Certificate>) -> Self {
        WebhookNetwork {
            allow_private,
            extra_roots,
            client: OnceLock::new(),
        }
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// The client of every delivery: bounded timeouts, no redirects (a redirect could
    /// point anywhere), no proxy, and the public-only resolver unless private is allowed.
    pub fn client(&self) -> EngineResult<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(crate::notify::WEBHOOK_CONNECT_TIMEOUT)
            .timeout(crate::notify::WEBHOOK_REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("yuanlu-webhooks/1")
            .tls_certs_merge(self.extra_roots.iter().cloned());
        if !self.allow_private {
            builder = builder.dns_resolver(PublicOnlyResolver);
        }
        let client = builder
            .build()
            .map_err(|e| EngineError::corrupt(format!("cannot build the webhook client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Before a delivery: a URL with an address literal (which the client does not pass to
    /// the resolver) must name a public address.
    pub fn literal_allowed(&self, url: &Url) -> bool {
        self.allow_private || literal_address(url).is_none_or(is_public_address)
    }

    /// When a URL is set: refuses it unless every address of its host is public.
    pub async fn check_target(&self, url: &Url) -> EngineResult<()> {
        if self.allow_private {
            return Ok(());
        }
        let refused = || EngineError::WebhookUrlNotAllowed(NOT_ALLOWED.to_string());
        if let Some(ip) = literal_address(url) {
            return if is_public_address(ip) {
                Ok(())
            } else {
                Err(refused())
            };
        }
        let host = url.host_str().ok_or_else(refused)?.to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(
            SET_TIME_LOOKUP_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        let addresses: Vec<SocketAddr> = match lookup {
            Ok(Ok(addresses)) => addresses.collect(),
            Ok(Err(error)) => {
                tracing::info!(%host, %error, "webhook host does not resolve");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        if addresses.is_empty() || !addresses.iter().all(|a| is_public_address(a.ip())) {
            tracing::info!(%host, ?addresses, "webhook URL refused: not a public address");
            return Err(refused());
        }
        Ok(())
    }
}

fn literal_address(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// What a merchant may read about a failed delivery: `timeout`, `tls_error`,
/// `address_not_allowed` or `unreachable` — never an address or an OS message.
pub fn delivery_error_words(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        return "timeout";
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<AddressNotAllowed>() {
            return "address_not_allowed";
        }
        if cause.is::<rustls::Error>() {
            return "tls_error";
        }
        // io::Error hides its inner error from `source()`; TLS errors come nested in two.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        source = inner.or_else(|| cause.source());
    }
    "unreachable"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(text: &str) -> bool {
        is_public_address(text.parse().unwrap())
    }

    #[test]
    fn every_refused_ipv4_range_is_refused_at_its_edges() {
        for (first, last) in [
            ("0.0.0.0", "0.255.255.255"),
            ("10.0.0.0", "10.255.255.255"),
            ("100.64.0.0", "100.127.255.255"),
            ("127.0.0.0", "127.255.255.255"),
            ("169.254.0.0", "169.254.255.255"),
            ("172.16.0.0", "172.31.255.255"),
            ("192.0.0.0", "192.0.0.255"),
            ("192.0.2.0", "192.0.2.255"),
            ("192.168.0.0", "192.168.255.255"),
            ("198.18.0.0", "198.19.255.255"),
            ("198.51.100.0", "198.51.100.255"),
            ("203.0.113.0", "203.0.113.255"),
            ("224.0.0.0", "239.255.255.255"),
            ("240.0.0.0", "255.255.255.254"),
            ("255.255.255.255", "255.255.255.255"),
        ] {
            assert!(!v4(first), "{first}");
            assert!(!v4(last), "{last}");
        }
    }

    #[test]
    fn public_ipv4_next_to_the_ranges_is_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "101.6.6.6",
        ] {
            assert!(v4(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        for refused in [
            "::",
            "::1",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.5",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.1.2.3",
            "2002:c0a8:0101::1",
            "2002:7f00:0001::1",
        ] {
            assert!(!v4(refused), "{refused}");
        }
        for allowed in [
            "2400:3200::1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert!(v4(allowed), "{allowed}");
        }
    }

    #[test]
    fn literal_urls_are_checked_before_sending() {
        let strict = WebhookNetwork::new(false, Vec::new());
        let open = WebhookNetwork::new(true, Vec::new());
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]/x",
            "http://2130706433/x",
            "http://10.0.0.5/x",
            "http://[::ffff:192.168.1.1]/x",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(!strict.literal_allowed(&url), "{url}");
            assert!(open.literal_allowed(&url), "{url}");
        }
        assert!(strict.literal_allowed(&Url::parse("https://8.8.8.8/x").unwrap()));
        assert!(strict.literal_allowed(&Url::parse("https://shop.example/x").unwrap()));
    }

    proptest! {
        #[test]
        fn mapped_ipv6_is_judged_by_its_ipv4(bits: u32) {
            let ip = Ipv4Addr::from(bits);
            prop_assert_eq!(
                is_public_address(IpAddr::V6(ip.to_ipv6_mapped())),
                is_public_address(IpAddr::V4(ip))
            );
        }

        #[test]
        fn private_ranges_are_never_public(low: u32) {
            for (base, prefix) in [
                (0x0a00_0000_u32, 8),
                (0x7f00_0000, 8),
                (0xac10_0000, 12),
                (0xc0a8_0000, 16),
                (0xa9fe_0000, 16),
                (0x6440_0000, 10),
                (0xe000_0000, 4),
            ] {
                let ip = Ipv4Addr::from(base | (low >> prefix));
                prop_assert!(!is_public_address(IpAddr::V4(ip)), "{}", ip);
            }
        }

        #[test]
        fn ula_and_link_local_ipv6_are_never_public(bits: u128) {
            let ula = Ipv6Addr::from(0xfc00_u128 << 112 | (bits >> 7));
            let link = Ipv6Addr::from(0xfe80_u128 << 112 | (bits >> 10));
            prop_assert!(!is_public_address(IpAddr::V6(ula)), "{}", ula);
            prop_assert!(!is_public_address(IpAddr::V6(link)), "{}", link);
        }
    }
}
