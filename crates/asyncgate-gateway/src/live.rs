//! Live connections per API and environment: admission against connection limits, and
//! closing every live connection that the current snapshot would no longer admit —
//! undeployed, blocked or retired, moved off its listener by a change of access mode, or
//! made with a key that was revoked.
//!
//! Connections are counted by (listener, credential) under their API and environment, so
//! checking a new snapshot costs a look per group, not per connection; the connections of
//! a group that must close are then told through their [`Connection`] records, by which
//! they are also listed by id for operators. What ended connections carried is added up
//! per API and environment, for metrics. A gateway shutting down ends them all, and
//! admits none after.

use crate::auth::Verified;
use crate::connection::{Connection, Counts, End};
use crate::error::GatewayError;
use crate::meter::PlanMeter;
use crate::route::Route;
use crate::shared_counters::{Counted, SharedPlace};
use crate::snapshot::Compiled;
use asyncgate_core::ListenerKind;
use http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Close code for a connection whose credential is no longer valid (policy violation).
pub const CREDENTIAL_CLOSE: u16 = 1008;
/// Close code for a connection whose API is no longer served to it (going away).
pub const UNSERVED_CLOSE: u16 = 1001;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    environment: String,
    api_id: String,
}

/// Why and how live connections are closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// Sent to the client: [`CREDENTIAL_CLOSE`] or [`UNSERVED_CLOSE`].
    pub code: u16,
    pub reason: String,
}

impl Eviction {
    /// A credential problem closes at once; the others wait for the grace period, in
    /// which a redeploy can still keep the connections.
    pub fn immediate(&self) -> bool {
        self.code == CREDENTIAL_CLOSE
    }
}

/// A group of connections: (listener, credential).
type Group = (ListenerKind, Arc<str>);

struct Entry {
    count: u64,
    /// The API's `identifier@version` (its label in metrics).
    handle: Arc<str>,
    /// Each connection, with its credential (its group's other half).
    connections: HashMap<u64, (Arc<Connection>, Arc<str>)>,
    per_credential: HashMap<Arc<str>, u64>,
    /// Per subscribed application: its connections (for its plan's connection limit) and
    /// the meter of its plan's rates, shared by those connections.
    per_app: HashMap<Arc<str>, (u64, Option<Arc<PlanMeter>>)>,
    /// Connections per group.
    groups: HashMap<Group, u64>,
}

#[derive(Default)]
struct Inner {
    /// The gateway is shutting down: every connection was told to end, none is admitted.
    shut_down: bool,
    entries: HashMap<Arc<Key>, Entry>,
    /// What ended connections carried, per API and environment. Kept after the last
    /// connection ends (counters never go back).
    ended: HashMap<Arc<Key>, EndedTotals>,
}

struct EndedTotals {
    handle: Arc<str>,
    /// `[UP, DOWN]`.
    counts: [Counts; 2],
    /// Messages dropped over plan rates by subscriptions with no connection left.
    dropped: u64,
}

/// What the connections of one API in one environment carried: those open now and those
/// that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traffic {
    pub environment: String,
    pub api_id: String,
    pub api_handle: Arc<str>,
    pub active: u64,
    /// Client to backend, backend to client.
    pub counts: [Counts; 2],
    /// Messages dropped for being over a plan's rates.
    pub dropped: u64,
}

#[derive(Default)]
pub struct Live {
    inner: Mutex<Inner>,
    /// Checks made at the end of a grace period, counted as they complete.
    grace_checks: std::sync::atomic::AtomicU64,
}

/// A slot held by one live connection; dropping it frees the slot. It shares the
/// registry's key and credential, so a connection allocates nothing of its own here.
pub struct LiveGuard {
    live: Arc<Live>,
    key: Arc<Key>,
    kind: ListenerKind,
    credential: Arc<str>,
    app: Option<Arc<str>>,
    /// The plan's rate meter, when the subscription's plan meters.
    pub meter: Option<Arc<PlanMeter>>,
    /// The connection as operators see it, and where the gateway tells it to end.
    pub connection: Arc<Connection>,
    /// Its places in the counters shared across nodes (with `--redis`).
    pub shared: Option<SharedPlace>,
}

/// A connection limit: of the API in an environment, of one credential, or of the
/// subscribing application's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Api,
    Credential,
    Plan,
}

impl Limit {
    /// The 429 a handshake gets when this limit, of `max` connections, is reached (on
    /// this node or across the nodes).
    pub fn refusal(self, route: &Route, max: u64) -> GatewayError {
        let (code, detail) = match self {
            Limit::Api => (
                "connection_limit",
                format!(
                    "{} allows {max} concurrent connections in {}",
                    route.api_name, route.environment
                ),
            ),
            Limit::Credential => (
                "credential_connection_limit",
                format!(
                    "this credential already holds {max} connections to {}, the most allowed",
                    route.api_name
                ),
            ),
            Limit::Plan => (
                "plan_connection_limit",
                format!(
                    "the application's plan allows {max} concurrent connections to {} in {}",
                    route.api_name, route.environment
                ),
            ),
        };
        GatewayError::client(StatusCode::TOO_MANY_REQUESTS, code, detail)
    }
}

/// The name a subscription's plan rates are added up under across the nodes.
pub fn plan_rate_name(route: &Route, app_id: &str) -> String {
    format!("{}:{}:app:{app_id}", route.environment, route.api_id)
}

/// The limited counters a connection to `route` with `verified` takes a place in across
/// the nodes, each with its limit (the same limits [`Live::admit`] holds per node).
pub fn shared_counters(route: &Route, verified: &Verified) -> Vec<(Limit, Counted)> {
    let scope = format!("{}:{}", route.environment, route.api_id);
    let limits = &route.limits;
    let mut out = Vec::new();
    if limits.max_connections > 0 {
        out.push((
            Limit::Api,
            Counted {
                name: scope.clone(),
                limit: limits.max_connections,
            },
        ));
    }
    if limits.max_connections_per_credential > 0 {
        out.push((
            Limit::Credential,
            Counted {
                name: format!("{scope}:credential:{}", verified.identity.as_str()),
                limit: limits.max_connections_per_credential,
            },
        ));
    }
    if let Some(sub) = verified
        .subscriber
        .as_ref()
        .filter(|s| s.plan.max_connections > 0)
    {
        out.push((
            Limit::Plan,
            Counted {
                name: plan_rate_name(route, &sub.app_id),
                limit: sub.plan.max_connections,
            },
        ));
    }
    out
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take a slot for a connection to `route` on a `kind` listener made with
    /// `verified`, or refuse with 429 (the API's limits, then the subscription plan's).
    pub fn admit(
        self: &Arc<Self>,
        route: &Route,
        kind: ListenerKind,
        verified: &Verified,
        connection: Arc<Connection>,
    ) -> Result<LiveGuard, GatewayError> {
        let credential = verified.identity.as_str();
        let key = Key {
            environment: route.environment.clone(),
            api_id: route.api_id.clone(),
        };
        let mut inner = self.lock();
        if inner.shut_down {
            return Err(GatewayError::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the gateway is shutting down",
            ));
        }
        let entries = &mut inner.entries;
        let key = match entries.get_key_value(&key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(key),
        };
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            count: 0,
            handle: route.api_handle.clone(),
            connections: HashMap::new(),
            per_credential: HashMap::new(),
            per_app: HashMap::new(),
            groups: HashMap::new(),
        });
        let limits = &route.limits;
        if limits.max_connections > 0 && entry.count >= limits.max_connections {
            return Err(Limit::Api.refusal(route, limits.max_connections));
        }
        let mine = entry.per_credential.get(credential).copied().unwrap_or(0);
        if limits.max_connections_per_credential > 0
            && mine >= limits.max_connections_per_credential
        {
            return Err(Limit::Credential.refusal(route, limits.max_connections_per_credential));
        }
        let (app, meter) = match &verified.subscriber {
            Some(sub) => {
                let held = entry.per_app.get(&sub.app_id).map(|(n, _)| *n).unwrap_or(0);
                let max = sub.plan.max_connections;
                if max > 0 && held >= max {
                    return Err(Limit::Plan.refusal(route, max));
                }
                let (n, meter) = entry
                    .per_app
                    .entry(sub.app_id.clone())
                    .or_insert_with(|| (0, PlanMeter::new(&sub.plan).map(Arc::new)));
                *n += 1;
                (Some(sub.app_id.clone()), meter.clone())
            }
            None => (None, None),
        };
        entry.count += 1;
        let credential = match entry.per_credential.get_key_value(credential) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(credential),
        };
        *entry.per_credential.entry(credential.clone()).or_default() += 1;
        *entry.groups.entry((kind, credential.clone())).or_default() += 1;
        entry
            .connections
            .insert(connection.id, (connection.clone(), credential.clone()));
        Ok(LiveGuard {
            live: self.clone(),
            key,
            kind,
            credential,
            app,
            meter,
            connection,
            shared: None,
        })
    }

    /// Live connections to an API, in one environment or all: each with its environment.
    pub fn connections(
        &self,
        environment: Option<&str>,
        api_id: &str,
    ) -> Vec<(String, Arc<Connection>)> {
        let inner = self.lock();
        let mut found: Vec<(String, Arc<Connection>)> = inner
            .entries
            .iter()
            .filter(|(k, _)| k.api_id == api_id && environment.is_none_or(|e| e == k.environment))
            .flat_map(|(k, e)| {
                e.connections
                    .values()
                    .map(|(c, _)| (k.environment.clone(), c.clone()))
            })
            .collect();
        found.sort_by_key(|(_, c)| (c.started, c.id));
        found
    }

    /// Every live connection, of every API and environment.
    pub fn total(&self) -> u64 {
        self.lock()
            .entries
            .values()
            .map(|e| e.connections.len() as u64)
            .sum()
    }

    /// One live connection to an API, by id.
    pub fn connection(&self, api_id: &str, id: u64) -> Option<Arc<Connection>> {
        self.lock()
            .entries
            .iter()
            .filter(|(k, _)| k.api_id == api_id)
            .find_map(|(_, e)| e.connections.get(&id).map(|(c, _)| c.clone()))
    }

    /// What every API's connections carried, per environment: open and ended ones.
    pub fn traffic(&self) -> Vec<Traffic> {
        let inner = self.lock();
        let mut all: HashMap<Arc<Key>, Traffic> = HashMap::new();
        let row = |key: &Arc<Key>, handle: &Arc<str>| Traffic {
            environment: key.environment.clone(),
            api_id: key.api_id.clone(),
            api_handle: handle.clone(),
            active: 0,
            counts: [Counts::default(); 2],
            dropped: 0,
        };
        for (key, ended) in &inner.ended {
            let t = all
                .entry(key.clone())
                .or_insert_with(|| row(key, &ended.handle));
            add(&mut t.counts, &ended.counts);
            t.dropped += ended.dropped;
        }
        for (key, entry) in &inner.entries {
            let t = all
                .entry(key.clone())
                .or_insert_with(|| row(key, &entry.handle));
            t.active = entry.count;
            for (c, _) in entry.connections.values() {
                add(&mut t.counts, &c.counts());
            }
            t.dropped += entry
                .per_app
                .values()
                .filter_map(|(_, m)| m.as_ref())
                .map(|m| m.dropped())
                .sum::<u64>();
        }
        let mut all: Vec<Traffic> = all.into_values().collect();
        all.sort_by(|a, b| (&a.environment, &a.api_id).cmp(&(&b.environment, &b.api_id)));
        all
    }

    /// Messages dropped for being over their plan's rates, on connections open now to an
    /// API in an environment.
    pub fn dropped(&self, environment: &str, api_id: &str) -> u64 {
        let key = Key {
            environment: environment.to_string(),
            api_id: api_id.to_string(),
        };
        self.lock()
            .entries
            .get(&key)
            .map(|e| {
                e.per_app
                    .values()
                    .filter_map(|(_, m)| m.as_ref())
                    .map(|m| m.dropped())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Connections open to an API in an environment.
    pub fn count(&self, environment: &str, api_id: &str) -> u64 {
        let key = Key {
            environment: environment.to_string(),
            api_id: api_id.to_string(),
        };
        self.lock().entries.get(&key).map(|e| e.count).unwrap_or(0)
    }

    /// Check every live connection against `compiled`. Those it would refuse are closed:
    /// at once for a credential, and for the rest only when `graceful` is false (after
    /// the grace period). Returns whether some wait for the grace period.
    pub fn reconcile(&self, compiled: &Compiled, graceful: bool) -> bool {
        let inner = self.lock();
        let mut waiting = false;
        for (key, entry) in inner.entries.iter() {
            let mut evicted: Vec<(&Group, Eviction)> = Vec::new();
            for (group, count) in entry.groups.iter() {
                let (kind, credential) = group;
                let Some(eviction) = verdict(compiled, key, *kind, credential) else {
                    continue;
                };
                if graceful && !eviction.immediate() {
                    waiting = true;
                    continue;
                }
                tracing::info!(env = %key.environment, api = %key.api_id, listener = %kind, code = eviction.code, reason = %eviction.reason, connections = count, "closing live connections");
                evicted.push((group, eviction));
            }
            if evicted.is_empty() {
                continue;
            }
            for (connection, credential) in entry.connections.values() {
                if let Some((_, eviction)) = evicted
                    .iter()
                    .find(|((kind, c), _)| *kind == connection.listener && c == credential)
                {
                    connection.end(End::Evicted(eviction.clone()));
                }
            }
        }
        if !graceful {
            self.grace_checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        waiting
    }

    /// The gateway is shutting down: tell every live connection to end (with 1001), and
    /// admit none from now on. Repeating it changes nothing.
    pub fn shut_down(&self) {
        let mut inner = self.lock();
        inner.shut_down = true;
        for entry in inner.entries.values() {
            for (connection, _) in entry.connections.values() {
                connection.end(End::Shutdown);
            }
        }
    }

    /// How many checks at the end of a grace period have been made.
    pub fn grace_checks(&self) -> u64 {
        self.grace_checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether a live connection would still be admitted by `compiled`, and if not why: the
/// one rule for connections already open, matching the handshake's for new ones.
fn verdict(
    compiled: &Compiled,
    key: &Key,
    kind: ListenerKind,
    credential: &str,
) -> Option<Eviction> {
    let unserved = |reason: String| {
        Some(Eviction {
            code: UNSERVED_CLOSE,
            reason,
        })
    };
    let Some(route) = compiled
        .routes(&key.environment, kind)
        .iter()
        .find(|r| r.api_id == key.api_id)
    else {
        return match compiled.find_api(&key.environment, &key.api_id) {
            Some(_) => unserved(format!("API no longer served on the {kind} listener")),
            None if compiled.retired.contains(&key.api_id) => unserved("API retired".into()),
            None => unserved("API undeployed".into()),
        };
    };
    if !route.lifecycle.accepts_connections() {
        return unserved(format!("API {}", route.lifecycle.as_str().to_lowercase()));
    }
    crate::auth::still_valid(compiled, route, credential)
        .err()
        .map(|reason| Eviction {
            code: CREDENTIAL_CLOSE,
            reason: reason.into(),
        })
}

/// Add `more` to `totals`, direction by direction.
fn add(totals: &mut [Counts; 2], more: &[Counts; 2]) {
    for (t, m) in totals.iter_mut().zip(more) {
        t.messages += m.messages;
        t.bytes += m.bytes;
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        let Inner { entries, ended, .. } = &mut *inner;
        if let Some(entry) = entries.get_mut(&self.key) {
            // Moved from the open connections' counts to the ended ones' under one lock,
            // so that a scrape never sees a counter go back.
            entry.connections.remove(&self.connection.id);
            let totals = ended
                .entry(self.key.clone())
                .or_insert_with(|| EndedTotals {
                    handle: entry.handle.clone(),
                    counts: [Counts::default(); 2],
                    dropped: 0,
                });
            add(&mut totals.counts, &self.connection.counts());
            entry.count = entry.count.saturating_sub(1);
            if let Some(n) = entry.per_credential.get_mut(&self.credential) {
                *n -= 1;
                if *n == 0 {
                    entry.per_credential.remove(&self.credential);
                }
            }
            if let Some(app) = &self.app {
                if let Some((n, meter)) = entry.per_app.get_mut(app) {
                    *n -= 1;
                    if *n == 0 {
                        totals.dropped += meter.as_ref().map_or(0, |m| m.dropped());
                        entry.per_app.remove(app);
                    }
                }
            }
            let group_key = (self.kind, self.credential.clone());
            if let Some(count) = entry.groups.get_mut(&group_key) {
                *count -= 1;
                if *count == 0 {
                    entry.groups.remove(&group_key);
                }
            }
            if entry.count == 0 {
                entries.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Command, Identity};

    fn verified(identity: &str) -> Verified {
        Verified {
            identity: identity.into(),
            expires_at: None,
            subscriber: None,
        }
    }

    #[test]
    fn shutting_down_ends_every_connection_once_and_admits_none_after() {
        let live = Arc::new(Live::default());
        let route = Route::example("/chat", "ws://127.0.0.1:9", &["/"]);
        let held: Vec<LiveGuard> = ["key-a", "key-a", "key-b"]
            .into_iter()
            .map(|k| {
                let connection = Arc::new(Connection::new(Identity::example()));
                live.admit(&route, ListenerKind::External, &verified(k), connection)
                    .unwrap()
            })
            .collect();
        live.shut_down();
        live.shut_down();
        for slot in &held {
            assert_eq!(
                slot.connection.next_command(),
                Some(Command::End(End::Shutdown))
            );
            assert_eq!(slot.connection.next_command(), None, "told once");
        }
        let late = Arc::new(Connection::new(Identity::example()));
        let refused = live
            .admit(&route, ListenerKind::External, &verified("key-a"), late)
            .err()
            .unwrap();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, "shutting_down");
    }
}
