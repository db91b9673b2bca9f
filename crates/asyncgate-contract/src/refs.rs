//! `$ref` resolution inside one document: JSON pointers, with cycle and hop limits.

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

/// Escape one JSON pointer segment (`~` and `/`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
