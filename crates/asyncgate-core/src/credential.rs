//! Secrets: generation, hashing, and the claims of platform-issued bearer tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of API keys, so that leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "agk_";
/// Prefix of management (admin) tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "aga_";
/// Prefix of applications' OAuth2 client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "agc_";

/// A fresh random secret: `prefix` followed by 32 random bytes in base64url.
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How secrets are stored: SHA-256 in hex. The secrets are 256-bit random values, so a
/// fast hash is enough (there is nothing to brute-force).
pub fn hash_secret(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    out
}

/// Claims of a bearer token the platform issues: to an application (client credentials,
/// RFC 6749 section 4.4; `client_id` set) or to the test console for one API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// Who the token was issued to: the client id, or `test-console:<user>`.
    pub sub: String,
    /// What the token is valid for: an API id, or an organization id (every API the
    /// application is subscribed to there).
    pub aud: String,
    /// The application's OAuth2 client id (absent in test-console tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Unique id of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Restricts the token to one environment when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub iat: u64,
    pub exp: u64,
}

/// Header carrying [`CallerAssertion`] to the backend; a client's own is always removed.
pub const CALLER_ASSERTION_HEADER: &str = "x-jwt-assertion";

/// What the backend learns of a caller when an API asks for it: a JWT signed by the
/// gateway's own key (published at `/.well-known/backend-jwks.json`, never accepted from
/// clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallerAssertion {
    pub iss: String,
    /// The API id.
    pub aud: String,
    /// Who called: the application id, a token's subject, or `anonymous`.
    pub sub: String,
    /// The application, when the credential is an application's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// `api-key`, `token` or `none`.
    pub credential: String,
    pub environment: String,
    pub iat: u64,
    pub exp: u64,
}

/// Now, in seconds since the Unix epoch: the clock every token and expiry is read with.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new random identifier: `prefix` followed by 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(prefix.len() + 16);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_unique_and_hash_stably() {
        let a = generate_secret(API_KEY_PREFIX);
        let b = generate_secret(API_KEY_PREFIX);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hash_secret("").len(), 64);
    }
}
