//! A contract as documentation: its channels with their operations as the guide's
//! platform names them (PUB: the client sends, SUB: the client receives), each message
//! with its payload schema as a table of fields and its examples (or one made from the
//! schema). Shown by the console's Overview and, later, the developer portal.

use asyncgate_contract::{Contract, Message};
use serde_json::Value;

/// A channel, documented.
pub struct ChannelDoc {
    pub address: String,
    pub description: Option<String>,
    pub parameters: Vec<String>,
    pub operations: Vec<OperationDoc>,
}

/// One direction of a channel.
pub struct OperationDoc {
    /// `PUB` (the client sends) or `SUB` (the client receives).
    pub kind: &'static str,
    pub summary: Option<String>,
    pub messages: Vec<MessageDoc>,
}

pub struct MessageDoc {
    pub name: String,
    pub summary: Option<String>,
    pub content_type: Option<String>,
    /// Said when the payload's schema is in a format the gateway does not enforce.
    pub unenforced_format: Option<String>,
    pub fields: Vec<FieldDoc>,
    /// Example payloads as pretty JSON: the contract's, or one made from the schema.
    pub examples: Vec<String>,
    /// Whether the examples were made from the schema rather than written in the contract.
    pub examples_generated: bool,
}

/// One field of a payload: its path (`user.name`, `tags[]`), type, whether it is
/// required, and what the schema says of it.
pub struct FieldDoc {
    pub path: String,
    pub kind: String,
    pub required: bool,
    pub description: String,
}

/// Every channel of a contract, documented.
pub fn channels(contract: &Contract) -> Vec<ChannelDoc> {
    contract
        .channels
        .iter()
        .map(|c| ChannelDoc {
            address: c.address.clone(),
            description: c.description.clone(),
            parameters: c.parameters.clone(),
            operations: [("PUB", &c.client_to_server), ("SUB", &c.server_to_client)]
                .into_iter()
                .filter_map(|(kind, op)| {
                    op.as_ref().map(|op| OperationDoc {
                        kind,
                        summary: op.summary.clone(),
                        messages: op.messages.iter().map(message).collect(),
                    })
                })
                .collect(),
        })
        .collect()
}

/// One message, documented.
pub fn message(m: &Message) -> MessageDoc {
    let schema = m.json_schema();
    let mut fields = Vec::new();
    if let Some(s) = schema {
        flatten(s, "", true, &mut fields, 0);
    }
    let written: Vec<String> = m.example_payloads().map(pretty).collect();
    let examples_generated = written.is_empty() && schema.is_some();
    let examples = if examples_generated {
        schema
            .map(|s| vec![pretty(&asyncgate_contract::sample::instance(s))])
            .unwrap_or_default()
    } else {
        written
    };
    MessageDoc {
        name: m
            .name
            .clone()
            .or_else(|| m.title.clone())
            .unwrap_or_else(|| "message".into()),
        summary: m.summary.clone(),
        content_type: m.content_type.clone(),
        unenforced_format: match (schema, &m.payload, &m.schema_format) {
            (None, Some(_), Some(f)) => Some(f.clone()),
            _ => None,
        },
        fields,
        examples,
        examples_generated,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Nesting shown at most: deeper schemas are summarized by their type.
const MAX_DEPTH: usize = 6;

/// The rows of `schema` at `path`: the value itself (unless it is the whole payload and
/// an object), then its properties and array items.
fn flatten(schema: &Value, path: &str, required: bool, out: &mut Vec<FieldDoc>, depth: usize) {
    let kind = kind_of(schema);
    let is_object = schema.get("properties").is_some();
    if !path.is_empty() || !is_object {
        out.push(FieldDoc {
            path: if path.is_empty() {
                "(payload)".into()
            } else {
                path.into()
            },
            kind,
            required,
            description: describe(schema),
        });
    }
    if depth >= MAX_DEPTH {
        return;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let needed: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, sub) in props {
            let p = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            flatten(sub, &p, needed.contains(&name.as_str()), out, depth + 1);
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        if items.get("properties").is_some() {
            flatten(items, &format!("{path}[]"), false, out, depth + 1);
        }
    }
}

/// A schema's type as a reader would say it: `string`, `integer | null`, `array of
/// string`, `one of 2 schemas`, `const "Data"`.
fn kind_of(schema: &Value) -> String {
    if let Some(c) = schema.get("const") {
        return format!("const {c}");
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let shown: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", shown.join(", "));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            let word = match key {
                "oneOf" => "one of",
                "anyOf" => "any of",
                _ => "all of",
            };
            return format!("{word} {} schemas", list.len());
        }
    }
    let base = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "any".into(),
    };
    match (base.as_str(), schema.get("items")) {
        ("array", Some(items)) => format!("array of {}", kind_of(items)),
        _ => base,
    }
}

/// What the schema says of a value: its description and its constraints.
fn describe(schema: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        parts.push(d.to_string());
    }
    for key in [
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "default",
    ] {
        if let Some(v) = schema.get(key) {
            parts.push(format!("{key}: {v}"));
        }
    }
    if let Some(e) = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        parts.push(format!("example: {e}"));
    } else if let Some(e) = schema.get("example") {
        parts.push(format!("example: {e}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_schema_reads_as_a_table_of_fields() {
        let mut rows = Vec::new();
        flatten(
            &json!({"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "description": "Type of the message", "example": "connect"},
                "to": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": ["integer", "null"]}}}},
                "mode": {"enum": ["a", "b"]}
            }}),
            "",
            true,
            &mut rows,
            0,
        );
        let shown: Vec<(String, String, bool, String)> = rows
            .into_iter()
            .map(|r| (r.path, r.kind, r.required, r.description))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "mode".into(),
                    r#"one of "a", "b""#.into(),
                    false,
                    String::new()
                ),
                ("to".into(), "array of object".into(), false, String::new()),
                ("to[]".into(), "object".into(), false, String::new()),
                (
                    "to[].id".into(),
                    "integer | null".into(),
                    false,
                    String::new()
                ),
                (
                    "type".into(),
                    "string".into(),
                    true,
                    r#"Type of the message; example: "connect""#.into()
                ),
            ]
        );
    }
}
