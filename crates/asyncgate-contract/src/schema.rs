//! Validation against the official AsyncAPI JSON Schemas, vendored in `schemas/` (one per
//! released version) and compiled once per version on first use.

use crate::diagnostic::Diagnostic;
use jsonschema::Validator;
use serde_json::Value;
use std::sync::OnceLock;

const SCHEMAS: [(&str, &str); 9] = [
    ("2.0.0", include_str!("../schemas/2.0.0.json")),
    ("2.1.0", include_str!("../schemas/2.1.0.json")),
    ("2.2.0", include_str!("../schemas/2.2.0.json")),
    ("2.3.0", include_str!("../schemas/2.3.0.json")),
    ("2.4.0", include_str!("../schemas/2.4.0.json")),
    ("2.5.0", include_str!("../schemas/2.5.0.json")),
    ("2.6.0", include_str!("../schemas/2.6.0.json")),
    ("3.0.0", include_str!("../schemas/3.0.0.json")),
    ("3.1.0", include_str!("../schemas/3.1.0.json")),
];

/// Most schema errors reported for one document.
const MAX_ERRORS: usize = 20;
/// Longest message kept from one schema error (they can quote large parts of a document).
const MAX_MESSAGE: usize = 300;

/// The versions with an official schema.
pub fn versions() -> impl Iterator<Item = &'static str> {
    SCHEMAS.iter().map(|(v, _)| *v)
}

/// Which reading of a document a schema check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// As written: only where `$ref` may stand is checked.
    Written,
    /// With references resolved: everything else.
    Resolved,
}

fn validator(index: usize, reading: Reading) -> Option<&'static Validator> {
    static WRITTEN: [OnceLock<Option<Validator>>; 9] = [const { OnceLock::new() }; 9];
    static RESOLVED: [OnceLock<Option<Validator>>; 9] = [const { OnceLock::new() }; 9];
    let cell = match reading {
        Reading::Written => &WRITTEN[index],
        Reading::Resolved => &RESOLVED[index],
    };
    cell.get_or_init(|| {
        let mut schema: Value = serde_json::from_str(SCHEMAS[index].1).ok()?;
        if reading == Reading::Resolved && SCHEMAS[index].0.starts_with('3') {
            accept_resolved_v3(&mut schema);
        }
        jsonschema::draft7::new(&schema).ok()
    })
    .as_ref()
}

/// AsyncAPI 3 requires some fields to be references (a channel's servers, an operation's
/// channel and messages, a reply's channel and messages); resolved, they hold the
/// objects themselves, which the schema must then accept.
fn accept_resolved_v3(schema: &mut Value) {
    let defs = &mut schema["definitions"];
    let point = |v: &mut Value, to: &str| {
        if v.is_object() {
            *v = serde_json::json!({ "$ref": format!("#/definitions/{to}") });
        }
    };
    point(
        &mut defs["channel"]["properties"]["servers"]["items"],
        "server",
    );
    for object in ["operation", "operationReply"] {
        point(&mut defs[object]["properties"]["channel"], "channel");
        point(
            &mut defs[object]["properties"]["messages"]["items"],
            "messageObject",
        );
    }
}

/// Whether an error is a `$ref` where the schema allows no extra property.
fn is_misplaced_ref(error: &jsonschema::ValidationError<'_>) -> bool {
    matches!(
        error.kind(),
        jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
            if unexpected.iter().any(|p| p == "$ref")
    )
}

/// Check a document against the official schema of `version`, as the official parser
/// does: `written` (the document as written) for where references stand, `resolved` (with
/// its references resolved, see `refs::resolved`) for everything else. `None` when there
/// is no schema for that version.
pub fn check(written: &Value, resolved: &Value, version: &str) -> Option<Vec<Diagnostic>> {
    let index = SCHEMAS.iter().position(|(v, _)| *v == version)?;
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut add = |d: Diagnostic| {
        if !out.contains(&d) && out.len() < MAX_ERRORS {
            out.push(d);
        }
    };
    for error in validator(index, Reading::Written)?.iter_errors(written) {
        if is_misplaced_ref(&error) {
            add(Diagnostic::at(
                error.instance_path().as_str(),
                format!("a reference (`$ref`) is not allowed here (AsyncAPI {version} schema)"),
            ));
        }
    }
    for error in validator(index, Reading::Resolved)?.iter_errors(resolved) {
        // A reference left by a cycle is no error of the document's.
        if is_misplaced_ref(&error) {
            continue;
        }
        let mut message = error.to_string();
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        add(Diagnostic::at(
            error.instance_path().as_str(),
            format!("{message} (AsyncAPI {version} schema)"),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_schema_compiles() {
        for (i, (version, _)) in SCHEMAS.iter().enumerate() {
            assert!(validator(i, Reading::Written).is_some(), "{version}");
            assert!(validator(i, Reading::Resolved).is_some(), "{version}");
        }
    }
}
