//! Accepting connections on one environment listener and answering each handshake:
//! admit (or reject with a status), dial the backend, then answer 101 and start the pump.

use crate::access_log::{AccessLog, AccessLogConfig, Entry};
use crate::connection::{Connection, Identity, DOWN, UP};
use crate::forwarded::TrustedProxies;
use crate::handshake::{self, ListenerInfo};
use crate::live::{self, Live, LiveGuard};
use crate::metrics::{ClosedLabels, Metrics, RefusedLabels};
use crate::route::Route;
use crate::shared_counters::{Reserved, SharedCounters};
use crate::snapshot::SnapshotHandle;
use crate::tls::ClientStream;
use crate::{intake, pump, request, upstream, GatewayError};
use asyncgate_core::ListenerKind;
use futures_util::FutureExt as _;
use http::{Request, StatusCode};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time allowed to connect to a backend and complete its handshake (default 5 s).
    pub connect_timeout: Duration,
    /// PEM file of extra CA certificates trusted for `wss://` backends.
    pub backend_ca_file: Option<std::path::PathBuf>,
    /// How long connections of an undeployed, blocked or retired API (or one no longer
    /// served on their listener) may go on before they are closed with 1001 (default
    /// 3 s, so that they are closed within 5 s). Revoked keys get no grace period.
    pub undeploy_grace: Duration,
    /// Bytes read per system call into the thread's scratch buffer (default 32 KiB). A
    /// connection holds a buffer of its own only while its peer cannot take what was read.
    pub read_buffer_bytes: usize,
    /// Gateway worker threads; 0 (the default) means one per available CPU.
    pub workers: usize,
    /// Peers whose forwarding headers are believed (`gateway.trusted_proxies`); from
    /// anyone else they are replaced.
    pub trusted_proxies: TrustedProxies,
    /// Time a client has to send its whole request head (default 10 s); then 408.
    pub request_head_timeout: Duration,
    /// Connections in total, handshakes included; beyond it new ones are answered 503 at
    /// once. 0 (the default) derives it from the process's file descriptor limit,
    /// keeping [`intake::RESERVED_DESCRIPTORS`] for the management API and store.
    pub max_connections: usize,
    /// Handshakes in progress per listener (default 4,096); beyond it, 503.
    pub max_pending_handshakes: usize,
    /// Handshakes in progress per client address (default 512: clients behind one NAT
    /// reconnect together); beyond it, 503.
    pub max_pending_handshakes_per_address: usize,
    /// Where the line written for each connection at its end goes, and in what format.
    pub access_log: AccessLogConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            connect_timeout: Duration::from_secs(5),
            backend_ca_file: None,
            undeploy_grace: Duration::from_secs(3),
            read_buffer_bytes: 32 << 10,
            workers: 0,
            trusted_proxies: TrustedProxies::default(),
            request_head_timeout: Duration::from_secs(10),
            max_connections: 0,
            max_pending_handshakes: 4096,
            max_pending_handshakes_per_address: 512,
            access_log: AccessLogConfig::default(),
        }
    }
}

/// The data plane of one process: the current snapshot and the settings every listener
/// shares. Cheap to clone: one pointer, which is what each connection's task holds.
#[derive(Clone)]
pub struct Gateway(Arc<Shared>);

/// What every clone of a [`Gateway`] shares.
pub struct Shared {
    snapshot: Arc<SnapshotHandle>,
    config: Arc<GatewayConfig>,
    tls: Arc<rustls::ClientConfig>,
    live: Arc<Live>,
    /// Connection tasks that panicked: every one is a defect, logged and counted here.
    panics: Arc<AtomicUsize>,
    /// The version of the last snapshot applied.
    applied: Arc<watch::Sender<u64>>,
    /// Slots for connections in total, one held by each connection for its life.
    connections: Arc<intake::Slots>,
    /// Handshakes in progress per listener and client address.
    pending: Arc<intake::Pending>,
    /// Refusals still lingering for their client to read the answer.
    lingering: Arc<AtomicUsize>,
    metrics: Metrics,
    access_log: AccessLog,
    /// Connection limits across the nodes (`--redis`), when set.
    shared_counters: std::sync::OnceLock<Arc<SharedCounters>>,
}

impl std::ops::Deref for Gateway {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Gateway {
    /// Fails when the configured backend CA file cannot be used or the access log cannot
    /// be opened.
    pub fn new(config: GatewayConfig) -> Result<Gateway, String> {
        let tls = upstream::tls_config(config.backend_ca_file.as_deref())?;
        let total = match config.max_connections {
            0 => intake::default_max_connections(),
            n => n,
        };
        let live: Arc<Live> = Arc::default();
        let snapshot = Arc::new(SnapshotHandle::default());
        let metrics = Metrics::new(live.clone(), snapshot.clone());
        let access_log = AccessLog::start(&config.access_log, metrics.access_log_dropped.clone())?;
        Ok(Gateway(Arc::new(Shared {
            connections: intake::Slots::new(total),
            pending: Arc::default(),
            lingering: Arc::default(),
            snapshot,
            config: Arc::new(config),
            tls,
            live,
            metrics,
            access_log,
            panics: Arc::default(),
            applied: Arc::new(watch::channel(0).0),
            shared_counters: std::sync::OnceLock::new(),
        })))
    }

    /// Hold connection limits across every node that shares the Redis at `url`, as node
    /// `node` (before serving; its heartbeat runs on the current runtime).
    pub async fn share_counters(&self, url: &str, node: &str) -> Result<(), String> {
        let counters = SharedCounters::start(url, node, self.metrics.clone()).await?;
        self.shared_counters
            .set(counters)
            .map_err(|_| "the gateway already shares its counters".to_string())
    }

    /// Apply one snapshot now.
    pub fn apply(&self, snapshot: &asyncgate_core::Snapshot) {
        let started = std::time::Instant::now();
        self.snapshot.apply(snapshot);
        self.metrics
            .snapshot_apply
            .set(started.elapsed().as_secs_f64());
        self.metrics
            .snapshot_version
            .set(i64::try_from(snapshot.version).unwrap_or(i64::MAX));
        self.applied.send_replace(snapshot.version);
    }

    /// The gateway's metrics (encode them for a scrape with [`Metrics::encode`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Versions of the snapshots this gateway has applied, as they are applied.
    /// Requests to fetch identity providers' keys again (see
    /// [`SnapshotHandle::key_refresh_requests`]); taken once.
    pub fn key_refresh_requests(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.snapshot.key_refresh_requests()
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Messages of an API in an environment that did not match its contract, under the
    /// revision served now.
    pub fn refused_messages(&self, environment: &str, api_id: &str) -> u64 {
        self.snapshot.load().refused_messages(environment, api_id)
    }

    /// Live connections, per API and environment.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Apply every snapshot published on `updates` until the sender goes away. After
    /// each, live connections it would refuse are closed: at once when their key was
    /// revoked, after the grace period (unless served again by then) otherwise.
    pub async fn follow(&self, mut updates: watch::Receiver<Arc<asyncgate_core::Snapshot>>) {
        loop {
            let snap = updates.borrow_and_update().clone();
            self.apply(&snap);
            tracing::debug!(version = snap.version, "gateway applied snapshot");
            if self.live.reconcile(&self.snapshot.load(), true) {
                let gateway = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(gateway.config.undeploy_grace).await;
                    gateway.live.reconcile(&gateway.snapshot.load(), false);
                });
            }
            if updates.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn snapshot(&self) -> &SnapshotHandle {
        &self.snapshot
    }

    pub(crate) fn config(&self) -> &GatewayConfig {
        &self.config
    }

    pub(crate) fn slots(&self) -> &intake::Slots {
        &self.connections
    }

    /// Handshakes in progress from `address`, on all listeners.
    pub fn pending_handshakes(&self, address: std::net::IpAddr) -> usize {
        self.pending.from_address(address)
    }

    /// How many connection tasks have panicked since the gateway started. A panic ends
    /// only its own connection; it is logged at error level and counted here.
    pub fn panics(&self) -> usize {
        self.panics.load(Ordering::Relaxed)
    }

    /// Accept connections on `listener` for one environment until `shutdown` fires; live
    /// WebSocket connections are closed with 1001 when it does.
    pub async fn serve(
        &self,
        listener: TcpListener,
        environment: &str,
        kind: ListenerKind,
        tls: Option<Arc<crate::tls::ServerTls>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let info = Arc::new(ListenerInfo {
            environment: environment.to_string(),
            kind,
            tls,
            handshake_series: self.metrics.handshake_series(environment, kind.as_str()),
        });
        let pending = self.pending.listener(&format!("{environment} {kind}"));
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, or the like: wait a little rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => {
                    // Live connections end with 1001; none is admitted from now on.
                    self.live.shut_down();
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let config = &self.config;
            let admitted = self.connections.take().ok_or_else(|| {
                GatewayError::client(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "connection_limit_reached",
                    "the gateway holds as many connections as it may; try again later",
                )
                .with_header(http::header::RETRY_AFTER, "1")
            });
            let admitted = admitted.and_then(|permit| {
                self.pending
                    .enter(
                        &pending,
                        peer.ip(),
                        config.max_pending_handshakes,
                        config.max_pending_handshakes_per_address,
                    )
                    .map(|ticket| (permit, ticket))
            });
            match admitted {
                Ok((permit, ticket)) => {
                    tokio::spawn(self.clone().connection(
                        stream,
                        peer,
                        info.clone(),
                        shutdown.clone(),
                        (permit, ticket),
                    ));
                }
                Err(e) => {
                    tracing::debug!(%peer, "handshake refused: {}", e.message);
                    self.refused(&info, peer, "", None, &e, Duration::ZERO);
                    if info.tls.is_some() {
                        // No TLS handshake is spent on a refusal: the connection is closed.
                        continue;
                    }
                    // A refusal lingers (so the client reads its answer) only while few do:
                    // under a flood, refusals must not take the descriptors either.
                    match intake::Lingering::enter(&self.lingering) {
                        Some(lingering) => {
                            tokio::spawn(async move {
                                request::refuse(stream, &e).await;
                                drop(lingering);
                            });
                        }
                        None => {
                            let _ = stream.try_write(&e.to_http());
                        }
                    }
                }
            }
        }
    }

    /// One client connection: the handshake, then frames until it ends. An async block
    /// rather than an async fn, so that the task holds its parts once.
    fn connection(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        info: Arc<ListenerInfo>,
        shutdown: watch::Receiver<bool>,
        (permit, ticket): (intake::Slot, intake::PendingGuard),
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut shutdown = shutdown;
        let panics = self.panics.clone();
        // The handshake, boxed with everything only it needs (the socket, the listener,
        // its place among pending handshakes): none of it stays with the connection,
        // whose task holds what the relay needs and no more (a task's state is as large
        // as its largest stage plus everything it captured).
        let gateway = self.clone();
        let handshake = Box::pin(async move {
            let opened = tokio::select! {
                opened = gateway.open(stream, peer, &info) => opened,
                _ = shutdown.changed() => None,
            };
            // The handshake is over either way.
            drop(ticket);
            opened
        });
        let connection = async move {
            let Some(opened) = handshake.await else {
                return;
            };
            let (relay, slot, route) = opened.relay();
            tracing::debug!(api = %route.api_name, env = %route.environment, revision = route.revision, "connection open");
            let outcome = relay.await;
            self.ended(&route, &slot.connection, &outcome);
            drop(slot);
            tracing::debug!(api = %route.api_name, ended = ?outcome.ended, "connection closed");
            // Held for the connection's life: its place among all connections.
            drop(permit);
        };
        // A panic ends this connection only; it is never silent.
        AssertUnwindSafe(connection)
            .catch_unwind()
            .map(move |ended| {
                if let Err(panic) = ended {
                    panics.fetch_add(1, Ordering::Relaxed);
                    let what = panic
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("a non-string payload");
                    tracing::error!(%peer, panic = what, "connection task panicked");
                }
            })
    }

    /// Read the client's handshake, admit it, dial the backend and answer 101; or answer
    /// why not and close.
    async fn open(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        info: &ListenerInfo,
    ) -> Option<Opened> {
        let accepted = Instant::now();
        let head_timeout = self.config.request_head_timeout;
        // The TLS handshake and the request head share the head's time.
        let deadline = tokio::time::Instant::now() + head_timeout;
        let mut stream = match &info.tls {
            None => ClientStream::Plain(stream),
            Some(tls) => {
                match tokio::time::timeout_at(deadline, tls.acceptor().accept(stream)).await {
                    Ok(Ok(tls)) => ClientStream::Tls(Box::new(tls)),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        self.count_refusal(info, "tls_handshake_failed");
                        return None;
                    }
                    Err(_) => {
                        self.count_refusal(info, "tls_handshake_timeout");
                        return None;
                    }
                }
            }
        };
        let head = match tokio::time::timeout_at(deadline, request::read_head(&mut stream)).await {
            Ok(Ok(head)) => head,
            Ok(Err(None)) => return None,
            Ok(Err(Some(e))) => {
                self.refused(info, peer, "", None, &e, accepted.elapsed());
                request::refuse(stream, &e).await;
                return None;
            }
            Err(_) => {
                let e = GatewayError::client(
                    StatusCode::REQUEST_TIMEOUT,
                    "head_timeout",
                    format!("no complete request head within {head_timeout:?}"),
                );
                self.refused(info, peer, "", None, &e, accepted.elapsed());
                request::refuse(stream, &e).await;
                return None;
            }
        };
        let request_id = crate::forwarded::request_id(
            head.request.headers(),
            peer,
            &self.config.trusted_proxies,
        );
        let (answer, backend, settings, slot, route) = match self
            .handshake(&head.request, info, peer, request_id)
            .await
        {
            Ok(ok) => ok,
            Err((e, request_id)) => {
                let path = head.request.uri().path();
                if e.fault == crate::Fault::Client {
                    tracing::debug!(status = %e.status, code = e.code, %path, "handshake rejected: {}", e.message);
                } else {
                    tracing::warn!(status = %e.status, code = e.code, %path, "handshake failed: {}", e.message);
                }
                self.refused(info, peer, path, Some(&request_id), &e, accepted.elapsed());
                request::refuse(stream, &e).await;
                return None;
            }
        };
        if stream.write_all(&answer).await.is_err() || stream.flush().await.is_err() {
            return None;
        }
        info.handshake_series
            .observe(accepted.elapsed().as_secs_f64());
        self.metrics.route_series(&route, info.kind).opened.inc();
        Some(Opened {
            client: pump::Leg {
                io: stream,
                read_ahead: head.read_ahead,
            },
            backend,
            settings,
            slot,
            route,
        })
    }

    fn count_refusal(&self, info: &ListenerInfo, code: &'static str) {
        self.metrics
            .refused
            .get_or_create(&RefusedLabels {
                environment: info.environment.clone(),
                listener: info.kind.as_str(),
                code,
            })
            .inc();
    }

    /// Count a refused handshake and write its access-log line.
    fn refused(
        &self,
        info: &ListenerInfo,
        peer: SocketAddr,
        path: &str,
        request_id: Option<&str>,
        e: &GatewayError,
        took: Duration,
    ) {
        self.count_refusal(info, e.code);
        self.access_log.write(&Entry {
            request_id: request_id.unwrap_or(""),
            peer: Some(peer),
            environment: &info.environment,
            listener: info.kind.as_str(),
            path,
            status: e.status.as_u16(),
            error: Some(e.code),
            duration: took,
            ..Entry::default()
        });
    }

    /// Count a connection that ended and write its access-log line.
    fn ended(&self, route: &Route, connection: &Connection, outcome: &pump::Outcome) {
        self.metrics
            .closed
            .get_or_create(&ClosedLabels {
                api: route.api_handle.to_string(),
                environment: route.environment.clone(),
                code: outcome.code,
                closed_by: outcome.ended.by(),
            })
            .inc();
        let counts = connection.counts();
        self.access_log.write(&Entry {
            request_id: connection.request_id(),
            peer: Some(connection.peer),
            environment: &route.environment,
            listener: connection.listener.as_str(),
            path: connection.path(),
            api: Some(&route.api_handle),
            revision: Some(route.revision),
            caller: Some(connection.caller()),
            credential: Some(connection.credential_kind),
            application: connection.application(),
            compression: Some(connection.compression()),
            status: 101,
            error: None,
            started: Some(connection.started),
            duration: connection.started.elapsed().unwrap_or_default(),
            messages: [counts[UP].messages, counts[DOWN].messages],
            bytes: [counts[UP].bytes, counts[DOWN].bytes],
            close_code: Some(outcome.code),
            close_reason: Some(&outcome.reason),
            closed_by: Some(outcome.ended.by()),
        });
    }

    /// Admit the request and dial the backend: the 101 to send and what the pump needs.
    /// On failure, the error and the request id (given back for the access log).
    async fn handshake(
        &self,
        req: &Request<()>,
        info: &ListenerInfo,
        peer: SocketAddr,
        request_id: String,
    ) -> Result<
        (
            Vec<u8>,
            pump::Leg<upstream::BackendStream>,
            pump::Settings,
            LiveGuard,
            Arc<Route>,
        ),
        (GatewayError, String),
    > {
        let admission = match handshake::admit(
            req,
            info,
            &self.snapshot.load(),
            peer,
            &self.config.trusted_proxies,
            &request_id,
        ) {
            Ok(a) => a,
            Err(e) => return Err((e, request_id)),
        };
        let route = admission.matched.route.clone();
        let (caller, application, credential_kind) = admission.credential.caller();
        let identity = Identity {
            peer,
            listener: info.kind,
            path: req.uri().path().to_string(),
            caller: caller.to_string(),
            credential_kind,
            application: application.map(str::to_string),
            revision: route.revision,
            request_id,
        };
        let connection = Arc::new(Connection::new(identity));
        let mut slot = self
            .live
            .admit(&route, info.kind, &admission.credential, connection.clone())
            .map_err(|e| (e, connection.request_id().to_string()))?;
        // Across the nodes too, when they share Redis and a limit applies.
        if let Some(counters) = self.shared_counters.get() {
            let counted = live::shared_counters(&route, &admission.credential);
            if !counted.is_empty() {
                let names: Vec<_> = counted.iter().map(|(_, c)| c.clone()).collect();
                match counters.reserve(&names).await {
                    Reserved::Place(place) => slot.shared = Some(place),
                    Reserved::Full(i) => {
                        let (limit, full) = &counted[i];
                        let refusal = limit.refusal(&route, full.limit);
                        return Err((refusal, slot.connection.request_id().to_string()));
                    }
                    Reserved::Unavailable => {}
                }
            }
            if let (Some(meter), Some(sub)) = (&slot.meter, &admission.credential.subscriber) {
                let limits = [sub.plan.messages_per_minute, sub.plan.bytes_per_minute];
                counters.share_rate(meter, live::plan_rate_name(&route, &sub.app_id), limits);
            }
        }
        let dialing = Instant::now();
        let dialed = upstream::connect(
            admission.backend_request,
            admission.compression,
            self.config.connect_timeout,
            &self.tls,
        )
        .await
        .map_err(|e| (e, slot.connection.request_id().to_string()))?;
        slot.connection.set_compression(dialed.compression.0);
        self.metrics
            .route_series(&route, info.kind)
            .backend_connect
            .observe(dialing.elapsed().as_secs_f64());
        let answer = request::switching_protocols(
            &derive_accept_key(admission.client_key.as_bytes()),
            dialed
                .protocol
                .as_ref()
                .or(admission.credential_protocol.as_ref()),
            dialed.compression.1.as_ref(),
        );
        let settings = pump::Settings {
            timing: pump::Timing {
                idle: Duration::from_secs(route.limits.idle_timeout_seconds),
                pong_timeout: Duration::from_secs(route.limits.pong_timeout_seconds),
                max_duration: (route.limits.max_connection_seconds > 0)
                    .then(|| Duration::from_secs(route.limits.max_connection_seconds)),
                credential_expiry: admission
                    .credential
                    .expires_at
                    .filter(|_| route.limits.close_on_credential_expiry)
                    .map(until_epoch_seconds),
            },
            max_message_bytes: route.limits.max_message_bytes,
            read_bytes: self.config.read_buffer_bytes,
            meter: slot.meter.clone(),
            rules: admission.matched.rules.clone(),
            rate: crate::meter::Meter::per_connection(&route.limits),
            compression: dialed.compression.0,
        };
        Ok((answer, dialed.leg, settings, slot, route))
    }
}

/// Time from now until `at` (seconds since the Unix epoch); zero when it has passed.
fn until_epoch_seconds(at: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(at).saturating_sub(now)
}

/// A connection through its handshake, ready for the pump.
struct Opened {
    client: pump::Leg<ClientStream>,
    backend: pump::Leg<upstream::BackendStream>,
    settings: pump::Settings,
    slot: LiveGuard,
    route: Arc<Route>,
}

impl Opened {
    /// The relay of this connection, with its slot and route, which outlive it. Taken
    /// apart here rather than in the task, whose state would otherwise keep room for the
    /// whole of it beside the relay.
    fn relay(
        self,
    ) -> (
        impl std::future::Future<Output = pump::Outcome>,
        LiveGuard,
        Arc<Route>,
    ) {
        let relay = pump::run(
            self.client,
            self.backend,
            self.settings,
            self.slot.connection.clone(),
        );
        (relay, self.slot, self.route)
    }
}

/// `ws://` URL of a listener bound at `addr` (unspecified addresses shown as loopback).
pub fn ws_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("ws://{ip}:{}", addr.port())
}
#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection costs is mostly its task: the relay's state plus what the
    /// task captured and keeps beside it (docs/benchmarks.md measures it per connection).
    /// The handshake's state is boxed and gone once it is over.
    #[tokio::test]
    async fn a_connection_task_holds_little_beside_its_relay() {
        let gateway = Gateway::new(GatewayConfig::default()).unwrap();
        assert_eq!(std::mem::size_of_val(&gateway), 8);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (_shutdown, shutdown) = watch::channel(false);
        let permit = gateway.connections.take().unwrap();
        let pending = gateway.pending.listener("development external");
        let ticket = gateway.pending.enter(&pending, addr.ip(), 8, 8).unwrap();
        let info = Arc::new(ListenerInfo {
            environment: "development".into(),
            kind: ListenerKind::External,
            tls: None,
            handshake_series: gateway.metrics.handshake_series("development", "external"),
        });
        let task = gateway
            .clone()
            .connection(stream, addr, info, shutdown, (permit, ticket));
        let size = std::mem::size_of_val(&task);
        // The relay's own state is bounded at 640 bytes in `pump`. Tokio allocates a task
        // as a header (32 bytes), its state plus 24 and a trailer (48) in multiples of
        // 128 bytes: up to 792 bytes of state it is 896 bytes in all.
        assert!(size <= 792, "a connection's task state is {size} bytes");
    }
}
