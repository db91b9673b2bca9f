//! Per-API bounds the gateway enforces, with their defaults.

use serde::{Deserialize, Serialize};

/// Limits of one API, frozen into each revision. Zero means "no limit" where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ApiLimits {
    /// Largest message (and frame) accepted from either side; the sender of a larger one
    /// is closed with 1009 and the other side with 1001. Default 1 MiB. It also bounds what
    /// the gateway buffers per connection and direction.
    pub max_message_bytes: u64,
    /// A side that sent nothing for this long is pinged by the gateway. Default 30 s.
    pub idle_timeout_seconds: u64,
    /// A pinged side that sends nothing for this long is dead: both sides are closed.
    /// Default 10 s.
    pub pong_timeout_seconds: u64,
    /// Connections are closed with 1001 after this long; 0 = no limit. Default 0.
    pub max_connection_seconds: u64,
    /// Concurrent connections to the API in one environment; 0 = no limit. Default 10,000.
    pub max_connections: u64,
    /// Concurrent connections per credential; 0 = no limit. Default 0.
    pub max_connections_per_credential: u64,
    /// A connection made with a credential that expires (a bearer token) is closed with
    /// 1008 when it does. Default off: the credential is checked at the handshake only.
    pub close_on_credential_expiry: bool,
    /// Messages per second on one connection, both directions counted (a token bucket
    /// holding one second's worth); 0 = no limit. Default 0.
    pub max_messages_per_second: u64,
    /// Payload bytes per second on one connection, both directions counted; 0 = no
    /// limit. Default 0.
    pub max_bytes_per_second: u64,
    /// What happens to a message over those rates: `close` (1008, the default) or
    /// `drop`.
    pub rate_limit_action: crate::OnExcess,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_message_bytes: 1 << 20,
            idle_timeout_seconds: 30,
            pong_timeout_seconds: 10,
            max_connection_seconds: 0,
            max_connections: 10_000,
            max_connections_per_credential: 0,
            close_on_credential_expiry: false,
            max_messages_per_second: 0,
            max_bytes_per_second: 0,
            rate_limit_action: crate::OnExcess::Close,
        }
    }
}

/// Partial change of an API's limits (see `ApiLimits` for meanings and defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pong_timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_credential: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_on_credential_expiry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_action: Option<crate::OnExcess>,
}

impl LimitsPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == LimitsPatch::default()
    }

    /// This patch, then `later` on top of it.
    pub fn then(self, later: &LimitsPatch) -> LimitsPatch {
        let or = |a: Option<u64>, b: Option<u64>| b.or(a);
        LimitsPatch {
            max_message_bytes: or(self.max_message_bytes, later.max_message_bytes),
            idle_timeout_seconds: or(self.idle_timeout_seconds, later.idle_timeout_seconds),
            pong_timeout_seconds: or(self.pong_timeout_seconds, later.pong_timeout_seconds),
            max_connection_seconds: or(self.max_connection_seconds, later.max_connection_seconds),
            max_connections: or(self.max_connections, later.max_connections),
            max_connections_per_credential: or(
                self.max_connections_per_credential,
                later.max_connections_per_credential,
            ),
            close_on_credential_expiry: later
                .close_on_credential_expiry
                .or(self.close_on_credential_expiry),
            max_messages_per_second: or(
                self.max_messages_per_second,
                later.max_messages_per_second,
            ),
            max_bytes_per_second: or(self.max_bytes_per_second, later.max_bytes_per_second),
            rate_limit_action: later.rate_limit_action.or(self.rate_limit_action),
        }
    }

    pub fn apply(&self, limits: &mut ApiLimits) {
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut limits.max_message_bytes, self.max_message_bytes);
        set(&mut limits.idle_timeout_seconds, self.idle_timeout_seconds);
        set(&mut limits.pong_timeout_seconds, self.pong_timeout_seconds);
        set(
            &mut limits.max_connection_seconds,
            self.max_connection_seconds,
        );
        set(&mut limits.max_connections, self.max_connections);
        set(
            &mut limits.max_connections_per_credential,
            self.max_connections_per_credential,
        );
        if let Some(v) = self.close_on_credential_expiry {
            limits.close_on_credential_expiry = v;
        }
        set(
            &mut limits.max_messages_per_second,
            self.max_messages_per_second,
        );
        set(&mut limits.max_bytes_per_second, self.max_bytes_per_second);
        if let Some(v) = self.rate_limit_action {
            limits.rate_limit_action = v;
        }
    }
}

impl ApiLimits {
    /// Checks that make a limit set usable; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes < 125 {
            return Err("maxMessageBytes must be at least 125 (the largest control frame)".into());
        }
        if self.idle_timeout_seconds == 0 || self.pong_timeout_seconds == 0 {
            return Err("idleTimeoutSeconds and pongTimeoutSeconds must be above 0".into());
        }
        Ok(())
    }
}
