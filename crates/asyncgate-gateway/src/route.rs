//! Matching a request path to a deployed API and one of its channels, and the backend URL
//! that path maps to.

use asyncgate_core::{ApiLimits, ApiSecurity, LifecycleState, PlanLimits};
use http::{HeaderName, HeaderValue};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One API revision as served on one environment (under its base path, or under one of
/// its aliases: each is a route of its own).
#[derive(Debug, Clone)]
pub struct Route {
    pub api_id: String,
    /// The API's organization (a token whose audience is the organization is valid).
    pub org_id: String,
    pub api_name: String,
    /// `identifier@version`: the API's label in metrics and the access log.
    pub api_handle: Arc<str>,
    pub lifecycle: LifecycleState,
    pub environment: String,
    pub revision: u32,
    /// Without a trailing slash (empty only for an API mounted at `/`).
    pub base_path: String,
    pub target: Target,
    pub channels: Vec<ChannelPattern>,
    pub key_hashes: Arc<HashSet<String>>,
    /// Who may connect: credentials required, API-key header, origins.
    pub security: ApiSecurity,
    /// The API's own API-key header, when it is not the default `api-key`.
    pub api_key_header: Option<HeaderName>,
    /// Applications subscribed to the API, with their plans.
    pub subscriptions: Arc<HashMap<Arc<str>, PlanLimits>>,
    pub limits: ApiLimits,
    /// Extra headers for the backend, parsed once per snapshot.
    pub backend_headers: Vec<(HeaderName, HeaderValue)>,
    /// How permessage-deflate crosses the gateway (decided once per snapshot).
    pub compression: asyncgate_core::CompressionShape,
    /// Its metric series on each listener kind, found on the first connection.
    pub series: [std::sync::OnceLock<crate::metrics::RouteSeries>; 2],
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param,
}

/// A channel address such as `/rooms/{roomId}`, split into segments, with what the
/// contract allows on it each way when messages are validated.
#[derive(Debug, Clone)]
pub struct ChannelPattern {
    pub address: String,
    segments: Vec<Segment>,
    /// Rules for messages from the client and from the backend.
    pub rules: [Option<Arc<crate::validate::Rules>>; 2],
}

impl ChannelPattern {
    /// The pattern of `address`, without validation rules.
    pub fn new(address: &str) -> ChannelPattern {
        let segments = address
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        ChannelPattern {
            address: address.to_string(),
            segments,
            rules: [None, None],
        }
    }

    /// Whether `rest` (a path below the base path) is this channel's address.
    pub fn matches(&self, rest: &str) -> bool {
        let mut parts = rest.split('/').filter(|s| !s.is_empty());
        for seg in &self.segments {
            match (seg, parts.next()) {
                (Segment::Literal(l), Some(p)) if l == p => {}
                (Segment::Param, Some(_)) => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
impl Route {
    /// A route of API `a` in development for unit tests.
    pub(crate) fn example(base: &str, target: &str, channels: &[&str]) -> Arc<Route> {
        Arc::new(Route {
            api_id: "a".into(),
            org_id: "o".into(),
            api_name: "A".into(),
            api_handle: "a@1".into(),
            lifecycle: LifecycleState::Created,
            environment: "development".into(),
            revision: 1,
            base_path: base.into(),
            target: Target::new(target),
            channels: channels.iter().map(|c| ChannelPattern::new(c)).collect(),
            key_hashes: Arc::default(),
            subscriptions: Arc::default(),
            security: ApiSecurity::default(),
            api_key_header: None,
            limits: ApiLimits::default(),
            backend_headers: Vec::new(),
            compression: asyncgate_core::CompressionShape::Off,
            series: Default::default(),
        })
    }
}

/// An API's target URL, read once per snapshot: where the gateway dials, the `Host` it
/// names, and the URL requests are mapped under.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured.
    pub url: String,
    /// Where it leads, or why it cannot be dialed (said at each handshake).
    pub dial: Result<Arc<Dial>, String>,
}

/// A target's scheme, host and port, and its authority for the `Host` header.
#[derive(Debug, Clone)]
pub struct Dial {
    pub secure: bool,
    /// Without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    pub authority: HeaderValue,
}

impl Target {
    pub fn new(url: &str) -> Target {
        Target {
            url: url.to_string(),
            dial: Dial::read(url).map(Arc::new),
        }
    }

    /// The request target (path and query) the backend is asked for when a client asked
    /// for `rest` below the API's base path, with `query`.
    pub fn request_path(&self, rest: &str, query: Option<&str>) -> String {
        let mut url = backend_url(&self.url, rest, query);
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        match url[after_scheme..].find('/') {
            Some(i) => url.split_off(after_scheme + i),
            None => "/".into(),
        }
    }
}

impl Dial {
    fn read(url: &str) -> Result<Dial, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("the API's target URL {url} is invalid: {e}"))?;
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            other => return Err(format!("the target scheme {other:?} is not ws or wss")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the target URL {url} has no host"))?;
        Ok(Dial {
            secure,
            host: authority
                .host()
                .trim_matches(|c| c == '[' || c == ']')
                .to_string(),
            port: authority
                .port_u16()
                .unwrap_or(if secure { 443 } else { 80 }),
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|e| format!("the target URL {url} has an invalid host: {e}"))?,
        })
    }
}

/// A matched request: the route, the channel and what to ask the backend for.
#[derive(Debug)]
pub struct Matched {
    pub route: Arc<Route>,
    pub channel: String,
    /// The backend request's target: the path below the target URL's, and the query.
    pub backend_path: String,
    /// The channel's validation rules for messages from the client and from the backend.
    pub rules: [Option<Arc<crate::validate::Rules>>; 2],
}

#[derive(Debug, PartialEq)]
pub enum Miss {
    /// No API is deployed under this path on this listener.
    NoApi,
    /// An API owns the base path but none of its channels matches the rest.
    NoChannel { api: String, channels: Vec<String> },
    /// A path segment below the base path that could move the backend's path: `.`, `..`
    /// (also percent-encoded), or one holding an encoded slash, backslash or NUL.
    UnsafeSegment(String),
}

/// Whether a segment of a request path could change which path the backend serves.
fn unsafe_segment(segment: &str) -> bool {
    let bad = |bytes: &[u8]| {
        matches!(bytes, b"." | b"..") || bytes.iter().any(|b| matches!(b, b'/' | b'\\' | 0))
    };
    if !segment.contains('%') {
        // The common case: nothing to decode, nothing allocated.
        return bad(segment.as_bytes());
    }
    bad(&percent_encoding::percent_decode_str(segment).collect::<Vec<u8>>())
}

/// Find the route for `path` (no query) among `routes` (longest base path first).
pub fn find(routes: &[Arc<Route>], path: &str, query: Option<&str>) -> Result<Matched, Miss> {
    let route = routes
        .iter()
        .find(|r| {
            path.strip_prefix(r.base_path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .ok_or(Miss::NoApi)?;
    let rest = &path[route.base_path.len()..];
    if let Some(bad) = rest.split('/').find(|s| unsafe_segment(s)) {
        return Err(Miss::UnsafeSegment(bad.to_string()));
    }
    let channel = route
        .channels
        .iter()
        .find(|c| c.matches(rest))
        .ok_or_else(|| Miss::NoChannel {
            api: route.api_name.clone(),
            channels: route.channels.iter().map(|c| c.address.clone()).collect(),
        })?;
    Ok(Matched {
        route: route.clone(),
        rules: channel.rules.clone(),
        channel: channel.address.clone(),
        backend_path: route.target.request_path(rest, query),
    })
}

/// The target URL with the path below the base path appended, and the query kept.
fn backend_url(target: &str, rest: &str, query: Option<&str>) -> String {
    let (target, target_query) = match target.split_once('?') {
        Some((t, q)) => (t, Some(q)),
        None => (target, None),
    };
    let after_scheme = target.find("://").map(|i| i + 3).unwrap_or(0);
    let has_path = target[after_scheme..].contains('/');
    let mut url = String::with_capacity(target.len() + rest.len() + 16);
    if rest.is_empty() || rest == "/" {
        url.push_str(target);
        if !has_path {
            url.push('/');
        }
    } else {
        url.push_str(target.trim_end_matches('/'));
        url.push_str(rest);
    }
    let queries: Vec<&str> = [target_query, query]
        .into_iter()
        .flatten()
        .filter(|q| !q.is_empty())
        .collect();
    if !queries.is_empty() {
        url.push('?');
        url.push_str(&queries.join("&"));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(base: &str, target: &str, channels: &[&str]) -> Arc<Route> {
        Route::example(base, target, channels)
    }

    #[test]
    fn root_channel_matches_with_and_without_slash() {
        let routes = vec![route(
            "/default/chat-api/v1.0.0",
            "ws://127.0.0.1:9",
            &["/"],
        )];
        for p in ["/default/chat-api/v1.0.0", "/default/chat-api/v1.0.0/"] {
            let m = find(&routes, p, None).unwrap();
            assert_eq!(m.backend_path, "/");
        }
        assert_eq!(
            find(&routes, "/default/chat-api/v1.0.01", None).unwrap_err(),
            Miss::NoApi
        );
    }

    #[test]
    fn parameters_map_to_the_backend_path() {
        let routes = vec![route(
            "/p/x/v1",
            "wss://b.example/base/",
            &["/rooms/{roomId}"],
        )];
        let m = find(&routes, "/p/x/v1/rooms/42", Some("lang=en")).unwrap();
        assert_eq!(m.backend_path, "/base/rooms/42?lang=en");
        assert_eq!(m.channel, "/rooms/{roomId}");
        assert!(matches!(
            find(&routes, "/p/x/v1/rooms", None),
            Err(Miss::NoChannel { .. })
        ));
        assert!(matches!(
            find(&routes, "/p/x/v1/rooms/1/2", None),
            Err(Miss::NoChannel { .. })
        ));
    }

    #[test]
    fn segments_that_could_move_the_backend_path_are_refused() {
        let routes = vec![route("/p/x/v1", "ws://b/base", &["/rooms/{roomId}"])];
        for bad in [
            ".", "..", "%2e", "%2E%2e", "a%2Fb", "a%2fb", "a%5Cb", "a%00b", "a\\b",
        ] {
            assert_eq!(
                find(&routes, &format!("/p/x/v1/rooms/{bad}"), None).unwrap_err(),
                Miss::UnsafeSegment(bad.into()),
                "{bad}"
            );
        }
        assert!(find(&routes, "/p/x/v1/rooms/a.b", None).is_ok());
        assert!(find(&routes, "/p/x/v1/rooms/%41", None).is_ok());
    }

    #[test]
    fn longest_base_path_wins() {
        let mut routes = vec![
            route("/a", "ws://one", &["/"]),
            route("/a/b", "ws://two", &["/"]),
        ];
        routes.sort_by_key(|r| std::cmp::Reverse(r.base_path.len()));
        assert_eq!(
            find(&routes, "/a/b", None).unwrap().route.target.url,
            "ws://two"
        );
    }

    #[test]
    fn target_path_kept_for_root_channel() {
        assert_eq!(
            backend_url("wss://h/samples/chat/v1.0", "", None),
            "wss://h/samples/chat/v1.0"
        );
        assert_eq!(
            backend_url("ws://h?x=1", "/", Some("y=2")),
            "ws://h/?x=1&y=2"
        );
        assert_eq!(
            Target::new("ws://h?x=1").request_path("/", Some("y=2")),
            "/?x=1&y=2"
        );
        assert_eq!(
            Target::new("wss://h/samples/chat/v1.0").request_path("", None),
            "/samples/chat/v1.0"
        );
    }

    #[test]
    fn a_target_is_read_once_into_where_to_dial() {
        let dial = Target::new("wss://[::1]:8443/x").dial.unwrap();
        assert!(dial.secure);
        assert_eq!((dial.host.as_str(), dial.port), ("::1", 8443));
        assert_eq!(dial.authority, "[::1]:8443");
        let dial = Target::new("ws://backend.example/x").dial.unwrap();
        assert_eq!((dial.port, dial.secure), (80, false));
        assert!(Target::new("http://b/x")
            .dial
            .unwrap_err()
            .contains("not ws or wss"));
        assert!(Target::new("not a url").dial.is_err());
    }
}
