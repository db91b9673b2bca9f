//! A value that fits a payload schema, for when a contract gives no example: what the
//! mock backend sends and the test console prefills. The schema's own `const`, `default`,
//! `examples`/`example` and `enum` come first; otherwise the simplest value of its type.

use serde_json::{Map, Value};

/// How deep nested schemas are followed (a cycle left as a `$ref` ends there anyway).
const MAX_DEPTH: usize = 8;

/// A value for `schema` (JSON Schema / AsyncAPI schema, local references resolved).
pub fn instance(schema: &Value) -> Value {
    at_depth(schema, 0)
}

fn at_depth(schema: &Value, depth: usize) -> Value {
    let Some(s) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    for given in ["const", "default"] {
        if let Some(v) = s.get(given) {
            return v.clone();
        }
    }
    if let Some(v) = s
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return v.clone();
    }
    if let Some(v) = s.get("example") {
        return v.clone();
    }
    if let Some(v) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return v.clone();
    }
    for choice in ["oneOf", "anyOf"] {
        if let Some(first) = s
            .get(choice)
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            return at_depth(first, depth + 1);
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(o) = at_depth(part, depth + 1) {
                merged.extend(o);
            }
        }
        if let Value::Object(own) = object(s, depth) {
            merged.extend(own);
        }
        return Value::Object(merged);
    }
    let kind = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ if s.contains_key("items") => "array",
        _ => "",
    };
    match kind {
        "object" => object(s, depth),
        "array" => Value::Array(
            s.get("items")
                .map(|i| vec![at_depth(i, depth + 1)])
                .unwrap_or_default(),
        ),
        "string" => Value::String(string(s)),
        "integer" => Value::from(s.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => s.get("minimum").cloned().unwrap_or(Value::from(0.0)),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

fn object(s: &Map<String, Value>, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(props)) = s.get("properties") {
        for (name, prop) in props {
            out.insert(name.clone(), at_depth(prop, depth + 1));
        }
    }
    Value::Object(out)
}

fn string(s: &Map<String, Value>) -> String {
    let base = match s.get("format").and_then(Value::as_str) {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "string",
    };
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut out = base.to_string();
    while out.len() < min {
        out.push('x');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_values_first_then_the_simplest_of_the_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "event": {"type": "string", "const": "pong"},
                "reqid": {"type": "integer"},
                "status": {"type": "string", "enum": ["online", "maintenance"]},
                "type": {"type": "string", "example": "connect"},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 8}},
                "at": {"type": "string", "format": "date-time"},
                "either": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
                "both": {"allOf": [{"properties": {"a": {"type": "integer", "minimum": 3}}}, {"properties": {"b": {"type": "number"}}}]},
            }
        });
        assert_eq!(
            instance(&schema),
            json!({
                "event": "pong", "reqid": 0, "status": "online", "type": "connect",
                "tags": ["stringxx"], "at": "2024-01-01T00:00:00Z", "either": false,
                "both": {"a": 3, "b": 0.0},
            })
        );
        assert_eq!(instance(&json!(true)), Value::Null);
    }
}
