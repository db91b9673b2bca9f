//! `asyncgate gateway`: a data-plane-only node. It serves one environment's listeners
//! with the snapshots a control plane hands it (a long-polled sync call authenticated by
//! its node token, each answer versioned, each applied version reported back), keeps the
//! last one on disk to start from while the control plane is away, and drains on SIGTERM:
//! `/readyz` answers 503, listeners stop, live connections are closed with 1001 within
//! the drain period.

use crate::config::EnvironmentListen;
use crate::platform::{create_private_dir, load_tls, lock_data_dir, write_private};
use anyhow::Context;
use asyncgate_control::nodes::{NodeReport, NodeSync};
use asyncgate_core::{ListenerKind, Snapshot};
use asyncgate_gateway::workers::ListenerSpec;
use asyncgate_gateway::{Gateway, GatewayConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The node's copy of its last snapshot, in its data folder.
pub const SNAPSHOT_FILE: &str = "snapshot.json";
/// What the node serves at (listener and status URLs), written once it listens.
pub const NODE_FILE: &str = "node.json";
const NODE_ID_FILE: &str = "node-id";

/// Seconds a sync call asks the control plane to wait for a new version.
const SYNC_WAIT_SECONDS: u64 = 25;
/// Bounds of the wait between sync calls that failed.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Everything a node needs, validated.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The control plane's management URL.
    pub control: url::Url,
    pub token: String,
    /// The environment served, and its listeners (addresses, TLS, public URLs).
    pub listen: EnvironmentListen,
    /// `/healthz`, `/readyz`, `/metrics` and connection commands.
    pub listen_status: SocketAddr,
    pub data_dir: PathBuf,
    pub drain: Duration,
    /// How often TLS files are looked at for changes.
    pub tls_reload: Duration,
    pub gateway: GatewayConfig,
    /// Redis for connection limits across the nodes.
    pub redis: Option<String>,
}

/// What `node.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeEndpoints {
    pub id: String,
    pub environment: String,
    pub external: String,
    pub internal: String,
    /// `http://` base URL of `/healthz`, `/readyz` and `/metrics`.
    pub status: String,
    pub pid: u32,
}

/// The copy on disk: the version and the environment's snapshot.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedSnapshot {
    version: u64,
    environment: String,
    snapshot: Snapshot,
}

/// Run a node until `stop` resolves, then drain.
pub async fn run(
    config: NodeConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)?;
    let _lock = lock_data_dir(&config.data_dir)?;
    let id = node_id(&config.data_dir)?;
    let environment = config.listen.name.clone();
    let mut gateway_config = config.gateway.clone();
    if let Some(file) = &mut gateway_config.access_log.file {
        // A relative access-log path is inside the data folder, as for `serve`.
        *file = config.data_dir.join(&*file);
    }
    let gateway = Gateway::new(gateway_config).map_err(crate::config::ConfigError)?;
    if let Some(url) = &config.redis {
        gateway
            .share_counters(url, &crate::platform::counter_instance(&id))
            .await
            .map_err(crate::config::ConfigError)?;
    }

    // Serve from the copy on disk until the control plane answers.
    let initial = match load_saved(&config.data_dir, &environment) {
        Ok(Some(saved)) => {
            tracing::info!(
                version = saved.version,
                "serving the snapshot kept on disk until the control plane answers"
            );
            saved.snapshot
        }
        Ok(None) => Snapshot::default(),
        Err(e) => {
            tracing::warn!(error = %e, "the snapshot kept on disk is unreadable: waiting for the control plane");
            Snapshot::default()
        }
    };
    gateway.apply(&initial);
    let (updates, follow_rx) = watch::channel(Arc::new(initial));

    let bind = |addr: SocketAddr, what: &'static str| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {what} listener"))
    };
    let listen = &config.listen;
    let external_tls = load_tls(&listen.external_options, &format!("{environment} external"))?;
    let internal_tls = load_tls(&listen.internal_options, &format!("{environment} internal"))?;
    let external = bind(listen.external, "external").await?;
    let internal = bind(listen.internal, "internal").await?;
    let status = bind(config.listen_status, "status").await?;
    let listeners = BTreeMap::from([
        (
            "external".to_string(),
            listen
                .external_options
                .url(external.local_addr()?, "ws", "wss"),
        ),
        (
            "internal".to_string(),
            listen
                .internal_options
                .url(internal.local_addr()?, "ws", "wss"),
        ),
    ]);
    let endpoints = NodeEndpoints {
        id: id.clone(),
        environment: environment.clone(),
        external: listeners["external"].clone(),
        internal: listeners["internal"].clone(),
        status: status_url(status.local_addr()?),
        pid: std::process::id(),
    };
    // Connection commands from the control planes (list, close, send) are taken on the
    // status listener with this secret, new at each start and sent only over the sync
    // call the node token authenticates.
    let command_secret = asyncgate_core::credential::generate_secret("agx_");

    let (shutdown, shutdown_rx) = watch::channel(false);
    let draining = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    {
        let gateway = gateway.clone();
        tasks.spawn(async move { gateway.follow(follow_rx).await });
    }
    tasks.spawn(serve_status(
        status,
        gateway.clone(),
        draining.clone(),
        asyncgate_core::credential::hash_secret(&command_secret),
    ));
    let syncing = tokio::spawn(sync(
        Syncing {
            config: config.clone(),
            id,
            listeners,
            command_url: endpoints.status.clone(),
            command_secret,
            gateway: gateway.clone(),
            draining: draining.clone(),
            updates,
        },
        shutdown_rx.clone(),
    ));
    let all_tls: Vec<_> = external_tls.iter().chain(&internal_tls).cloned().collect();
    tasks.spawn(asyncgate_gateway::tls::follow_files(
        all_tls,
        config.tls_reload,
        shutdown_rx.clone(),
    ));
    let specs = vec![
        ListenerSpec {
            environment: environment.clone(),
            kind: ListenerKind::External,
            socket: external.into_std()?,
            tls: external_tls,
        },
        ListenerSpec {
            environment: environment.clone(),
            kind: ListenerKind::Internal,
            socket: internal.into_std()?,
            tls: internal_tls,
        },
    ];
    let workers = gateway.start_workers(specs, shutdown_rx.clone(), config.drain)?;
    write_private(
        &config.data_dir.join(NODE_FILE),
        &serde_json::to_string_pretty(&endpoints)?,
    )?;
    println!(
        "asyncgate gateway node {} serving {}: external {} internal {} status {}",
        endpoints.id,
        endpoints.environment,
        endpoints.external,
        endpoints.internal,
        endpoints.status
    );

    stop.await;
    // Draining: the load balancer is told first (readyz 503), then the listeners stop and
    // live connections are closed with 1001 within the drain period.
    draining.store(true, Ordering::SeqCst);
    tracing::info!("draining: closing live connections with 1001");
    let _ = shutdown.send(true);
    let _ = tokio::task::spawn_blocking(move || workers.join()).await;
    // The sync task's last report (at most a couple of seconds).
    let _ = syncing.await;
    tasks.abort_all();
    Ok(())
}

/// The node's id, made once and kept in its data folder.
fn node_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(NODE_ID_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = asyncgate_core::credential::new_id("node-");
    write_private(&path, &id)?;
    Ok(id)
}

fn load_saved(dir: &Path, environment: &str) -> anyhow::Result<Option<SavedSnapshot>> {
    let path = dir.join(SNAPSHOT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let saved: SavedSnapshot =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    if saved.environment != environment {
        anyhow::bail!(
            "{} is a snapshot of the environment `{}`, not `{environment}`",
            path.display(),
            saved.environment
        );
    }
    Ok(Some(saved))
}

/// Write the copy next to its place, then rename it there: a crash leaves the old copy
/// or the new one, never half of one. Readable by this user only (it holds the key the
/// gateway signs caller assertions with).
fn save(dir: &Path, saved: &SavedSnapshot) -> anyhow::Result<()> {
    let path = dir.join(SNAPSHOT_FILE);
    let next = dir.join(format!("{SNAPSHOT_FILE}.next"));
    write_private(&next, &serde_json::to_string(saved)?)?;
    std::fs::rename(&next, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

struct Syncing {
    config: NodeConfig,
    id: String,
    listeners: BTreeMap<String, String>,
    command_url: String,
    command_secret: String,
    gateway: Gateway,
    draining: Arc<AtomicBool>,
    updates: watch::Sender<Arc<Snapshot>>,
}

/// Why a sync call failed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("the control plane cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the control plane refused the node ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("cannot keep the snapshot on disk: {0:#}")]
    Disk(anyhow::Error),
}

/// Call the control plane again and again: report, wait for a new version, apply it,
/// keep it on disk. On failure keep serving what is applied and try again with backoff.
async fn sync(s: Syncing, mut stop: watch::Receiver<bool>) {
    let sync_url = |wait: u64| {
        url::Url::parse(&format!(
            "{}{}/nodes/sync?wait={wait}",
            s.config.control.as_str().trim_end_matches('/'),
            asyncgate_control::API_PREFIX
        ))
    };
    let (url, last_url) = match (sync_url(SYNC_WAIT_SECONDS), sync_url(0)) {
        (Ok(u), Ok(l)) => (u, l),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "the control plane URL cannot be joined with the sync path");
            return;
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(SYNC_WAIT_SECONDS + 30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client with timeouts");
    let hostname = hostname();
    let report = |s: &Syncing| NodeReport {
        id: s.id.clone(),
        environment: s.config.listen.name.clone(),
        hostname: hostname.clone(),
        applied_version: s.updates.borrow().version,
        connections: s.gateway.live().total(),
        state: if s.draining.load(Ordering::SeqCst) {
            "draining"
        } else {
            "serving"
        }
        .into(),
        listeners: s.listeners.clone(),
        command_url: Some(s.command_url.clone()),
        command_secret: Some(s.command_secret.clone()),
    };
    let mut backoff = BACKOFF_MIN;
    let mut reported_failure = false;
    loop {
        let now = report(&s);
        let call = sync_once(&client, &url, &s, &now);
        let outcome = tokio::select! {
            r = call => r,
            _ = stop.changed() => break,
        };
        match outcome {
            Ok(()) => {
                if reported_failure {
                    tracing::info!("the control plane answers again");
                    reported_failure = false;
                }
                backoff = BACKOFF_MIN;
            }
            Err(e) => {
                if !reported_failure {
                    tracing::warn!(error = %e, "sync failed: serving the last snapshot, trying again with backoff");
                    reported_failure = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // Stopping: tell the control plane the node drains (best effort, without waiting for
    // a new version), so the node list shows it.
    let last = client
        .post(last_url)
        .timeout(Duration::from_secs(2))
        .bearer_auth(&s.config.token)
        .json(&report(&s))
        .send();
    if let Err(e) = last.await {
        tracing::debug!(error = %e, "could not report draining to the control plane");
    }
}

async fn sync_once(
    client: &reqwest::Client,
    url: &url::Url,
    s: &Syncing,
    report: &NodeReport,
) -> Result<(), SyncError> {
    let response = client
        .post(url.clone())
        .bearer_auth(&s.config.token)
        .json(report)
        .send()
        .await?;
    match response.status().as_u16() {
        204 => Ok(()),
        200 => {
            let sync: NodeSync = response.json().await?;
            let saved = SavedSnapshot {
                version: sync.version,
                environment: s.config.listen.name.clone(),
                snapshot: sync.snapshot,
            };
            // Applied first (serving matters more than the copy), then kept.
            let mut snapshot = saved.snapshot.clone();
            snapshot.version = sync.version;
            s.updates.send_replace(Arc::new(snapshot));
            tracing::debug!(
                version = sync.version,
                "applied a snapshot from the control plane"
            );
            save(&s.config.data_dir, &saved).map_err(SyncError::Disk)
        }
        status => {
            let detail = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
                .unwrap_or_default();
            Err(SyncError::Refused { status, detail })
        }
    }
}

/// This machine's name (`localhost` when it cannot be read).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The status listener's URL as others reach it: its address, or this host's name when
/// it listens on every address.
fn status_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://{}:{}", hostname(), addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// `/healthz` (the process answers), `/readyz` (a snapshot is applied and the node is not
/// draining: what a load balancer asks), `/metrics` (the gateway's, Prometheus text), and
/// for the control planes, with the node's command secret: `/connections/{api}` (list),
/// `DELETE /connections/{api}/{id}` (close) and `POST /connections/{api}/{id}/messages`.
async fn serve_status(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    draining: Arc<AtomicBool>,
    command_secret_hash: String,
) {
    use axum::http::StatusCode;
    use axum::routing::get;
    let ready = {
        let gateway = gateway.clone();
        move || async move {
            if draining.load(Ordering::SeqCst) {
                (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else if *gateway.applied().borrow() == 0 {
                (StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet\n")
            } else {
                (StatusCode::OK, "ready\n")
            }
        }
    };
    let metrics = {
        let gateway = gateway.clone();
        move || async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                gateway.metrics().encode(),
            )
        }
    };
    let commands = Arc::new(crate::node_commands::Commands {
        plane: crate::dataplane::GatewayPlane(gateway),
        secret_hash: command_secret_hash,
    });
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::node_commands::router(commands));
    // The status listener outlives the drain (the load balancer keeps reading readyz);
    // it ends when the node's tasks are aborted.
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the status listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_on_disk_is_read_back_for_its_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_saved(dir.path(), "production").unwrap().is_none());
        let snapshot = Snapshot {
            version: 7,
            token_issuer: "https://control.example".into(),
            ..Snapshot::default()
        };
        let saved = SavedSnapshot {
            version: 7,
            environment: "production".into(),
            snapshot: snapshot.clone(),
        };
        save(dir.path(), &saved).unwrap();
        let back = load_saved(dir.path(), "production").unwrap().unwrap();
        assert_eq!((back.version, back.snapshot), (7, snapshot));
        assert!(!dir.path().join(format!("{SNAPSHOT_FILE}.next")).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        let other = load_saved(dir.path(), "development").unwrap_err();
        assert!(other.to_string().contains("`production`"), "{other}");
        std::fs::write(dir.path().join(SNAPSHOT_FILE), "{ half").unwrap();
        assert!(load_saved(dir.path(), "production").is_err());
    }

    #[test]
    fn a_node_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = node_id(dir.path()).unwrap();
        assert!(id.starts_with("node-"));
        assert_eq!(node_id(dir.path()).unwrap(), id);
    }
}
