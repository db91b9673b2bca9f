//! What changed between two designs an environment served (or two revisions): the
//! contract's changes, from the contract engine's diff, and every changed value (target,
//! limits, policies, headers) by name. Backend header values are never shown: a changed
//! one reads `(hidden)`.

use asyncgate_contract::ContractDiff;
use asyncgate_store::ApiDesign;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Channels, operations and messages added, removed or changed.
    #[schema(value_type = Object)]
    pub contract: ContractDiff,
    /// Values that differ, by field (`target`, `limits.maxConnections`,
    /// `security.allowedOrigins`, `backendHeaders.x-api-key`, ...).
    pub values: Vec<ValueChange>,
    /// Whether clients written against the older one may break.
    pub breaking: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueChange {
    pub field: String,
    /// Absent when the value was not set before.
    #[schema(value_type = Option<Object>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// Absent when the value is no longer set.
    #[schema(value_type = Option<Object>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// The changes from `old` to `new`.
pub fn between(old: &ApiDesign, new: &ApiDesign) -> Changes {
    let contract = asyncgate_contract::diff(&old.contract, &new.contract);
    let (before, after) = (flat_values(old), flat_values(new));
    let mut values = Vec::new();
    for (field, from) in &before {
        let to = after.get(field);
        if to != Some(from) {
            values.push(ValueChange {
                field: field.clone(),
                from: Some(from.clone()),
                to: to.cloned(),
            });
        }
    }
    for (field, to) in &after {
        if !before.contains_key(field) {
            values.push(ValueChange {
                field: field.clone(),
                from: None,
                to: Some(to.clone()),
            });
        }
    }
    for change in &mut values {
        if change.field.starts_with("backendHeaders.") {
            let hidden = || Value::String("(hidden)".into());
            change.from = change.from.as_ref().map(|_| hidden());
            change.to = change.to.as_ref().map(|_| hidden());
        }
    }
    values.sort_by(|a, b| a.field.cmp(&b.field));
    Changes {
        breaking: contract.breaking,
        contract,
        values,
    }
}

/// Every value of a design but its contract, as `dotted.field → value`.
fn flat_values(design: &ApiDesign) -> Map<String, Value> {
    let mut out = Map::new();
    let Ok(Value::Object(mut all)) = serde_json::to_value(design) else {
        return out;
    };
    all.remove("contract");
    flatten("", Value::Object(all), &mut out);
    out
}

fn flatten(prefix: &str, value: Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let field = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&field, v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design() -> ApiDesign {
        let contract = asyncgate_contract::parse(
            "asyncapi: 2.6.0\ninfo: {title: Chat, version: 1.0.0}\nchannels:\n  /:\n    publish: {message: {payload: {type: string}}}\n",
            &Default::default(),
        )
        .unwrap();
        ApiDesign {
            name: "Chat".into(),
            identifier: "chat".into(),
            version: "1.0.0".into(),
            base_path: "/default/chat/v1.0.0".into(),
            target: "ws://127.0.0.1:1".into(),
            description: None,
            contract,
            limits: Default::default(),
            security: Default::default(),
            policies: Default::default(),
            backend_headers: [("x-backend-key".to_string(), "s3cret".to_string())].into(),
        }
    }

    #[test]
    fn values_are_named_by_field_and_header_values_hidden() {
        let old = design();
        let mut new = design();
        new.target = "ws://127.0.0.1:2".into();
        new.limits.max_connections = 5;
        new.security.allowed_origins = vec!["https://a.example".into()];
        new.backend_headers
            .insert("x-backend-key".into(), "n3w-s3cret".into());
        let c = between(&old, &new);
        let fields: Vec<&str> = c.values.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "backendHeaders.x-backend-key",
                "limits.maxConnections",
                "security.allowedOrigins",
                "target"
            ]
        );
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(c.contract.changes.is_empty() && !c.breaking);
        assert!(between(&old, &old).values.is_empty());
    }
}
