//! What changed between two versions of a contract, channel by channel, with the changes
//! that can break existing clients flagged.

use crate::model::{Contract, Message, Operation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: String,
    /// What changed: `channel`, `operation` or `message`.
    pub what: String,
    /// Where: the channel address, then direction and message name when relevant.
    pub path: String,
    /// Whether clients written against the old contract may break.
    pub breaking: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractDiff {
    pub changes: Vec<Change>,
    pub breaking: bool,
}

/// The changes from `old` to `new`.
pub fn diff(old: &Contract, new: &Contract) -> ContractDiff {
    let mut changes = Vec::new();
    let mut push = |kind, what, path: String, breaking| {
        changes.push(Change {
            kind: String::from(kind),
            what: String::from(what),
            path,
            breaking,
        })
    };
    for o in &old.channels {
        match new.channels.iter().find(|n| n.address == o.address) {
            None => push("removed", "channel", o.address.clone(), true),
            Some(n) => {
                for (direction, before, after) in [
                    ("client sends", &o.client_to_server, &n.client_to_server),
                    ("client receives", &o.server_to_client, &n.server_to_client),
                ] {
                    let path = format!("{} {direction}", o.address);
                    match (before, after) {
                        (Some(_), None) => push("removed", "operation", path, true),
                        (None, Some(_)) => push("added", "operation", path, false),
                        (Some(b), Some(a)) => messages(b, a, &path, &mut push),
                        (None, None) => {}
                    }
                }
            }
        }
    }
    for n in &new.channels {
        if !old.channels.iter().any(|o| o.address == n.address) {
            push("added", "channel", n.address.clone(), false);
        }
    }
    let breaking = changes.iter().any(|c| c.breaking);
    ContractDiff { changes, breaking }
}

fn key(m: &Message) -> String {
    m.name
        .clone()
        .or_else(|| m.title.clone())
        .unwrap_or_default()
}

fn messages(
    before: &Operation,
    after: &Operation,
    path: &str,
    push: &mut impl FnMut(&'static str, &'static str, String, bool),
) {
    for b in &before.messages {
        match after.messages.iter().find(|a| key(a) == key(b)) {
            None => push("removed", "message", format!("{path} {}", key(b)), true),
            Some(a) if a.payload != b.payload || a.content_type != b.content_type => {
                push("changed", "message", format!("{path} {}", key(b)), true)
            }
            Some(_) => {}
        }
    }
    for a in &after.messages {
        if !before.messages.iter().any(|b| key(a) == key(b)) {
            push("added", "message", format!("{path} {}", key(a)), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, Limits};

    #[test]
    fn additions_are_safe_and_removals_or_payload_changes_break() {
        let old = parse(
            "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a:\n    publish: {message: {name: Hello, payload: {type: string}}}\n    subscribe: {message: {name: News, payload: {type: string}}}\n  /b:\n    subscribe: {message: {name: Tick, payload: {type: integer}}}\n",
            &Limits::default(),
        )
        .unwrap();
        let same = diff(&old, &old);
        assert!(same.changes.is_empty() && !same.breaking);

        let new = parse(
            "asyncapi: 2.6.0\ninfo: {title: t, version: '2'}\nchannels:\n  /a:\n    publish: {message: {name: Hello, payload: {type: integer}}}\n  /c:\n    subscribe: {message: {name: Tock, payload: {type: string}}}\n",
            &Limits::default(),
        )
        .unwrap();
        let d = diff(&old, &new);
        let summary: Vec<(&str, &str, &str, bool)> = d
            .changes
            .iter()
            .map(|c| {
                (
                    c.kind.as_str(),
                    c.what.as_str(),
                    c.path.as_str(),
                    c.breaking,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("changed", "message", "/a client sends Hello", true),
                ("removed", "operation", "/a client receives", true),
                ("removed", "channel", "/b", true),
                ("added", "channel", "/c", false),
            ]
        );
        assert!(d.breaking);
    }
}
