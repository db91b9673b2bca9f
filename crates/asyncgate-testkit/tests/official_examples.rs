//! Every example document of every released AsyncAPI version, as the specification
//! publishes them (`../shared/asyncapi-examples/`, read in place, never copied), imported
//! through the management API with the files beside it (relative `$ref`s), and judged
//! valid or not exactly as the official parser judges it (`scripts/official-parser`).

use asyncgate_testkit::TestPlatform;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asyncapi-examples")
}

/// Every YAML file under `dir`, as paths relative to it.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                out.push(path.strip_prefix(dir).expect("below").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_importer_agrees_with_the_official_parser_on_every_specification_example(
) -> anyhow::Result<()> {
    if std::env::var("ASYNCGATE_SKIP_OFFICIAL_PARSER").is_ok() {
        return Ok(());
    }
    let root = examples_dir();
    anyhow::ensure!(root.is_dir(), "{} is missing", root.display());
    // (version folder, path in it, text) of each standalone document.
    let mut documents = Vec::new();
    let mut bundles: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for version in std::fs::read_dir(&root)? {
        let version = version?.path();
        if !version.is_dir() {
            continue;
        }
        let name = version.file_name().unwrap().to_string_lossy().to_string();
        let files = bundles.entry(name.clone()).or_default();
        for rel in yaml_files(&version) {
            let text = std::fs::read_to_string(version.join(&rel))?;
            let rel = rel.to_string_lossy().to_string();
            if text.lines().any(|l| l.starts_with("asyncapi:")) {
                documents.push((name.clone(), rel.clone()));
            }
            files.insert(rel, text);
        }
    }
    assert!(documents.len() >= 170, "{} documents", documents.len());

    let paths: Vec<PathBuf> = documents
        .iter()
        .map(|(v, rel)| root.join(v).join(rel))
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/official-parser");
    let out = Command::new(script).args(&paths).output()?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/official-parser failed (Node.js and npm are needed; scripts/test installs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(verdicts.len(), documents.len());

    let gw = TestPlatform::start().await?;
    let mut disagreements = Vec::new();
    let mut valid = 0;
    for (i, ((version, rel), official)) in documents.iter().zip(&verdicts).enumerate() {
        let body = json!({
            "files": bundles[version],
            "root": rel,
            "identifier": format!("example-{i}"),
            "target": "ws://127.0.0.1:1",
        });
        let ours = gw.client.post("/apis/import", &body).await;
        let ours_valid = match &ours {
            Ok(_) => true,
            Err(e) if e.to_string().contains("HTTP 422") => false,
            Err(e) => panic!("{version}/{rel}: neither created nor 422: {e}"),
        };
        valid += usize::from(ours_valid);
        if official["valid"].as_bool() != Some(ours_valid) {
            disagreements.push(format!(
                "{version}/{rel}: official valid={} {}; asyncgate {}",
                official["valid"],
                official["errors"],
                match ours {
                    Ok(_) => "valid".to_string(),
                    Err(e) => e.to_string(),
                }
            ));
        }
    }
    eprintln!("{} documents, {valid} valid", documents.len());
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    gw.shutdown().await;
    Ok(())
}
