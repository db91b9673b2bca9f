//! The asyncgate binary's library: configuration, wiring of both planes into one process,
//! the command-line client, the terminal test console, the sample chat backend and the
//! guided demo.

pub mod access_cmd;
pub mod app_cmd;
pub mod chat_backend;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod console;
pub mod contract_cmd;
pub mod dataplane;
pub mod demo;
pub mod echo_backend;
pub mod endpoints;
pub mod management_tls;
pub mod mock;
pub mod node;
pub mod node_cmd;
pub mod node_commands;
pub mod platform;
pub mod store_cmd;

/// The sample contract bundled with the binary (the guide's chat service).
pub const SAMPLE_CONTRACT: &str = include_str!("../../../samples/chat-service-asyncapi.yaml");

/// Wait for Ctrl-C or SIGTERM.
pub async fn platform_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
