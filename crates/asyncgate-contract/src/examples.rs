//! The official parser's rule on message examples (AsyncAPI 2.x): for a message with no
//! `schemaFormat` (so its schemas are AsyncAPI schemas), an example's `payload` must
//! match the payload schema and its `headers` the headers schema. The official parser
//! has no such rule for 3.x.

use crate::diagnostic::Diagnostic;
use crate::refs::escape;
use serde_json::Value;

/// Check the examples of every message of a resolved 2.x document (`refs::resolved`).
pub fn check(resolved: &Value, version: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (pointer, message) in messages(resolved, version) {
        if message.get("schemaFormat").is_some() {
            continue;
        }
        let Some(examples) = message.get("examples").and_then(Value::as_array) else {
            continue;
        };
        for part in ["payload", "headers"] {
            let Some(schema) = message
                .get(part)
                .filter(|s| s.is_object() && s.get("$ref").is_none())
            else {
                continue;
            };
            let Ok(validator) = jsonschema::draft7::new(schema) else {
                continue; // an invalid schema is reported by the document's own check
            };
            for (i, example) in examples.iter().enumerate() {
                let Some(value) = example.get(part) else {
                    continue;
                };
                if let Some(error) = validator.iter_errors(value).next() {
                    out.push(Diagnostic::at(
                        &format!("{pointer}/examples/{i}/{part}"),
                        format!(
                            "the example's {part} does not match the message's {part} schema: {error} (at `{}`)",
                            error.instance_path()
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// Every message object of the document with its pointer: in channels (2.x operations'
/// `message`, and each of its `oneOf`; 3.x channels' `messages`) and in components.
fn messages<'a>(doc: &'a Value, version: &str) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    let entries = |v: Option<&'a Value>| {
        v.and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
    };
    for (name, message) in entries(doc.pointer("/components/messages")) {
        out.push((format!("/components/messages/{}", escape(name)), message));
    }
    for (channel, item) in entries(doc.get("channels")) {
        let at = format!("/channels/{}", escape(channel));
        if version.starts_with('2') {
            for op in ["publish", "subscribe"] {
                let Some(message) = item.get(op).and_then(|o| o.get("message")) else {
                    continue;
                };
                match message.get("oneOf").and_then(Value::as_array) {
                    Some(list) => out.extend(
                        list.iter()
                            .enumerate()
                            .map(|(i, m)| (format!("{at}/{op}/message/oneOf/{i}"), m)),
                    ),
                    None => out.push((format!("{at}/{op}/message"), message)),
                }
            }
        } else {
            for (name, message) in entries(item.get("messages")) {
                out.push((format!("{at}/messages/{}", escape(name)), message));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn examples_must_match_their_schemas() {
        let doc = json!({
            "components": { "messages": { "tick": {
                "payload": { "type": "object", "required": ["price"], "properties": { "price": { "type": "number" } } },
                "examples": [ { "payload": { "price": 1.5 } }, { "payload": { "price": "high" } } ],
            } } },
            "channels": { "/t": { "subscribe": { "message": {
                "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                "payload": { "type": "record" },
                "examples": [ { "payload": 42 } ],
            } } } },
        });
        let found = check(&doc, "2.6.0");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].pointer,
            "/components/messages/tick/examples/1/payload"
        );
    }
}
