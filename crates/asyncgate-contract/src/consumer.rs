//! The consumer contract: the API's contract as its clients see it, with the servers
//! replaced by the gateway URLs it is deployed at and the gateway's API-key scheme.

use serde_json::{json, Map, Value};

/// One place the API is served: environment name and the `ws://` URL of its base path.
pub struct Endpoint {
    pub environment: String,
    pub url: String,
}

const SCHEME: &str = "asyncgateApiKey";

/// Rewrite `doc` (a loaded contract of `version`) for consumers.
pub fn consumer_contract(mut doc: Value, version: &str, endpoints: &[Endpoint]) -> Value {
    let v3 = version.starts_with("3.");
    let mut servers = Map::new();
    for e in endpoints {
        let (scheme, rest) = e.url.split_once("://").unwrap_or(("ws", e.url.as_str()));
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let description = format!("asyncgate, {} environment", e.environment);
        let server = if v3 {
            json!({
                "host": host,
                "pathname": path,
                "protocol": scheme,
                "description": description,
                "security": [{ "$ref": format!("#/components/securitySchemes/{SCHEME}") }],
            })
        } else {
            json!({
                "url": e.url,
                "protocol": scheme,
                "description": description,
                "security": [{ SCHEME: [] }],
            })
        };
        servers.insert(e.environment.clone(), server);
    }
    let Some(root) = doc.as_object_mut() else {
        return doc;
    };
    root.insert("servers".into(), Value::Object(servers));
    // Channels (and 3.x operations) may name servers that no longer exist: without the
    // list they are available on all servers.
    if let Some(channels) = root.get_mut("channels").and_then(Value::as_object_mut) {
        for channel in channels.values_mut() {
            if let Some(c) = channel.as_object_mut() {
                c.remove("servers");
            }
        }
    }
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(components) = components {
        let schemes = components
            .entry("securitySchemes")
            .or_insert_with(|| json!({}));
        if let Some(schemes) = schemes.as_object_mut() {
            schemes.insert(
                SCHEME.into(),
                json!({
                    "type": "httpApiKey",
                    "name": "api-key",
                    "in": "header",
                    "description": "An API key from the developer portal. Clients that cannot set headers pass it as the `apikey` query parameter.",
                }),
            );
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load::load, parse, Limits};

    fn endpoints() -> Vec<Endpoint> {
        vec![
            Endpoint {
                environment: "development".into(),
                url: "ws://127.0.0.1:9401/default/chat-api/v1.0.0".into(),
            },
            Endpoint {
                environment: "production".into(),
                url: "ws://127.0.0.1:9403/default/chat-api/v1.0.0".into(),
            },
        ]
    }

    #[test]
    fn consumer_contracts_are_valid_and_point_at_the_gateway() {
        for (sample, version) in [
            (
                include_str!("../../../samples/chat-service-asyncapi.yaml"),
                "2.0.0",
            ),
            (
                include_str!("../../../samples/chat-service-asyncapi-3.yaml"),
                "3.0.0",
            ),
        ] {
            let doc = load(sample, &Limits::default()).unwrap();
            let consumer = consumer_contract(doc, version, &endpoints());
            let text = serde_json::to_string(&consumer).unwrap();
            let model =
                parse(&text, &Limits::default()).unwrap_or_else(|e| panic!("{version}: {e}"));
            let urls: Vec<&str> = model.servers.iter().map(|s| s.url.as_str()).collect();
            assert_eq!(
                urls,
                [
                    "ws://127.0.0.1:9401/default/chat-api/v1.0.0",
                    "ws://127.0.0.1:9403/default/chat-api/v1.0.0"
                ]
            );
            assert_eq!(
                consumer["components"]["securitySchemes"][SCHEME]["name"],
                "api-key"
            );
        }
    }
}
