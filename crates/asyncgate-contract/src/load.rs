//! From contract text to a document tree, within a size and nesting budget.

use crate::diagnostic::{ContractError, Diagnostic};
use serde_json::Value;

/// Budgets applied while loading a contract.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted document, in bytes (default 5 MiB).
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences (default 128).
    pub max_depth: usize,
    /// Longest chain of `$ref`s followed to reach one value (default 32).
    pub max_ref_hops: usize,
    /// Most `$ref`s a document may hold (default 10,000).
    pub max_refs: usize,
    /// Most values the document may hold once its references are resolved (default
    /// 500,000): references that fan out cannot make checking it unbounded.
    pub max_resolved_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 5 * 1024 * 1024,
            max_depth: 128,
            max_ref_hops: 32,
            max_refs: 10_000,
            max_resolved_values: 500_000,
        }
    }
}

/// Check the document-wide budgets of a loaded document.
pub fn check_budgets(doc: &Value, limits: &Limits) -> Result<(), ContractError> {
    fn count_refs(v: &Value, n: &mut usize, max: usize) {
        if *n > max {
            return;
        }
        match v {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    *n += 1;
                }
                map.values().for_each(|c| count_refs(c, n, max));
            }
            Value::Array(items) => items.iter().for_each(|c| count_refs(c, n, max)),
            _ => {}
        }
    }
    let mut refs = 0;
    count_refs(doc, &mut refs, limits.max_refs);
    if refs > limits.max_refs {
        return Err(ContractError::single(
            "",
            format!("the document holds more than {} `$ref`s", limits.max_refs),
        ));
    }
    Ok(())
}

/// Parse YAML or JSON text (JSON is YAML, but JSON gets the faster parser and its own
/// error positions). Positions of nodes are worked out only when a diagnostic needs them
/// (`crate::spans`).
pub fn load(text: &str, limits: &Limits) -> Result<Value, ContractError> {
    if text.len() > limits.max_bytes {
        return Err(ContractError::TooLarge {
            bytes: text.len(),
            limit: limits.max_bytes,
        });
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err(ContractError::Syntax(Diagnostic {
            pointer: String::new(),
            message: "the document is empty".into(),
            line: None,
            column: None,
        }));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // serde_json stops at depth 128 by itself and reports the position.
        return serde_json::from_str(trimmed).map_err(|e| {
            ContractError::Syntax(Diagnostic {
                pointer: String::new(),
                message: e.to_string(),
                line: Some(e.line()),
                column: Some(e.column()),
            })
        });
    }
    check_flow_depth(trimmed, limits.max_depth)?;
    let value: Value = serde_saphyr::from_str(trimmed).map_err(|e| {
        let loc = e.location();
        let message = match original(&e) {
            serde_saphyr::Error::Budget { breach, .. } => budget_breach(breach),
            _ => first_line(&e.to_string()),
        };
        ContractError::Syntax(Diagnostic {
            pointer: String::new(),
            message,
            line: loc.as_ref().map(|l| l.line() as usize),
            column: loc.as_ref().map(|l| l.column() as usize),
        })
    })?;
    let depth = depth_of(&value, limits.max_depth + 1);
    if depth > limits.max_depth {
        return Err(ContractError::single(
            "",
            format!("the document nests deeper than {} levels", limits.max_depth),
        ));
    }
    Ok(value)
}

/// The error under the YAML reader's wrappers (source snippets, alias locations).
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match e {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => e = error,
            other => return other,
        }
    }
}

/// What a breached YAML reading budget means for the document, by the kind of breach.
fn budget_breach(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Nodes { .. } | B::Events { .. } => {
            "the document holds too many values (YAML aliases can multiply them)"
        }
        B::Aliases { .. } => "the document uses too many YAML aliases",
        B::Anchors { .. } => "the document defines too many YAML anchors",
        B::Depth { .. } => "the document nests too deeply",
        B::Documents { .. } => "the text holds too many YAML documents",
        _ => "the document is too large to read",
    };
    format!("{what}: YAML reading budget breached ({breach:?})")
}

/// A cheap guard before the YAML parser: flow collections (`[[[[...`) nest without
/// indentation, so count brackets outside quotes.
fn check_flow_depth(text: &str, max: usize) -> Result<(), ContractError> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '\n') => {}
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if deepest > max {
            return Err(ContractError::single(
                "",
                format!("the document nests deeper than {max} levels"),
            ));
        }
    }
    Ok(())
}

fn depth_of(v: &Value, cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    match v {
        Value::Array(items) => {
            1 + items
                .iter()
                .map(|i| depth_of(i, cap - 1))
                .max()
                .unwrap_or(0)
        }
        Value::Object(map) => {
            1 + map
                .values()
                .map(|i| depth_of(i, cap - 1))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_quickly() {
        let text = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = load(&text, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("deeper than"), "{err}");
    }

    #[test]
    fn deep_json_nesting_is_refused() {
        let text = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(load(&text, &Limits::default()).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(load(&text, &Limits::default()).is_err());
    }
}
