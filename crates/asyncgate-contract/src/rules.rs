//! The official parser's semantic rules that make a document invalid (its "core" rule
//! sets for AsyncAPI 2.x and 3.x), beyond what the JSON Schemas say: references to
//! security schemes, servers and channels that exist, parameters and server variables
//! that match their templates, unique ids and tags, and examples and defaults that match
//! their schemas. Each finding points at the offending value.

use crate::diagnostic::Diagnostic;
use crate::refs::escape;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Check a document: `written` as written (for rules about where references point),
/// `resolved` with its references resolved (`refs::resolved`).
pub fn check(written: &Value, resolved: &Value, version: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    channel_keys(resolved, &mut out);
    if version.starts_with('2') {
        v2_security(resolved, &mut out);
        server_variables(resolved, &mut out);
        v2_channels(resolved, &mut out);
        v2_unique_ids(resolved, &mut out);
        v2_unique_tags(resolved, &mut out);
        v2_schema_values(resolved, &mut out);
        v2_message_examples(resolved, &mut out);
    } else {
        v3_channels(written, resolved, &mut out);
        v3_operations(written, &mut out);
    }
    out
}

fn object(v: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    v.and_then(Value::as_object).into_iter().flat_map(Map::iter)
}

/// 2.x: every channel's `publish` and `subscribe` operation, with its pointer.
fn v2_operations(doc: &Value) -> Vec<(String, &Value)> {
    object(doc.get("channels"))
        .flat_map(|(address, channel)| {
            ["publish", "subscribe"].into_iter().filter_map(move |op| {
                Some((
                    format!("/channels/{}/{op}", escape(address)),
                    channel.get(op)?,
                ))
            })
        })
        .collect()
}

/// 2.x: the messages of the operation at `at`: its `message`, or each of its `oneOf`.
fn v2_operation_messages<'a>(at: &str, operation: &'a Value) -> Vec<(String, &'a Value)> {
    let Some(message) = operation.get("message") else {
        return Vec::new();
    };
    match message.get("oneOf").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("{at}/message/oneOf/{i}"), m))
            .collect(),
        None => vec![(format!("{at}/message"), message)],
    }
}

/// `{name}` variables of a URL or channel address template, in order, once each.
fn template_variables(template: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &rest[start + len + 1..];
    }
    out
}

/// Channel keys (2.x addresses, 3.x ids) hold no query or fragment delimiter.
fn channel_keys(doc: &Value, out: &mut Vec<Diagnostic>) {
    for (key, _) in object(doc.get("channels")) {
        if key.contains(['?', '#']) {
            out.push(Diagnostic::at(
                &format!("/channels/{}", escape(key)),
                "a channel must not include a query (`?`) or fragment (`#`) delimiter",
            ));
        }
    }
}

/// 2.x: security requirements of servers and operations name defined security schemes,
/// and OAuth2 requirements only scopes one of the scheme's flows defines.
fn v2_security(doc: &Value, out: &mut Vec<Diagnostic>) {
    let schemes = doc.pointer("/components/securitySchemes");
    let mut check = |requirements: Option<&Value>, at: String, what: &str| {
        for (i, requirement) in requirements
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (name, scopes) in object(Some(requirement)) {
                let here = format!("{at}/security/{i}/{}", escape(name));
                let Some(scheme) = schemes.and_then(|s| s.get(name)) else {
                    out.push(Diagnostic::at(
                        &here,
                        format!("{what} refers to `{name}`, which is not a security scheme in `components.securitySchemes`"),
                    ));
                    continue;
                };
                if scheme.get("type").and_then(Value::as_str) != Some("oauth2") {
                    continue;
                }
                let available: HashSet<&str> = object(scheme.get("flows"))
                    .flat_map(|(_, flow)| object(flow.get("scopes")).map(|(s, _)| s.as_str()))
                    .collect();
                for (j, scope) in scopes.as_array().into_iter().flatten().enumerate() {
                    if let Some(scope) = scope.as_str().filter(|s| !available.contains(s)) {
                        out.push(Diagnostic::at(
                            &format!("{here}/{j}"),
                            format!("scope `{scope}` is not defined by any flow of security scheme `{name}`"),
                        ));
                    }
                }
            }
        }
    };
    for (name, server) in object(doc.get("servers")) {
        check(
            server.get("security"),
            format!("/servers/{}", escape(name)),
            "the server",
        );
    }
    for (at, operation) in v2_operations(doc) {
        check(operation.get("security"), at, "the operation");
    }
}

/// 2.x: a server with `variables` describes exactly the variables of its URL.
fn server_variables(doc: &Value, out: &mut Vec<Diagnostic>) {
    let servers = object(doc.get("servers"))
        .map(|(n, s)| (format!("/servers/{}", escape(n)), s))
        .chain(
            object(doc.pointer("/components/servers"))
                .map(|(n, s)| (format!("/components/servers/{}", escape(n)), s)),
        );
    for (at, server) in servers {
        let (Some(url), Some(variables)) = (
            server.get("url").and_then(Value::as_str),
            server.get("variables").and_then(Value::as_object),
        ) else {
            continue;
        };
        declared_match_template(
            &template_variables(url),
            variables,
            &at,
            "variables",
            "URL variable",
            out,
        );
    }
}

/// Missing and redundant names of a template's declarations (`parameters`, `variables`).
fn declared_match_template(
    used: &[&str],
    declared: &Map<String, Value>,
    at: &str,
    field: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let missing: Vec<&str> = used
        .iter()
        .copied()
        .filter(|u| !declared.contains_key(*u))
        .collect();
    if !missing.is_empty() {
        out.push(Diagnostic::at(
            &format!("{at}/{field}"),
            format!(
                "`{field}` does not describe every {what}: missing {}",
                missing.join(", ")
            ),
        ));
    }
    for name in declared.keys().filter(|d| !used.contains(&d.as_str())) {
        out.push(Diagnostic::at(
            &format!("{at}/{field}/{}", escape(name)),
            format!("`{name}` is not a {what} of this template"),
        ));
    }
}

/// 2.x channels: parameters match the address, and `servers` names defined servers.
fn v2_channels(doc: &Value, out: &mut Vec<Diagnostic>) {
    let servers = doc.get("servers").and_then(Value::as_object);
    for (address, channel) in object(doc.get("channels")) {
        let at = format!("/channels/{}", escape(address));
        let used = template_variables(address);
        if let Some(parameters) = channel.get("parameters").and_then(Value::as_object) {
            if !used.is_empty() {
                declared_match_template(
                    &used,
                    parameters,
                    &at,
                    "parameters",
                    "channel parameter",
                    out,
                );
            }
        }
        for (i, name) in channel
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(name) = name
                .as_str()
                .filter(|n| !servers.is_some_and(|s| s.contains_key(*n)))
            {
                out.push(Diagnostic::at(
                    &format!("{at}/servers/{i}"),
                    format!("server `{name}` is not defined in `servers`"),
                ));
            }
        }
    }
}

/// 2.x operations and messages: `operationId`s unique among operations, `messageId`s
/// among messages.
fn v2_unique_ids(doc: &Value, out: &mut Vec<Diagnostic>) {
    let mut unique =
        |seen: &mut HashSet<String>, v: &Value, at: String, field: &str, what: &str| {
            if let Some(id) = v.get(field).and_then(Value::as_str) {
                if !seen.insert(id.to_string()) {
                    out.push(Diagnostic::at(
                        &format!("{at}/{field}"),
                        format!("{field} `{id}` is used by another {what}: it must be unique"),
                    ));
                }
            }
        };
    let (mut operation_ids, mut message_ids) = (HashSet::new(), HashSet::new());
    for (at, operation) in v2_operations(doc) {
        unique(
            &mut operation_ids,
            operation,
            at.clone(),
            "operationId",
            "operation",
        );
        for (at, message) in v2_operation_messages(&at, operation) {
            unique(&mut message_ids, message, at, "messageId", "message");
        }
    }
}

/// 2.x: tag names are unique within each list of tags.
fn v2_unique_tags(doc: &Value, out: &mut Vec<Diagnostic>) {
    let mut lists: Vec<(String, &Value)> = Vec::new();
    if let Some(t) = doc.get("tags") {
        lists.push(("/tags".into(), t));
    }
    fn holder<'a>(at: String, v: &'a Value, lists: &mut Vec<(String, &'a Value)>) {
        if let Some(t) = v.get("tags") {
            lists.push((format!("{at}/tags"), t));
        }
        for (i, trait_) in v
            .get("traits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(t) = trait_.get("tags") {
                lists.push((format!("{at}/traits/{i}/tags"), t));
            }
        }
    }
    for (at, operation) in v2_operations(doc) {
        holder(at.clone(), operation, &mut lists);
        for (at, message) in v2_operation_messages(&at, operation) {
            holder(at, message, &mut lists);
        }
    }
    for part in ["messages", "messageTraits", "operationTraits"] {
        for (name, v) in object(doc.pointer(&format!("/components/{part}"))) {
            holder(
                format!("/components/{part}/{}", escape(name)),
                v,
                &mut lists,
            );
        }
    }
    for (at, list) in lists {
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, tag) in list.as_array().into_iter().flatten().enumerate() {
            if let Some(name) = tag.get("name").and_then(Value::as_str) {
                if !seen.insert(name) {
                    out.push(Diagnostic::at(
                        &format!("{at}/{i}/name"),
                        format!(
                            "tag `{name}` appears twice in this list: tag names must be unique"
                        ),
                    ));
                }
            }
        }
    }
}

/// 2.x: for a message with no `schemaFormat` (so its schemas are AsyncAPI schemas), an
/// example's `payload` must match the payload schema and its `headers` the headers
/// schema. (The official parser has no such rule for 3.x.)
fn v2_message_examples(doc: &Value, out: &mut Vec<Diagnostic>) {
    let messages = object(doc.pointer("/components/messages"))
        .map(|(name, m)| (format!("/components/messages/{}", escape(name)), m))
        .chain(
            v2_operations(doc)
                .into_iter()
                .flat_map(|(at, operation)| v2_operation_messages(&at, operation)),
        );
    for (pointer, message) in messages {
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
}

/// 2.x: a schema's `default` and `examples` match the schema, for payloads of messages
/// without another schema format, component schemas and parameter schemas.
fn v2_schema_values(doc: &Value, out: &mut Vec<Diagnostic>) {
    let mut schemas: Vec<(String, &Value)> = Vec::new();
    let json_message = |m: &Value| m.get("schemaFormat").is_none();
    for (address, channel) in object(doc.get("channels")) {
        let at = format!("/channels/{}", escape(address));
        for op in ["publish", "subscribe"] {
            if let Some(m) = channel
                .get(op)
                .and_then(|o| o.get("message"))
                .filter(|m| json_message(m))
            {
                if let Some(p) = m.get("payload") {
                    schemas.push((format!("{at}/{op}/message/payload"), p));
                }
            }
        }
        for (name, p) in object(channel.get("parameters")) {
            if let Some(s) = p.get("schema") {
                schemas.push((format!("{at}/parameters/{}/schema", escape(name)), s));
            }
        }
    }
    for (name, s) in object(doc.pointer("/components/schemas")) {
        schemas.push((format!("/components/schemas/{}", escape(name)), s));
    }
    for (name, p) in object(doc.pointer("/components/parameters")) {
        if let Some(s) = p.get("schema") {
            schemas.push((format!("/components/parameters/{}/schema", escape(name)), s));
        }
    }
    for part in ["messages", "messageTraits"] {
        for (name, m) in object(doc.pointer(&format!("/components/{part}"))) {
            if let Some(p) = m.get("payload").filter(|_| json_message(m)) {
                schemas.push((format!("/components/{part}/{}/payload", escape(name)), p));
            }
        }
    }
    for (at, schema) in schemas {
        let has_values = schema.get("default").is_some() || schema.get("examples").is_some();
        if !has_values || !schema.is_object() {
            continue;
        }
        let Ok(validator) = jsonschema::draft7::new(schema) else {
            continue;
        };
        if let Some(default) = schema.get("default") {
            if let Some(e) = validator.iter_errors(default).next() {
                out.push(Diagnostic::at(
                    &format!("{at}/default"),
                    format!("the default does not match its schema: {e}"),
                ));
            }
        }
        for (i, example) in schema
            .get("examples")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(e) = validator.iter_errors(example).next() {
                out.push(Diagnostic::at(
                    &format!("{at}/examples/{i}"),
                    format!("the example does not match its schema: {e}"),
                ));
            }
        }
    }
}

/// 3.x channels: parameters match the address (an address of null has none), and the
/// `servers` of a channel under `channels` refer to servers under `servers`.
fn v3_channels(written: &Value, resolved: &Value, out: &mut Vec<Diagnostic>) {
    let channels = object(resolved.get("channels"))
        .map(|(id, c)| (format!("/channels/{}", escape(id)), c))
        .chain(
            object(resolved.pointer("/components/channels"))
                .map(|(id, c)| (format!("/components/channels/{}", escape(id)), c)),
        );
    for (at, channel) in channels {
        let Some(parameters) = channel.get("parameters").and_then(Value::as_object) else {
            continue;
        };
        let address = channel.get("address").and_then(Value::as_str).unwrap_or("");
        declared_match_template(
            &template_variables(address),
            parameters,
            &at,
            "parameters",
            "channel parameter",
            out,
        );
    }
    for (id, channel) in object(written.get("channels")) {
        for (i, server) in channel
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let reference = server.get("$ref").and_then(Value::as_str).unwrap_or("");
            if !reference.contains("#/servers/") {
                out.push(Diagnostic::at(
                    &format!("/channels/{}/servers/{i}", escape(id)),
                    "a channel under `channels` must refer to servers under the root `servers` (`$ref: '#/servers/...'`)",
                ));
            }
        }
    }
}

/// 3.x operations: one under `operations` refers to a channel under `channels`, and the
/// messages of any operation are messages of its channel.
fn v3_operations(written: &Value, out: &mut Vec<Diagnostic>) {
    let operations = object(written.get("operations"))
        .map(|(id, o)| (format!("/operations/{}", escape(id)), o, true))
        .chain(
            object(written.pointer("/components/operations"))
                .map(|(id, o)| (format!("/components/operations/{}", escape(id)), o, false)),
        );
    for (at, operation, root) in operations {
        let channel = operation
            .pointer("/channel/$ref")
            .and_then(Value::as_str)
            .unwrap_or("");
        if root && !channel.contains("#/channels/") {
            out.push(Diagnostic::at(
                &format!("{at}/channel"),
                "an operation under `operations` must refer to a channel under the root `channels` (`$ref: '#/channels/...'`)",
            ));
        }
        let prefix = format!("{channel}/messages/");
        for (i, message) in operation
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let reference = message.get("$ref").and_then(Value::as_str).unwrap_or("");
            if !channel.is_empty() && !reference.starts_with(&prefix) {
                out.push(Diagnostic::at(
                    &format!("{at}/messages/{i}"),
                    format!(
                        "the operation's messages must be messages of its channel (`{prefix}...`)"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(doc: Value, version: &str) -> Vec<String> {
        check(&doc, &doc, version)
            .into_iter()
            .map(|d| d.pointer)
            .collect()
    }

    #[test]
    fn v2_rules_find_what_the_official_parser_finds() {
        let doc = json!({
            "asyncapi": "2.6.0",
            "tags": [{ "name": "a" }, { "name": "a" }],
            "servers": {
                "prod": { "url": "ws://{host}", "protocol": "ws",
                          "variables": { "host": {}, "port": {} },
                          "security": [{ "undefinedScheme": [] }, { "oauth": ["read", "nope"] }] },
            },
            "channels": {
                "/rooms/{id}": {
                    "parameters": { "id": {}, "other": {} },
                    "servers": ["prod", "staging"],
                    "publish": { "operationId": "send", "message": { "messageId": "m" } },
                    "subscribe": { "operationId": "send", "message": { "messageId": "m" } },
                },
                "/q?x=1": {},
            },
            "components": {
                "securitySchemes": { "oauth": { "type": "oauth2", "flows": { "implicit": { "scopes": { "read": "" } } } } },
                "schemas": { "n": { "type": "integer", "default": "one", "examples": [1, "two"] } },
            },
        });
        let pointers = found(doc, "2.6.0");
        for expected in [
            "/channels/~1q?x=1",
            "/servers/prod/security/0/undefinedScheme",
            "/servers/prod/security/1/oauth/1",
            "/servers/prod/variables/port",
            "/channels/~1rooms~1{id}/parameters/other",
            "/channels/~1rooms~1{id}/servers/1",
            "/channels/~1rooms~1{id}/subscribe/operationId",
            "/channels/~1rooms~1{id}/subscribe/message/messageId",
            "/tags/1/name",
            "/components/schemas/n/default",
            "/components/schemas/n/examples/1",
        ] {
            assert!(
                pointers.iter().any(|p| p == expected),
                "{expected} in {pointers:?}"
            );
        }
        assert_eq!(pointers.len(), 11, "{pointers:?}");
    }

    #[test]
    fn v3_rules_check_where_references_point() {
        let doc = json!({
            "asyncapi": "3.0.0",
            "servers": { "s": {} },
            "channels": {
                "c": { "address": "/c", "parameters": { "x": {} }, "servers": [{ "$ref": "#/components/servers/s" }],
                       "messages": { "m": {} } },
            },
            "operations": {
                "o": { "action": "send", "channel": { "$ref": "#/components/channels/c" },
                       "messages": [{ "$ref": "#/channels/c/messages/m" }] },
                "p": { "action": "send", "channel": { "$ref": "#/channels/c" },
                       "messages": [{ "$ref": "#/channels/c/messages/m" }, { "$ref": "#/components/messages/m" }] },
            },
        });
        let pointers = found(doc, "3.0.0");
        assert_eq!(
            pointers,
            [
                "/channels/c/parameters/x",
                "/channels/c/servers/0",
                "/operations/o/channel",
                "/operations/o/messages/0",
                "/operations/p/messages/1",
            ]
        );
    }

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
        let mut found = Vec::new();
        v2_message_examples(&doc, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].pointer,
            "/components/messages/tick/examples/1/payload"
        );
    }
}
