//! AsyncAPI contracts: from text (YAML or JSON) to one version-independent model.
//!
//! `load` turns text into a document tree within a size budget, `refs` follows `$ref`
//! pointers, `v2` reads AsyncAPI 2.x into the `model`, and `derive` computes the values an
//! API proxy starts from (name, identifier, version, target).

pub mod bundle;
pub mod consumer;
pub mod derive;
pub mod diagnostic;
pub mod diff;
pub mod load;
pub mod model;
mod reader;
pub mod refs;
mod rules;
pub mod sample;
pub mod schema;
pub mod spans;
mod v2;
mod v3;

pub use derive::{derive, slugify, Derived};
pub use diagnostic::{ContractError, Diagnostic};
pub use diff::{diff, ContractDiff};
pub use load::Limits;
pub use model::{Channel, Contract, Message, Operation, Reply, Server};

/// Parse and check a contract, returning its model. Every diagnostic carries the line and
/// column of what it points at (or of its nearest existing ancestor).
pub fn parse(text: &str, limits: &Limits) -> Result<Contract, ContractError> {
    let doc = load::load(text, limits)?;
    load::check_budgets(&doc, limits)?;
    // Positions cost a second reading of the text: only when something must be located.
    let locate = |diagnostics: &mut [Diagnostic]| {
        if diagnostics.is_empty() {
            return;
        }
        let spans = spans::parse(text).map(|(_, s)| s).unwrap_or_default();
        for d in diagnostics.iter_mut().filter(|d| d.line.is_none()) {
            if let Some((line, column)) = spans.find(&d.pointer) {
                d.line = Some(line);
                d.column = Some(column);
            }
        }
    };
    match read(&doc, &doc, limits) {
        Ok(mut contract) => {
            locate(&mut contract.warnings);
            Ok(contract)
        }
        Err(ContractError::Invalid(mut diagnostics)) => {
            locate(&mut diagnostics);
            Err(ContractError::Invalid(diagnostics))
        }
        Err(other) => Err(other),
    }
}

/// Check and read an already loaded document (a bundle after `bundle::inline`), with its
/// root as written (where references stand is checked on it). Its diagnostics carry
/// pointers but no positions: the document has no single source text.
pub fn parse_document(
    doc: &serde_json::Value,
    written: &serde_json::Value,
    limits: &Limits,
) -> Result<Contract, ContractError> {
    load::check_budgets(doc, limits)?;
    read(doc, written, limits)
}

/// Check a loaded document against its version's schema and the official parser's rules,
/// and read it into the model. `written` is the root document as written.
fn read(
    doc: &serde_json::Value,
    written: &serde_json::Value,
    limits: &Limits,
) -> Result<Contract, ContractError> {
    let version = match doc.get("asyncapi") {
        Some(serde_json::Value::String(v)) => v.clone(),
        Some(other) => {
            return Err(ContractError::single(
                "/asyncapi",
                format!("`asyncapi` must be a version string such as \"2.6.0\", found {other}"),
            ))
        }
        None => return Err(not_asyncapi(doc)),
    };
    let read_version = if version.starts_with("2.") {
        v2::read
    } else if version.starts_with("3.") {
        v3::read
    } else {
        return Err(ContractError::single(
            "/asyncapi",
            format!("unsupported AsyncAPI version \"{version}\": expected 2.x or 3.x"),
        ));
    };
    let resolved = refs::resolved(doc, limits.max_resolved_values)?;
    let Some(mut problems) = schema::check(written, &resolved, &version) else {
        return Err(ContractError::single(
            "/asyncapi",
            format!(
                "unsupported AsyncAPI version \"{version}\": the versions with an official schema are {}",
                schema::versions().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    problems.extend(rules::check(written, &resolved, &version));
    // The model reader's messages are more specific; keep both, the reader's first.
    match read_version(doc, &version, limits) {
        Ok(contract) if problems.is_empty() => Ok(contract),
        Ok(_) => Err(ContractError::Invalid(problems)),
        Err(ContractError::Invalid(mut found)) => {
            problems.retain(|p| !found.contains(p));
            found.extend(problems);
            Err(ContractError::Invalid(found))
        }
        Err(other) => Err(other),
    }
}

fn not_asyncapi(doc: &serde_json::Value) -> ContractError {
    let hint = if doc.get("openapi").is_some() || doc.get("swagger").is_some() {
        " (this looks like an OpenAPI document; WebSocket APIs are described with AsyncAPI)"
    } else if !doc.is_object() {
        " (the document is not a mapping of fields)"
    } else {
        ""
    };
    ContractError::single(
        "",
        format!("not an AsyncAPI document: the top-level `asyncapi` field is missing{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = include_str!("../../../samples/chat-service-asyncapi.yaml");

    #[test]
    fn sample_chat_contract_reads_fully() {
        let c = parse(CHAT, &Limits::default()).unwrap();
        assert_eq!(c.asyncapi_version, "2.0.0");
        assert_eq!(c.title, "Chat API");
        assert_eq!(c.version, "1.0.0");
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.servers[0].protocol, "wss");
        assert_eq!(c.channels.len(), 1);
        let ch = &c.channels[0];
        assert_eq!(ch.address, "/");
        assert_eq!(
            ch.client_to_server
                .as_ref()
                .unwrap()
                .operation_id
                .as_deref(),
            Some("ReceiveMessage")
        );
        assert_eq!(
            ch.server_to_client.as_ref().unwrap().messages[0]
                .name
                .as_deref(),
            Some("message")
        );
        let d = derive(&c);
        assert_eq!(d.name, "Chat API");
        assert_eq!(d.identifier, "chat-api");
        assert_eq!(
            d.target.as_deref(),
            Some("wss://apis.bijira.dev/samples/chat-service-nodejs/v1.0")
        );
    }

    const CHAT_V3: &str = include_str!("../../../samples/chat-service-asyncapi-3.yaml");

    #[test]
    fn asyncapi_3_reads_into_the_same_model() {
        let c = parse(CHAT_V3, &Limits::default()).unwrap();
        assert_eq!(c.asyncapi_version, "3.0.0");
        assert_eq!(c.servers[0].url, "ws://127.0.0.1:9410");
        let ch = &c.channels[0];
        assert_eq!((ch.id.as_deref(), ch.address.as_str()), (Some("chat"), "/"));
        // `receive`: what the server receives, so what clients send.
        assert_eq!(ch.client_sends(), ["Connect", "Data"]);
        assert_eq!(ch.client_receives(), ["Presence", "Data", "Delivered"]);
        assert_eq!(
            ch.client_to_server
                .as_ref()
                .unwrap()
                .operation_id
                .as_deref(),
            Some("joinOrSpeak")
        );
        assert_eq!(derive(&c).target.as_deref(), Some("ws://127.0.0.1:9410"));
    }

    #[test]
    fn asyncapi_3_channel_keys_are_not_addresses_and_payload_formats_are_kept() {
        let doc = r#"
asyncapi: 3.0.0
info: {title: Prices, version: '2'}
servers:
  prod: {host: 'prices.example.com', pathname: '/{stage}', protocol: wss, variables: {stage: {default: live}}}
channels:
  roomPrices:
    address: /rooms/{roomId}
    parameters: {roomId: {description: the room}}
    messages:
      tick: {payload: {schemaFormat: 'application/vnd.apache.avro;version=1.9.0', schema: {type: record, name: Tick, fields: []}}}
  unnamed:
    address: null
operations:
  ticks: {action: send, channel: {$ref: '#/channels/roomPrices'}}
"#;
        let c = parse(doc, &Limits::default()).unwrap();
        assert_eq!(c.servers[0].url, "wss://prices.example.com/live");
        assert_eq!(c.channels[0].address, "/rooms/{roomId}");
        assert_eq!(c.channels[0].parameters, ["roomId"]);
        let tick = &c.channels[0].server_to_client.as_ref().unwrap().messages[0];
        assert_eq!(
            tick.schema_format.as_deref(),
            Some("application/vnd.apache.avro;version=1.9.0")
        );
        assert_eq!(tick.payload.as_ref().unwrap()["type"], "record");
        assert_eq!(c.channels[1].address, "/unnamed");
        assert!(c.warnings[0].message.contains("no address"));

        // As for the official parser: 3.x parameters left out entirely are a warning,
        // a `parameters` object that misses one is an error.
        let missing = doc.replace(
            "parameters: {roomId: {description: the room}}",
            "parameters: {}",
        );
        let err = parse(&missing, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("missing roomId"), "{err}");
        let undeclared = doc.replace("    parameters: {roomId: {description: the room}}\n", "");
        assert_ne!(undeclared, doc);
        let c = parse(&undeclared, &Limits::default()).unwrap();
        assert!(c
            .warnings
            .iter()
            .any(|w| w.message.contains("`roomId` is not defined")));
    }

    #[test]
    fn asyncapi_3_operations_must_point_at_real_channels_and_their_messages() {
        let doc = "asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\nchannels:\n  a: {address: /a, messages: {m: {payload: {type: string}}}}\n  b: {address: /b, messages: {n: {payload: {type: string}}}}\noperations:\n  x: {action: receive, channel: {$ref: '#/channels/missing'}}\n  y: {action: send, channel: {$ref: '#/channels/a'}, messages: [{$ref: '#/channels/b/messages/n'}]}\n  z: {action: listen, channel: {$ref: '#/channels/a'}}\n";
        let err = parse(doc, &Limits::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/operations/x/channel") && text.contains("no such channel"),
            "{text}"
        );
        assert!(
            text.contains("/operations/y/messages/0")
                && text.contains("not a message of the channel"),
            "{text}"
        );
        assert!(text.contains("/operations/z/action"), "{text}");
    }

    #[test]
    fn diagnostics_carry_line_and_column() {
        let doc = "asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\nchannels:\n  a:\n    address: /a\noperations:\n  x:\n    action: listen\n    channel: {$ref: '#/channels/a'}\n";
        let err = parse(doc, &Limits::default()).unwrap_err();
        let d = err
            .diagnostics()
            .into_iter()
            .find(|d| d.pointer == "/operations/x/action")
            .unwrap();
        assert_eq!((d.line, d.column), (Some(8), Some(13)), "{d}");
        assert!(err.to_string().contains("(line 8, column 13)"), "{err}");
        // A missing field is placed at its parent.
        let err = parse(
            "asyncapi: 2.6.0\ninfo:\n  version: '1'\nchannels: {}\n",
            &Limits::default(),
        )
        .unwrap_err();
        let d = err
            .diagnostics()
            .into_iter()
            .find(|d| d.pointer == "/info/title")
            .unwrap();
        assert_eq!(d.line, Some(3), "{d}");
    }

    #[test]
    fn ws_bindings_and_security_schemes_are_read() {
        let doc = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /feed:\n    bindings:\n      ws:\n        query: {type: object, properties: {symbol: {type: string}}}\n        headers: {$ref: '#/components/schemas/auth'}\n    subscribe: {message: {payload: {type: string}}}\ncomponents:\n  schemas:\n    auth: {type: object, properties: {x-token: {type: string}}}\n  securitySchemes:\n    token: {type: httpApiKey, name: x-token, in: header, description: Backend token}\n";
        let c = parse(doc, &Limits::default()).unwrap();
        let ws = c.channels[0].ws_binding.as_ref().unwrap();
        assert_eq!(
            ws.query.as_ref().unwrap()["properties"]["symbol"]["type"],
            "string"
        );
        assert_eq!(
            ws.headers.as_ref().unwrap()["properties"]["x-token"]["type"],
            "string"
        );
        assert_eq!(c.security_schemes[0].name, "token");
        assert_eq!(c.security_schemes[0].kind, "httpApiKey");
        // Message headers and examples are kept.
        let doc = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a:\n    subscribe:\n      message:\n        headers: {type: object, properties: {trace: {type: string}}}\n        payload: {type: string}\n        examples: [{payload: hello}]\n";
        let c = parse(doc, &Limits::default()).unwrap();
        let m = &c.channels[0].server_to_client.as_ref().unwrap().messages[0];
        assert_eq!(
            m.headers.as_ref().unwrap()["properties"]["trace"]["type"],
            "string"
        );
        assert_eq!(m.examples[0]["payload"], "hello");
    }

    #[test]
    fn too_many_refs_are_refused() {
        let mut doc = String::from("asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels: {}\ncomponents:\n  schemas:\n    s: {type: string}\n    all:\n      type: object\n      properties:\n");
        for i in 0..20 {
            doc.push_str(&format!(
                "        p{i}: {{$ref: '#/components/schemas/s'}}\n"
            ));
        }
        let limits = Limits {
            max_refs: 10,
            ..Limits::default()
        };
        let err = parse(&doc, &limits).unwrap_err();
        assert!(err.to_string().contains("more than 10 `$ref`s"), "{err}");
        assert!(parse(&doc, &Limits::default()).is_ok());
    }

    #[test]
    fn openapi_document_is_named_as_such() {
        let err = parse(
            "openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n",
            &Limits::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not an AsyncAPI document"), "{msg}");
        assert!(msg.contains("OpenAPI"), "{msg}");
    }

    #[test]
    fn missing_info_title_names_the_pointer() {
        let err = parse(
            "asyncapi: 2.6.0\ninfo: {version: '1'}\nchannels: {}\n",
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/info/title"), "{err}");
    }

    #[test]
    fn json_contracts_are_accepted() {
        let c = parse(
            r#"{"asyncapi":"2.6.0","info":{"title":"Prices","version":"2"},"servers":{"p":{"url":"prices.example.com/ws","protocol":"ws"}},"channels":{"/rooms/{roomId}":{"parameters":{"roomId":{"schema":{"type":"string"}}},"subscribe":{"message":{"payload":{"type":"string"}}}}}}"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(c.channels[0].parameters, vec!["roomId".to_string()]);
        assert!(c.channels[0].client_to_server.is_none());
        assert_eq!(
            derive(&c).target.as_deref(),
            Some("ws://prices.example.com/ws")
        );
    }

    #[test]
    fn broken_yaml_reports_line_and_column() {
        let err = parse("asyncapi: 2.0.0\ninfo: [unclosed\n", &Limits::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line"), "{msg}");
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let err = parse("asyncapi: 2.0.0\n", &limits).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn cyclic_refs_are_reported() {
        let doc = "asyncapi: 2.0.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a:\n    $ref: '#/components/x'\ncomponents:\n  x:\n    $ref: '#/components/y'\n  y:\n    $ref: '#/components/x'\n";
        let err = parse(doc, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }
}
