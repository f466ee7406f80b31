//! Who is calling, for the public endpoints' rate limit: the TCP peer, or, when the peer
//! is a reverse proxy the operator trusts (`--trusted-proxy`), the client that proxy names
//! in `X-Forwarded-For` or `Forwarded`. A header from anyone else is ignored: it would let
//! every request pick a fresh address and never be limited.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// One trusted address or range (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    network: IpAddr,
    prefix: u8,
}

impl Range {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The reverse proxies whose forwarding headers are believed (`--trusted-proxy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Range>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// `ADDR[,ADDR…]`, each an IP address or a CIDR range.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut ranges = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            let network = canonical(
                address
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?,
            );
            let bits = if network.is_ipv4() { 32 } else { 128 };
            let prefix =
                match prefix {
                    None => bits,
                    Some(p) => p.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(|| {
                        format!("{item:?}: the prefix length must be 0 to {bits}")
                    })?,
                };
            ranges.push(Range { network, prefix });
        }
        if ranges.is_empty() {
            return Err("give one or more addresses, e.g. 127.0.0.1,10.0.0.0/8".to_string());
        }
        Ok(TrustedProxies(ranges))
    }
}

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; then the nearest
    /// untrusted address the proxies forwarded (right to left in `X-Forwarded-For`, else
    /// `Forwarded: for=`), or the farthest one given when every hop is trusted.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = forwarded_for(headers, "x-forwarded-for", parse_xff_item);
        if hops.is_empty() {
            hops = forwarded_for(headers, "forwarded", parse_forwarded_item);
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An unreadable hop ("unknown", garbage) ends the walk at the last proxy read.
            let Some(ip) = hop else { break };
            client = *ip;
            if !self.trusts(*ip) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Every comma-separated item of every header `name`, in order, each parsed (or `None`).
fn forwarded_for(
    headers: &HeaderMap,
    name: &str,
    parse: fn(&str) -> Option<Option<IpAddr>>,
) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| {
            value
                .to_str()
                .map(|text| text.split(',').filter_map(parse).collect::<Vec<_>>())
                .unwrap_or_else(|_| vec![None])
        })
        .collect()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest
            .split_once(']')
            .and_then(|(ip, _)| ip.parse().ok())
            .map(canonical);
    }
    text.rsplit_once(':')
        .and_then(|(ip, _port)| ip.parse::<std::net::Ipv4Addr>().ok())
        .map(IpAddr::V4)
}

fn parse_xff_item(item: &str) -> Option<Option<IpAddr>> {
    Some(parse_node(item))
}

/// One element of RFC 7239 `Forwarded`: its `for=` node; elements without one are skipped.
fn parse_forwarded_item(element: &str) -> Option<Option<IpAddr>> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8,fd00::/8".parse().unwrap();
        assert!(trusted.trusts(ip("127.0.0.1")));
        assert!(trusted.trusts(ip("::ffff:127.0.0.1")));
        assert!(!trusted.trusts(ip("127.0.0.2")));
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("fd12::1")));
        assert!(!trusted.trusts(ip("2001:db8::1")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.local".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_peer() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 10.0.0.7")]);
        // From an untrusted peer the header is ignored.
        assert_eq!(trusted.client(ip("203.0.113.1"), &xff), ip("203.0.113.1"));
        // Through two trusted proxies: the first untrusted hop from the right.
        assert_eq!(trusted.client(ip("10.0.0.1"), &xff), ip("198.51.100.9"));
        // A client cannot push its own pick past the proxy: the proxy appends the real one.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.9")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &spoofed), ip("198.51.100.9"));
        let forwarded = headers(&[(
            "forwarded",
            "for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.7",
        )]);
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &forwarded),
            ip("2001:db8::17")
        );
        let with_port = headers(&[("x-forwarded-for", "198.51.100.9:5555")]);
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &with_port),
            ip("198.51.100.9")
        );
        // Unreadable hops stop at the last proxy read; no header: the peer.
        let unknown = headers(&[("x-forwarded-for", "unknown, 10.0.0.7")]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &unknown), ip("10.0.0.7"));
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }
}
