//! The values an API proxy starts from, derived from its contract (the "pre-defined
//! values" a user may edit before creating the proxy).

use crate::model::Contract;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Derived {
    pub name: String,
    pub identifier: String,
    pub version: String,
    pub description: Option<String>,
    /// URL of the first `ws`/`wss` server, if the contract has one.
    pub target: Option<String>,
    /// Every protocol the contract's servers declare, in order, without repeats.
    pub protocols: Vec<String>,
}

pub fn derive(contract: &Contract) -> Derived {
    let mut protocols: Vec<String> = Vec::new();
    for s in &contract.servers {
        if !protocols.contains(&s.protocol) {
            protocols.push(s.protocol.clone());
        }
    }
    Derived {
        name: contract.title.clone(),
        identifier: slugify(&contract.title),
        version: contract.version.clone(),
        description: contract.description.clone(),
        target: contract
            .servers
            .iter()
            .find(|s| matches!(s.protocol.as_str(), "ws" | "wss"))
            .map(|s| s.url.clone()),
        protocols,
    }
}

/// Lower-case ASCII letters and digits separated by single dashes.
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("api");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Chat API"), "chat-api");
        assert_eq!(slugify("  Prices -- v2 "), "prices-v2");
        assert_eq!(slugify("***"), "api");
    }
}
