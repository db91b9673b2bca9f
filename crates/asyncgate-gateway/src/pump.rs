//! After the upgrade: frames carried both ways from one task, close handshakes passed
//! through, and both sides closed with a code that says what happened.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// How long the gateway waits for the other side to answer a close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How a relayed connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    BackendClosed,
    ClientLost,
    BackendLost,
    Shutdown,
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

/// Relay between `client` and `backend` until one side closes or `shutdown` fires.
pub async fn run<C, B>(
    mut client: WebSocketStream<C>,
    mut backend: WebSocketStream<B>,
    mut shutdown: watch::Receiver<bool>,
) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut to_backend, mut to_client) = (Pings::default(), Pings::default());
    loop {
        tokio::select! {
            from_client = client.next() => match from_client {
                Some(Ok(Message::Close(frame))) => {
                    let _ = backend.send(Message::Close(frame)).await;
                    finish(&mut backend, &mut client).await;
                    return Ended::ClientClosed;
                }
                Some(Ok(Message::Pong(p))) if to_client.answers(&p) => {}
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
                    let (code, reason) = client_error(&e);
                    let _ = client.send(close(code, reason)).await;
                    let _ = backend.send(close(CloseCode::Away, "client went away")).await;
                    finish(&mut backend, &mut client).await;
                    return Ended::ClientLost;
                }
                None => {
                    let _ = backend.send(close(CloseCode::Away, "client went away")).await;
                    finish(&mut backend, &mut client).await;
                    return Ended::ClientLost;
                }
            },
            from_backend = backend.next() => match from_backend {
                Some(Ok(Message::Close(frame))) => {
                    let _ = client.send(Message::Close(frame)).await;
                    finish(&mut client, &mut backend).await;
                    return Ended::BackendClosed;
                }
                Some(Ok(Message::Pong(p))) if to_backend.answers(&p) => {}
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
                Some(Err(_)) | None => {
                    let _ = client.send(close(CloseCode::Error, "backend connection lost")).await;
                    finish(&mut client, &mut backend).await;
                    return Ended::BackendLost;
                }
            },
            _ = shutdown.changed() => {
                let _ = client.send(close(CloseCode::Away, "gateway shutting down")).await;
                let _ = backend.send(close(CloseCode::Away, "gateway shutting down")).await;
                let both = async {
                    tokio::join!(drain(&mut client), drain(&mut backend));
                };
                let _ = tokio::time::timeout(CLOSE_WAIT, both).await;
                return Ended::Shutdown;
            }
        }
    }
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

fn client_error(e: &WsError) -> (CloseCode, &'static str) {
    match e {
        WsError::Capacity(_) => (CloseCode::Size, "message too big"),
        WsError::Utf8 => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => (CloseCode::Away, "connection error"),
    }
}
