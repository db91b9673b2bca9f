//! The corpus: public AsyncAPI documents (and broken ones written for asyncgate), each
//! with its expected outcome in `tests/corpus/manifest.json`: valid or not, version,
//! servers, and channels with what clients send and receive. Where Node.js is present the
//! official JavaScript parser (`@asyncapi/parser`) is asked too, and any disagreement
//! about validity fails the test.
//!
//! `CORPUS_BLESS=1 cargo test -p asyncgate-contract --test corpus` rewrites the expected
//! outcomes from what the engine reads now (review the diff before committing it).

use asyncgate_contract::{parse, Contract, Limits};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// What the manifest records about a document.
fn outcome(text: &str) -> Value {
    match parse(text, &Limits::default()) {
        Ok(c) => summary(&c),
        Err(e) => json!({ "valid": false, "firstError": e.diagnostics()[0].to_string() }),
    }
}

fn summary(c: &Contract) -> Value {
    json!({
        "valid": true,
        "version": c.asyncapi_version,
        "servers": c.servers.iter().map(|s| format!("{} {}", s.name, s.url)).collect::<Vec<_>>(),
        "channels": c.channels.iter().map(|ch| json!({
            "address": ch.address,
            "clientSends": ch.client_sends(),
            "clientReceives": ch.client_receives(),
        })).collect::<Vec<_>>(),
    })
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.json")).expect("manifest.json");
    serde_json::from_str::<Value>(&text).expect("manifest is JSON")["documents"]
        .as_array()
        .expect("documents")
        .clone()
}

#[test]
fn every_document_reads_as_expected() {
    let mut documents = manifest();
    assert!(
        documents.iter().filter(|d| d["public"] == true).count() >= 40,
        "at least 40 public documents"
    );
    let bless = std::env::var("CORPUS_BLESS").is_ok();
    let mut failures = Vec::new();
    for doc in &mut documents {
        let file = doc["file"].as_str().unwrap().to_string();
        let text = std::fs::read_to_string(corpus_dir().join(&file)).unwrap();
        let got = outcome(&text);
        if bless {
            doc["expected"] = got;
            continue;
        }
        let expected = &doc["expected"];
        // For invalid documents the reason must still name the problem; the exact wording
        // of the first error is checked by its start.
        let matches = if expected["valid"] == false {
            got["valid"] == false
                && got["firstError"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(expected["firstError"].as_str().unwrap_or("\u{0}"))
        } else {
            &got == expected
        };
        if !matches {
            failures.push(format!("{file}:\n  expected {expected}\n  got      {got}"));
        }
    }
    if bless {
        let out = json!({ "documents": documents });
        std::fs::write(
            corpus_dir().join("manifest.json"),
            serde_json::to_string_pretty(&out).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The official parser's verdict on each of `files` (`scripts/official-parser`), or
/// None when `ASYNCGATE_SKIP_OFFICIAL_PARSER` is set.
pub fn official_verdicts(files: &[PathBuf]) -> Option<Vec<Value>> {
    if std::env::var("ASYNCGATE_SKIP_OFFICIAL_PARSER").is_ok() {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/official-parser");
    let out = Command::new(script)
        .args(files)
        .output()
        .expect("scripts/official-parser runs");
    assert!(
        out.status.success(),
        "scripts/official-parser failed (Node.js and npm are needed; scripts/test installs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(verdicts.len(), files.len(), "one verdict per file");
    Some(verdicts)
}

#[test]
fn the_official_parser_agrees_about_validity() {
    let documents = manifest();
    let files: Vec<PathBuf> = documents
        .iter()
        .map(|d| corpus_dir().join(d["file"].as_str().unwrap()))
        .collect();
    let Some(verdicts) = official_verdicts(&files) else {
        return;
    };
    let mut disagreements = Vec::new();
    for (official, doc) in verdicts.iter().zip(&documents) {
        let file = doc["file"].as_str().unwrap();
        let ours = parse(
            &std::fs::read_to_string(corpus_dir().join(file)).unwrap(),
            &Limits::default(),
        );
        if official["valid"].as_bool() != Some(ours.is_ok()) {
            disagreements.push(format!(
                "{file}: official parser valid={} {:?}; asyncgate {:?}",
                official["valid"],
                official["errors"],
                ours.err().map(|e| e.to_string())
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
