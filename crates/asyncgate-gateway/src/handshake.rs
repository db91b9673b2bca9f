//! Every check made before the upgrade, in order: a valid RFC 6455 upgrade request, a
//! route, an API that accepts connections, a credential. Also builds the request sent to
//! the backend, from which client credentials and hop-by-hop headers are removed.

use crate::auth;
use crate::deflate;
use crate::error::GatewayError;
use crate::forwarded::{self, TrustedProxies};
use crate::route::Dial;
use crate::route::{self, Matched, Miss};
use crate::snapshot::Compiled;
use asyncgate_core::ListenerKind;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

/// Which listener a request arrived on.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub environment: String,
    pub kind: ListenerKind,
    /// The listener's TLS, when clients connect with `wss://`.
    pub tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    /// Its handshake-latency series.
    pub handshake_series: prometheus_client::metrics::histogram::Histogram,
}

impl ListenerInfo {
    /// What the client used, as `X-Forwarded-Proto` tells the backend.
    pub fn proto(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// An admitted client: where it goes and what to send the backend.
pub struct Admission {
    pub matched: Matched,
    /// The client's `Sec-WebSocket-Key`, to compute the 101's accept value.
    pub client_key: String,
    pub backend_request: BackendRequest,
    /// Who the credential identifies, and until when.
    pub credential: auth::Verified,
    /// A credential the client offered as a subprotocol: answered back when the backend
    /// chooses none.
    pub credential_protocol: Option<HeaderValue>,
    /// What was done with the client's permessage-deflate offer.
    pub compression: deflate::Plan,
}

/// Headers never forwarded to the backend as the client sent them: hop-by-hop ones, the
/// handshake's own (the gateway makes a new handshake; extensions are its to pass on,
/// [`deflate::plan`]), client credentials
/// ([`auth::CREDENTIAL_HEADERS`]) and forwarding headers ([`forwarded::FORWARDING_HEADERS`]).
const NOT_FORWARDED: [&str; 16] = [
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    // Only the gateway says who called (a client's own would be a forgery).
    asyncgate_core::credential::CALLER_ASSERTION_HEADER,
];

fn forwarded_as_is(name: &str) -> bool {
    !NOT_FORWARDED.contains(&name)
        && !auth::CREDENTIAL_HEADERS.contains(&name)
        && !forwarded::FORWARDING_HEADERS.contains(&name)
}

pub fn admit<B>(
    req: &Request<B>,
    listener: &ListenerInfo,
    compiled: &Compiled,
    peer: SocketAddr,
    trusted: &TrustedProxies,
    request_id: &str,
) -> Result<Admission, GatewayError> {
    let client_key = check_upgrade(req)?;
    let routes = compiled.routes(&listener.environment, listener.kind);
    let path = req.uri().path();
    let mut credentials = auth::read_credentials(req.headers(), req.uri().query(), None)?;
    // The backend gets the query without credential parameters.
    let mut matched = route::find(routes, path, credentials.backend_query.as_deref()).map_err(|miss| match miss {
        Miss::NoApi => GatewayError::client(
            StatusCode::NOT_FOUND,
            "no_api",
            format!(
                "no API is deployed at {path} on the {} {} listener",
                listener.environment, listener.kind
            ),
        ),
        Miss::UnsafeSegment(segment) => GatewayError::client(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("the path segment `{segment}` is not allowed: no `.` or `..` segments, and no encoded slash, backslash or NUL"),
        ),
        Miss::NoChannel { api, channels } => GatewayError::client(
            StatusCode::NOT_FOUND,
            "no_channel",
            format!(
                "{api} has no channel at {path}; its channels are {}",
                channels.join(", ")
            ),
        ),
    })?;
    // Moved into the backend request below.
    let backend_path = std::mem::take(&mut matched.backend_path);
    let route = &matched.route;
    if !route.lifecycle.accepts_connections() {
        // Blocked is temporary (publishing again restores it): the service is unavailable.
        let status = if route.lifecycle == asyncgate_core::LifecycleState::Blocked {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::FORBIDDEN
        };
        return Err(GatewayError::client(
            status,
            "api_unavailable",
            format!(
                "{} is {} and accepts no connections",
                route.api_name, route.lifecycle
            ),
        ));
    }
    if route.api_key_header.is_some() {
        credentials = auth::read_credentials(
            req.headers(),
            req.uri().query(),
            route.api_key_header.as_ref(),
        )?;
    }
    let credential = if route.security.enabled {
        auth::verify(compiled, route, credentials.presented)?
    } else {
        auth::Verified {
            identity: auth::ANONYMOUS.into(),
            expires_at: None,
            subscriber: None,
        }
    };
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !route.security.allows_origin(origin) {
            return Err(GatewayError::client(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "{} does not accept connections from the origin {}",
                    route.api_name,
                    origin.escape_default()
                ),
            ));
        }
    }

    let dial = route.target.dial.as_ref().map_err(|problem| {
        GatewayError::backend(StatusCode::BAD_GATEWAY, "bad_target", problem.clone())
    })?;
    let mut backend_request = backend_request(
        req.headers(),
        dial,
        backend_path,
        peer,
        listener.proto(),
        trusted,
    );
    forwarded::set_tracing(&mut backend_request.headers, req.headers(), request_id);
    let headers = &mut backend_request.headers;
    if let Some(name) = &route.api_key_header {
        headers.remove(name);
    }
    if route.security.backend_jwt {
        if let Some(value) = caller_assertion(compiled, route, &credential) {
            headers.insert(asyncgate_core::credential::CALLER_ASSERTION_HEADER, value);
        }
    }
    let mut credential_protocol = None;
    if let Some(carrier) = credentials.protocol {
        headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
        if let Some(offer) = carrier
            .backend_offer
            .and_then(|o| HeaderValue::from_str(&o).ok())
        {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, offer);
        }
        credential_protocol = HeaderValue::from_str(&carrier.entry).ok();
    }
    for (name, value) in &route.backend_headers {
        headers.insert(name.clone(), value.clone());
    }
    let compression = deflate::plan(route.compression, req.headers(), headers);
    Ok(Admission {
        matched,
        client_key,
        backend_request,
        credential,
        credential_protocol,
        compression,
    })
}

/// A JWT naming the caller for the backend, signed with the gateway's assertion key
/// (valid for a minute: it is read during the handshake).
fn caller_assertion(
    compiled: &Compiled,
    route: &crate::route::Route,
    credential: &auth::Verified,
) -> Option<HeaderValue> {
    let (kid, key) = compiled.caller_signer.as_ref()?;
    let (sub, application, kind) = credential.caller();
    let iat = asyncgate_core::credential::unix_now();
    let claims = asyncgate_core::credential::CallerAssertion {
        iss: compiled.issuer.clone(),
        aud: route.api_id.clone(),
        sub: sub.to_string(),
        application: application.map(str::to_string),
        credential: kind.to_string(),
        environment: route.environment.clone(),
        iat,
        exp: iat + 60,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, key)
        .map_err(|e| tracing::error!(error = %e, "signing a caller assertion failed"))
        .ok()?;
    HeaderValue::from_str(&token).ok()
}

/// RFC 6455 section 4.2.1: what makes a request an opening handshake.
fn check_upgrade<B>(req: &Request<B>) -> Result<String, GatewayError> {
    let h = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(GatewayError::client(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this is a WebSocket endpoint: send an upgrade request (Connection: Upgrade, Upgrade: websocket)",
        )
        .with_header(header::UPGRADE, "websocket"));
    }
    if req.method() != Method::GET {
        return Err(GatewayError::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("a WebSocket handshake uses GET, not {}", req.method()),
        ));
    }
    if req.version() < Version::HTTP_11 {
        return Err(GatewayError::client(
            StatusCode::BAD_REQUEST,
            "bad_handshake",
            "a WebSocket handshake needs HTTP/1.1",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(GatewayError::client(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported_version",
            "only WebSocket version 13 is supported",
        )
        .with_header(header::SEC_WEBSOCKET_VERSION, "13"));
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or_else(|| {
            GatewayError::client(
                StatusCode::BAD_REQUEST,
                "bad_handshake",
                "Sec-WebSocket-Key must be 16 bytes in base64",
            )
        })?;
    Ok(key.to_string())
}

/// What the gateway asks the backend for: where to dial (the route's), the request target
/// and the header fields.
pub struct BackendRequest {
    pub dial: Arc<Dial>,
    pub path: String,
    pub headers: HeaderMap,
}

fn backend_request(
    client: &HeaderMap,
    dial: &Arc<Dial>,
    path: String,
    peer: SocketAddr,
    proto: &'static str,
    trusted: &TrustedProxies,
) -> BackendRequest {
    // Headers the client listed in `Connection` are hop-by-hop too.
    let listed = |name: &str| {
        client
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(name))
    };
    let mut headers = HeaderMap::with_capacity(client.len() + 12);
    for (name, value) in client {
        let n = name.as_str();
        if forwarded_as_is(n) && !listed(n) {
            headers.append(name.clone(), value.clone());
        }
    }
    forwarded::set(&mut headers, client, peer, proto, trusted);
    headers.insert(header::HOST, dial.authority.clone());
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    if let Some(key) = forwarded::value(generate_key()) {
        headers.insert(header::SEC_WEBSOCKET_KEY, key);
    }
    BackendRequest {
        dial: dial.clone(),
        path,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_headers_never_reach_the_backend() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("api-key", "secret".parse().unwrap());
        h.insert("connection", "Upgrade, x-hop".parse().unwrap());
        h.insert("x-hop", "1".parse().unwrap());
        h.insert("sec-websocket-protocol", "chat".parse().unwrap());
        h.insert("host", "gw.example".parse().unwrap());
        h.insert("origin", "https://app.example".parse().unwrap());
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        let target = crate::route::Target::new("ws://127.0.0.1:9/x");
        let req = backend_request(
            &h,
            target.dial.as_ref().unwrap(),
            "/x".into(),
            "10.0.0.1:5000".parse().unwrap(),
            "https",
            &TrustedProxies::default(),
        );
        let out = &req.headers;
        assert!(out.get("authorization").is_none());
        assert!(out.get("api-key").is_none());
        assert!(out.get("x-hop").is_none());
        assert_eq!(out["host"], "127.0.0.1:9");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1");
        assert_eq!(out["x-forwarded-host"], "gw.example");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["sec-websocket-protocol"], "chat");
        assert_eq!(out["origin"], "https://app.example");
        assert_eq!(out["upgrade"], "websocket");
    }
}
