//! The benchmark tool: backends (echo) and load generators (closed-loop round trips,
//! handshakes, idle connections, compressed chat messages), each printing one JSON line
//! of results.

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

mod deflate;

#[derive(Parser)]
struct Cli {
    /// CA certificate (PEM) trusted for `wss://` URLs. Clients resume no TLS session:
    /// every handshake is a full one.
    #[arg(long, global = true)]
    ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The TLS client configuration of `wss://` connections (set once, from `--ca`).
static TLS: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();

fn tls_client(ca: &std::path::Path) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(std::sync::Arc::new(config))
}

/// A test CA and a certificate for `localhost` and 127.0.0.1 signed by it, in `dir`:
/// `ca.pem`, `cert.pem`, `key.pem` and `combined.pem` (certificate then key, for HAProxy).
fn make_certificates(dir: &std::path::Path) -> anyhow::Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "asyncgate bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
        .signed_by(&key, &Issuer::new(ca, ca_key))?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    std::fs::write(
        dir.join("combined.pem"),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )?;
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Write a test CA and a certificate for 127.0.0.1 into a folder.
    Certificates {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Echo every text and binary message.
    EchoBackend {
        #[arg(long)]
        listen: String,
    },
    /// Echo every message, with permessage-deflate when offered.
    DeflateEchoBackend {
        #[arg(long)]
        listen: String,
    },
    /// Closed loop of the chat sample's messages over raw sockets, offering
    /// permessage-deflate (`--offer`): also reports the bytes on the wire per round trip.
    DeflateRtt {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        inflight: usize,
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long)]
        header: Vec<String>,
        #[arg(long)]
        offer: bool,
    },
    /// Send every message received to all other connections.
    BroadcastBackend {
        #[arg(long)]
        listen: String,
    },
    /// One sender, `receivers` receivers on a broadcast backend: deliveries per second and
    /// the latency from send to each delivery.
    Fanout {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        receivers: usize,
        /// Messages the sender sends, evenly over `seconds`.
        #[arg(long, default_value_t = 200)]
        messages: usize,
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long)]
        header: Vec<String>,
    },
    /// Closed loop: each connection keeps `inflight` messages outstanding.
    Rtt {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        inflight: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Extra handshake header, NAME:VALUE.
        #[arg(long)]
        header: Vec<String>,
        /// Send the chat sample's messages (`{"type":"Data","message":"..."}` padded to
        /// the size, as text) instead of binary bytes: what message validation reads.
        #[arg(long)]
        chat: bool,
    },
    /// Connect, one echo, close, as fast as `concurrency` workers can.
    Handshakes {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long)]
        header: Vec<String>,
    },
    /// Open `count` connections, report when all are open, hold them `hold` seconds.
    Idle {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
        #[arg(long)]
        header: Vec<String>,
    },
}

fn small() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 << 10)
}

async fn connect(
    url: &str,
    headers: &[String],
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>>
{
    let mut req = url.into_client_request()?;
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("--header takes NAME:VALUE"))?;
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.trim().as_bytes())?,
            v.trim().parse()?,
        );
    }
    let connector = TLS
        .get()
        .map(|c| tokio_tungstenite::Connector::Rustls(c.clone()));
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(small()), true, connector)
            .await
            .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Bind `listen`, print where it listens, and run `session` on each connection.
async fn serve<F, Fut>(listen: &str, session: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(listen).await?;
    println!(
        "{}",
        json!({ "listening": listener.local_addr()?.to_string() })
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(session(stream));
    }
}

async fn echo_backend(listen: &str) -> anyhow::Result<()> {
    serve(listen, |stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small())).await
        else {
            return;
        };
        while let Some(Ok(msg)) = ws.next().await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                // Batch: queue everything already read, flush once.
                if ws.feed(msg).await.is_err() {
                    return;
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

async fn broadcast_backend(listen: &str) -> anyhow::Result<()> {
    use std::sync::{Arc, Mutex};
    use tokio::sync::mpsc;
    type Peers = Arc<Mutex<Vec<(u64, mpsc::UnboundedSender<Message>)>>>;
    let listener = TcpListener::bind(listen).await?;
    println!(
        "{}",
        json!({ "listening": listener.local_addr()?.to_string() })
    );
    let peers: Peers = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        next_id += 1;
        let (id, peers) = (next_id, peers.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small())).await
            else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
            peers.lock().expect("peers").push((id, out_tx));
            // Writer: everything queued for this connection, one flush per batch.
            let writer = tokio::spawn(async move {
                let mut out = tokio_stream_of(out_rx).ready_chunks(256);
                while let Some(batch) = out.next().await {
                    for m in batch {
                        if tx.feed(m).await.is_err() {
                            return;
                        }
                    }
                    if tx.flush().await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(msg)) = rx.next().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                    for (peer, out) in peers.lock().expect("peers").iter() {
                        if *peer != id {
                            let _ = out.send(msg.clone());
                        }
                    }
                }
            }
            peers.lock().expect("peers").retain(|(peer, _)| *peer != id);
            writer.abort();
        });
    }
}

/// An unbounded receiver as a stream.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Message>,
) -> impl futures_util::Stream<Item = Message> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn fanout(
    url: &str,
    receivers: usize,
    messages: usize,
    seconds: f64,
    size: usize,
    headers: &[String],
) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let mut tasks = Vec::with_capacity(receivers);
    for _ in 0..receivers {
        let mut ws = connect(url, headers).await?;
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut got = 0usize;
            while got < messages {
                match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                    Ok(Some(Ok(Message::Binary(b)))) if b.len() >= 8 => {
                        let sent = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
                        let now = epoch.elapsed().as_micros() as u64;
                        h.record(now.saturating_sub(sent).max(1))?;
                        got += 1;
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            let _ = ws.close(None).await;
            Ok::<_, anyhow::Error>((got, h))
        }));
    }
    let mut sender = connect(url, headers).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let gap = Duration::from_secs_f64(seconds / messages.max(1) as f64);
    for i in 0..messages {
        tokio::time::sleep_until((start + gap * i as u32).into()).await;
        let mut payload = vec![b'x'; size.max(8)];
        payload[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_le_bytes());
        sender.send(Message::binary(payload)).await?;
    }
    let mut delivered = 0usize;
    let mut all = histogram();
    for t in tasks {
        let (got, h) = t.await??;
        delivered += got;
        all.add(&h)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = sender.close(None).await;
    println!(
        "{}",
        json!({ "mode": "fanout", "receivers": receivers, "messages": messages, "delivered": delivered,
                "expected": messages * receivers, "seconds": elapsed, "rate": delivered as f64 / elapsed,
                "p50_us": all.value_at_quantile(0.5), "p99_us": all.value_at_quantile(0.99) })
    );
    Ok(())
}

/// A chat `Data` message of `size` bytes (at least its fixed part), as text.
fn chat_message(size: usize) -> Message {
    let head = r#"{"type":"Data","message":""#;
    let fill = size.saturating_sub(head.len() + 2);
    Message::text(format!("{head}{}\"}}", "x".repeat(fill)))
}

async fn rtt(
    url: &str,
    connections: usize,
    inflight: usize,
    payload: Message,
    seconds: f64,
    headers: &[String],
) -> anyhow::Result<()> {
    let size = payload.len();
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(connect(url, headers).await?);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for mut ws in sockets {
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut sent: VecDeque<Instant> = VecDeque::with_capacity(inflight);
            for _ in 0..inflight {
                ws.feed(payload.clone()).await?;
                sent.push_back(Instant::now());
            }
            ws.flush().await?;
            let mut done = 0u64;
            while let Some(msg) = ws.next().await {
                msg?;
                let t = sent
                    .pop_front()
                    .ok_or_else(|| anyhow!("more echoes than messages"))?;
                h.record(t.elapsed().as_micros().max(1) as u64)?;
                done += 1;
                if Instant::now() < deadline {
                    ws.send(payload.clone()).await?;
                    sent.push_back(Instant::now());
                } else if sent.is_empty() {
                    break;
                }
            }
            let _ = ws.close(None).await;
            Ok::<_, anyhow::Error>((done, h))
        }));
    }
    let start = Instant::now();
    let mut total = 0u64;
    let mut all = histogram();
    for t in tasks {
        let (done, h) = t.await??;
        total += done;
        all.add(&h)?;
    }
    let elapsed = start.elapsed().as_secs_f64().max(seconds);
    println!(
        "{}",
        json!({
            "mode": "rtt", "connections": connections, "inflight": inflight, "size": size,
            "roundtrips": total, "seconds": elapsed, "rate": total as f64 / elapsed,
            "p50_us": all.value_at_quantile(0.50), "p99_us": all.value_at_quantile(0.99),
        })
    );
    Ok(())
}

async fn handshakes(
    url: &str,
    concurrency: usize,
    seconds: f64,
    headers: &[String],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (url, headers) = (url.to_string(), headers.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut done = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut ws = connect(&url, &headers).await?;
                ws.send(Message::text("hello")).await?;
                ws.next().await.ok_or_else(|| anyhow!("no echo"))??;
                ws.close(None).await?;
                while let Some(Ok(_)) = ws.next().await {}
                h.record(t.elapsed().as_micros().max(1) as u64)?;
                done += 1;
            }
            Ok::<_, anyhow::Error>((done, h))
        }));
    }
    let mut total = 0;
    let mut all = histogram();
    for t in tasks {
        let (done, h) = t.await??;
        total += done;
        all.add(&h)?;
    }
    println!(
        "{}",
        json!({ "mode": "handshakes", "concurrency": concurrency, "handshakes": total, "seconds": seconds,
                "rate": total as f64 / seconds, "p50_us": all.value_at_quantile(0.5), "p99_us": all.value_at_quantile(0.99) })
    );
    Ok(())
}

async fn idle(url: &str, count: usize, hold: f64, headers: &[String]) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(count);
    let start = Instant::now();
    while held.len() < count {
        let batch = (count - held.len()).min(200);
        let mut pending = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (url, headers) = (url.to_string(), headers.to_vec());
            pending.push(tokio::spawn(async move { connect(&url, &headers).await }));
        }
        for p in pending {
            held.push(p.await??);
        }
    }
    println!(
        "{}",
        json!({ "mode": "idle", "open": held.len(), "seconds_to_open": start.elapsed().as_secs_f64() })
    );
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(ca) = &cli.ca {
        let _ = TLS.set(tls_client(ca)?);
    }
    // One thread: the load generator is pinned to one CPU by the run script.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Certificates { dir } => make_certificates(&dir),
            Command::EchoBackend { listen } => echo_backend(&listen).await,
            Command::DeflateEchoBackend { listen } => deflate::echo_backend(&listen).await,
            Command::DeflateRtt {
                url,
                connections,
                inflight,
                size,
                seconds,
                header,
                offer,
            } => deflate::rtt(&url, connections, inflight, size, seconds, &header, offer).await,
            Command::BroadcastBackend { listen } => broadcast_backend(&listen).await,
            Command::Fanout {
                url,
                receivers,
                messages,
                seconds,
                size,
                header,
            } => fanout(&url, receivers, messages, seconds, size, &header).await,
            Command::Rtt {
                url,
                connections,
                inflight,
                size,
                seconds,
                header,
                chat,
            } => {
                let payload = if chat {
                    chat_message(size)
                } else {
                    Message::binary(vec![b'x'; size])
                };
                rtt(&url, connections, inflight, payload, seconds, &header).await
            }
            Command::Handshakes {
                url,
                concurrency,
                seconds,
                header,
            } => handshakes(&url, concurrency, seconds, &header).await,
            Command::Idle {
                url,
                count,
                hold,
                header,
            } => idle(&url, count, hold, &header).await,
        }
    })
}
