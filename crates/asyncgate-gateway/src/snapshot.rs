//! The gateway's view of configuration: a compiled, immutable route table swapped
//! atomically when the control plane publishes a new snapshot.

use crate::route::{ChannelPattern, Route};
use crate::validate::Rules;
use arc_swap::ArcSwap;
use asyncgate_core::credential::AccessClaims;
use asyncgate_core::{ListenerKind, Snapshot};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
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
    /// APIs that are Retired (served nowhere): why their live connections close.
    pub retired: HashSet<String>,
    /// The platform's public keys by `kid`.
    pub token_keys: HashMap<String, DecodingKey>,
    /// How tokens are checked (issuer, algorithm, expiry), built once.
    pub token_validation: Validation,
    /// Usable applications by OAuth2 client id.
    pub apps_by_client: HashMap<String, Arc<str>>,
    /// Usable applications' API keys by hash.
    pub app_keys: HashMap<String, AppKey>,
    /// Per organization, the external identity providers it trusts.
    pub identity_providers: HashMap<String, Vec<ExternalIssuer>>,
    /// Per organization, its usable applications by client id and by name (the names an
    /// external provider's claim may use).
    pub apps_by_org: HashMap<String, HashMap<String, Arc<str>>>,
    /// Where to ask for a provider's keys to be fetched again (a token named a key the
    /// snapshot does not have); set by the handle.
    pub key_refresh: Option<tokio::sync::mpsc::Sender<String>>,
    /// The key caller assertions for backends are signed with (`kid`, key), and the
    /// issuer they name.
    pub caller_signer: Option<(String, EncodingKey)>,
    pub issuer: String,
    /// Tokens whose signature this snapshot's keys verified, with their claims: a client
    /// that opens many connections with one token pays for the signature once. Dropped
    /// with the snapshot (so a key removed from it verifies nothing more).
    verified: Mutex<HashMap<Box<str>, Arc<AccessClaims>>>,
}

/// Most tokens remembered as verified; beyond it the memory starts over.
const VERIFIED_TOKENS: usize = 8192;

/// An external identity provider, compiled: its keys by `kid`, each with how tokens it
/// signs are checked (the asymmetric algorithms of the key's family only, the provider's
/// issuer and audience).
pub struct ExternalIssuer {
    pub id: String,
    pub keys: HashMap<String, (DecodingKey, Arc<Validation>)>,
    /// The claim naming the application.
    pub app_claim: String,
}

impl ExternalIssuer {
    fn new(p: &asyncgate_core::SnapshotIdentityProvider) -> ExternalIssuer {
        use jsonwebtoken::jwk::AlgorithmParameters as Params;
        let validation = |algorithms: Vec<Algorithm>| {
            let mut v = Validation::new(algorithms[0]);
            v.algorithms = algorithms;
            v.set_issuer(&[p.issuer.as_str()]);
            v.set_audience(&[p.audience.as_str()]);
            v.leeway = crate::auth::TOKEN_LEEWAY;
            Arc::new(v)
        };
        // Never a shared-secret algorithm: a public key must not verify an HMAC.
        let rsa = validation(vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ]);
        let ec = validation(vec![Algorithm::ES256, Algorithm::ES384]);
        let okp = validation(vec![Algorithm::EdDSA]);
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&p.jwks).unwrap_or(jsonwebtoken::jwk::JwkSet { keys: Vec::new() });
        let keys = set
            .keys
            .iter()
            .filter_map(|k| {
                let family = match &k.algorithm {
                    Params::RSA(_) => rsa.clone(),
                    Params::EllipticCurve(_) => ec.clone(),
                    Params::OctetKeyPair(_) => okp.clone(),
                    Params::OctetKey(_) => return None,
                };
                Some((
                    k.common.key_id.clone()?,
                    (DecodingKey::from_jwk(k).ok()?, family),
                ))
            })
            .collect();
        ExternalIssuer {
            id: p.id.clone(),
            keys,
            app_claim: p.app_claim.clone(),
        }
    }
}

/// An application's API key.
pub struct AppKey {
    pub app_id: Arc<str>,
    pub environment: String,
}

/// Validation rules of one channel of one API revision: (API, revision, address).
type RulesKey = (String, u32, String);

impl Compiled {
    pub fn new(snapshot: &Snapshot) -> Compiled {
        Compiled::after(snapshot, None)
    }

    /// Compile `snapshot`, reusing from `previous` the message rules of revisions it
    /// served too: a revision's schemas are compiled once, and its counts go on.
    pub fn after(snapshot: &Snapshot, previous: Option<&Compiled>) -> Compiled {
        let mut known_rules: HashMap<RulesKey, [Option<Arc<Rules>>; 2]> = HashMap::new();
        for route in previous
            .into_iter()
            .flat_map(|p| p.routes.values().flatten().flatten())
        {
            for c in &route.channels {
                if c.rules.iter().any(Option::is_some) {
                    known_rules.insert(
                        (route.api_id.clone(), route.revision, c.address.clone()),
                        c.rules.clone(),
                    );
                }
            }
        }
        let mut apps_by_client = HashMap::new();
        let mut app_keys = HashMap::new();
        let mut app_ids: HashMap<&str, Arc<str>> = HashMap::new();
        let mut apps_by_org: HashMap<String, HashMap<String, Arc<str>>> = HashMap::new();
        for app in &snapshot.apps {
            let id: Arc<str> = Arc::from(app.id.as_str());
            app_ids.insert(&app.id, id.clone());
            apps_by_client.insert(app.client_id.clone(), id.clone());
            let named = apps_by_org.entry(app.org_id.clone()).or_default();
            named.insert(app.client_id.clone(), id.clone());
            named.insert(app.name.clone(), id.clone());
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
                    api_handle: Arc::from(api.handle.as_str()),
                    lifecycle: api.lifecycle,
                    environment: d.environment.clone(),
                    revision: d.revision,
                    base_path: d.base_path.trim_end_matches('/').to_string(),
                    target: crate::route::Target::new(&d.target),
                    channels: d
                        .channels
                        .iter()
                        .map(|c| {
                            let mut pattern = ChannelPattern::new(&c.address);
                            let key = (api.id.clone(), d.revision, c.address.clone());
                            pattern.rules = match known_rules.get(&key) {
                                Some(rules) => rules.clone(),
                                None => {
                                    let rules = [
                                        (true, c.client_sends.as_deref()),
                                        (false, c.client_receives.as_deref()),
                                    ]
                                    .map(
                                        |(from_client, messages)| {
                                            Rules::compile(
                                                &c.address,
                                                from_client,
                                                d.policies,
                                                messages,
                                            )
                                            .map(Arc::new)
                                        },
                                    );
                                    known_rules.insert(key, rules.clone());
                                    rules
                                }
                            };
                            pattern
                        })
                        .collect(),
                    key_hashes: keys.clone(),
                    subscriptions: subscriptions.clone(),
                    api_key_header: (d.security.api_key_header
                        != asyncgate_core::security::DEFAULT_API_KEY_HEADER)
                        .then(|| HeaderName::from_bytes(d.security.api_key_header.as_bytes()).ok())
                        .flatten(),
                    security: d.security.clone(),
                    compression: d.policies.compression_shape(),
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
                    series: Default::default(),
                });
                let aliases = d.aliases.iter().map(|alias| {
                    Arc::new(Route {
                        base_path: alias.trim_end_matches('/').to_string(),
                        ..Route::clone(&route)
                    })
                });
                let mounted: Vec<Arc<Route>> =
                    std::iter::once(route.clone()).chain(aliases).collect();
                for kind in [ListenerKind::External, ListenerKind::Internal] {
                    if d.access_mode.served_on(kind) {
                        routes.entry(d.environment.clone()).or_default()[slot(kind)]
                            .extend(mounted.iter().cloned());
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
            retired: snapshot
                .apis
                .iter()
                .filter(|a| a.lifecycle.undeploys())
                .map(|a| a.id.clone())
                .collect(),
            token_keys,
            token_validation,
            apps_by_client,
            app_keys,
            identity_providers: snapshot.identity_providers.iter().fold(
                HashMap::new(),
                |mut by_org: HashMap<String, Vec<ExternalIssuer>>, p| {
                    by_org
                        .entry(p.org_id.clone())
                        .or_default()
                        .push(ExternalIssuer::new(p));
                    by_org
                },
            ),
            apps_by_org,
            key_refresh: None,
            caller_signer: snapshot.caller_assertion_key.as_ref().and_then(|k| {
                use base64::Engine as _;
                let der = base64::engine::general_purpose::STANDARD
                    .decode(&k.private_key)
                    .ok()?;
                Some((k.kid.clone(), EncodingKey::from_ed_der(&der)))
            }),
            issuer: snapshot.token_issuer.clone(),
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

    /// Messages of an API in an environment that did not match the contract, since its
    /// revision was deployed (whatever was done with them).
    pub fn refused_messages(&self, environment: &str, api_id: &str) -> u64 {
        let mut seen = HashSet::new();
        [ListenerKind::Internal, ListenerKind::External]
            .into_iter()
            .flat_map(|kind| self.routes(environment, kind))
            .filter(|r| r.api_id == api_id)
            .flat_map(|r| r.channels.iter())
            .flat_map(|c| c.rules.iter().flatten())
            .filter(|rules| seen.insert(Arc::as_ptr(rules)))
            .map(|rules| rules.refused())
            .sum()
    }

    pub fn routes(&self, environment: &str, kind: ListenerKind) -> &[Arc<Route>] {
        self.routes
            .get(environment)
            .map(|lists| lists[slot(kind)].as_slice())
            .unwrap_or(&[])
    }
}

pub(crate) fn slot(kind: ListenerKind) -> usize {
    match kind {
        ListenerKind::External => 0,
        ListenerKind::Internal => 1,
    }
}

/// The current compiled snapshot, readable without locks from every handshake.
pub struct SnapshotHandle {
    current: ArcSwap<Compiled>,
    /// Requests to fetch an identity provider's keys again, for whoever follows them.
    key_refresh: tokio::sync::mpsc::Sender<String>,
    key_refresh_rx: Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
}

impl Default for SnapshotHandle {
    fn default() -> Self {
        let (key_refresh, rx) = tokio::sync::mpsc::channel(64);
        SnapshotHandle {
            current: ArcSwap::from_pointee(Compiled::new(&Snapshot::default())),
            key_refresh,
            key_refresh_rx: Mutex::new(Some(rx)),
        }
    }
}

impl SnapshotHandle {
    pub fn load(&self) -> Arc<Compiled> {
        self.current.load_full()
    }

    pub fn apply(&self, snapshot: &Snapshot) {
        let mut compiled = Compiled::after(snapshot, Some(&self.current.load()));
        compiled.key_refresh = Some(self.key_refresh.clone());
        self.current.store(Arc::new(compiled));
    }

    /// The ids of identity providers whose keys a handshake found missing (a token named
    /// an unknown key): the control plane fetches them again. Taken once.
    pub fn key_refresh_requests(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.key_refresh_rx.lock().ok()?.take()
    }
}
