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

fn validator(index: usize) -> Option<&'static Validator> {
    static COMPILED: [OnceLock<Option<Validator>>; 9] = [const { OnceLock::new() }; 9];
    COMPILED[index]
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(SCHEMAS[index].1).ok()?;
            jsonschema::draft7::new(&schema).ok()
        })
        .as_ref()
}

/// Check `doc` against the official schema of `version`. `None` when there is no schema
/// for that version.
pub fn check(doc: &Value, version: &str) -> Option<Vec<Diagnostic>> {
    let index = SCHEMAS.iter().position(|(v, _)| *v == version)?;
    let validator = validator(index)?;
    let mut out: Vec<Diagnostic> = Vec::new();
    for error in validator.iter_errors(doc) {
        let mut message = error.to_string();
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let d = Diagnostic::at(
            error.instance_path().as_str(),
            format!("{message} (AsyncAPI {version} schema)"),
        );
        if !out.contains(&d) {
            out.push(d);
        }
        if out.len() == MAX_ERRORS {
            break;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_schema_compiles() {
        for (i, (version, _)) in SCHEMAS.iter().enumerate() {
            assert!(validator(i).is_some(), "{version}");
        }
    }
}
