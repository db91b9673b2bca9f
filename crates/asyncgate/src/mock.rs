//! `asyncgate mock`: a WebSocket backend made from a contract, to try an API before its
//! backend exists. It accepts the contract's channel paths (parameters matched), answers
//! AsyncAPI 3 request/reply operations with the reply's example (or a value generated from
//! its schema, with the request's correlation id copied), sends every server-to-client
//! message's examples on connecting and then on an interval, and echoes nothing else.
//! The platform runs the same for APIs whose target is `mock:` ([`hub`]).

use asyncgate_contract::{Channel, Contract, Message as ContractMessage};
use asyncgate_gateway::route::ChannelPattern;
use asyncgate_store::Store;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// What the mock serves: per channel address, what it sends and what it answers.
pub struct Mock {
    channels: Vec<MockChannel>,
    interval: Duration,
}

struct MockChannel {
    pattern: ChannelPattern,
    /// Server-to-client messages, sent on connecting and on every tick.
    periodic: Vec<Value>,
    replies: Vec<MockReply>,
}

/// A request/reply operation: a message matching one of `requests` gets `answer`.
struct MockReply {
    requests: Vec<(Option<jsonschema::Validator>, Option<String>)>,
    answer: Value,
    answer_correlation: Option<String>,
}

/// The payloads a message stands for: its examples', or one generated from its schema.
fn payloads(m: &ContractMessage) -> Vec<Value> {
    let examples: Vec<Value> = m.example_payloads().cloned().collect();
    if !examples.is_empty() {
        return examples;
    }
    vec![m
        .payload
        .as_ref()
        .map(asyncgate_contract::sample::instance)
        .unwrap_or(Value::Null)]
}

impl Mock {
    pub fn new(contract: &Contract, interval: Duration) -> Mock {
        let mut channels: Vec<MockChannel> = Vec::new();
        for c in &contract.channels {
            let next = Self::channel(c);
            // Channels sharing an address (a request and its reply) are served together.
            match channels.iter_mut().find(|m| m.pattern.address == c.address) {
                Some(m) => {
                    m.periodic.extend(next.periodic);
                    m.replies.extend(next.replies);
                }
                None => channels.push(next),
            }
        }
        Mock { channels, interval }
    }

    fn channel(c: &Channel) -> MockChannel {
        let periodic = c
            .server_to_client
            .iter()
            .flat_map(|op| &op.messages)
            .flat_map(payloads)
            .collect();
        let replies = c
            .client_to_server
            .iter()
            .flat_map(|op| &op.replies)
            .filter_map(|r| {
                let answer = r.answers.first()?;
                Some(MockReply {
                    requests: r
                        .requests
                        .iter()
                        .map(|m| {
                            (
                                m.json_schema()
                                    .and_then(|s| jsonschema::draft7::new(s).ok()),
                                m.correlation_pointer.clone(),
                            )
                        })
                        .collect(),
                    answer: payloads(answer).swap_remove(0),
                    answer_correlation: answer.correlation_pointer.clone(),
                })
            })
            .collect();
        MockChannel {
            pattern: ChannelPattern::new(&c.address),
            periodic,
            replies,
        }
    }

    /// The channel a request path names.
    fn find(&self, path: &str) -> Option<&MockChannel> {
        self.channels.iter().find(|c| c.pattern.matches(path))
    }

    /// Serve sessions on `listener` until `shutdown` fires.
    pub async fn run(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(self.clone().session(stream));
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    // tungstenite's accept callback returns its own (large) error response type.
    #[allow(clippy::result_large_err)]
    async fn session(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut path = String::new();
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            path = req.uri().path().to_string();
            if self.find(&path).is_some() {
                return Ok(resp);
            }
            let mut refused = ErrorResponse::new(Some(self.no_channel(&path)));
            *refused.status_mut() = StatusCode::NOT_FOUND;
            Err(refused)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
            return;
        };
        if let Some(channel) = self.find(&path) {
            self.converse(channel, ws).await;
        }
    }

    fn no_channel(&self, path: &str) -> String {
        let known: Vec<&str> = self
            .channels
            .iter()
            .map(|c| c.pattern.address.as_str())
            .collect();
        format!(
            "no channel at {path}; the contract's channels are {}",
            known.join(", ")
        )
    }

    /// Serve one connection on `channel`: its messages on connecting and every interval,
    /// answers to its requests, nothing else.
    async fn converse<S>(
        &self,
        channel: &MockChannel,
        mut ws: tokio_tungstenite::WebSocketStream<S>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut ticks = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    for p in &channel.periodic {
                        if ws.send(Message::text(p.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(answer) = answer(channel, &text) {
                            if ws.send(Message::text(answer.to_string())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
            }
        }
    }
}

/// The mocks the platform made, by API and revision.
type Mocks = Arc<Mutex<HashMap<(String, u32), Arc<Mock>>>>;

/// Seconds between rounds of server messages of the mocks the platform runs.
const HUB_INTERVAL: Duration = Duration::from_secs(5);

/// The platform's own mock server, for APIs whose target is `mock:`: the gateway dials
/// `<this>/<api id>/<revision>/<channel path>`, and the revision's contract is served (each
/// made into a mock once, when first dialled).
pub async fn hub(listener: TcpListener, store: Store, mut shutdown: watch::Receiver<bool>) {
    let mocks: Mocks = Arc::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(hub_session(stream, store.clone(), mocks.clone()));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

// tungstenite's accept callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
async fn hub_session(stream: TcpStream, store: Store, mocks: Mocks) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
            path = req.uri().path().to_string();
            Ok(resp)
        })
        .await
    else {
        return;
    };
    // `/<api id>/<revision>` then the channel's path.
    let mut parts = path.splitn(4, '/').skip(1);
    let (api, revision) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let rest = format!("/{}", parts.next().unwrap_or_default());
    let key = (api.to_string(), revision.parse().unwrap_or(0));
    let known = mocks.lock().ok().and_then(|m| m.get(&key).cloned());
    let mock = match known {
        Some(m) => Some(m),
        None => match store.revision(&key.0, key.1).await {
            Ok(Some(rev)) => {
                let made = Arc::new(Mock::new(&rev.design.contract, HUB_INTERVAL));
                if let Ok(mut m) = mocks.lock() {
                    m.insert(key, made.clone());
                }
                Some(made)
            }
            _ => None,
        },
    };
    let channel = mock.as_ref().and_then(|m| Some((m, m.find(&rest)?)));
    match channel {
        Some((mock, channel)) => mock.converse(channel, ws).await,
        None => {
            let reason = match &mock {
                Some(m) => m.no_channel(&rest),
                None => "no such API revision to mock".to_string(),
            };
            let _ = ws
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code:
                        tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy,
                    reason: reason.chars().take(120).collect::<String>().into(),
                }))
                .await;
        }
    }
}

/// The reply to a client message, when it is the request of a request/reply operation.
fn answer(channel: &MockChannel, text: &str) -> Option<Value> {
    let request: Value = serde_json::from_str(text).ok()?;
    for reply in &channel.replies {
        for (schema, correlation) in &reply.requests {
            if schema.as_ref().is_some_and(|s| !s.is_valid(&request)) {
                continue;
            }
            let mut answer = reply.answer.clone();
            // The request's correlation id: where the answer says it carries one, or, when
            // it says nothing, at the request's place if the answer has that field too.
            let to = reply
                .answer_correlation
                .as_ref()
                .or(correlation.as_ref().filter(|p| answer.pointer(p).is_some()));
            if let (Some(from), Some(to)) = (correlation, to) {
                if let (Some(id), Some((parent, key))) =
                    (request.pointer(from), to.rsplit_once('/'))
                {
                    let slot = if parent.is_empty() {
                        Some(&mut answer)
                    } else {
                        answer.pointer_mut(parent)
                    };
                    if let Some(Value::Object(o)) = slot {
                        o.insert(key.to_string(), id.clone());
                    }
                }
            }
            return Some(answer);
        }
    }
    None
}
