//! Live connections per API and environment: admission against connection limits, and
//! closing connections whose API was undeployed, blocked or retired (after a grace period).

use crate::error::GatewayError;
use crate::route::Route;
use crate::snapshot::Compiled;
use http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    environment: String,
    api_id: String,
}

struct Entry {
    count: u64,
    per_credential: HashMap<Arc<str>, u64>,
    /// Set to the reason when the connections must close.
    evict: watch::Sender<Option<String>>,
}

#[derive(Default)]
pub struct Live {
    entries: Mutex<HashMap<Arc<Key>, Entry>>,
}

/// A slot held by one live connection; dropping it frees the slot. It shares the
/// registry's key and credential, so a connection allocates nothing of its own here.
pub struct LiveGuard {
    live: Arc<Live>,
    key: Arc<Key>,
    credential: Arc<str>,
    /// Becomes `Some(reason)` when the connection must be closed.
    pub evicted: watch::Receiver<Option<String>>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<Key>, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take a slot for a connection to `route` made with `credential`, or refuse with 429.
    pub fn admit(
        self: &Arc<Self>,
        route: &Route,
        credential: &str,
    ) -> Result<LiveGuard, GatewayError> {
        let key = Key {
            environment: route.environment.clone(),
            api_id: route.api_id.clone(),
        };
        let mut entries = self.lock();
        let key = match entries.get_key_value(&key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(key),
        };
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            count: 0,
            per_credential: HashMap::new(),
            evict: watch::channel(None).0,
        });
        let limits = &route.limits;
        if limits.max_connections > 0 && entry.count >= limits.max_connections {
            return Err(GatewayError::client(
                StatusCode::TOO_MANY_REQUESTS,
                "connection_limit",
                format!(
                    "{} allows {} concurrent connections in {}",
                    route.api_name, limits.max_connections, route.environment
                ),
            ));
        }
        let mine = entry.per_credential.get(credential).copied().unwrap_or(0);
        if limits.max_connections_per_credential > 0
            && mine >= limits.max_connections_per_credential
        {
            return Err(GatewayError::client(
                StatusCode::TOO_MANY_REQUESTS,
                "credential_connection_limit",
                format!(
                    "this credential already holds {} connections to {}, the most allowed",
                    mine, route.api_name
                ),
            ));
        }
        entry.count += 1;
        let credential = match entry.per_credential.get_key_value(credential) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(credential),
        };
        *entry.per_credential.entry(credential.clone()).or_default() += 1;
        Ok(LiveGuard {
            live: self.clone(),
            key,
            credential,
            evicted: entry.evict.subscribe(),
        })
    }

    /// Connections open to an API in an environment.
    pub fn count(&self, environment: &str, api_id: &str) -> u64 {
        let key = Key {
            environment: environment.to_string(),
            api_id: api_id.to_string(),
        };
        self.lock().get(&key).map(|e| e.count).unwrap_or(0)
    }

    /// APIs with live connections that `compiled` no longer serves, with the reason.
    pub fn orphans(&self, compiled: &Compiled) -> Vec<(String, String, String)> {
        let entries = self.lock();
        entries
            .keys()
            .filter_map(|k| {
                orphan_reason(compiled, k).map(|r| (k.environment.clone(), k.api_id.clone(), r))
            })
            .collect()
    }

    /// Close the connections of an API in an environment if `compiled` still does not
    /// serve it (it may have been redeployed during the grace period).
    pub fn evict_if_orphaned(&self, compiled: &Compiled, environment: &str, api_id: &str) {
        let key = Key {
            environment: environment.to_string(),
            api_id: api_id.to_string(),
        };
        let entries = self.lock();
        if let (Some(entry), Some(reason)) = (entries.get(&key), orphan_reason(compiled, &key)) {
            entry.evict.send_replace(Some(reason));
        }
    }
}

fn orphan_reason(compiled: &Compiled, key: &Key) -> Option<String> {
    match compiled.find_api(&key.environment, &key.api_id) {
        None => Some("API undeployed".to_string()),
        Some(route) if !route.lifecycle.accepts_connections() => {
            Some(format!("API {}", route.lifecycle.as_str().to_lowercase()))
        }
        Some(_) => None,
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut entries = self.live.lock();
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.count = entry.count.saturating_sub(1);
            if let Some(n) = entry.per_credential.get_mut(&self.credential) {
                *n -= 1;
                if *n == 0 {
                    entry.per_credential.remove(&self.credential);
                }
            }
            if entry.count == 0 {
                entries.remove(&self.key);
            }
        }
    }
}
