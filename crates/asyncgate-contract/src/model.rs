//! The version-independent contract model every other part of the platform uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    /// The `asyncapi` field, e.g. `2.0.0`.
    pub asyncapi_version: String,
    pub title: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub servers: Vec<Server>,
    pub channels: Vec<Channel>,
    /// Security schemes from `components.securitySchemes`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_schemes: Vec<SecurityScheme>,
    /// Problems that do not stop an import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub name: String,
    /// The URL with server variables replaced by their defaults and the scheme made
    /// explicit from `protocol` when the contract left it out.
    pub url: String,
    pub protocol: String,
}

/// A security scheme the backend's contract declares (kept and shown; the gateway applies
/// its own credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityScheme {
    pub name: String,
    /// `type`: httpApiKey, http, oauth2, userPassword, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The WebSocket channel binding (`bindings.ws`): what the opening handshake carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsBinding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Schema of the handshake's query parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// Schema of the handshake's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// The channel's key in a 3.x document (in 2.x the key is the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The address clients use, relative to the API's base path (`/`, `/rooms/{roomId}`).
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of the `{parameters}` in the address.
    #[serde(default)]
    pub parameters: Vec<String>,
    /// The channel's WebSocket binding, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_binding: Option<WsBinding>,
    /// Messages the client sends (2.x `publish`, 3.x `receive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_to_server: Option<Operation>,
    /// Messages the server sends (2.x `subscribe`, 3.x `send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_to_client: Option<Operation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub messages: Vec<Message>,
    /// AsyncAPI 3 request/reply: what the server answers to which of these messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<Reply>,
}

/// One request/reply operation: a message of `requests` is answered with one of
/// `answers` (which may belong to another channel at the same address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub requests: Vec<Message>,
    pub answers: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Schema format of the payload when it is not the AsyncAPI schema (Avro, Protobuf,
    /// RAML, ...): such payloads are kept and shown, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_format: Option<String>,
    /// Schema of the message headers, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
    /// Examples of the message as declared (2.x `examples`, 3.x `examples`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Value>,
    /// The payload schema as written (top-level `$ref` resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Where the payload holds its correlation id, as a JSON pointer (from
    /// `correlationId.location` `$message.payload#/reqid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_pointer: Option<String>,
}

impl Message {
    /// The payloads of the message's examples.
    pub fn example_payloads(&self) -> impl Iterator<Item = &Value> {
        self.examples.iter().filter_map(|e| e.get("payload"))
    }

    /// The payload schema when it is JSON Schema (the AsyncAPI schema, or JSON Schema in
    /// JSON or YAML): the one the gateway can enforce. `None` without a payload schema or
    /// with one in another format (Avro, Protobuf, RAML, ...).
    pub fn json_schema(&self) -> Option<&Value> {
        let enforceable = match self.schema_format.as_deref() {
            None => true,
            Some(format) => {
                let format = format.to_ascii_lowercase();
                format.starts_with("application/vnd.aai.asyncapi")
                    || format.starts_with("application/schema+json")
                    || format.starts_with("application/schema+yaml")
            }
        };
        self.payload.as_ref().filter(|_| enforceable)
    }
}

impl Operation {
    /// Names of the messages, falling back to their titles.
    pub fn message_names(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|m| {
                m.name
                    .clone()
                    .or_else(|| m.title.clone())
                    .unwrap_or_else(|| "(unnamed)".into())
            })
            .collect()
    }
}

impl Channel {
    /// Names of the messages clients send on this channel.
    pub fn client_sends(&self) -> Vec<String> {
        self.client_to_server
            .as_ref()
            .map(Operation::message_names)
            .unwrap_or_default()
    }

    /// Names of the messages clients receive on this channel.
    pub fn client_receives(&self) -> Vec<String> {
        self.server_to_client
            .as_ref()
            .map(Operation::message_names)
            .unwrap_or_default()
    }

    /// Address parameters as they appear between braces, in order.
    pub fn address_parameters(address: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = address;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push(rest[start + 1..start + len].to_string());
            rest = &rest[start + len + 1..];
        }
        out
    }
}
