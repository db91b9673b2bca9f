//! After the upgrade: frames carried both ways from one task, close handshakes passed
//! through, keepalive pings to quiet sides, the connection's time limit, and both sides
//! closed with a code that says what happened.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// How long the gateway waits for the other side to answer a close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Payload of the gateway's own keepalive pings; their pongs are not forwarded.
const KEEPALIVE: &[u8] = b"asyncgate-keepalive";

/// How a relayed connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    BackendClosed,
    ClientLost,
    BackendLost,
    ClientTooBig,
    BackendTooBig,
    ClientSilent,
    BackendSilent,
    TimeLimit,
    Evicted,
    Shutdown,
}

/// Time-based bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A side silent this long is pinged.
    pub idle: Duration,
    /// A pinged side silent this long is dead.
    pub pong_timeout: Duration,
    /// The connection is closed after this long, if set.
    pub max_duration: Option<Duration>,
}

/// What can end a connection from outside.
pub struct Signals {
    /// Gateway shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Set to a reason when the API stops being served here.
    pub evicted: watch::Receiver<Option<String>>,
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Pings forwarded to one side whose pongs are still due. The WebSocket layer answers
/// every ping itself, so the pong the other side sends back for a forwarded ping is
/// dropped: each ping gets exactly one pong, and both ends still see each other's pings.
#[derive(Default)]
struct Pings {
    outstanding: VecDeque<Bytes>,
}

impl Pings {
    const MAX_OUTSTANDING: usize = 16;

    fn forwarded(&mut self, payload: &Bytes) {
        if self.outstanding.len() == Self::MAX_OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back(payload.clone());
    }

    /// Whether `payload` answers a forwarded ping (RFC 6455 5.5.3 lets a peer answer only
    /// the latest of several pings, so earlier ones are settled too).
    fn answers(&mut self, payload: &Bytes) -> bool {
        match self.outstanding.iter().position(|p| p == payload) {
            Some(i) => {
                self.outstanding.drain(..=i);
                true
            }
            None => false,
        }
    }
}

/// Whether a side was heard from since the last keepalive check, and whether the gateway
/// is waiting for its pong. Receiving a frame only sets a flag: the per-frame path reads
/// no clock and touches no timer.
#[derive(Default)]
struct Liveness {
    heard: bool,
    pinged: Option<Instant>,
}

enum Due {
    Nothing,
    Ping,
    Dead,
}

impl Liveness {
    /// At a keepalive check: what to do about this side.
    fn check(&mut self, now: Instant, t: &Timing) -> Due {
        if std::mem::take(&mut self.heard) {
            self.pinged = None;
            return Due::Nothing;
        }
        match self.pinged {
            Some(at) if now >= at + t.pong_timeout => Due::Dead,
            Some(_) => Due::Nothing,
            None => {
                self.pinged = Some(now);
                Due::Ping
            }
        }
    }

    /// When this side next needs a look.
    fn next_check(&self, now: Instant, t: &Timing) -> Instant {
        match self.pinged {
            Some(at) => at + t.pong_timeout,
            None => now + t.idle,
        }
    }
}

/// Relay between `client` and `backend` until one side closes or a bound or signal ends
/// the connection.
pub async fn run<C, B>(
    mut client: WebSocketStream<C>,
    mut backend: WebSocketStream<B>,
    timing: Timing,
    mut signals: Signals,
) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut to_backend, mut to_client) = (Pings::default(), Pings::default());
    let (mut client_live, mut backend_live) = (Liveness::default(), Liveness::default());
    // Futures that live for the whole connection are made once, not per frame.
    let keepalive = tokio::time::sleep(timing.idle);
    let time_limit = sleep_until_opt(timing.max_duration.map(|d| Instant::now() + d));
    let evicted_reason = signals.evicted.clone();
    let evicted = signals.evicted.changed();
    let shutdown = signals.shutdown.changed();
    tokio::pin!(keepalive, time_limit, evicted, shutdown);
    loop {
        tokio::select! {
            from_client = client.next() => {
                client_live.heard = true;
                match from_client {
                    Some(Ok(Message::Close(frame))) => {
                        let _ = backend.send(Message::Close(frame)).await;
                        finish(&mut backend, &mut client).await;
                        return Ended::ClientClosed;
                    }
                    Some(Ok(Message::Pong(p))) if p.as_ref() == KEEPALIVE || to_client.answers(&p) => {}
                    Some(Ok(msg)) => {
                        if let Message::Ping(p) = &msg {
                            to_backend.forwarded(p);
                        }
                        if backend.send(msg).await.is_err() {
                            let _ = client.send(close(CloseCode::Error, "backend connection lost")).await;
                            finish(&mut client, &mut backend).await;
                            return Ended::BackendLost;
                        }
                    }
                    Some(Err(e)) => {
                        let (code, reason) = read_error(&e);
                        let _ = client.send(close(code, reason)).await;
                        let _ = backend.send(close(CloseCode::Away, "client went away")).await;
                        finish(&mut backend, &mut client).await;
                        return if code == CloseCode::Size { Ended::ClientTooBig } else { Ended::ClientLost };
                    }
                    None => {
                        let _ = backend.send(close(CloseCode::Away, "client went away")).await;
                        finish(&mut backend, &mut client).await;
                        return Ended::ClientLost;
                    }
                }
            },
            from_backend = backend.next() => {
                backend_live.heard = true;
                match from_backend {
                    Some(Ok(Message::Close(frame))) => {
                        let _ = client.send(Message::Close(frame)).await;
                        finish(&mut client, &mut backend).await;
                        return Ended::BackendClosed;
                    }
                    Some(Ok(Message::Pong(p))) if p.as_ref() == KEEPALIVE || to_backend.answers(&p) => {}
                    Some(Ok(msg)) => {
                        if let Message::Ping(p) = &msg {
                            to_client.forwarded(p);
                        }
                        if client.send(msg).await.is_err() {
                            let _ = backend.send(close(CloseCode::Away, "client went away")).await;
                            finish(&mut backend, &mut client).await;
                            return Ended::ClientLost;
                        }
                    }
                    Some(Err(e @ WsError::Capacity(_))) => {
                        let (code, reason) = read_error(&e);
                        let _ = backend.send(close(code, reason)).await;
                        let _ = client.send(close(CloseCode::Away, "the backend sent a message that is too big")).await;
                        finish(&mut client, &mut backend).await;
                        return Ended::BackendTooBig;
                    }
                    Some(Err(_)) | None => {
                        let _ = client.send(close(CloseCode::Error, "backend connection lost")).await;
                        finish(&mut client, &mut backend).await;
                        return Ended::BackendLost;
                    }
                }
            },
            _ = &mut keepalive => {
                let now = Instant::now();
                match client_live.check(now, &timing) {
                    Due::Ping => { let _ = client.send(Message::Ping(Bytes::from_static(KEEPALIVE))).await; }
                    Due::Dead => {
                        let _ = backend.send(close(CloseCode::Away, "client stopped answering pings")).await;
                        let _ = client.send(close(CloseCode::Away, "no answer to pings")).await;
                        finish(&mut backend, &mut client).await;
                        return Ended::ClientSilent;
                    }
                    Due::Nothing => {}
                }
                match backend_live.check(now, &timing) {
                    Due::Ping => { let _ = backend.send(Message::Ping(Bytes::from_static(KEEPALIVE))).await; }
                    Due::Dead => {
                        let _ = client.send(close(CloseCode::Error, "backend stopped answering pings")).await;
                        let _ = backend.send(close(CloseCode::Away, "no answer to pings")).await;
                        finish(&mut client, &mut backend).await;
                        return Ended::BackendSilent;
                    }
                    Due::Nothing => {}
                }
                let next = client_live.next_check(now, &timing).min(backend_live.next_check(now, &timing));
                keepalive.as_mut().reset(next);
            },
            _ = &mut time_limit => {
                close_both(&mut client, &mut backend, "maximum connection duration reached").await;
                return Ended::TimeLimit;
            },
            _ = &mut evicted => {
                let reason = evicted_reason.borrow().clone().unwrap_or_else(|| "API no longer served".into());
                close_both(&mut client, &mut backend, &reason).await;
                return Ended::Evicted;
            },
            _ = &mut shutdown => {
                close_both(&mut client, &mut backend, "gateway shutting down").await;
                return Ended::Shutdown;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Close both sides with 1001 and `reason`, and wait (bounded) for both replies.
async fn close_both<C, B>(
    client: &mut WebSocketStream<C>,
    backend: &mut WebSocketStream<B>,
    reason: &str,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = client.send(close(CloseCode::Away, reason)).await;
    let _ = backend.send(close(CloseCode::Away, reason)).await;
    let both = async {
        tokio::join!(drain(client), drain(backend));
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, both).await;
}

/// After a close was sent to `waiting`, read it until it answers (or the wait runs out),
/// then make sure the close reply already queued for `closed` is written.
async fn finish<W, C>(waiting: &mut WebSocketStream<W>, closed: &mut WebSocketStream<C>)
where
    W: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        tokio::join!(drain(waiting), async {
            let _ = closed.close(None).await;
            drain(closed).await
        });
    })
    .await;
}

async fn drain<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// The close code for a read error on a side.
fn read_error(e: &WsError) -> (CloseCode, &'static str) {
    match e {
        WsError::Capacity(_) => (CloseCode::Size, "message too big"),
        WsError::Utf8 => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => (CloseCode::Away, "connection error"),
    }
}
