//! How an API admits clients: whether a credential is required, which header carries an
//! API key, and which browser origins may connect. Frozen into each revision.

use serde::{Deserialize, Serialize};

/// Header carrying an API key unless an API names another.
pub const DEFAULT_API_KEY_HEADER: &str = "api-key";

/// An API's admission settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ApiSecurity {
    /// A credential is required (default). Switched off only explicitly; then anyone
    /// who reaches the listener may connect.
    pub enabled: bool,
    /// Request header carrying an API key (lower case). Default `api-key`.
    pub api_key_header: String,
    /// Origins (`https://app.example.com`) whose browsers may connect; empty: any. A
    /// request with another `Origin` is refused with 403; one without `Origin` (not a
    /// browser) is not affected.
    pub allowed_origins: Vec<String>,
    /// Scopes a bearer token must carry (all of them, in `scope` or `scp`); a token
    /// without them gets 403. API keys carry no scopes and are not affected.
    pub required_scopes: Vec<String>,
    /// Tell the backend who called: a signed JWT in `X-JWT-Assertion` (see
    /// [`crate::credential::CallerAssertion`]). Default off.
    pub backend_jwt: bool,
}

impl Default for ApiSecurity {
    fn default() -> Self {
        ApiSecurity {
            enabled: true,
            api_key_header: DEFAULT_API_KEY_HEADER.to_string(),
            allowed_origins: Vec::new(),
            required_scopes: Vec::new(),
            backend_jwt: false,
        }
    }
}

impl ApiSecurity {
    /// Whether a browser from `origin` may connect (the one rule, compared without
    /// regard to case as origins are).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

impl ApiSecurity {
    /// Whether `granted` holds every scope the API requires (the one rule).
    pub fn scopes_met<'a>(&self, granted: impl Iterator<Item = &'a str> + Clone) -> bool {
        self.required_scopes
            .iter()
            .all(|r| granted.clone().any(|g| g == r))
    }
}

/// Check a scope name: visible ASCII, no spaces or quotes (RFC 6749 3.3).
pub fn check_scope(scope: &str) -> Result<String, String> {
    let s = scope.trim();
    if !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{scope}` is not a scope: visible characters, no spaces, quotes or backslashes"
        ))
    }
}

/// Check an origin as an allow-list entry: `*`, or `scheme://host[:port]` with nothing
/// after it. The message says what is wrong.
pub fn check_origin(origin: &str) -> Result<String, String> {
    if origin == "*" {
        return Ok(origin.into());
    }
    let lower = origin.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!("`{origin}` is not an origin: write scheme://host[:port], for example https://app.example.com"));
    };
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !matches!(scheme, "http" | "https") || !host_ok {
        return Err(format!(
            "`{origin}` is not an origin: write http(s)://host[:port], with no path"
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_matched() {
        assert_eq!(
            check_origin("HTTPS://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert!(check_origin("https://app.example.com/path").is_err());
        assert!(check_origin("app.example.com").is_err());
        assert!(check_origin("ftp://x").is_err());
        let s = ApiSecurity {
            allowed_origins: vec!["https://app.example.com".into()],
            ..Default::default()
        };
        assert!(s.allows_origin("https://APP.example.com"));
        assert!(!s.allows_origin("https://evil.example.com"));
        assert!(ApiSecurity::default().allows_origin("https://anything"));
        let scoped = ApiSecurity {
            required_scopes: vec!["chat:read".into(), "chat:write".into()],
            ..Default::default()
        };
        assert!(scoped.scopes_met("chat:write other chat:read".split(' ')));
        assert!(!scoped.scopes_met("chat:read".split(' ')));
        assert!(ApiSecurity::default().scopes_met("".split(' ')));
        assert!(check_scope("chat:read").is_ok());
        assert!(check_scope("two words").is_err());
    }
}
