//! Accepting connections on one environment listener and answering each handshake:
//! admit (or reject with a status), dial the backend, then answer 101 and start the pump.

use crate::handshake::{self, ListenerInfo};
use crate::live::Live;
use crate::snapshot::SnapshotHandle;
use crate::{pump, upstream};
use asyncgate_core::ListenerKind;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time allowed to connect to a backend and complete its handshake (default 5 s).
    pub connect_timeout: Duration,
    /// PEM file of extra CA certificates trusted for `wss://` backends.
    pub backend_ca_file: Option<std::path::PathBuf>,
    /// How long connections of an undeployed, blocked or retired API may go on before
    /// they are closed with 1001 (default 10 s).
    pub undeploy_grace: Duration,
    /// Bytes read per system call into the thread's scratch buffer (default 32 KiB). A
    /// connection holds a buffer of its own only while its peer cannot take what was read.
    pub read_buffer_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            connect_timeout: Duration::from_secs(5),
            backend_ca_file: None,
            undeploy_grace: Duration::from_secs(10),
            read_buffer_bytes: 32 << 10,
        }
    }
}

/// The data plane of one process: the current snapshot and the settings every listener
/// shares. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    snapshot: Arc<SnapshotHandle>,
    config: Arc<GatewayConfig>,
    tls: Arc<rustls::ClientConfig>,
    live: Arc<Live>,
    /// The version of the last snapshot applied.
    applied: Arc<watch::Sender<u64>>,
}

impl Gateway {
    /// Fails only when the configured backend CA file cannot be used.
    pub fn new(config: GatewayConfig) -> Result<Gateway, String> {
        let tls = upstream::tls_config(config.backend_ca_file.as_deref())?;
        Ok(Gateway {
            snapshot: Arc::new(SnapshotHandle::default()),
            config: Arc::new(config),
            tls,
            live: Arc::default(),
            applied: Arc::new(watch::channel(0).0),
        })
    }

    /// Apply one snapshot now.
    pub fn apply(&self, snapshot: &asyncgate_core::Snapshot) {
        self.snapshot.apply(snapshot);
        self.applied.send_replace(snapshot.version);
    }

    /// Versions of the snapshots this gateway has applied, as they are applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Live connections, per API and environment.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Apply every snapshot published on `updates` until the sender goes away; after each,
    /// connections of APIs no longer served get the grace period, then a 1001 close.
    pub async fn follow(&self, mut updates: watch::Receiver<Arc<asyncgate_core::Snapshot>>) {
        loop {
            let snap = updates.borrow_and_update().clone();
            self.apply(&snap);
            tracing::debug!(version = snap.version, "gateway applied snapshot");
            for (env, api, reason) in self.live.orphans(&self.snapshot.load()) {
                tracing::info!(%env, %api, %reason, "closing live connections after the grace period");
                let gateway = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(gateway.config.undeploy_grace).await;
                    gateway
                        .live
                        .evict_if_orphaned(&gateway.snapshot.load(), &env, &api);
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

    /// Accept connections on `listener` for one environment until `shutdown` fires; live
    /// WebSocket connections are closed with 1001 when it does.
    pub async fn serve(
        &self,
        listener: TcpListener,
        environment: &str,
        kind: ListenerKind,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let info = Arc::new(ListenerInfo {
            environment: environment.to_string(),
            kind,
        });
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            let info = info.clone();
            let conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                let svc_shutdown = conn_shutdown.clone();
                let service = service_fn(move |req| {
                    let gateway = gateway.clone();
                    let info = info.clone();
                    let shutdown = svc_shutdown.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, &info, peer, shutdown).await) }
                });
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                let mut conn = std::pin::pin!(conn);
                let mut conn_shutdown = conn_shutdown;
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = conn_shutdown.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    }

    async fn handle(
        &self,
        mut req: Request<Incoming>,
        info: &ListenerInfo,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Response<Full<Bytes>> {
        let compiled = self.snapshot.load();
        let admission = match handshake::admit(&req, info, &compiled, peer) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(status = %e.status, fault = ?e.fault, path = req.uri().path(), "handshake rejected: {}", e.message);
                return e.to_response();
            }
        };
        drop(compiled);
        let route = admission.matched.route.clone();
        let slot = match self.live.admit(&route, &admission.credential) {
            Ok(slot) => slot,
            Err(e) => return e.to_response(),
        };
        let dialed = match upstream::connect(
            admission.backend_request,
            self.config.connect_timeout,
            &self.tls,
        )
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(api = %admission.matched.route.api_name, status = %e.status, "backend dial failed: {}", e.message);
                return e.to_response();
            }
        };

        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                derive_accept_key(admission.client_key.as_bytes()),
            );
        if let Some(protocol) = dialed.protocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        let backend = dialed.leg;
        let response = match response.body(Full::new(Bytes::new())) {
            Ok(r) => r,
            Err(e) => return crate::GatewayError::internal(e.to_string()).to_response(),
        };

        let on_upgrade = hyper::upgrade::on(&mut req);
        let settings = pump::Settings {
            timing: pump::Timing {
                idle: Duration::from_secs(route.limits.idle_timeout_seconds),
                pong_timeout: Duration::from_secs(route.limits.pong_timeout_seconds),
                max_duration: (route.limits.max_connection_seconds > 0)
                    .then(|| Duration::from_secs(route.limits.max_connection_seconds)),
            },
            max_message_bytes: route.limits.max_message_bytes,
            read_bytes: self.config.read_buffer_bytes,
        };
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "client upgrade failed");
                    return;
                }
            };
            // The listener serves plain TCP, so the upgraded connection is that socket.
            let client = match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => pump::Leg {
                    io: parts.io.into_inner(),
                    read_ahead: parts.read_buf.to_vec(),
                },
                Err(_) => {
                    tracing::error!("upgraded client connection is not a TCP stream");
                    return;
                }
            };
            tracing::debug!(api = %route.api_name, env = %route.environment, revision = route.revision, "connection open");
            let signals = pump::Signals {
                shutdown,
                evicted: slot.evicted.clone(),
            };
            let ended = pump::run(client, backend, settings, signals).await;
            drop(slot);
            tracing::debug!(api = %route.api_name, ?ended, "connection closed");
        });
        response
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
