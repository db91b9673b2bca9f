//! Building gateway snapshots from the store and publishing them to the data plane.

use asyncgate_core::routes::{self, Routes};
use asyncgate_core::ApiVersion;
use asyncgate_core::{
    Snapshot, SnapshotApi, SnapshotApp, SnapshotAppKey, SnapshotChannel, SnapshotDeployment,
    SnapshotIdentityProvider, SnapshotMessage, SnapshotSubscription,
};
use asyncgate_store::{Heard, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// Owns the snapshot stream the gateway follows. Publishing is serialised so snapshots
/// go out in the order the store changed.
pub struct Publisher {
    tx: watch::Sender<Arc<Snapshot>>,
    /// `iss` of the tokens the platform issues.
    issuer: String,
    /// Held while a snapshot is built and sent; the version sent last.
    lock: Mutex<u64>,
    /// Versions the in-process gateway has applied; when set, `publish` returns only once
    /// the gateway serves the new snapshot (so a deploy is live when its call returns).
    applied: OnceLock<watch::Receiver<u64>>,
    /// Where the platform serves mocks (`ws://host:port`): an API whose target is `mock:`
    /// is dialled at `<base>/<api id>/<revision>`.
    mock_base: OnceLock<String>,
}

/// Longest `publish` waits for the in-process gateway to apply a snapshot.
const APPLY_WAIT: Duration = Duration::from_secs(5);

impl Publisher {
    pub fn new(issuer: String) -> Publisher {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        Publisher {
            tx,
            issuer,
            lock: Mutex::new(0),
            applied: OnceLock::new(),
            mock_base: OnceLock::new(),
        }
    }

    /// Dial APIs whose target is `mock:` at the platform's mock server at `base`.
    pub fn serve_mocks_at(&self, base: String) {
        let _ = self.mock_base.set(base);
    }

    /// Make `publish` wait for the in-process gateway, which reports applied versions on
    /// `applied`.
    pub fn wait_for_gateway(&self, applied: watch::Receiver<u64>) {
        let _ = self.applied.set(applied);
    }

    /// A receiver of every snapshot published from now on (and the current one).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// `iss` of the tokens the platform issues.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The snapshot version the in-process gateway serves, when there is one.
    pub fn applied_version(&self) -> Option<u64> {
        self.applied.get().map(|rx| *rx.borrow())
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// Count a change in the store's configuration version, rebuild the snapshot from
    /// the store, publish it, and tell the other control planes on the store.
    pub async fn publish(&self, store: &Store) -> Result<Arc<Snapshot>, StoreError> {
        let version = store.next_config_version().await?;
        let snapshot = self.rebuild(store, version).await?;
        if let Err(e) = store.announce_change(snapshot.version).await {
            // The others still learn of it at their next rebuild; nothing is lost here.
            tracing::warn!(error = %e, "could not tell the other control planes of a change");
        }
        if let Some(applied) = self.applied.get() {
            let mut applied = applied.clone();
            let target = snapshot.version;
            if tokio::time::timeout(APPLY_WAIT, applied.wait_for(|v| *v >= target))
                .await
                .is_err()
            {
                tracing::warn!(
                    version = target,
                    "the gateway did not apply the snapshot in time"
                );
            }
        }
        Ok(snapshot)
    }

    /// Rebuild and publish the snapshot at the store's current version (another control
    /// plane changed the store).
    pub async fn refresh(&self, store: &Store) -> Result<Arc<Snapshot>, StoreError> {
        let version = store.config_version().await?;
        self.rebuild(store, version).await
    }

    /// The version of the snapshot published last.
    pub fn version(&self) -> u64 {
        self.tx.borrow().version
    }

    /// Build under the lock, so snapshots go out in the order they were built, labelled
    /// `version` or the last one sent if that is higher (a build that raced a newer
    /// version's read the store after it: its content is at least as new).
    async fn rebuild(&self, store: &Store, version: u64) -> Result<Arc<Snapshot>, StoreError> {
        let mut last = self.lock.lock().await;
        let mut snapshot = build(
            store,
            &self.issuer,
            self.mock_base.get().map(String::as_str),
        )
        .await?;
        snapshot.version = version.max(*last);
        *last = snapshot.version;
        let snapshot = Arc::new(snapshot);
        self.tx.send_replace(snapshot.clone());
        Ok(snapshot)
    }

    /// Follow the changes other control planes on a shared store announce, rebuilding
    /// after each one newer than what this one published (and after a lost connection,
    /// as announcements may have been missed), until the task is dropped. Returns at
    /// once on a store that is not shared.
    pub async fn follow_store(&self, store: Store) {
        let mut feed = None;
        let mut backoff = FOLLOW_BACKOFF_MIN;
        loop {
            let heard = match &mut feed {
                None => match store.change_feed().await {
                    Ok(None) => return,
                    Ok(Some(f)) => {
                        feed = Some(f);
                        Ok(Heard::Reconnected)
                    }
                    Err(e) => Err(e),
                },
                Some(f) => f.next().await,
            };
            let stale = match heard {
                Ok(Heard::Published(v)) => v > self.version(),
                Ok(Heard::Reconnected) => true,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot hear the other control planes' changes");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FOLLOW_BACKOFF_MAX);
                    true
                }
            };
            if stale {
                match self.refresh(&store).await {
                    Ok(s) => {
                        backoff = FOLLOW_BACKOFF_MIN;
                        tracing::debug!(version = s.version, "rebuilt after a change elsewhere");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot rebuild the snapshot"),
                }
            }
        }
    }
}

/// Bounds of the wait between attempts to reach the store's notifications again.
const FOLLOW_BACKOFF_MIN: Duration = Duration::from_millis(200);
const FOLLOW_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The channels as the gateway routes them: one per address, the messages of channels
/// that share an address (3.x allows it: a request and its reply on `/`) together.
fn snapshot_channels(
    channels: &[asyncgate_contract::Channel],
    validation: asyncgate_core::MessageValidation,
) -> Vec<SnapshotChannel> {
    let mut out: Vec<SnapshotChannel> = Vec::new();
    for c in channels {
        let next = snapshot_channel(c, validation);
        match out.iter_mut().find(|o| o.address == next.address) {
            Some(o) => {
                for (mine, theirs) in [
                    (&mut o.client_sends, next.client_sends),
                    (&mut o.client_receives, next.client_receives),
                ] {
                    match (mine.as_mut(), theirs) {
                        (Some(m), Some(t)) => m.extend(t),
                        (None, t) => *mine = t,
                        (Some(_), None) => {}
                    }
                }
            }
            None => out.push(next),
        }
    }
    out
}

/// A channel as the gateway needs it: its address and, when messages are validated, the
/// messages allowed each way with their JSON Schemas.
fn snapshot_channel(
    c: &asyncgate_contract::Channel,
    validation: asyncgate_core::MessageValidation,
) -> SnapshotChannel {
    let validating = validation != asyncgate_core::MessageValidation::Off;
    let messages = |op: &Option<asyncgate_contract::Operation>| -> Option<Vec<SnapshotMessage>> {
        let op = op.as_ref()?;
        let names = op.message_names();
        Some(
            op.messages
                .iter()
                .zip(names)
                .map(|(m, name)| SnapshotMessage {
                    name,
                    schema: m.json_schema().cloned(),
                })
                .collect(),
        )
    };
    if !validating {
        return SnapshotChannel {
            address: c.address.clone(),
            client_sends: None,
            client_receives: None,
        };
    }
    // Replies to the client's requests come back on its connection: they are messages the
    // client receives, whichever channel declares them.
    let answers: Vec<SnapshotMessage> = c
        .client_to_server
        .iter()
        .flat_map(|op| &op.replies)
        .flat_map(|r| &r.answers)
        .map(|m| SnapshotMessage {
            name: m
                .name
                .clone()
                .or_else(|| m.title.clone())
                .unwrap_or_default(),
            schema: m.json_schema().cloned(),
        })
        .collect();
    let client_receives = match messages(&c.server_to_client) {
        Some(mut sent) => {
            sent.extend(answers);
            Some(sent)
        }
        None if answers.is_empty() => None,
        None => Some(answers),
    };
    SnapshotChannel {
        address: c.address.clone(),
        client_sends: messages(&c.client_to_server),
        client_receives,
    }
}

/// The versions one subscription covers: organization, project, identifier and major
/// version.
type Family = (String, String, String, u64);

async fn build(
    store: &Store,
    issuer: &str,
    mock_base: Option<&str>,
) -> Result<Snapshot, StoreError> {
    let assertion = crate::signing::assertion_key(store)
        .await
        .map_err(|e| StoreError::Corrupt(e.detail))?;
    let consumers = store.consumer_state().await?;
    let plans: HashMap<&str, asyncgate_core::PlanLimits> = consumers
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.limits))
        .collect();
    let usable: std::collections::HashSet<&str> =
        consumers.apps.iter().map(|a| a.id.as_str()).collect();
    let mut subscriptions: HashMap<&str, Vec<SnapshotSubscription>> = HashMap::new();
    for s in &consumers.subscriptions {
        if let (true, Some(plan)) = (
            usable.contains(s.app_id.as_str()),
            plans.get(s.plan_id.as_str()),
        ) {
            subscriptions
                .entry(s.api_id.as_str())
                .or_default()
                .push(SnapshotSubscription {
                    app_id: s.app_id.clone(),
                    plan: *plan,
                });
        }
    }
    let mut app_keys: HashMap<&str, Vec<SnapshotAppKey>> = HashMap::new();
    for k in &consumers.keys {
        app_keys
            .entry(k.app_id.as_str())
            .or_default()
            .push(SnapshotAppKey {
                hash: k.hash.clone(),
                environment: k.environment.clone(),
            });
    }
    let apps = consumers
        .apps
        .iter()
        .map(|a| SnapshotApp {
            id: a.id.clone(),
            org_id: a.org_id.clone(),
            name: a.name.clone(),
            client_id: a.client_id.clone(),
            keys: app_keys.remove(a.id.as_str()).unwrap_or_default(),
        })
        .collect();
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for k in store.active_keys().await? {
        keys.entry(k.api_id).or_default().push(k.hash);
    }
    let mut by_api: HashMap<String, Vec<asyncgate_store::Deployed>> = HashMap::new();
    for d in store.deployed(None).await? {
        by_api
            .entry(d.deployment.api_id.clone())
            .or_default()
            .push(d);
    }
    let all_apis = store.apis(None).await?;
    // A subscription to one version covers every version of the same major version.
    let family = |api: &asyncgate_store::ApiRecord| -> Option<Family> {
        ApiVersion::parse(&api.design.version).map(|v| {
            (
                api.org_id.clone(),
                api.project.clone(),
                api.design.identifier.clone(),
                v.major,
            )
        })
    };
    let mut family_subscriptions: HashMap<_, Vec<SnapshotSubscription>> = HashMap::new();
    for api in &all_apis {
        if let (Some(key), Some(subs)) = (family(api), subscriptions.get(api.id.as_str())) {
            family_subscriptions
                .entry(key)
                .or_default()
                .extend(subs.iter().cloned());
        }
    }
    let mut apis = Vec::new();
    // Per environment, the routes already taken: a deployment that would answer a path
    // another one answers is left out (deploy refuses it; this guards the snapshot).
    let mut taken: HashMap<String, Vec<(String, String, Vec<String>)>> = HashMap::new();
    // Per environment and major version of an API, its latest version deployed there:
    // (version, index in `apis`, index in its deployments, major path).
    type Latest = (ApiVersion, usize, usize, String);
    let mut latest: HashMap<(String, Family), Latest> = HashMap::new();
    for api in all_apis {
        // An API served nowhere is left out, unless Retired: the gateway tells its last
        // live connections why they close.
        let deployed = match by_api.remove(&api.id) {
            Some(d) => d,
            None if api.lifecycle.undeploys() => Vec::new(),
            None => continue,
        };
        let version = ApiVersion::parse(&api.design.version);
        let family_key = family(&api);
        let mut deployments = Vec::new();
        for asyncgate_store::Deployed {
            deployment: d,
            revision: rev,
        } in deployed
        {
            let served = d.values.applied_to(&rev.design);
            let channels: Vec<&str> = served.channel_addresses().collect();
            let env_taken = taken.entry(d.environment.clone()).or_default();
            let clash = env_taken.iter().find_map(|(other, base, theirs)| {
                let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
                routes::conflict(
                    Routes {
                        base_path: &served.base_path,
                        channels: &channels,
                    },
                    Routes {
                        base_path: base,
                        channels: &theirs,
                    },
                )
                .map(|path| (other.clone(), path))
            });
            if let Some((other, path)) = clash {
                tracing::error!(api = %api.id, %other, env = %d.environment, %path, "deployment left out of the snapshot: another API answers the same path");
                continue;
            }
            env_taken.push((
                api.id.clone(),
                served.base_path.clone(),
                channels.iter().map(|c| c.to_string()).collect(),
            ));
            if let (Some(v), Some(key), Some(path), true) = (
                version,
                family_key.clone(),
                asyncgate_core::version::major_path(&served.base_path, &served.version),
                api.lifecycle.accepts_connections(),
            ) {
                let slot = latest.entry((d.environment.clone(), key));
                let candidate = (v, apis.len(), deployments.len(), path);
                match slot {
                    std::collections::hash_map::Entry::Occupied(mut o) if o.get().0 < v => {
                        o.insert(candidate);
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(candidate);
                    }
                    _ => {}
                }
            }
            deployments.push(SnapshotDeployment {
                environment: d.environment,
                revision: d.revision,
                access_mode: d.access_mode,
                base_path: served.base_path.clone(),
                aliases: Vec::new(),
                target: match (served.target.as_str(), mock_base) {
                    (asyncgate_core::domain::MOCK_TARGET, Some(base)) => {
                        format!("{base}/{}/{}", api.id, d.revision)
                    }
                    _ => served.target.clone(),
                },
                channels: snapshot_channels(
                    &served.contract.channels,
                    served.policies.message_validation,
                ),
                limits: served.limits,
                security: served.security.clone(),
                policies: served.policies,
                backend_headers: served.backend_headers.into_iter().collect(),
            });
        }
        let mut subs: Vec<SnapshotSubscription> =
            subscriptions.remove(api.id.as_str()).unwrap_or_default();
        if let Some(siblings) = family_key.and_then(|k| family_subscriptions.get(&k)) {
            for s in siblings {
                if !subs.iter().any(|mine| mine.app_id == s.app_id) {
                    subs.push(s.clone());
                }
            }
        }
        apis.push(SnapshotApi {
            key_hashes: keys.remove(&api.id).unwrap_or_default(),
            subscriptions: subs,
            org_id: api.org_id,
            id: api.id,
            handle: format!("{}@{}", api.design.identifier, api.design.version),
            name: api.display_name.unwrap_or(api.design.name),
            lifecycle: api.lifecycle,
            deployments,
        });
    }
    // The path naming only the major version goes to its latest version, unless another
    // API answers it.
    for ((env, _), (_, api_index, deployment_index, path)) in latest {
        let channels: Vec<String> = apis[api_index].deployments[deployment_index]
            .channels
            .iter()
            .map(|c| c.address.clone())
            .collect();
        let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
        let api_id = apis[api_index].id.clone();
        let clash = taken
            .get(&env)
            .into_iter()
            .flatten()
            .any(|(other, base, theirs)| {
                let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
                *other != api_id
                    && routes::conflict(
                        Routes {
                            base_path: &path,
                            channels: &channels,
                        },
                        Routes {
                            base_path: base,
                            channels: &theirs,
                        },
                    )
                    .is_some()
            });
        if clash {
            tracing::warn!(api = %api_id, %env, %path, "major-version path not routed: another API answers it");
            continue;
        }
        apis[api_index].deployments[deployment_index]
            .aliases
            .push(path);
    }
    Ok(Snapshot {
        version: 0,
        token_issuer: issuer.to_string(),
        signing_keys: crate::signing::public_keys(store).await?,
        apis,
        apps,
        caller_assertion_key: Some(asyncgate_core::SnapshotAssertionKey {
            kid: assertion.kid,
            private_key: assertion.private_key,
        }),
        identity_providers: store
            .identity_providers(None)
            .await?
            .into_iter()
            .map(|p| SnapshotIdentityProvider {
                id: p.id,
                org_id: p.org_id,
                issuer: p.issuer,
                audience: p.audience,
                app_claim: p.app_claim,
                jwks: p.jwks,
            })
            .collect(),
    })
}
