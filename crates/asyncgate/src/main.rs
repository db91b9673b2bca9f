//! `asyncgate`: parse the command line, run the command, turn errors into exit codes.

use asyncgate::cli::{self, Cli, Command};
use asyncgate::config::{ConfigError, EXIT_CONFIG};
use asyncgate::platform::Platform;
use asyncgate::{access_cmd, app_cmd, commands};
use clap::Parser;
use std::process::ExitCode;
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let args = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASYNCGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG as u8)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(args: Cli) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(serve) => {
            let platform = Platform::start(serve.to_config()?).await?;
            println!("asyncgate is serving:\n{}", platform.describe());
            // The token itself is never printed: terminals and logs are kept.
            if platform.new_admin_token.is_some() {
                println!(
                    "a new admin token was created in {} (readable by this user only; the CLI reads it from there)",
                    platform.endpoints.admin_token_file.display()
                );
            }
            println!("endpoints written to {}", serve_endpoints_path(&platform));
            asyncgate::platform_signal().await;
            println!("shutting down: closing connections");
            platform.shutdown().await;
            Ok(())
        }
        Command::ChatBackend { listen } => {
            let listener = bind(&listen).await?;
            println!("chat backend listening on ws://{}", listener.local_addr()?);
            until_signal(asyncgate::chat_backend::run, listener).await
        }
        Command::Mock {
            contract,
            listen,
            interval,
            allow_private,
        } => {
            let contract = asyncgate::contract_cmd::load(&contract, allow_private).await?;
            let mock = std::sync::Arc::new(asyncgate::mock::Mock::new(
                &contract,
                std::time::Duration::from_secs_f64(interval.max(0.01)),
            ));
            let listener = bind(&listen).await?;
            println!(
                "mock of {} listening on ws://{}",
                contract.title,
                listener.local_addr()?
            );
            until_signal(|l, stop| mock.run(l, stop), listener).await
        }
        Command::EchoBackend { listen } => {
            let listener = bind(&listen).await?;
            println!("echo backend listening on ws://{}", listener.local_addr()?);
            until_signal(asyncgate::echo_backend::run, listener).await
        }
        Command::Demo(demo) => asyncgate::demo::run(demo).await,
        Command::Api { conn, command } => commands::run_api(&conn, *command).await,
        Command::Env { conn, output } => commands::run_env(&conn, output).await,
        Command::Org { conn, command } => access_cmd::run_org(&conn, command).await,
        Command::User { conn, command } => access_cmd::run_user(&conn, command).await,
        Command::Login {
            conn,
            email,
            password_stdin: _,
            output,
        } => access_cmd::login(&conn, email, output).await,
        Command::Logout { conn } => access_cmd::logout(&conn).await,
        Command::Store { at, command } => asyncgate::store_cmd::run(&at, command).await,
        Command::Gateway(args) => {
            asyncgate::node::run(args.to_config()?, asyncgate::platform_signal()).await
        }
        Command::Node { conn, command } => asyncgate::node_cmd::run_node(&conn, command).await,
        Command::Nodes { conn, output } => asyncgate::node_cmd::run_nodes(&conn, output).await,
        Command::Whoami { conn, output } => access_cmd::whoami(&conn, output).await,
        Command::Token { conn, command } => access_cmd::run_token(&conn, command).await,
        Command::App { conn, command } => app_cmd::run_app(&conn, command).await,
        Command::Idp { conn, command } => access_cmd::run_idp(&conn, command).await,
        Command::Plan { conn, command } => app_cmd::run_plan(&conn, command).await,
        Command::SigningKey { conn, command } => app_cmd::run_signing_key(&conn, command).await,
        Command::Audit {
            conn,
            api,
            user,
            since,
            limit,
            output,
        } => {
            let args = access_cmd::AuditArgs {
                api,
                user,
                since,
                limit,
            };
            access_cmd::audit(&conn, args, output).await
        }
        Command::Contract {
            command:
                cli::ContractCommand::Validate {
                    source,
                    allow_private,
                    output,
                },
        } => {
            if asyncgate::contract_cmd::validate(&source, allow_private, output).await? {
                Ok(())
            } else {
                Err(anyhow::anyhow!("the contract is invalid"))
            }
        }
        Command::Connect {
            url,
            api_key,
            token,
            console,
        } => {
            let mut headers = Vec::new();
            if let Some(k) = api_key {
                headers.push(("api-key".to_string(), k));
            }
            if let Some(t) = token {
                headers.push(("authorization".to_string(), format!("Bearer {t}")));
            }
            let options = asyncgate::console::ConsoleOptions {
                url,
                headers,
                linger: std::time::Duration::from_secs_f64(console.linger.max(0.0)),
                json: console.output == cli::Output::Json,
            };
            cli::run_console(&options).await
        }
    }
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// Run a sample backend until Ctrl-C or SIGTERM.
async fn until_signal<F, Fut>(server: F, listener: TcpListener) -> anyhow::Result<()>
where
    F: FnOnce(TcpListener, tokio::sync::watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server(listener, stop_rx));
    asyncgate::platform_signal().await;
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}

fn serve_endpoints_path(platform: &Platform) -> String {
    platform
        .endpoints
        .admin_token_file
        .parent()
        .map(|d| {
            d.join(asyncgate::endpoints::FILE_NAME)
                .display()
                .to_string()
        })
        .unwrap_or_default()
}
