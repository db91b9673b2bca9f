//! What every management handler shares: the store, the publisher and the settings.

use crate::publisher::Publisher;
use asyncgate_contract::Limits;
use asyncgate_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The public URLs of one environment's listeners.
#[derive(Debug, Clone)]
pub struct EnvironmentEndpoints {
    pub name: String,
    /// `ws://host:port` of the external listener.
    pub external: String,
    /// `ws://host:port` of the internal listener.
    pub internal: String,
}

/// Where contracts may be imported from.
#[derive(Debug, Clone)]
pub struct ImportPolicy {
    /// Allow URL imports from loopback, private, link-local and unique-local addresses.
    pub allow_private_addresses: bool,
    /// Follow `$ref`s written as absolute http(s) URLs (relative ones, against the URL or
    /// bundle they are in, are always followed under the same guards). Default off.
    pub allow_absolute_references: bool,
    /// Time for one fetch, and for all of one import's fetches together.
    pub timeout: Duration,
    pub limits: Limits,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        ImportPolicy {
            allow_private_addresses: false,
            allow_absolute_references: false,
            timeout: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Environments in promotion order (development first).
    pub environments: Vec<EnvironmentEndpoints>,
    pub import: ImportPolicy,
    /// Project new APIs go to when the request names none.
    pub default_project: String,
    /// Lifetime of test-console tokens.
    pub test_token_ttl: Duration,
    /// Lifetime of a signed-in session.
    pub session_ttl: Duration,
    /// Lifetime of OAuth2 access tokens.
    pub access_token_ttl: Duration,
    /// Networks whose peers may read `/metrics` without a token (`metrics.open_to`);
    /// anyone else needs the admin token.
    pub metrics_open_to: asyncgate_core::Networks,
    /// The management listener is reached over HTTPS: cookies are `Secure`.
    pub secure_cookies: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ControlConfig>,
    pub publisher: Arc<Publisher>,
    /// SHA-256 of the admin token, read once at start.
    pub admin_token_hash: Arc<str>,
    /// Sign-in attempts per client address.
    pub login_limiter: Arc<LoginLimiter>,
    /// The gateway of this process: live connections and metrics.
    pub data_plane: Arc<dyn crate::dataplane::DataPlane>,
}

/// Sign-in attempts allowed per client address: [`LOGIN_ATTEMPTS_PER_MINUTE`], in bursts.
pub type LoginLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// Sign-in attempts one address may make per minute.
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 20;

/// A fresh limiter of sign-in attempts.
pub fn login_limiter() -> Arc<LoginLimiter> {
    let quota = governor::Quota::per_minute(
        std::num::NonZeroU32::new(LOGIN_ATTEMPTS_PER_MINUTE).expect("non-zero"),
    );
    Arc::new(governor::RateLimiter::keyed(quota))
}

impl AppState {
    pub fn environment(&self, name: &str) -> Option<&EnvironmentEndpoints> {
        self.config.environments.iter().find(|e| e.name == name)
    }
}
