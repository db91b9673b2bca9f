//! The data plane's threads: each runs a single-threaded runtime that accepts on every
//! environment listener, so a connection lives on one thread from handshake to close,
//! with no work stealing or cross-thread wake-ups on its path (the design of nginx's and
//! HAProxy's workers).

use crate::listener::Gateway;
use asyncgate_core::ListenerKind;
use std::time::Duration;
use tokio::sync::watch;

/// One listener to serve: its environment, its kind and the bound socket.
pub struct ListenerSpec {
    pub environment: String,
    pub kind: ListenerKind,
    pub socket: std::net::TcpListener,
    /// Its TLS, for `wss://` clients.
    pub tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
}

/// One listener as a worker serves it: environment, kind, TLS and socket.
type Served = (
    String,
    ListenerKind,
    Option<std::sync::Arc<crate::tls::ServerTls>>,
    std::net::TcpListener,
);

/// The running worker threads.
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Start the worker threads (`GatewayConfig::workers`, or one per available CPU) on
    /// `listeners`. They stop accepting when `shutdown` fires, then give live connections
    /// up to `drain` to finish their closing handshakes.
    pub fn start_workers(
        &self,
        listeners: Vec<ListenerSpec>,
        shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) -> std::io::Result<Workers> {
        let count = match self.config().workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let mut own = Vec::with_capacity(listeners.len());
            for l in &listeners {
                own.push((
                    l.environment.clone(),
                    l.kind,
                    l.tls.clone(),
                    l.socket.try_clone()?,
                ));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let gateway = self.clone();
            let shutdown = shutdown.clone();
            let thread = std::thread::Builder::new()
                .name(format!("asyncgate-gw-{i}"))
                .spawn(move || runtime.block_on(gateway.work(own, shutdown, drain)))?;
            threads.push(thread);
        }
        Ok(Workers { threads })
    }

    /// One worker: serve its listeners until shutdown, then wait (bounded) for the
    /// connections to close.
    async fn work(self, listeners: Vec<Served>, shutdown: watch::Receiver<bool>, drain: Duration) {
        let mut serving = Vec::with_capacity(listeners.len());
        for (environment, kind, tls, socket) in listeners {
            let socket = match tokio::net::TcpListener::from_std(socket) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, %environment, "listener unusable in a gateway worker");
                    continue;
                }
            };
            let gateway = self.clone();
            let shutdown = shutdown.clone();
            serving.push(tokio::spawn(async move {
                gateway
                    .serve(socket, &environment, kind, tls, shutdown)
                    .await
            }));
        }
        for s in serving {
            let _ = s.await;
        }
        let deadline = tokio::time::Instant::now() + drain;
        while self.connection_tasks() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Connection tasks alive in all workers (handshakes under way and relayed
    /// connections).
    pub fn connection_tasks(&self) -> usize {
        self.slots().held()
    }
}

impl Workers {
    /// Wait for every worker thread to stop.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
