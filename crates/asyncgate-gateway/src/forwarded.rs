//! Forwarding headers (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`, `X-Real-IP`):
//! what a client wrote is replaced by the gateway's own values, unless the client is a
//! trusted proxy (as nginx's real-IP module and Envoy's trusted hops decide), whose
//! values are kept and extended with this hop. Also the request id (`X-Request-Id`) and
//! the W3C trace context (`traceparent`, `tracestate`) the backend is given.

use http::{header, HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};

/// The forwarding headers the gateway sets; never copied from a client as they are.
pub const FORWARDING_HEADERS: [&str; 8] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// The request id of a connection: a trusted proxy's `X-Request-Id` when it is a plain
/// token (letters, digits, `-_.:`, at most 128), else a new one (32 hex digits).
pub fn request_id(client: &HeaderMap, peer: SocketAddr, trusted: &TrustedProxies) -> String {
    let theirs = client
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match theirs {
        Some(id) if trusted.contains(peer.ip()) => id.to_string(),
        _ => format!("{:032x}", rand::random::<u128>()),
    }
}

/// Whether `value` is a W3C `traceparent` this gateway understands: version `00` (or a
/// later one, read as `00`), a non-zero trace id and parent id, and flags.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && hex(parts[1], 32)
        && nonzero(parts[1])
        && hex(parts[2], 16)
        && nonzero(parts[2])
        && hex(parts[3], 2)
}

/// Header names the gateway writes, made once (a name made from a string at each use
/// would be copied into an allocation of its own).
pub(crate) mod names {
    use http::HeaderName;
    pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
    pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
}

/// A header value from a string the gateway made, taking its allocation over.
pub(crate) fn value(text: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()
}

/// Set the backend request's `X-Request-Id`, and pass the client's trace context on when
/// its `traceparent` is valid (else neither it nor `tracestate`).
pub fn set_tracing(out: &mut HeaderMap, client: &HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        out.insert(names::X_REQUEST_ID, v);
    }
    let parent = client.get(&names::TRACEPARENT).filter(|v| {
        client.get_all(&names::TRACEPARENT).iter().count() == 1
            && v.to_str().is_ok_and(valid_traceparent)
    });
    if let Some(parent) = parent {
        out.insert(names::TRACEPARENT, parent.clone());
        if let Some(state) = client.get(&names::TRACESTATE) {
            out.insert(names::TRACESTATE, state.clone());
        }
    }
}

/// Networks whose peers may tell the gateway who the client is (`gateway.trusted_proxies`).
pub type TrustedProxies = asyncgate_core::Networks;

/// Set the forwarding headers of the backend request `out` for a client connected from
/// `peer` over `proto` (`http` or `https`), given the client's own headers.
pub fn set(
    out: &mut HeaderMap,
    client: &HeaderMap,
    peer: SocketAddr,
    proto: &'static str,
    trusted: &TrustedProxies,
) {
    let trust = trusted.contains(peer.ip());
    // A trusted proxy's values are kept (all of its lines, joined).
    let theirs = |name: &HeaderName| -> Option<String> {
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
    let host = client.get(header::HOST);
    let mut put = |name: HeaderName, value: Option<HeaderValue>| {
        if let Some(v) = value {
            out.insert(name, v);
        }
    };
    put(
        names::X_FORWARDED_FOR,
        value(match theirs(&names::X_FORWARDED_FOR) {
            Some(chain) => format!("{chain}, {ip}"),
            None => ip.clone(),
        }),
    );
    put(
        names::X_FORWARDED_PROTO,
        match theirs(&names::X_FORWARDED_PROTO) {
            Some(p) => value(p),
            None => Some(HeaderValue::from_static(proto)),
        },
    );
    put(
        names::X_FORWARDED_HOST,
        match theirs(&names::X_FORWARDED_HOST) {
            Some(h) => value(h),
            None => host.filter(|h| h.to_str().is_ok()).cloned(),
        },
    );
    // RFC 7239: this hop's element, after a trusted proxy's own.
    let mut element = String::with_capacity(64);
    element.push_str("for=");
    match peer.ip() {
        IpAddr::V6(_) => {
            element.push_str("\"[");
            element.push_str(&ip);
            element.push_str("]\"");
        }
        IpAddr::V4(_) => element.push_str(&ip),
    }
    element.push_str(";proto=");
    element.push_str(proto);
    if let Some(h) = host.and_then(|h| h.to_str().ok()).filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        element.push_str(";host=\"");
        element.push_str(h);
        element.push('"');
    }
    put(
        header::FORWARDED,
        value(match theirs(&header::FORWARDED) {
            Some(earlier) => format!("{earlier}, {element}"),
            None => element,
        }),
    );
    put(
        names::X_REAL_IP,
        value(theirs(&names::X_REAL_IP).unwrap_or(ip)),
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
        assert!(trusted.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(trusted.contains("::1".parse().unwrap()));
        assert!(!trusted.contains("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_request_id_is_the_gateways_unless_a_trusted_proxy_set_one() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "edge-42".parse().unwrap());
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let proxy: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.9:1".parse().unwrap();
        assert_eq!(request_id(&h, proxy, &trusted), "edge-42");
        let own = request_id(&h, stranger, &trusted);
        assert_eq!(own.len(), 32);
        assert_ne!(own, request_id(&h, stranger, &trusted));
        h.insert("x-request-id", "a b".parse().unwrap());
        assert_eq!(request_id(&h, proxy, &trusted).len(), 32);
    }

    #[test]
    fn only_a_valid_traceparent_goes_on() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (parent, kept) in [
            (good, true),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                false,
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                true,
            ),
        ] {
            let mut client = HeaderMap::new();
            client.insert("traceparent", parent.parse().unwrap());
            client.insert("tracestate", "vendor=1".parse().unwrap());
            let mut out = HeaderMap::new();
            set_tracing(&mut out, &client, "rid");
            assert_eq!(out["x-request-id"], "rid");
            assert_eq!(out.contains_key("traceparent"), kept, "{parent}");
            assert_eq!(out.contains_key("tracestate"), kept, "{parent}");
        }
    }
}
