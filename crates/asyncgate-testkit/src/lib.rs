//! Test helpers: a platform, backends and WebSocket clients on 127.0.0.1:0 in a few lines,
//! all over real sockets and a real SQLite file in a temporary folder.

use anyhow::{anyhow, Context};
use asyncgate::client::Client;
use asyncgate::config::ServeConfig;
use asyncgate::platform::Platform;
use asyncgate_store::StoreLocation;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use asyncgate::SAMPLE_CONTRACT;

/// How long any single wait for an event may take before the test fails: a safety net
/// against a hang, far above what the event takes even on a slow machine, never a speed
/// requirement (timing goals live in `bench/`).
pub const WAIT: Duration = Duration::from_secs(30);

pub mod deflate;
pub mod services;

/// Wait until `done` holds, looking every 20 ms; fails after [`WAIT`] naming `what`.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    eventually_async(what, || std::future::ready(done())).await
}

/// Wait until the future `done()` resolves to true, asking every 20 ms; fails after
/// [`WAIT`] naming `what`.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) -> anyhow::Result<()> {
    eventually_some(what, || {
        let asked = done();
        async move { asked.await.then_some(()) }
    })
    .await
}

/// The first value the future `ask()` resolves to, asking every 20 ms until it gives one;
/// fails after [`WAIT`] naming `what`.
pub async fn eventually_some<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut ask: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = ask().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!("still waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of a growing counter once it has stopped growing: unchanged over five
/// looks 100 ms apart (on a slower machine it only takes longer to get there).
pub async fn stopped_growing(what: &str, f: impl Fn() -> u64) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    let (mut last, mut same) = (f(), 0);
    while same < 5 {
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!("{what} kept growing: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = f();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

/// A platform in a temporary data folder, every listener on port 0.
pub struct TestPlatform {
    pub platform: Platform,
    pub client: Client,
    dir: tempfile::TempDir,
    customize: Customize,
    /// The store every (re)start uses: SQLite in the data folder, or a database of its
    /// own on the test PostgreSQL (see [`test_store`]).
    store: Option<StoreLocation>,
    _no_panics: NoPanics,
}

/// `ASYNCGATE_TEST_STORE=postgres` runs test platforms on PostgreSQL: each one on a new
/// database of the server at `ASYNCGATE_TEST_POSTGRES` (its maintenance database's URL,
/// as `scripts/services start` prints it). Unset (or `sqlite`): SQLite in the data folder.
pub async fn test_store() -> anyhow::Result<Option<StoreLocation>> {
    match std::env::var("ASYNCGATE_TEST_STORE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Ok(None),
        Ok("postgres") => {
            let server = std::env::var("ASYNCGATE_TEST_POSTGRES").map_err(|_| {
                anyhow!("ASYNCGATE_TEST_STORE=postgres needs ASYNCGATE_TEST_POSTGRES, the URL of a server's `postgres` database (scripts/test sets both)")
            })?;
            let url = services::create_database(&server).await?;
            Ok(Some(url.parse()?))
        }
        Ok(other) => Err(anyhow!(
            "ASYNCGATE_TEST_STORE={other}: use sqlite or postgres"
        )),
    }
}

/// Fails the test (when dropped) if any of the gateway's connection tasks panicked: a
/// panic in the gateway is a defect even when the test's own assertions held.
struct NoPanics(asyncgate_gateway::Gateway);

impl Drop for NoPanics {
    fn drop(&mut self) {
        let panics = self.0.panics();
        if panics > 0 && !std::thread::panicking() {
            panic!(
                "{panics} gateway connection task(s) panicked during this test (see the log above)"
            );
        }
    }
}

/// Changes to a test platform's configuration, applied at every (re)start.
pub type Customize = std::sync::Arc<dyn Fn(&mut ServeConfig) + Send + Sync>;

impl TestPlatform {
    /// URL imports from loopback are allowed (tests serve contracts on 127.0.0.1).
    pub async fn start() -> anyhow::Result<TestPlatform> {
        Self::start_with(|c| c.import.allow_private_addresses = true).await
    }

    /// With the default import policy: no imports from loopback or private addresses.
    pub async fn start_locked_down() -> anyhow::Result<TestPlatform> {
        Self::start_with(|_| {}).await
    }

    /// With settings changed by `customize` (also applied on restart).
    pub async fn start_with(
        customize: impl Fn(&mut ServeConfig) + Send + Sync + 'static,
    ) -> anyhow::Result<TestPlatform> {
        let customize: Customize = std::sync::Arc::new(customize);
        let dir = tempfile::tempdir()?;
        let store = test_store().await?;
        let (platform, client) = Self::boot(dir.path(), &store, &customize).await?;
        Ok(TestPlatform {
            _no_panics: NoPanics(platform.gateway().clone()),
            platform,
            client,
            dir,
            customize,
            store,
        })
    }

    async fn boot(
        dir: &Path,
        store: &Option<StoreLocation>,
        customize: &Customize,
    ) -> anyhow::Result<(Platform, Client)> {
        let mut config = ServeConfig::ephemeral(dir.to_path_buf());
        config.drain = Duration::from_secs(1);
        config.store = store.clone();
        customize(&mut config);
        let platform = Platform::start(config).await?;
        let token = std::fs::read_to_string(&platform.endpoints.admin_token_file)?;
        let client = Client::new(&platform.endpoints.management, &token);
        Ok((platform, client))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop and start again on the same data folder (listeners get new ports).
    pub async fn restart(self) -> anyhow::Result<TestPlatform> {
        let TestPlatform {
            platform,
            dir,
            customize,
            store,
            _no_panics,
            ..
        } = self;
        platform.shutdown().await;
        drop(_no_panics);
        let (platform, client) = Self::boot(dir.path(), &store, &customize).await?;
        Ok(TestPlatform {
            _no_panics: NoPanics(platform.gateway().clone()),
            platform,
            client,
            dir,
            customize,
            store,
        })
    }

    pub fn management(&self) -> &str {
        &self.platform.endpoints.management
    }

    /// `ws://` base URL of an environment's listener.
    pub fn listener(&self, env: &str, external: bool) -> String {
        let urls = &self.platform.endpoints.environments[env];
        if external {
            urls.external.clone()
        } else {
            urls.internal.clone()
        }
    }

    /// Import the sample chat contract pointed at `target`.
    pub async fn import_sample(&self, target: &str) -> anyhow::Result<Value> {
        self.client
            .post(
                "/apis/import",
                &json!({ "contract": SAMPLE_CONTRACT, "target": target }),
            )
            .await
    }

    /// Import the sample contract pointed at `target`, deploy it to development
    /// (External) and create an API key: returns the client URL and the key.
    pub async fn deploy_sample(&self, target: &str) -> anyhow::Result<(String, String)> {
        self.import_sample(target).await?;
        let deployed = self.deploy("chat-api", "development", "external").await?;
        let url = deployed["url"]
            .as_str()
            .ok_or_else(|| anyhow!("no url in {deployed}"))?
            .to_string();
        Ok((url, self.create_key("chat-api").await?))
    }

    pub async fn deploy(&self, api: &str, env: &str, access: &str) -> anyhow::Result<Value> {
        self.client
            .post(
                &format!("/apis/{api}/deployments"),
                &json!({ "environment": env, "accessMode": access }),
            )
            .await
    }

    /// Import the sample contract pointed at `target`, deploy it to development (External)
    /// and publish it: returns the API id and the client URL.
    pub async fn publish_sample(&self, target: &str) -> anyhow::Result<(String, String)> {
        let api = self.import_sample(target).await?;
        let deployed = self.deploy("chat-api", "development", "external").await?;
        self.client
            .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
            .await?;
        let field = |v: &Value, name: &str| {
            v[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no {name} in {v}"))
        };
        Ok((field(&api, "id")?, field(&deployed, "url")?))
    }

    /// An application subscribed to the sample API on `plan`, and an API key of it for
    /// development: the application as created (with its client secret) and the key.
    pub async fn subscribed_app(&self, name: &str, plan: &str) -> anyhow::Result<(Value, String)> {
        let app = self
            .client
            .post("/applications", &json!({ "name": name }))
            .await?;
        let path = format!("/applications/{}", app["id"].as_str().unwrap_or_default());
        self.client
            .post(
                &format!("{path}/subscriptions"),
                &json!({ "api": "chat-api", "plan": plan }),
            )
            .await?;
        let key = self
            .client
            .post(
                &format!("{path}/keys"),
                &json!({ "environment": "development" }),
            )
            .await?;
        let key = key["key"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no key in {key}"))?;
        Ok((app, key))
    }

    pub async fn create_key(&self, api: &str) -> anyhow::Result<String> {
        let v = self
            .client
            .post(&format!("/apis/{api}/keys"), &json!({}))
            .await?;
        v["key"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no key in {v}"))
    }

    pub async fn shutdown(self) {
        self.platform.shutdown().await;
    }
}

/// A backend running in this process until dropped or stopped.
pub struct Backend {
    pub url: String,
    stop: watch::Sender<bool>,
    /// What the backend saw, for backends that record: `close:CODE:REASON` for each close
    /// frame received, `ping` for each ping.
    pub events: Events,
    /// Bytes sent by `flood:` commands so far.
    pub flooded: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

pub type Events = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl Backend {
    /// A backend at `url` that hands each connection accepted on `listener` to `session`,
    /// until it is stopped.
    fn serving<F, Fut>(url: String, listener: TcpListener, events: Events, session: F) -> Backend
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Ok((stream, _)) = listener.accept() => { tokio::spawn(session(stream)); }
                    _ = rx.changed() => return,
                }
            }
        });
        Backend {
            url,
            stop,
            events,
            flooded: Default::default(),
        }
    }

    /// The sample chat backend.
    pub async fn chat() -> anyhow::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let (stop, rx) = watch::channel(false);
        tokio::spawn(asyncgate::chat_backend::run(listener, rx));
        Ok(Backend {
            url,
            stop,
            events: Events::default(),
            flooded: Default::default(),
        })
    }

    /// Echoes every message; first sends a text message describing the handshake it got
    /// (`{"path": ..., "headers": {...}}`). A text `close:CODE:REASON` makes it close;
    /// `crash` makes it drop the connection without a close frame. It chooses the first
    /// subprotocol offered, or `rogue` when offered `rogue-request`. `big:N` makes it send
    /// a text message of N bytes; `bad-utf8` a text frame that is not UTF-8; `silent`
    /// makes it stop reading (and so stop answering
    /// pings); `flood:N:SIZE` makes it send N text messages of SIZE bytes as fast as the
    /// connection takes them, counting the bytes sent in `flooded`. It records closes and
    /// pings in `events`.
    pub async fn echo() -> anyhow::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let events = Events::default();
        let flooded: std::sync::Arc<std::sync::atomic::AtomicU64> = Default::default();
        let (log, count) = (events.clone(), flooded.clone());
        let mut backend = Backend::serving(url, listener, events, move |stream| {
            echo_session(stream, log.clone(), count.clone())
        });
        backend.flooded = flooded;
        Ok(backend)
    }

    /// The echo backend behind TLS (`wss://localhost:PORT`), with a certificate issued by
    /// a CA made for it; returns the backend and the CA certificate in PEM.
    pub async fn echo_tls() -> anyhow::Result<(Backend, String)> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "asyncgate test CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["localhost".to_string()])?
            .signed_by(&leaf_key, &Issuer::new(ca_params, ca_key))?;
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|e| anyhow!(e))?;
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("wss://localhost:{}", listener.local_addr()?.port());
        let events = Events::default();
        let log = events.clone();
        let backend = Backend::serving(url, listener, events, move |stream| {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    echo_session(tls, log, Default::default()).await;
                }
            }
        });
        Ok((backend, ca_cert.pem()))
    }

    /// Accepts TCP connections and never answers: for handshake timeouts.
    pub async fn unresponsive() -> anyhow::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    Ok((stream, _)) = listener.accept() => held.push(stream),
                    _ = rx.changed() => return,
                }
            }
        });
        Ok(Backend {
            url,
            stop,
            events: Events::default(),
            flooded: Default::default(),
        })
    }

    /// Recorded events, as they are now.
    pub fn events(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Wait until an event starting with `prefix` was recorded.
    pub async fn wait_event(&self, prefix: &str) -> anyhow::Result<String> {
        let mut found = None;
        let waited = eventually(&format!("a `{prefix}` event"), || {
            found = self.events().into_iter().find(|e| e.starts_with(prefix));
            found.is_some()
        })
        .await;
        match (found, waited) {
            (Some(e), _) => Ok(e),
            (None, _) => Err(anyhow!("no `{prefix}` event; events: {:?}", self.events())),
        }
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

// tungstenite's accept callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
async fn echo_session<S>(
    stream: S,
    events: Events,
    flooded: std::sync::Arc<std::sync::atomic::AtomicU64>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let record = |e: String| {
        if let Ok(mut log) = events.lock() {
            log.push(e);
        }
    };
    let mut seen = json!({});
    let callback = |req: &Request, resp: Response| {
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        seen = json!({ "path": req.uri().to_string(), "headers": headers });
        // Subprotocols: choose the first offered; answer `rogue` to an offer of
        // `rogue-request` (a choice that was not offered).
        let mut resp = resp;
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|p| p.trim().to_string());
        if let Some(p) = offered {
            let chosen = if p == "rogue-request" {
                "rogue".to_string()
            } else {
                p
            };
            resp.headers_mut()
                .insert("sec-websocket-protocol", chosen.parse().expect("token"));
        }
        Ok(resp)
    };
    let config = small_buffers();
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    if ws.send(Message::text(seen.to_string())).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(t) if t.as_str() == "crash" => return,
            Message::Text(t) if t.as_str() == "silent" => {
                // Hold the connection without reading: pings go unanswered.
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            Message::Text(t) if t.starts_with("flood:") => {
                let mut parts = t[6..].split(':').map(|n| n.parse::<usize>().unwrap_or(0));
                let (n, size) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                let payload = "f".repeat(size);
                for _ in 0..n {
                    if ws.send(Message::text(payload.clone())).await.is_err() {
                        return;
                    }
                    flooded.fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
                }
                continue;
            }
            Message::Text(t) if t.as_str() == "bad-utf8" => {
                use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
                use tokio_tungstenite::tungstenite::protocol::frame::Frame;
                Message::Frame(Frame::message(
                    vec![b'o', b'k', 0xFF],
                    OpCode::Data(Data::Text),
                    true,
                ))
            }
            Message::Text(t) if t.as_str() == "raw-nonminimal-ping" => {
                // A 125-byte ping with its length in the 64-bit form, in two writes.
                let s = ws.get_mut();
                let _ = s.write_all(&[0x89, 127, 0, 0, 0, 0, 0, 0]).await;
                let _ = s.flush().await;
                let mut rest = vec![0, 125];
                rest.extend_from_slice(&[b'p'; 125]);
                let _ = s.write_all(&rest).await;
                let _ = s.flush().await;
                continue;
            }
            Message::Text(t) if t.starts_with("big:") => {
                let n: usize = t[4..].parse().unwrap_or(0);
                Message::text("x".repeat(n))
            }
            Message::Ping(_) => {
                record("ping".into());
                continue;
            }
            Message::Text(t) if t.starts_with("close:") => {
                let mut parts = t.splitn(3, ':').skip(1);
                let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1000);
                let reason = parts.next().unwrap_or("").to_string();
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    }))
                    .await;
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(frame) => {
                record(match frame {
                    Some(f) => format!("close:{}:{}", u16::from(f.code), f.reason),
                    None => "close:1005:".into(),
                });
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// Small buffers: test peers should not dominate the process's memory.
fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A WebSocket test client.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

/// A WebSocket connection through the gateway on a raw socket, for bytes a client
/// library cannot send: the handshake is made by hand and the 101 read.
pub async fn raw_upgrade(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<TcpStream> {
    Ok(raw_handshake(url, headers).await?.0)
}

/// [`raw_upgrade`], also returning the 101's head as text.
pub async fn raw_handshake(
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(TcpStream, String)> {
    let rest = url.trim_start_matches("ws://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = TcpStream::connect(authority).await?;
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await?;
    // Read the answer's head byte by byte, so that no frame after it is consumed.
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        tokio::time::timeout(WAIT, tcp.read_exact(&mut b))
            .await
            .context("no answer to the handshake")??;
        answer.push(b[0]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    anyhow::ensure!(
        answer.starts_with("HTTP/1.1 101 "),
        "not upgraded: {answer}"
    );
    Ok((tcp, answer))
}

/// Read one frame from the gateway on a raw socket: its first byte and payload.
pub async fn raw_frame(tcp: &mut TcpStream) -> anyhow::Result<(u8, Vec<u8>)> {
    deflate::read_frame(tcp).await
}

/// What a refused handshake answered.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// A handshake request for `url` with extra `headers`.
fn request(
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())?,
            v.parse()?,
        );
    }
    Ok(req)
}

impl WsClient {
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<WsClient> {
        match Self::try_connect(url, headers).await? {
            Ok(c) => Ok(c),
            Err(r) => Err(anyhow!("refused with HTTP {}: {}", r.status, r.body)),
        }
    }

    pub async fn with_key(url: &str, key: &str) -> anyhow::Result<WsClient> {
        Self::connect(url, &[("api-key", key)]).await
    }

    /// Connect, returning the HTTP answer when the handshake is refused.
    pub async fn try_connect(
        url: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Result<WsClient, Refused>> {
        let req = request(url, headers)?;
        match tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_with_config(req, Some(small_buffers()), false),
        )
        .await
        .context("connect timed out")?
        {
            Ok((ws, resp)) => Ok(Ok(WsClient {
                ws,
                protocol: resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            })),
            Err(WsError::Http(resp)) => Ok(Err(Refused {
                status: resp.status().as_u16(),
                body: resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default(),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// Connect over TLS (`wss://`) trusting what `tls` trusts (and presenting its client
    /// certificate, if it has one).
    pub async fn connect_tls(
        url: &str,
        headers: &[(&str, &str)],
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<WsClient> {
        let req = request(url, headers)?;
        let (ws, resp) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_tls_with_config(
                req,
                Some(small_buffers()),
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls)),
            ),
        )
        .await
        .context("connect timed out")??;
        Ok(WsClient {
            ws,
            protocol: resp
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    /// Connect expecting the handshake to be refused: what it answered. An accepted
    /// handshake is an error.
    pub async fn refused(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Refused> {
        match Self::try_connect(url, headers).await? {
            Ok(_) => Err(anyhow!(
                "{url} accepted the handshake; a refusal was expected"
            )),
            Err(r) => Ok(r),
        }
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        Ok(self.ws.send(Message::text(text.to_string())).await?)
    }

    pub async fn send(&mut self, msg: Message) -> anyhow::Result<()> {
        Ok(self.ws.send(msg).await?)
    }

    /// The next message that is not a ping or pong.
    pub async fn next_message(&mut self) -> anyhow::Result<Message> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("no message within the wait")?
                .ok_or_else(|| anyhow!("connection ended"))??;
            if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                return Ok(msg);
            }
        }
    }

    /// The next message, including pings and pongs.
    pub async fn next_any(&mut self) -> anyhow::Result<Message> {
        Ok(tokio::time::timeout(WAIT, self.ws.next())
            .await
            .context("no message within the wait")?
            .ok_or_else(|| anyhow!("connection ended"))??)
    }

    pub async fn recv_text(&mut self) -> anyhow::Result<String> {
        match self.next_message().await? {
            Message::Text(t) => Ok(t.to_string()),
            other => Err(anyhow!("expected text, got {other:?}")),
        }
    }

    pub async fn recv_json(&mut self) -> anyhow::Result<Value> {
        let t = self.recv_text().await?;
        serde_json::from_str(&t).with_context(|| format!("not JSON: {t}"))
    }

    /// Wait for the close frame; returns its code and reason.
    pub async fn recv_close(&mut self) -> anyhow::Result<(u16, String)> {
        loop {
            match self.next_message().await {
                Ok(Message::Close(Some(f))) => {
                    return Ok((u16::from(f.code), f.reason.to_string()))
                }
                Ok(Message::Close(None)) => return Ok((1005, String::new())),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A one-file HTTP server for URL imports: answers every request with `body`.
pub struct FileServer {
    pub url: String,
    stop: watch::Sender<bool>,
    /// What a server made by [`FileServer::changing`] answers now.
    body: Option<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl FileServer {
    /// Answers every request with a 302 to `location`.
    pub async fn redirect(location: &str) -> anyhow::Result<FileServer> {
        Self::answer("/", format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")).await
    }

    pub async fn serve(path: &str, body: String) -> anyhow::Result<FileServer> {
        Self::answer(path, ok_yaml(&body)).await
    }

    /// Serves each `(path, body)` at its path (404 elsewhere); `url` is the server's
    /// root, `http://127.0.0.1:PORT/`. A body that starts with `HTTP/1.1 ` is sent as
    /// the whole response (for redirects and errors).
    pub async fn serve_files(files: &[(&str, &str)]) -> anyhow::Result<FileServer> {
        let routes: std::collections::HashMap<String, String> = files
            .iter()
            .map(|(p, b)| {
                let response = if b.starts_with("HTTP/1.1 ") {
                    b.to_string()
                } else {
                    ok_yaml(b)
                };
                (format!("/{}", p.trim_start_matches('/')), response)
            })
            .collect();
        Self::start("/", move |path| {
            routes.get(path).cloned().unwrap_or_else(|| {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
            })
        })
        .await
    }

    /// Answers every request with `body` until [`FileServer::set`] changes it (a JWKS
    /// whose keys rotate, for example).
    pub async fn changing(path: &str, body: String) -> anyhow::Result<FileServer> {
        let shared = std::sync::Arc::new(std::sync::Mutex::new(body));
        let read = shared.clone();
        let mut server = Self::start(path, move |_| {
            ok_yaml(&read.lock().map(|b| b.clone()).unwrap_or_default())
        })
        .await?;
        server.body = Some(shared);
        Ok(server)
    }

    /// What a [`FileServer::changing`] server answers from now on.
    pub fn set(&self, body: String) {
        if let Some(shared) = &self.body {
            if let Ok(mut b) = shared.lock() {
                *b = body;
            }
        }
    }

    /// Answers every request with `response` (head and body).
    async fn answer(path: &str, response: String) -> anyhow::Result<FileServer> {
        Self::start(path, move |_| response.clone()).await
    }

    /// Answers each request with what `respond` gives for its path; `url` ends in `path`.
    async fn start(
        path: &str,
        respond: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> anyhow::Result<FileServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}{path}", listener.local_addr()?);
        let (stop, mut rx) = watch::channel(false);
        let respond = std::sync::Arc::new(respond);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Ok((mut s, _)) = listener.accept() => {
                        let respond = respond.clone();
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 8192];
                            let mut read = 0;
                            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                                match s.read(&mut buf[read..]).await { Ok(0) | Err(_) => return, Ok(n) => read += n }
                            }
                            let head = String::from_utf8_lossy(&buf[..read]);
                            let path = head.split(' ').nth(1).unwrap_or("/");
                            let path = path.split('?').next().unwrap_or(path);
                            let _ = s.write_all(respond(path).as_bytes()).await;
                            let _ = s.shutdown().await;
                        });
                    }
                    _ = rx.changed() => return,
                }
            }
        });
        Ok(FileServer {
            url,
            stop,
            body: None,
        })
    }
}

fn ok_yaml(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A free 127.0.0.1 port with nothing listening on it (for "backend down" cases).
pub async fn dead_port_url() -> anyhow::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    drop(l);
    Ok(format!("ws://{addr}"))
}

/// Path of the sample contract in the repository.
pub fn sample_contract_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/chat-service-asyncapi.yaml")
}

/// Resident memory of this process, in bytes (Linux).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Open file descriptors of this process (Linux).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A certificate authority made for a test: it issues server certificates (for names)
/// and client certificates, written as PEM files.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA's certificate in PEM.
    pub pem: String,
}

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        })
    }

    /// A certificate for `names` (a server's, or with `client` a client's), named
    /// `common_name`.
    pub fn issue(&self, names: &[&str], common_name: &str, client: bool) -> anyhow::Result<Issued> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client configuration trusting this CA, presenting `identity` when given.
    pub fn client_config(
        &self,
        identity: Option<&Issued>,
    ) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.pem.as_bytes())?)?;
        let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let config = match identity {
            Some(id) => builder.with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes())?],
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())?,
            )?,
            None => builder.with_no_client_auth(),
        };
        Ok(std::sync::Arc::new(config))
    }
}
