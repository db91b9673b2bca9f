//! `asyncgate store migrate|export|import`: the store itself, without a running platform
//! (moving a SQLite platform to PostgreSQL is an export, then an import).

use crate::cli::{StoreArgs, StoreCommand};
use anyhow::Context;
use asyncgate_store::{Export, Store};
use std::io::{Read, Write};

pub async fn run(at: &StoreArgs, command: StoreCommand) -> anyhow::Result<()> {
    let location = at.location()?;
    if let asyncgate_store::StoreLocation::Sqlite(path) = &location {
        if !path.exists() && !matches!(command, StoreCommand::Migrate | StoreCommand::Import { .. })
        {
            anyhow::bail!("there is no store at {location} (give --store or --data-dir)");
        }
    }
    let store = Store::connect(&location)
        .await
        .with_context(|| format!("opening the store {location}"))?;
    match command {
        StoreCommand::Migrate => {
            println!(
                "{location} is at schema version {}",
                store.schema_version().await?
            );
        }
        StoreCommand::Export { output } => {
            let export = store.export().await?;
            let text = serde_json::to_string(&export)?;
            match output {
                Some(path) => {
                    crate::platform::write_private(&path, &text)?;
                    let rows: usize = export.tables.iter().map(|t| t.rows.len()).sum();
                    eprintln!("exported {rows} rows of {location} to {}", path.display());
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
        }
        StoreCommand::Import { input } => {
            let mut text = String::new();
            if input.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&input)
                    .with_context(|| format!("reading {}", input.display()))?;
            }
            let export: Export = serde_json::from_str(&text)
                .context("the input is not an asyncgate store export")?;
            let imported = store.import(&export).await?;
            let rows: u64 = imported.tables.values().filter_map(|v| v.as_u64()).sum();
            println!(
                "imported {rows} rows into {location} (from {})",
                export.engine
            );
        }
    }
    store.close().await;
    Ok(())
}
