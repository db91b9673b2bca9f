//! Messages checked against the contract: for one channel and one direction, the messages
//! the contract allows with their payload schemas, compiled once per revision and shared
//! by every connection to it, and the verdict on one whole message.

use asyncgate_core::{ApiPolicies, MessageValidation, SnapshotMessage, Unjudged};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// Close code for a message that matches no schema (policy violation).
pub const SCHEMA_CLOSE: u16 = 1008;
/// Close code for text that is not JSON where JSON is required (invalid payload).
pub const NOT_JSON_CLOSE: u16 = 1007;

/// What one direction of one channel allows.
pub struct Rules {
    /// The channel's address, named in reasons and logs.
    pub channel: String,
    pub from_client: bool,
    pub mode: MessageValidation,
    unjudged: Unjudged,
    /// `None`: the channel takes no messages this way.
    allowed: Option<Vec<Allowed>>,
    /// Messages that failed, whatever was done with them.
    refused: AtomicU64,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("channel", &self.channel)
            .field("from_client", &self.from_client)
            .field("mode", &self.mode)
            .field("messages", &self.allowed.as_ref().map(Vec::len))
            .finish()
    }
}

struct Allowed {
    /// `None`: any payload (no schema, or one in a format the gateway does not enforce).
    schema: Option<jsonschema::Validator>,
}

/// Why a message was refused: the close code that answers it, and a reason naming the
/// channel and, for a schema mismatch, the first failing JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
    /// The failing location in the message (`""` for the whole message).
    pub pointer: String,
}

impl Rules {
    /// The rules for messages sent by the client (`from_client`) or the backend on one
    /// channel; `None` when messages are not validated.
    pub fn compile(
        channel: &str,
        from_client: bool,
        policies: ApiPolicies,
        messages: Option<&[SnapshotMessage]>,
    ) -> Option<Rules> {
        if policies.message_validation == MessageValidation::Off {
            return None;
        }
        let allowed = messages.map(|list| {
            list.iter()
                .map(|m| Allowed {
                    schema: m.schema.as_ref().and_then(|s| match jsonschema::draft7::new(s) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            tracing::warn!(%channel, message = %m.name, error = %e, "payload schema not enforced: it does not compile");
                            None
                        }
                    }),
                })
                .collect()
        });
        Some(Rules {
            channel: channel.to_string(),
            from_client,
            mode: policies.message_validation,
            unjudged: policies.unjudged,
            allowed,
            refused: AtomicU64::new(0),
        })
    }

    /// Messages refused so far under these rules.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn sender(&self) -> &'static str {
        if self.from_client {
            "client"
        } else {
            "backend"
        }
    }

    /// The verdict on one whole message: `Ok` when the contract allows it (any one of the
    /// allowed messages matching), otherwise why not, with the pointer of the deepest of
    /// the messages' first failures (the message it most looks like). Counts refusals.
    pub fn judge(&self, text: bool, payload: &[u8]) -> Result<(), Refusal> {
        let verdict = self.verdict(text, payload);
        if verdict.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    fn verdict(&self, text: bool, payload: &[u8]) -> Result<(), Refusal> {
        let refuse = |code, reason: String, pointer: String| {
            Err(Refusal {
                code,
                reason: fitted(reason),
                pointer,
            })
        };
        let Some(allowed) = &self.allowed else {
            return refuse(
                SCHEMA_CLOSE,
                format!(
                    "{} takes no messages from the {}",
                    self.channel,
                    self.sender()
                ),
                String::new(),
            );
        };
        let value: Value = match (text, serde_json::from_slice(payload)) {
            (true, Ok(v)) => v,
            _ if self.unjudged == Unjudged::Pass => return Ok(()),
            (true, Err(_)) => {
                return refuse(
                    NOT_JSON_CLOSE,
                    format!("{}: the message is not JSON", self.channel),
                    String::new(),
                )
            }
            (false, _) => {
                return refuse(
                    SCHEMA_CLOSE,
                    format!("{}: binary messages are not allowed", self.channel),
                    String::new(),
                )
            }
        };
        // Of the messages it might have been, the one it got furthest into names where it
        // first fails: the deepest of their first failures.
        let mut deepest: Option<String> = None;
        if allowed
            .iter()
            .any(|a| a.schema.as_ref().is_none_or(|s| s.is_valid(&value)))
        {
            return Ok(());
        }
        for a in allowed {
            let Some(schema) = &a.schema else {
                return Ok(());
            };
            let Some(e) = schema.iter_errors(&value).next() else {
                return Ok(());
            };
            let pointer = e.instance_path().to_string();
            let depth = |p: &str| p.matches('/').count();
            if deepest
                .as_deref()
                .is_none_or(|d| depth(&pointer) > depth(d))
            {
                deepest = Some(pointer);
            }
        }
        let pointer = deepest.unwrap_or_default();
        let shown = if pointer.is_empty() { "/" } else { &pointer };
        refuse(
            SCHEMA_CLOSE,
            format!(
                "{}: no message of the contract matches (at {shown})",
                self.channel
            ),
            pointer,
        )
    }

    /// What the sender of a dropped message is told, as a JSON text message:
    /// `{"error":"message_refused","channel","pointer","reason"}`.
    pub fn notice(&self, refusal: &Refusal) -> Vec<u8> {
        serde_json::json!({
            "error": "message_refused",
            "channel": self.channel,
            "pointer": refusal.pointer,
            "reason": refusal.reason,
        })
        .to_string()
        .into_bytes()
    }
}

/// A close reason fits in 123 bytes; cut on a character boundary.
fn fitted(mut reason: String) -> String {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(unjudged: Unjudged, messages: Option<Vec<SnapshotMessage>>) -> Rules {
        Rules::compile(
            "/rooms/{roomId}",
            true,
            ApiPolicies {
                message_validation: MessageValidation::Reject,
                unjudged,
                ..Default::default()
            },
            messages.as_deref(),
        )
        .expect("validating")
    }

    fn message(schema: Value) -> SnapshotMessage {
        SnapshotMessage {
            name: "m".into(),
            schema: Some(schema),
        }
    }

    #[test]
    fn any_allowed_message_passes_and_the_first_failure_is_named() {
        let r = rules(
            Unjudged::Pass,
            Some(vec![
                message(
                    json!({"type": "object", "required": ["type"], "properties": {"type": {"const": "Connect"}, "username": {"type": "string"}}}),
                ),
                message(
                    json!({"type": "object", "required": ["type", "message"], "properties": {"type": {"const": "Data"}}}),
                ),
            ]),
        );
        assert_eq!(
            r.judge(true, br#"{"type":"Connect","username":"a"}"#),
            Ok(())
        );
        assert_eq!(r.judge(true, br#"{"type":"Data","message":"hi"}"#), Ok(()));
        let refused = r
            .judge(true, br#"{"type":"Connect","username":5}"#)
            .unwrap_err();
        assert_eq!(refused.code, SCHEMA_CLOSE);
        assert_eq!(refused.pointer, "/username");
        assert!(
            refused.reason.starts_with("/rooms/{roomId}: "),
            "{}",
            refused.reason
        );
        assert_eq!(r.refused(), 1);
        // Unjudged messages pass when the API says so.
        assert_eq!(r.judge(true, b"Message sent"), Ok(()));
        assert_eq!(r.judge(false, b"\x00\x01"), Ok(()));
    }

    #[test]
    fn unjudged_messages_fail_when_the_api_says_so_and_a_silent_direction_takes_nothing() {
        let r = rules(
            Unjudged::Fail,
            Some(vec![message(json!({"type": "string"}))]),
        );
        assert_eq!(r.judge(true, b"not json").unwrap_err().code, NOT_JSON_CLOSE);
        assert_eq!(r.judge(false, b"\x00").unwrap_err().code, SCHEMA_CLOSE);
        let none = rules(Unjudged::Pass, None);
        let refused = none.judge(true, b"{}").unwrap_err();
        assert_eq!(
            refused.reason,
            "/rooms/{roomId} takes no messages from the client"
        );
        let any = rules(
            Unjudged::Pass,
            Some(vec![SnapshotMessage {
                name: "avro".into(),
                schema: None,
            }]),
        );
        assert_eq!(any.judge(true, b"{\"x\":1}"), Ok(()));
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let r = rules(Unjudged::Fail, None);
        let _ = r;
        assert!(fitted(long).len() <= 123);
    }
}
