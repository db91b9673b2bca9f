//! Forwarding headers (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`, `X-Real-IP`):
//! what a client wrote is replaced by the gateway's own values, unless the client is a
//! trusted proxy (as nginx's real-IP module and Envoy's trusted hops decide), whose
//! values are kept and extended with this hop.

use http::{header, HeaderMap, HeaderValue};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The forwarding headers the gateway sets; never copied from a client as they are.
pub const FORWARDING_HEADERS: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
];

/// Networks whose peers may tell the gateway who the client is (`gateway.trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses or networks, such as `10.0.0.0/8`, `192.0.2.7` or `::1`; the error
    /// names the entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{e}` is not an IP address or network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Set the forwarding headers of the backend request `out` for a client connected from
/// `peer` over `proto` (`http` or `https`), given the client's own headers.
pub fn set(
    out: &mut HeaderMap,
    client: &HeaderMap,
    peer: SocketAddr,
    proto: &str,
    trusted: &TrustedProxies,
) {
    let trust = trusted.trusts(peer.ip());
    // A trusted proxy's values are kept (all of its lines, joined).
    let theirs = |name: &str| -> Option<String> {
        if !trust {
            return None;
        }
        let values: Vec<&str> = client
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let ip = peer.ip().to_string();
    let host = client.get(header::HOST).and_then(|v| v.to_str().ok());
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    };
    put(
        "x-forwarded-for",
        match theirs("x-forwarded-for") {
            Some(chain) => format!("{chain}, {ip}"),
            None => ip.clone(),
        },
    );
    put(
        "x-forwarded-proto",
        theirs("x-forwarded-proto").unwrap_or_else(|| proto.to_string()),
    );
    if let Some(h) = theirs("x-forwarded-host").or(host.map(str::to_string)) {
        put("x-forwarded-host", h);
    }
    put(
        "x-real-ip",
        theirs("x-real-ip").unwrap_or_else(|| ip.clone()),
    );
    // RFC 7239: this hop's element, after a trusted proxy's own.
    let node = match peer.ip() {
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
        v4 => v4.to_string(),
    };
    let mut element = format!("for={node};proto={proto}");
    if let Some(h) = host.filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        element.push_str(&format!(";host=\"{h}\""));
    }
    put(
        "forwarded",
        match theirs("forwarded") {
            Some(earlier) => format!("{earlier}, {element}"),
            None => element,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("host", "gw.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn an_untrusted_clients_values_are_replaced() {
        let mut out = HeaderMap::new();
        let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        set(
            &mut out,
            &client(),
            peer,
            "http",
            &TrustedProxies::default(),
        );
        assert_eq!(out["x-forwarded-for"], "203.0.113.9");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["x-forwarded-host"], "gw.example");
        assert_eq!(out["x-real-ip"], "203.0.113.9");
        assert_eq!(
            out["forwarded"],
            "for=203.0.113.9;proto=http;host=\"gw.example\""
        );
        assert!(!format!("{out:?}").contains("6.6.6.6"));
        assert!(!format!("{out:?}").contains("evil"));
    }

    #[test]
    fn a_trusted_proxys_values_are_kept_and_extended() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap();
        let mut out = HeaderMap::new();
        let peer: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        set(&mut out, &client(), peer, "http", &trusted);
        assert_eq!(out["x-forwarded-for"], "6.6.6.6, 10.1.2.3");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "evil.example");
        assert_eq!(out["x-real-ip"], "6.6.6.6");
        assert_eq!(
            out["forwarded"],
            "for=6.6.6.6, for=10.1.2.3;proto=http;host=\"gw.example\""
        );
        assert!(trusted.trusts("::ffff:10.9.9.9".parse().unwrap()));
        assert!(trusted.trusts("::1".parse().unwrap()));
        assert!(!trusted.trusts("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(err.contains("`proxy.local`"), "{err}");
    }
}
