//! The gateway's view of configuration: a compiled, immutable route table swapped
//! atomically when the control plane publishes a new snapshot.

use crate::route::{ChannelPattern, Route};
use arc_swap::ArcSwap;
use asyncgate_core::{ListenerKind, Snapshot};
use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::DecodingKey;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One snapshot compiled for lookups: routes per (environment, listener), longest base
/// path first, and the token verification key decoded once.
pub struct Compiled {
    pub version: u64,
    /// Per environment, the routes of its external and internal listeners (indexed by
    /// `slot`): looked up by `&str`, so a handshake allocates nothing to find its routes.
    routes: HashMap<String, [Vec<Arc<Route>>; 2]>,
    pub token_key: Option<DecodingKey>,
    pub token_issuer: String,
}

impl Compiled {
    pub fn new(snapshot: &Snapshot) -> Compiled {
        let mut routes: HashMap<String, [Vec<Arc<Route>>; 2]> = HashMap::new();
        for api in &snapshot.apis {
            let keys: Arc<HashSet<String>> = Arc::new(api.key_hashes.iter().cloned().collect());
            for d in &api.deployments {
                let route = Arc::new(Route {
                    api_id: api.id.clone(),
                    api_name: api.name.clone(),
                    lifecycle: api.lifecycle,
                    environment: d.environment.clone(),
                    revision: d.revision,
                    base_path: d.base_path.trim_end_matches('/').to_string(),
                    target: d.target.clone(),
                    channels: d
                        .channels
                        .iter()
                        .map(|c| ChannelPattern::new(&c.address))
                        .collect(),
                    key_hashes: keys.clone(),
                    limits: d.limits,
                    backend_headers: d
                        .backend_headers
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((
                                HeaderName::from_bytes(k.as_bytes()).ok()?,
                                HeaderValue::from_str(v).ok()?,
                            ))
                        })
                        .collect(),
                });
                for kind in [ListenerKind::External, ListenerKind::Internal] {
                    if d.access_mode.served_on(kind) {
                        routes.entry(d.environment.clone()).or_default()[slot(kind)]
                            .push(route.clone());
                    }
                }
            }
        }
        for list in routes.values_mut().flatten() {
            list.sort_by_key(|r| std::cmp::Reverse(r.base_path.len()));
        }
        let token_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&snapshot.token_secret)
            .ok()
            .filter(|k| !k.is_empty())
            .map(|k| DecodingKey::from_secret(&k));
        Compiled {
            version: snapshot.version,
            routes,
            token_key,
            token_issuer: snapshot.token_issuer.clone(),
        }
    }

    /// The route of an API in an environment, on whichever listener serves it.
    pub fn find_api(&self, environment: &str, api_id: &str) -> Option<&Arc<Route>> {
        [ListenerKind::Internal, ListenerKind::External]
            .into_iter()
            .flat_map(|kind| self.routes(environment, kind))
            .find(|r| r.api_id == api_id)
    }

    pub fn routes(&self, environment: &str, kind: ListenerKind) -> &[Arc<Route>] {
        self.routes
            .get(environment)
            .map(|lists| lists[slot(kind)].as_slice())
            .unwrap_or(&[])
    }
}

fn slot(kind: ListenerKind) -> usize {
    match kind {
        ListenerKind::External => 0,
        ListenerKind::Internal => 1,
    }
}

/// The current compiled snapshot, readable without locks from every handshake.
pub struct SnapshotHandle {
    current: ArcSwap<Compiled>,
}

impl Default for SnapshotHandle {
    fn default() -> Self {
        SnapshotHandle {
            current: ArcSwap::from_pointee(Compiled::new(&Snapshot::default())),
        }
    }
}

impl SnapshotHandle {
    pub fn load(&self) -> Arc<Compiled> {
        self.current.load_full()
    }

    pub fn apply(&self, snapshot: &Snapshot) {
        self.current.store(Arc::new(Compiled::new(snapshot)));
    }
}
