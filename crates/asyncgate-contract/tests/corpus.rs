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

/// The official parser, installed once into `target/official-parser` (None when Node.js
/// or npm is missing, or `ASYNCGATE_SKIP_OFFICIAL_PARSER` is set).
fn official_parser() -> Option<PathBuf> {
    if std::env::var("ASYNCGATE_SKIP_OFFICIAL_PARSER").is_ok() {
        return None;
    }
    let works = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works("node") || !works("npm") {
        eprintln!("Node.js or npm not found: skipping the comparison with the official parser");
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/official-parser");
    if !dir.join("node_modules/@asyncapi/parser").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("@asyncapi/parser@3.6.6")
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm install @asyncapi/parser failed");
    }
    std::fs::copy(
        corpus_dir().join("official-parser.mjs"),
        dir.join("official-parser.mjs"),
    )
    .unwrap();
    Some(dir)
}

#[test]
fn the_official_parser_agrees_about_validity() {
    let Some(dir) = official_parser() else { return };
    let documents = manifest();
    let files: Vec<PathBuf> = documents
        .iter()
        .map(|d| corpus_dir().join(d["file"].as_str().unwrap()))
        .collect();
    let out = Command::new("node")
        .arg(dir.join("official-parser.mjs"))
        .args(&files)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut disagreements = Vec::new();
    for (line, doc) in String::from_utf8_lossy(&out.stdout).lines().zip(&documents) {
        let official: Value = serde_json::from_str(line).unwrap();
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
    assert_eq!(
        documents.len(),
        String::from_utf8_lossy(&out.stdout).lines().count()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
