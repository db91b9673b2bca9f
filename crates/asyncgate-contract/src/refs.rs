//! `$ref` resolution inside one document: JSON pointers, with cycle and hop limits, and
//! the document with its references resolved (as the official parser checks it).

use crate::diagnostic::ContractError;
use serde_json::Value;

/// Follow `value` through `$ref`s until a value that is not a reference.
/// Returns the value and the pointer it was found at.
pub fn resolve<'a>(
    doc: &'a Value,
    value: &'a Value,
    at: &str,
    max_hops: usize,
) -> Result<(&'a Value, String), ContractError> {
    let mut current = value;
    let mut pointer = at.to_string();
    let mut seen: Vec<String> = Vec::new();
    while let Some(reference) = current.get("$ref") {
        let Some(reference) = reference.as_str() else {
            return Err(ContractError::single(
                &format!("{pointer}/$ref"),
                "`$ref` must be a string",
            ));
        };
        let Some(local) = reference.strip_prefix('#') else {
            return Err(ContractError::single(
                &format!("{pointer}/$ref"),
                format!("reference `{reference}` points outside this document; only local references (`#/...`) are supported in this release"),
            ));
        };
        if seen.iter().any(|s| s == local) {
            seen.push(local.to_string());
            return Err(ContractError::single(
                &format!("{pointer}/$ref"),
                format!("reference cycle: {}", seen.join(" -> ")),
            ));
        }
        if seen.len() >= max_hops {
            return Err(ContractError::single(
                &format!("{pointer}/$ref"),
                format!("more than {max_hops} chained references"),
            ));
        }
        seen.push(local.to_string());
        current = doc.pointer(local).ok_or_else(|| {
            ContractError::single(
                &format!("{pointer}/$ref"),
                format!("unresolved reference `{reference}`: nothing at that path"),
            )
        })?;
        pointer = local.to_string();
    }
    Ok((current, pointer))
}

/// The document with every local reference (`#/...`) replaced by a copy of what it points
/// at. A reference met again within its own expansion (a cycle) stays a reference, and so
/// do references that point nowhere or outside the document (the reader reports those).
/// Fails when the expansion would hold more than `max_values` values.
pub fn resolved(doc: &Value, max_values: usize) -> Result<Value, ContractError> {
    let mut budget = max_values;
    let mut stack = Vec::new();
    expand(doc, doc, &mut stack, &mut budget).ok_or_else(|| {
        ContractError::single(
            "",
            format!(
                "the document holds more than {max_values} values once its references are resolved"
            ),
        )
    })
}

/// `value` (a part of `doc`) with its local references replaced as [`resolved`] does:
/// a payload schema made whole, so it can be compiled on its own. `None` past the budget.
pub fn expanded(doc: &Value, value: &Value, max_values: usize) -> Option<Value> {
    let mut budget = max_values;
    expand(doc, value, &mut Vec::new(), &mut budget)
}

fn expand<'a>(
    doc: &'a Value,
    v: &'a Value,
    stack: &mut Vec<&'a str>,
    budget: &mut usize,
) -> Option<Value> {
    *budget = budget.checked_sub(1)?;
    if let Some(Value::String(reference)) = v.get("$ref") {
        if let Some(pointer) = reference.strip_prefix('#') {
            if let Some(target) = doc.pointer(pointer) {
                if stack.contains(&pointer) {
                    return Some(v.clone());
                }
                stack.push(pointer);
                let out = expand(doc, target, stack, budget);
                stack.pop();
                return out;
            }
        }
        return Some(v.clone());
    }
    Some(match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, c)| Some((k.clone(), expand(doc, c, stack, budget)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|c| expand(doc, c, stack, budget))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Escape one JSON pointer segment (`~` and `/`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_replaced_and_cycles_kept() {
        let doc = json!({
            "a": { "$ref": "#/b" },
            "b": { "x": 1, "self": { "$ref": "#/b" } },
            "missing": { "$ref": "#/nowhere" },
            "remote": { "$ref": "https://example.com/x.json" },
        });
        let r = resolved(&doc, 1000).unwrap();
        assert_eq!(r["a"]["x"], 1);
        assert_eq!(
            r["a"]["self"],
            json!({ "$ref": "#/b" }),
            "the cycle stays a reference"
        );
        assert_eq!(r["missing"], doc["missing"]);
        assert_eq!(r["remote"], doc["remote"]);
    }

    #[test]
    fn expansion_is_bounded() {
        // Each level refers to the one below twice: 2^20 values once expanded.
        let mut doc = serde_json::Map::new();
        doc.insert("l0".into(), json!([1, 2]));
        for i in 1..=20 {
            doc.insert(
                format!("l{i}"),
                json!([{ "$ref": format!("#/l{}", i - 1) }, { "$ref": format!("#/l{}", i - 1) }]),
            );
        }
        let err = resolved(&Value::Object(doc), 100_000).unwrap_err();
        assert!(err.to_string().contains("100000 values"), "{err}");
    }
}
