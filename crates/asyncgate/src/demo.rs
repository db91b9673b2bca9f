//! `asyncgate demo`: the guide's whole flow with the bundled sample contract and an
//! in-process chat backend, each step printed, then the platform left running.

use crate::cli::DemoArgs;
use crate::client::Client;
use crate::console::{self, ConsoleOptions};
use crate::platform::Platform;
use crate::SAMPLE_CONTRACT;
use anyhow::Context;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

const IDENTIFIER: &str = "chat-api";

fn step(n: u32, text: &str) {
    println!("[{n}/8] {text}");
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.serve.to_config()?;

    let chat_listener = TcpListener::bind(&args.chat_listen)
        .await
        .with_context(|| format!("cannot listen on {} for the chat backend", args.chat_listen))?;
    let chat_url = format!("ws://{}", chat_listener.local_addr()?);
    let (chat_stop, chat_stop_rx) = watch::channel(false);
    let chat = tokio::spawn(crate::chat_backend::run(chat_listener, chat_stop_rx));
    step(1, &format!("sample chat backend listening on {chat_url}"));

    let platform = Platform::start(config).await?;
    step(2, "platform started:");
    for line in platform.describe().lines() {
        println!("      {line}");
    }
    let token = std::fs::read_to_string(&platform.endpoints.admin_token_file)?;
    let client = Client::new(&platform.endpoints.management, &token);

    let result = walkthrough(&client, &chat_url).await;
    if let Err(e) = &result {
        eprintln!("demo failed: {e:#}");
    } else if !args.exit {
        println!("\nThe platform keeps running. Press Ctrl-C to stop.");
        crate::platform_signal().await;
    }
    platform.shutdown().await;
    let _ = chat_stop.send(true);
    let _ = chat.await;
    result
}

async fn walkthrough(client: &Client, chat_url: &str) -> anyhow::Result<()> {
    let api = match client.get(&format!("/apis/{IDENTIFIER}")).await {
        Ok(_) => {
            let v = client
                .patch(
                    &format!("/apis/{IDENTIFIER}"),
                    &json!({ "target": chat_url }),
                )
                .await?;
            step(
                3,
                &format!(
                    "{} already imported; target set to the chat backend",
                    v["name"].as_str().unwrap_or(IDENTIFIER)
                ),
            );
            v
        }
        Err(_) => {
            let v = client
                .post(
                    "/apis/import",
                    &json!({ "contract": SAMPLE_CONTRACT, "target": chat_url }),
                )
                .await?;
            step(
                3,
                &format!(
                "imported the bundled AsyncAPI contract: {} {} at {} (target edited to {chat_url})",
                v["name"].as_str().unwrap_or(""),
                v["version"].as_str().unwrap_or(""),
                v["basePath"].as_str().unwrap_or("")
            ),
            );
            v
        }
    };
    let id = api["id"].as_str().unwrap_or(IDENTIFIER).to_string();

    let dev = client
        .post(
            &format!("/apis/{id}/deployments"),
            &json!({ "environment": "development", "accessMode": "external" }),
        )
        .await?;
    step(
        4,
        &format!(
            "deployed revision {} to development (external): {}",
            dev["revision"],
            dev["url"].as_str().unwrap_or("")
        ),
    );

    let (url, test_token) = crate::cli::test_target(client, &id, "development", None).await?;
    let options = ConsoleOptions {
        url,
        headers: vec![("authorization".into(), format!("Bearer {test_token}"))],
        linger: Duration::from_millis(500),
        json: false,
    };
    let input: &[u8] = b"{\"type\":\"Connect\",\"username\":\"demo\"}\n{\"type\":\"Data\",\"message\":\"hello through the gateway\"}\n";
    let mut transcript = Vec::new();
    console::run(&options, input, &mut transcript).await?;
    step(5, "tested in the console through the development gateway:");
    for line in String::from_utf8_lossy(&transcript).lines() {
        println!("      {line}");
    }

    let prod = client
        .post(
            &format!("/apis/{id}/promote"),
            &json!({ "from": "development", "to": "production" }),
        )
        .await?;
    step(
        6,
        &format!(
            "promoted revision {} to production: {}",
            prod["revision"],
            prod["url"].as_str().unwrap_or("")
        ),
    );

    let current = client.get(&format!("/apis/{id}")).await?;
    if current["lifecycle"] != "Published" {
        client
            .post(
                &format!("/apis/{id}/lifecycle"),
                &json!({ "action": "publish" }),
            )
            .await?;
    }
    let portal: Value = client.get("/portal/apis").await?;
    step(
        7,
        &format!(
            "published: the developer portal lists {} API(s)",
            portal.as_array().map(Vec::len).unwrap_or(0)
        ),
    );

    let key = client.post(&format!("/apis/{id}/keys"), &json!({})).await?;
    let key = key["key"].as_str().unwrap_or("");
    step(8, "created an API key (shown once):");
    println!("      {key}");
    println!("\nChat through the production gateway (type JSON lines such as {{\"type\":\"Connect\",\"username\":\"you\"}}):");
    println!(
        "  asyncgate connect {} --api-key {key}",
        prod["url"].as_str().unwrap_or("")
    );
    println!("or with a fresh test token:");
    println!("  asyncgate api test {IDENTIFIER} --env production");
    Ok(())
}
