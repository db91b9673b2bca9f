//! Client credentials: where they are read from (headers for programs, query parameters
//! for browsers), how they are checked, and how they are removed before forwarding.

use crate::error::GatewayError;
use crate::route::Route;
use crate::snapshot::Compiled;
use asyncgate_core::credential::{hash_secret, unix_now, AccessClaims};
use asyncgate_core::PlanLimits;
use http::{header, HeaderMap, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use std::sync::Arc;

/// Request header carrying an API key.
pub const API_KEY_HEADER: &str = "api-key";
/// Query parameter carrying an API key (for clients that cannot set headers).
pub const API_KEY_QUERY: &str = "apikey";
/// Query parameter carrying a bearer token (for clients that cannot set headers).
pub const TOKEN_QUERY: &str = "access_token";
/// Prefix of a `Sec-WebSocket-Protocol` entry carrying a bearer token (browsers can set
/// no header but this one): `access_token.<token>`.
pub const TOKEN_PROTOCOL: &str = "access_token.";
/// Prefix of a `Sec-WebSocket-Protocol` entry carrying an API key: `apikey.<key>`.
pub const API_KEY_PROTOCOL: &str = "apikey.";

/// Headers that carry client credentials: read here, never forwarded.
pub const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", API_KEY_HEADER];

/// A credential as the client presented it.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    ApiKey(String),
    Bearer(String),
}

/// What a request's credential headers and query say: the one credential it presents
/// (if any) and the query the backend may see. One parser decides both, so whatever is
/// read as a credential is exactly what is removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    pub presented: Option<Presented>,
    /// The query without credential parameters, as the client wrote the rest; `None`
    /// when nothing is left.
    pub backend_query: Option<String>,
    /// When the client offered a credential as a subprotocol: that entry (answered back
    /// when the backend chooses none, as browsers require an offered one), and the
    /// offer the backend may see (`None`: nothing else was offered).
    pub protocol: Option<ProtocolCarrier>,
}

/// A credential carried in `Sec-WebSocket-Protocol`.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolCarrier {
    pub entry: String,
    pub backend_offer: Option<String>,
}

/// Read the credentials of a request: the `api-key` header (and `key_header`, an API's
/// own), `Authorization: Bearer`, the `apikey` and `access_token` query parameters, and
/// `apikey.` / `access_token.` entries of `Sec-WebSocket-Protocol`. Parameter names are
/// compared after percent-decoding and without regard to case, so no spelling of them
/// reaches the backend. The same credential given more than once counts once; two different ones
/// are refused (400), never chosen between.
pub fn read_credentials(
    headers: &HeaderMap,
    query: Option<&str>,
    key_header: Option<&http::HeaderName>,
) -> Result<Credentials, GatewayError> {
    let mut found: Option<Presented> = None;
    let mut add = |p: Presented| -> Result<(), GatewayError> {
        match &found {
            Some(existing) if *existing != p => Err(GatewayError::client(
                StatusCode::BAD_REQUEST,
                "ambiguous_credentials",
                "the request presents more than one credential: send exactly one API key or bearer token",
            )),
            Some(_) => Ok(()),
            None => {
                found = Some(p);
                Ok(())
            }
        }
    };
    for v in headers.get_all(API_KEY_HEADER) {
        add(Presented::ApiKey(header_text(v)?.trim().to_string()))?;
    }
    if let Some(name) = key_header {
        for v in headers.get_all(name) {
            add(Presented::ApiKey(header_text(v)?.trim().to_string()))?;
        }
    }
    let mut protocol = None;
    let offers = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL);
    if offers.iter().any(|v| {
        v.as_bytes()
            .windows(API_KEY_PROTOCOL.len())
            .any(|w| w.eq_ignore_ascii_case(API_KEY_PROTOCOL.as_bytes()))
            || v.as_bytes()
                .windows(TOKEN_PROTOCOL.len())
                .any(|w| w.eq_ignore_ascii_case(TOKEN_PROTOCOL.as_bytes()))
    }) {
        let mut kept: Vec<&str> = Vec::new();
        let mut entry = None;
        for v in offers {
            for p in header_text(v)?
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let starts = |prefix: &str| {
                    p.len() > prefix.len() && p[..prefix.len()].eq_ignore_ascii_case(prefix)
                };
                if starts(TOKEN_PROTOCOL) {
                    add(Presented::Bearer(p[TOKEN_PROTOCOL.len()..].to_string()))?;
                    entry.get_or_insert(p);
                } else if starts(API_KEY_PROTOCOL) {
                    add(Presented::ApiKey(p[API_KEY_PROTOCOL.len()..].to_string()))?;
                    entry.get_or_insert(p);
                } else {
                    kept.push(p);
                }
            }
        }
        protocol = entry.map(|e| ProtocolCarrier {
            entry: e.to_string(),
            backend_offer: (!kept.is_empty()).then(|| kept.join(", ")),
        });
    }
    for v in headers.get_all(header::AUTHORIZATION) {
        let v = header_text(v)?.trim();
        // Other schemes are no credential of the gateway's (and are not forwarded).
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            add(Presented::Bearer(v[7..].trim().to_string()))?;
        }
    }
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Only an encoded name needs decoding (and an allocation) to be compared.
        let decoded;
        let name = if name.contains(['%', '+']) {
            decoded = decode(name);
            decoded.as_str()
        } else {
            name
        };
        if name.eq_ignore_ascii_case(API_KEY_QUERY) {
            add(Presented::ApiKey(decode(value)))?;
        } else if name.eq_ignore_ascii_case(TOKEN_QUERY) {
            add(Presented::Bearer(decode(value)))?;
        } else {
            kept.push(pair);
        }
    }
    Ok(Credentials {
        presented: found,
        backend_query: (!kept.is_empty()).then(|| kept.join("&")),
        protocol,
    })
}

/// A query component percent-decoded (and `+` as a space), as form decoding reads it.
fn decode(part: &str) -> String {
    url::form_urlencoded::parse(part.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

fn header_text(v: &http::HeaderValue) -> Result<&str, GatewayError> {
    v.to_str().map_err(|_| {
        GatewayError::client(
            StatusCode::BAD_REQUEST,
            "bad_credentials",
            "a credential header holds bytes that are not visible ASCII",
        )
    })
}

/// Prefix of the identity of a connection made with an API key of one API (then the
/// key's hash).
pub const KEY_CREDENTIAL: &str = "key:";
/// Prefix of the identity of a connection made with an application's credential: then
/// the application id, `/`, and `key:<hash>` or `token`.
pub const APP_CREDENTIAL: &str = "app:";

/// Prefix of the identity of a connection made with a test-console token (then the
/// token's subject).
pub const TOKEN_CREDENTIAL: &str = "token:";

/// The identity of a connection to an API whose security is off.
pub const ANONYMOUS: &str = "anonymous";

/// The application a connection is made for, and the plan of its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub app_id: Arc<str>,
    pub plan: PlanLimits,
}

/// A credential that passed: who it identifies (for per-credential limits and for
/// checking live connections again), when it expires if it does, and the subscription
/// it uses if it is an application's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: String,
    /// Seconds since the Unix epoch (a bearer token's `exp`).
    pub expires_at: Option<u64>,
    pub subscriber: Option<Subscriber>,
}

impl Verified {
    /// Who called, as a backend is told: the subject, the application if any, and the
    /// kind of credential (`api-key`, `token` or `none`). Read from the identity, which
    /// holds all of it.
    pub fn caller(&self) -> (&str, Option<&str>, &'static str) {
        if let Some(rest) = self.identity.strip_prefix(APP_CREDENTIAL) {
            let (app, how) = rest.split_once('/').unwrap_or((rest, ""));
            let kind = if how.starts_with(KEY_CREDENTIAL) {
                "api-key"
            } else {
                "token"
            };
            return (app, Some(app), kind);
        }
        if let Some(hash) = self.identity.strip_prefix(KEY_CREDENTIAL) {
            // A key of the API's own: named by the start of its hash, never the key.
            return (
                &self.identity[..KEY_CREDENTIAL.len() + hash.len().min(12)],
                None,
                "api-key",
            );
        }
        if let Some(sub) = self.identity.strip_prefix(TOKEN_CREDENTIAL) {
            return (sub, None, "token");
        }
        (ANONYMOUS, None, "none")
    }
}

fn unauthorized(code: &'static str, msg: String) -> GatewayError {
    GatewayError::client(StatusCode::UNAUTHORIZED, code, msg)
        .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"asyncgate\"")
}

/// The subscription of `app_id` to the route's API, or 403.
fn subscription(route: &Route, app_id: &Arc<str>) -> Result<Subscriber, GatewayError> {
    match route.subscriptions.get(app_id) {
        Some(plan) => Ok(Subscriber {
            app_id: app_id.clone(),
            plan: *plan,
        }),
        None => Err(GatewayError::client(
            StatusCode::FORBIDDEN,
            "not_subscribed",
            format!("the application is not subscribed to {}", route.api_name),
        )),
    }
}

/// Seconds of clock difference allowed when checking a token's times.
pub const TOKEN_LEEWAY: u64 = 5;

/// 403 unless `granted` holds every scope the route's API requires.
fn check_scopes<'a>(
    route: &Route,
    granted: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), GatewayError> {
    if route.security.scopes_met(granted) {
        return Ok(());
    }
    Err(GatewayError::client(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!(
            "{} requires a token with the scopes {}",
            route.api_name,
            route.security.required_scopes.join(" ")
        ),
    ))
}

/// A token's verification error as the client is told it.
fn token_error(e: jsonwebtoken::errors::Error) -> GatewayError {
    match e.kind() {
        ErrorKind::ExpiredSignature => {
            unauthorized("token_expired", "the bearer token has expired".into())
        }
        _ => unauthorized(
            "invalid_token",
            format!("the bearer token is not valid: {e}"),
        ),
    }
}

/// What signed a token that was not verified before.
enum Signed {
    /// The platform: its claims.
    Platform(AccessClaims),
    /// One of the organization's identity providers: the credential it proves.
    External(Verified),
}

/// Verify a token's signature with the key it names: the platform's (then its issuer and
/// times), or one of the route organization's identity providers' (then theirs, and the
/// application the provider's claim names).
fn verify_signature(
    compiled: &Compiled,
    route: &Route,
    token: &str,
) -> Result<Signed, GatewayError> {
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| {
            unauthorized(
                "invalid_token",
                format!("the bearer token is not a JWT: {e}"),
            )
        })?
        .kid
        .unwrap_or_default();
    if let Some(key) = compiled.token_keys.get(&kid) {
        return jsonwebtoken::decode::<AccessClaims>(token, key, &compiled.token_validation)
            .map(|t| Signed::Platform(t.claims))
            .map_err(token_error);
    }
    let providers = compiled
        .identity_providers
        .get(&route.org_id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Some((provider, (key, validation))) =
        providers.iter().find_map(|p| Some((p, p.keys.get(&kid)?)))
    else {
        // Perhaps a provider rotated its keys: ask for them again (a full queue means
        // a refresh is already asked for).
        if let Some(refresh) = &compiled.key_refresh {
            for p in providers {
                let _ = refresh.try_send(p.id.clone());
            }
        }
        return Err(unauthorized(
            "invalid_token",
            if providers.is_empty() {
                "the bearer token is not signed by a key of this platform".into()
            } else {
                "the bearer token is signed by a key neither this platform nor the organization's identity providers have (their keys are being fetched again: retry shortly)".into()
            },
        ));
    };
    let claims =
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, key, validation)
            .map_err(token_error)?
            .claims;
    let named = claims
        .get(&provider.app_claim)
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            unauthorized(
                "invalid_token",
                format!(
                    "the token has no `{}` claim naming its application",
                    provider.app_claim
                ),
            )
        })?;
    let app_id = compiled
        .apps_by_org
        .get(&route.org_id)
        .and_then(|apps| apps.get(named))
        .ok_or_else(|| {
            unauthorized(
                "invalid_token",
                format!(
                    "the token's `{}` names no usable application of this organization",
                    provider.app_claim
                ),
            )
        })?;
    let subscriber = subscription(route, app_id)?;
    // OAuth2's space-separated `scope`, or a `scp` list as some providers write it.
    let scopes: Vec<&str> = match (claims.get("scope"), claims.get("scp")) {
        (Some(serde_json::Value::String(s)), _) => s.split(' ').collect(),
        (_, Some(serde_json::Value::Array(list))) => {
            list.iter().filter_map(|v| v.as_str()).collect()
        }
        (_, Some(serde_json::Value::String(s))) => s.split(' ').collect(),
        _ => Vec::new(),
    };
    check_scopes(route, scopes.iter().copied())?;
    Ok(Signed::External(Verified {
        identity: format!("{APP_CREDENTIAL}{app_id}/token"),
        expires_at: claims.get("exp").and_then(|v| v.as_u64()),
        subscriber: Some(subscriber),
    }))
}

/// Check a credential against a route: 401 when it is not a valid credential, 403 when
/// it is but its application is not subscribed to the route's API.
pub fn verify(
    compiled: &Compiled,
    route: &Route,
    credential: Option<Presented>,
) -> Result<Verified, GatewayError> {
    match credential {
        None => Err(unauthorized(
            "missing_credentials",
            "no credentials: send an API key in the `api-key` header (or `apikey` query parameter) or a bearer token in `Authorization` (or `access_token` query parameter)".into(),
        )),
        Some(Presented::ApiKey(key)) => {
            let hash = hash_secret(&key);
            if route.key_hashes.contains(&hash) {
                return Ok(Verified {
                    identity: format!("{KEY_CREDENTIAL}{hash}"),
                    expires_at: None,
                    subscriber: None,
                });
            }
            let Some(app_key) = compiled.app_keys.get(&hash) else {
                return Err(unauthorized("invalid_api_key", format!("the API key is not valid for {}", route.api_name)));
            };
            if app_key.environment != route.environment {
                return Err(unauthorized(
                    "invalid_api_key",
                    format!("the API key is for the {} environment, not {}", app_key.environment, route.environment),
                ));
            }
            let subscriber = subscription(route, &app_key.app_id)?;
            Ok(Verified {
                identity: format!("{APP_CREDENTIAL}{}/{KEY_CREDENTIAL}{hash}", app_key.app_id),
                expires_at: None,
                subscriber: Some(subscriber),
            })
        }
        Some(Presented::Bearer(token)) => {
            let claims = match compiled.verified_claims(&token) {
                // Verified before: only its time is checked again.
                Some(claims) => {
                    if claims.exp + TOKEN_LEEWAY <= unix_now() {
                        return Err(unauthorized("token_expired", "the bearer token has expired".into()));
                    }
                    claims
                }
                None => match verify_signature(compiled, route, &token)? {
                    Signed::Platform(claims) => {
                        let claims = Arc::new(claims);
                        compiled.remember_verified(&token, claims.clone());
                        claims
                    }
                    Signed::External(verified) => return Ok(verified),
                },
            };
            if claims.aud != route.api_id && claims.aud != route.org_id {
                return Err(unauthorized("invalid_token", format!("the bearer token is not valid for {}", route.api_name)));
            }
            if let Some(env) = &claims.env {
                if *env != route.environment {
                    return Err(unauthorized(
                        "invalid_token",
                        format!("the bearer token was issued for the {env} environment, not {}", route.environment),
                    ));
                }
            }
            match &claims.client_id {
                // An application's token: its application must be usable and subscribed.
                Some(client_id) => {
                    let app_id = compiled
                        .apps_by_client
                        .get(client_id)
                        .ok_or_else(|| unauthorized("invalid_token", "the token's application is blocked or deleted".into()))?;
                    let subscriber = subscription(route, app_id)?;
                    check_scopes(route, claims.scope.as_deref().unwrap_or("").split(' '))?;
                    Ok(Verified {
                        identity: format!("{APP_CREDENTIAL}{app_id}/token"),
                        expires_at: Some(claims.exp),
                        subscriber: Some(subscriber),
                    })
                }
                // A test-console token, minted for this one API by its publishers.
                None if claims.aud == route.api_id => Ok(Verified {
                    identity: format!("{TOKEN_CREDENTIAL}{}", claims.sub),
                    expires_at: Some(claims.exp),
                    subscriber: None,
                }),
                None => Err(unauthorized("invalid_token", "a token without a client_id is valid for one API only".into())),
            }
        }
    }
}

/// Whether the credential a live connection was admitted with is still accepted for
/// `route`, and if not why: the one rule for open connections, matching [`verify`].
pub fn still_valid(compiled: &Compiled, route: &Route, identity: &str) -> Result<(), &'static str> {
    if identity == ANONYMOUS {
        return if route.security.enabled {
            Err("the API now requires credentials")
        } else {
            Ok(())
        };
    }
    if let Some(hash) = identity.strip_prefix(KEY_CREDENTIAL) {
        return if route.key_hashes.contains(hash) {
            Ok(())
        } else {
            Err("API key revoked")
        };
    }
    let Some((app_id, how)) = identity
        .strip_prefix(APP_CREDENTIAL)
        .and_then(|r| r.split_once('/'))
    else {
        return Ok(());
    };
    if !route.subscriptions.contains_key(app_id) {
        // Blocked or deleted applications are absent from the snapshot's subscriptions.
        return Err("subscription ended or application blocked");
    }
    match how.strip_prefix(KEY_CREDENTIAL) {
        Some(hash) if !compiled.app_keys.contains_key(hash) => Err("API key revoked"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)], query: Option<&str>) -> Result<Credentials, String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        read_credentials(&h, query, None).map_err(|e| e.code.to_string())
    }

    fn key(k: &str) -> Option<Presented> {
        Some(Presented::ApiKey(k.into()))
    }

    #[test]
    fn credentials_are_found_wherever_they_are_sent() {
        let c = read(&[], Some("apikey=k1&x=1")).unwrap();
        assert_eq!(
            (c.presented, c.backend_query),
            (key("k1"), Some("x=1".into()))
        );
        let c = read(&[], Some("access_token=t%2B1")).unwrap();
        assert_eq!(c.presented, Some(Presented::Bearer("t+1".into())));
        assert_eq!(c.backend_query, None);
        let c = read(&[("Authorization", "bEaReR tok")], None).unwrap();
        assert_eq!(c.presented, Some(Presented::Bearer("tok".into())));
        assert_eq!(
            read(&[("api-key", " key ")], None).unwrap().presented,
            key("key")
        );
        let c = read(&[("authorization", "Basic dTpw")], Some("a=b")).unwrap();
        assert_eq!((c.presented, c.backend_query), (None, Some("a=b".into())));
    }

    #[test]
    fn every_spelling_of_a_credential_parameter_is_read_and_removed() {
        for query in [
            "APIKEY=k",
            "ApiKey=k",
            "api%6Bey=k",
            "%61%70%69%6b%65%79=k",
            "apikey=k&apikey=k",
            "room=1&apikey=k&apikey=k&x",
        ] {
            let c = read(&[], Some(query)).unwrap();
            assert_eq!(c.presented, key("k"), "{query}");
            let rest = c.backend_query.unwrap_or_default();
            assert!(
                !rest.to_ascii_lowercase().contains("key"),
                "{query} -> {rest}"
            );
        }
        let c = read(&[], Some("Access_Token=t&access%5Ftoken=t")).unwrap();
        assert_eq!(c.presented, Some(Presented::Bearer("t".into())));
        assert_eq!(c.backend_query, None);
        // Lookalikes are not credentials and stay.
        let c = read(&[], Some("apikeys=1&my_apikey=2")).unwrap();
        assert_eq!(c.presented, None);
        assert_eq!(c.backend_query.as_deref(), Some("apikeys=1&my_apikey=2"));
    }

    #[test]
    fn two_different_credentials_are_refused_never_chosen_between() {
        let ambiguous = Err("ambiguous_credentials".to_string());
        assert_eq!(read(&[], Some("apikey=a&apikey=b")).map(|_| ()), ambiguous);
        assert_eq!(
            read(&[("api-key", "a")], Some("apikey=b")).map(|_| ()),
            ambiguous
        );
        assert_eq!(
            read(&[("api-key", "a")], Some("access_token=a")).map(|_| ()),
            ambiguous
        );
        assert_eq!(
            read(&[("api-key", "a"), ("api-key", "b")], None).map(|_| ()),
            ambiguous
        );
        assert_eq!(
            read(&[("authorization", "Bearer a")], Some("ACCESS_TOKEN=b")).map(|_| ()),
            ambiguous
        );
        // The same key in the header and the query is one credential.
        assert_eq!(
            read(&[("api-key", "a")], Some("apikey=a"))
                .unwrap()
                .presented,
            key("a")
        );
    }

    #[test]
    fn a_credential_offered_as_a_subprotocol_is_read_and_kept_from_the_backend() {
        let c = read(
            &[("sec-websocket-protocol", "chat, access_token.a.b.c")],
            None,
        )
        .unwrap();
        assert_eq!(c.presented, Some(Presented::Bearer("a.b.c".into())));
        let p = c.protocol.unwrap();
        assert_eq!(p.entry, "access_token.a.b.c");
        assert_eq!(p.backend_offer.as_deref(), Some("chat"));
        let c = read(&[("sec-websocket-protocol", "apikey.agk_x")], None).unwrap();
        assert_eq!(c.presented, key("agk_x"));
        assert_eq!(c.protocol.unwrap().backend_offer, None);
        // Without a credential entry, the offer is left alone.
        assert_eq!(
            read(&[("sec-websocket-protocol", "chat, superchat")], None)
                .unwrap()
                .protocol,
            None
        );
        assert_eq!(
            read(
                &[("sec-websocket-protocol", "apikey.a"), ("api-key", "b")],
                None
            )
            .map(|_| ()),
            Err("ambiguous_credentials".to_string())
        );
    }
}
