//! `asyncgate mock`: a WebSocket backend made from a contract, to try an API before its
//! backend exists. It accepts the contract's channel paths (parameters matched), answers
//! AsyncAPI 3 request/reply operations with the reply's example (or a value generated from
//! its schema, with the request's correlation id copied), sends every server-to-client
//! message's examples on connecting and then on an interval, and echoes nothing else.

use asyncgate_contract::{Channel, Contract, Message as ContractMessage};
use asyncgate_gateway::route::ChannelPattern;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
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
            let known: Vec<&str> = self
                .channels
                .iter()
                .map(|c| c.pattern.address.as_str())
                .collect();
            let mut refused = ErrorResponse::new(Some(format!(
                "no channel at {path}; the contract's channels are {}",
                known.join(", ")
            )));
            *refused.status_mut() = StatusCode::NOT_FOUND;
            Err(refused)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
            return;
        };
        let Some(channel) = self.find(&path) else {
            return;
        };
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
