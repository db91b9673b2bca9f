//! `asyncgate contract validate`: check a contract locally, without a running platform,
//! and show what an import would derive from it.

use crate::cli::Output;
use anyhow::anyhow;
use asyncgate_contract::{derive, Contract, ContractError, Diagnostic, Limits};
use asyncgate_control::ImportPolicy;
use serde_json::{json, Value};
use std::path::Path;

/// Returns whether the contract is valid (the caller turns `false` into exit code 1).
pub async fn validate(source: &str, allow_private: bool, output: Output) -> anyhow::Result<bool> {
    let text = read(source, allow_private).await?;
    let result = asyncgate_contract::parse(&text, &Limits::default());
    let report = report(&result);
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", text_report(&result)),
    }
    Ok(result.is_ok())
}

/// The contract at `source` (a file, or an http(s) URL fetched under the import guards),
/// read into the model; its diagnostics when it is invalid.
pub async fn load(source: &str, allow_private: bool) -> anyhow::Result<Contract> {
    let text = read(source, allow_private).await?;
    asyncgate_contract::parse(&text, &Limits::default())
        .map_err(|e| anyhow!("{}", text_report(&Err(e))))
}

async fn read(source: &str, allow_private: bool) -> anyhow::Result<String> {
    Ok(
        if source.starts_with("http://") || source.starts_with("https://") {
            let policy = ImportPolicy {
                allow_private_addresses: allow_private,
                ..ImportPolicy::default()
            };
            asyncgate_control::fetch::fetch_document(source, &policy)
                .await
                .map_err(|e| anyhow!("cannot fetch {source}: {}", e.detail))?
        } else {
            std::fs::read_to_string(Path::new(source))
                .map_err(|e| anyhow!("cannot read {source}: {e}"))?
        },
    )
}

fn report(result: &Result<Contract, ContractError>) -> Value {
    match result {
        Ok(c) => json!({
            "valid": true,
            "asyncapiVersion": c.asyncapi_version,
            "derived": derive(c),
            "servers": c.servers,
            "channels": channel_summary(c),
            "warnings": c.warnings,
            "diagnostics": [],
        }),
        Err(e) => json!({ "valid": false, "diagnostics": e.diagnostics() }),
    }
}

fn channel_summary(c: &Contract) -> Value {
    c.channels
        .iter()
        .map(|ch| {
            json!({
                "address": ch.address,
                "parameters": ch.parameters,
                "clientSends": ch.client_sends(),
                "clientReceives": ch.client_receives(),
            })
        })
        .collect()
}

fn text_report(result: &Result<Contract, ContractError>) -> String {
    let line = |d: &Diagnostic| format!("  {d}\n");
    match result {
        Err(e) => {
            let diagnostics = e.diagnostics();
            let mut s = format!("invalid contract: {} problem(s)\n", diagnostics.len());
            s.extend(diagnostics.iter().map(line));
            s
        }
        Ok(c) => {
            let d = derive(c);
            let mut s = format!(
                "valid AsyncAPI {} contract: {} {}\nimport would derive: name \"{}\", identifier {}, version {}, target {}\n",
                c.asyncapi_version,
                c.title,
                c.version,
                d.name,
                d.identifier,
                d.version,
                d.target.as_deref().unwrap_or("(none: give --target)")
            );
            s.push_str("servers:\n");
            for server in &c.servers {
                s.push_str(&format!(
                    "  {:<14} {:<6} {}\n",
                    server.name, server.protocol, server.url
                ));
            }
            s.push_str("channels:\n");
            for ch in channel_summary(c).as_array().into_iter().flatten() {
                let list = |k: &str| {
                    let v: Vec<&str> = ch[k]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                s.push_str(&format!(
                    "  {}\n    client sends:    {}\n    client receives: {}\n",
                    ch["address"].as_str().unwrap_or(""),
                    list("clientSends"),
                    list("clientReceives")
                ));
            }
            if !c.warnings.is_empty() {
                s.push_str("warnings:\n");
                s.extend(c.warnings.iter().map(line));
            }
            s
        }
    }
}
