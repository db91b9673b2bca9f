//! The gateway's view of configuration: a compiled, immutable route table swapped
//! atomically when the control plane publishes a new snapshot.

use crate::route::{ChannelPattern, Route};
use arc_swap::ArcSwap;
use asyncgate_core::credential::AccessClaims;
use asyncgate_core::{ListenerKind, Snapshot};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One snapshot compiled for lookups: routes per (environment, listener), longest base
/// path first; the token verification keys decoded once; applications by client id and
/// by API key hash.
pub struct Compiled {
    pub version: u64,
    /// Per environment, the routes of its external and internal listeners (indexed by
    /// `slot`): looked up by `&str`, so a handshake allocates nothing to find its routes.
    routes: HashMap<String, [Vec<Arc<Route>>; 2]>,
    /// The platform's public keys by `kid`.
    pub token_keys: HashMap<String, DecodingKey>,
    /// How tokens are checked (issuer, algorithm, expiry), built once.
    pub token_validation: Validation,
    /// Usable applications by OAuth2 client id.
    pub apps_by_client: HashMap<String, Arc<str>>,
    /// Usable applications' API keys by hash.
    pub app_keys: HashMap<String, AppKey>,
    /// Tokens whose signature this snapshot's keys verified, with their claims: a client
    /// that opens many connections with one token pays for the signature once. Dropped
    /// with the snapshot (so a key removed from it verifies nothing more).
    verified: Mutex<HashMap<Box<str>, Arc<AccessClaims>>>,
}

/// Most tokens remembered as verified; beyond it the memory starts over.
const VERIFIED_TOKENS: usize = 8192;

/// An application's API key.
pub struct AppKey {
    pub app_id: Arc<str>,
    pub environment: String,
}

impl Compiled {
    pub fn new(snapshot: &Snapshot) -> Compiled {
        let mut apps_by_client = HashMap::new();
        let mut app_keys = HashMap::new();
        let mut app_ids: HashMap<&str, Arc<str>> = HashMap::new();
        for app in &snapshot.apps {
            let id: Arc<str> = Arc::from(app.id.as_str());
            app_ids.insert(&app.id, id.clone());
            apps_by_client.insert(app.client_id.clone(), id.clone());
            for k in &app.keys {
                app_keys.insert(
                    k.hash.clone(),
                    AppKey {
                        app_id: id.clone(),
                        environment: k.environment.clone(),
                    },
                );
            }
        }
        let mut routes: HashMap<String, [Vec<Arc<Route>>; 2]> = HashMap::new();
        for api in &snapshot.apis {
            let keys: Arc<HashSet<String>> = Arc::new(api.key_hashes.iter().cloned().collect());
            // Only usable applications' subscriptions count (blocked ones are absent).
            let subscriptions: Arc<HashMap<Arc<str>, asyncgate_core::PlanLimits>> = Arc::new(
                api.subscriptions
                    .iter()
                    .filter_map(|s| Some((app_ids.get(s.app_id.as_str())?.clone(), s.plan)))
                    .collect(),
            );
            for d in &api.deployments {
                let route = Arc::new(Route {
                    api_id: api.id.clone(),
                    org_id: api.org_id.clone(),
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
                    subscriptions: subscriptions.clone(),
                    api_key_header: (d.security.api_key_header
                        != asyncgate_core::security::DEFAULT_API_KEY_HEADER)
                        .then(|| HeaderName::from_bytes(d.security.api_key_header.as_bytes()).ok())
                        .flatten(),
                    security: d.security.clone(),
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
        let token_keys = snapshot
            .signing_keys
            .iter()
            .filter_map(|k| Some((k.kid.clone(), DecodingKey::from_ed_components(&k.x).ok()?)))
            .collect();
        let mut token_validation = Validation::new(Algorithm::EdDSA);
        token_validation.set_issuer(&[snapshot.token_issuer.as_str()]);
        // The audience (an API or its organization) is checked against the route.
        token_validation.validate_aud = false;
        token_validation.leeway = crate::auth::TOKEN_LEEWAY;
        Compiled {
            version: snapshot.version,
            routes,
            token_keys,
            token_validation,
            apps_by_client,
            app_keys,
            verified: Mutex::default(),
        }
    }

    /// The claims of `token` if this snapshot verified it before.
    pub fn verified_claims(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.verified.lock().ok()?.get(token).cloned()
    }

    /// Remember that `token` verified, with its claims.
    pub fn remember_verified(&self, token: &str, claims: Arc<AccessClaims>) {
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.into(), claims);
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
