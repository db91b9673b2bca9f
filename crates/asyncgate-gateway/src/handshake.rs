//! Every check made before the upgrade, in order: a valid RFC 6455 upgrade request, a
//! route, an API that accepts connections, a credential. Also builds the request sent to
//! the backend, from which client credentials and hop-by-hop headers are removed.

use crate::auth;
use crate::deflate;
use crate::error::GatewayError;
use crate::forwarded::{self, TrustedProxies};
use crate::route::{self, Matched, Miss};
use crate::snapshot::Compiled;
use asyncgate_core::ListenerKind;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

/// Which listener a request arrived on.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub environment: String,
    pub kind: ListenerKind,
    /// The listener's TLS, when clients connect with `wss://`.
    pub tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
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
    pub backend_request: Request<()>,
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
    let matched = route::find(routes, path, credentials.backend_query.as_deref()).map_err(|miss| match miss {
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

    let mut backend_request = backend_request(
        req.headers(),
        &matched.backend_url,
        peer,
        listener.proto(),
        trusted,
    )?;
    forwarded::set_tracing(backend_request.headers_mut(), req.headers(), request_id);
    let headers = backend_request.headers_mut();
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
        backend_request
            .headers_mut()
            .insert(name.clone(), value.clone());
    }
    let compression = deflate::plan(
        route.compression,
        req.headers(),
        backend_request.headers_mut(),
    );
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

fn backend_request(
    client: &HeaderMap,
    backend_url: &str,
    peer: SocketAddr,
    proto: &str,
    trusted: &TrustedProxies,
) -> Result<Request<()>, GatewayError> {
    let uri: http::Uri = backend_url.parse().map_err(|e| {
        GatewayError::backend(
            StatusCode::BAD_GATEWAY,
            "bad_target",
            format!("the API's target URL {backend_url} is invalid: {e}"),
        )
    })?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| {
            GatewayError::backend(
                StatusCode::BAD_GATEWAY,
                "bad_target",
                format!("the target URL {backend_url} has no host"),
            )
        })?;

    // Headers the client listed in `Connection` are hop-by-hop too.
    let listed: Vec<String> = client
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();

    let mut out = Request::builder().method(Method::GET).uri(uri);
    let headers = out.headers_mut().expect("fresh builder");
    for (name, value) in client {
        let n = name.as_str();
        if forwarded_as_is(n) && !listed.iter().any(|l| l == n) {
            headers.append(name.clone(), value.clone());
        }
    }
    forwarded::set(headers, client, peer, proto, trusted);
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(headers, "host", &authority);
    set(headers, "connection", "Upgrade");
    set(headers, "upgrade", "websocket");
    set(headers, "sec-websocket-version", "13");
    set(headers, "sec-websocket-key", &generate_key());
    out.body(())
        .map_err(|e| GatewayError::internal(format!("building the backend request: {e}")))
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
        let req = backend_request(
            &h,
            "ws://127.0.0.1:9/x",
            "10.0.0.1:5000".parse().unwrap(),
            "https",
            &TrustedProxies::default(),
        )
        .unwrap();
        let out = req.headers();
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
