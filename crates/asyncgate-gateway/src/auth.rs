//! Client credentials: where they are read from (headers for programs, query parameters
//! for browsers), how they are checked, and how they are removed before forwarding.

use crate::error::GatewayError;
use crate::route::Route;
use crate::snapshot::Compiled;
use asyncgate_core::credential::{hash_secret, AccessClaims};
use http::{header, HeaderMap, StatusCode};
use jsonwebtoken::{errors::ErrorKind, Algorithm, Validation};

/// Request header carrying an API key.
pub const API_KEY_HEADER: &str = "api-key";
/// Query parameter carrying an API key (for clients that cannot set headers).
pub const API_KEY_QUERY: &str = "apikey";
/// Query parameter carrying a bearer token (for clients that cannot set headers).
pub const TOKEN_QUERY: &str = "access_token";

/// A credential as the client presented it.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    ApiKey(String),
    Bearer(String),
}

/// The first credential found: `api-key` header, `Authorization: Bearer`, then the
/// `apikey` and `access_token` query parameters.
pub fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<Presented> {
    if let Some(v) = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(Presented::ApiKey(v.trim().to_string()));
    }
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(Presented::Bearer(v[7..].trim().to_string()));
        }
    }
    let query = query?;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == API_KEY_QUERY {
            return Some(Presented::ApiKey(v.into_owned()));
        }
        if k == TOKEN_QUERY {
            return Some(Presented::Bearer(v.into_owned()));
        }
    }
    None
}

/// Check a credential against a route. Every failure is a 401 saying what was wrong.
/// Returns who the credential identifies (for per-credential limits).
pub fn verify(
    compiled: &Compiled,
    route: &Route,
    credential: Option<Presented>,
) -> Result<String, GatewayError> {
    let unauthorized = |code, msg: String| {
        GatewayError::client(StatusCode::UNAUTHORIZED, code, msg)
            .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"asyncgate\"")
    };
    match credential {
        None => Err(unauthorized(
            "missing_credentials",
            "no credentials: send an API key in the `api-key` header (or `apikey` query parameter) or a bearer token in `Authorization` (or `access_token` query parameter)".into(),
        )),
        Some(Presented::ApiKey(key)) => {
            let hash = hash_secret(&key);
            if route.key_hashes.contains(&hash) {
                Ok(format!("key:{hash}"))
            } else {
                Err(unauthorized("invalid_api_key", format!("the API key is not valid for {}", route.api_name)))
            }
        }
        Some(Presented::Bearer(token)) => {
            let Some(key) = &compiled.token_key else {
                return Err(unauthorized("invalid_token", "bearer tokens are not accepted: no key manager is configured".into()));
            };
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_issuer(&[compiled.token_issuer.as_str()]);
            validation.set_audience(&[route.api_id.as_str()]);
            validation.leeway = 5;
            let claims = jsonwebtoken::decode::<AccessClaims>(&token, key, &validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => unauthorized("token_expired", "the bearer token has expired".into()),
                    ErrorKind::InvalidAudience => unauthorized("invalid_token", format!("the bearer token is not valid for {}", route.api_name)),
                    _ => unauthorized("invalid_token", format!("the bearer token is not valid: {e}")),
                })?
                .claims;
            match claims.env {
                Some(env) if env != route.environment => Err(unauthorized(
                    "invalid_token",
                    format!("the bearer token was issued for the {env} environment, not {}", route.environment),
                )),
                _ => Ok(format!("token:{}", claims.sub)),
            }
        }
    }
}

/// The query string without credential parameters (None when nothing is left).
pub fn strip_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !pair.is_empty() && name != API_KEY_QUERY && name != TOKEN_QUERY
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented(&h, Some("apikey=k1&x=1")),
            Some(Presented::ApiKey("k1".into()))
        );
        assert_eq!(
            presented(&h, Some("access_token=t%2B1")),
            Some(Presented::Bearer("t+1".into()))
        );
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert_eq!(presented(&h, None), Some(Presented::Bearer("tok".into())));
        h.insert(API_KEY_HEADER, "key".parse().unwrap());
        assert_eq!(presented(&h, None), Some(Presented::ApiKey("key".into())));
        assert_eq!(presented(&HeaderMap::new(), Some("a=b")), None);
    }

    #[test]
    fn credential_parameters_are_stripped() {
        assert_eq!(
            strip_query(Some("apikey=k&room=1&access_token=t")),
            Some("room=1".into())
        );
        assert_eq!(strip_query(Some("apikey=k")), None);
        assert_eq!(strip_query(None), None);
    }
}
