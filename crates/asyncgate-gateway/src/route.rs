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
    pub target: String,
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

/// A matched request: the route, the channel and the backend URL to dial.
#[derive(Debug)]
pub struct Matched {
    pub route: Arc<Route>,
    pub channel: String,
    pub backend_url: String,
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
        backend_url: backend_url(&route.target, rest, query),
    })
}

/// The target URL with the path below the base path appended, and the query kept.
pub fn backend_url(target: &str, rest: &str, query: Option<&str>) -> String {
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
        Arc::new(Route {
            api_id: "a".into(),
            org_id: "o".into(),
            api_name: "A".into(),
            api_handle: "a@1".into(),
            lifecycle: LifecycleState::Created,
            environment: "development".into(),
            revision: 1,
            base_path: base.into(),
            target: target.into(),
            channels: channels.iter().map(|c| ChannelPattern::new(c)).collect(),
            key_hashes: Arc::default(),
            subscriptions: Arc::default(),
            security: ApiSecurity::default(),
            api_key_header: None,
            limits: ApiLimits::default(),
            backend_headers: Vec::new(),
            compression: asyncgate_core::CompressionShape::Off,
        })
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
            assert_eq!(m.backend_url, "ws://127.0.0.1:9/");
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
        assert_eq!(m.backend_url, "wss://b.example/base/rooms/42?lang=en");
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
            find(&routes, "/a/b", None).unwrap().backend_url,
            "ws://two/"
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
    }
}
