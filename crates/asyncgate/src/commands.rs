//! What the management commands (`asyncgate api ...`, `asyncgate env`) send and print:
//! the server's request types go out and its view types come back, so the CLI never
//! indexes JSON by name. One function per command; text renderers escape anything a
//! terminal would act on.

use crate::cli::{
    bundle_files, run_console, test_target, ApiCommand, ConnArgs, KeyCommand, Output,
    VersionCommand,
};
use crate::client::{segment, Client};
use crate::console::ConsoleOptions;
use anyhow::{anyhow, Context};
use asyncgate_control::changes::Changes;
use asyncgate_control::contracts::{ReimportRequest, ReimportResult};
use asyncgate_control::deployments::{DeployRequest, HistoryEntry, PromoteRequest, RevisionDiff};
use asyncgate_control::environments::EnvironmentView;
use asyncgate_control::keys::KeyCreated;
use asyncgate_control::lifecycle::{LifecycleRequest, LifecycleView};
use asyncgate_control::versions::{VersionRequest, VersionView};
use asyncgate_control::views::{ApiView, DeploymentView, KeyView, RevisionView};
use asyncgate_core::{AccessMode, LifecycleAction};
use asyncgate_store::LifecycleEvent;
use serde::Serialize;
use std::time::Duration;

/// Print `value` as JSON, or as the text `text` makes of it.
pub fn print<T: Serialize>(output: Output, value: &T, text: impl FnOnce(&T) -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => print!("{}", text(value)),
    }
}

/// `s` safe for a terminal: control characters (escape sequences among them) shown
/// escaped rather than acted on.
pub fn shown(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        shown(&items.join(", "))
    }
}

/// Text view of an API, as `api show` prints it.
pub fn api_text(v: &ApiView) -> String {
    let mut s = format!(
        "{} ({})\n  id          {}\n  version     {}\n  base path   {}\n  target      {}\n  lifecycle   {}\n",
        shown(&v.name),
        shown(&v.identifier),
        v.id,
        shown(&v.version),
        shown(&v.base_path),
        shown(&v.target),
        v.lifecycle,
    );
    for c in &v.channels {
        s.push_str(&format!(
            "  channel     {}  sends: {}  receives: {}\n",
            shown(&c.address),
            joined(&c.client_to_server),
            joined(&c.server_to_client),
        ));
    }
    if v.deployments.is_empty() {
        s.push_str("  not deployed\n");
    }
    for d in &v.deployments {
        s.push_str(&deployment_text(d));
    }
    s
}

fn deployment_text(d: &DeploymentView) -> String {
    let own = if d.own_values.is_empty() {
        String::new()
    } else {
        format!("; own values: {}", joined(&d.own_values))
    };
    format!(
        "  {:<11} revision {} ({})  {}  -> {}{own}\n",
        shown(&d.environment),
        d.revision,
        d.access_mode,
        shown(&d.url),
        shown(&d.target),
    )
}

fn access(text: &str) -> anyhow::Result<AccessMode> {
    text.parse().map_err(|e: String| anyhow!(e))
}

pub async fn run_api(conn: &ConnArgs, command: ApiCommand) -> anyhow::Result<()> {
    let client = Client::discover(conn)?;
    let c = &client;
    match command {
        ApiCommand::Import {
            url,
            file,
            dir,
            root,
            project,
            overrides,
            output,
        } => {
            let mut body = overrides.import_request();
            if let Some(dir) = dir {
                body.files = Some(bundle_files(&dir)?);
                body.root = root;
            }
            body.url = url;
            if let Some(file) = file {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                body.contract = Some(text);
            }
            body.project = project;
            let v: ApiView = c.post_as("/apis/import", &body).await?;
            print(output, &v, |v| {
                format!("created API proxy\n{}", api_text(v))
            });
        }
        ApiCommand::Reimport {
            api,
            url,
            file,
            output,
        } => reimport(c, &api, url, file, output).await?,
        ApiCommand::Export {
            api,
            consumer,
            format,
        } => {
            let path = if consumer {
                format!(
                    "/portal/apis/{}/contract?format={}",
                    segment(&api),
                    segment(&format)
                )
            } else {
                format!("{}/contract", api_path(&api))
            };
            let text = c.get_text(&path).await?;
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
        ApiCommand::List { output } => {
            let v: Vec<ApiView> = c.get_as("/apis").await?;
            print(output, &v, |v| {
                let mut s: String = v
                    .iter()
                    .map(|a| {
                        format!(
                            "{:<20} {:<10} {:<12} {}\n",
                            shown(&a.identifier),
                            shown(&a.version),
                            a.lifecycle,
                            shown(&a.base_path)
                        )
                    })
                    .collect();
                if s.is_empty() {
                    s.push_str("no API proxies yet: `asyncgate api import --file CONTRACT`\n");
                }
                s
            });
        }
        ApiCommand::Show { api, output } => {
            let v: ApiView = c.get_as(&api_path(&api)).await?;
            print(output, &v, api_text);
        }
        ApiCommand::Update {
            api,
            overrides,
            limits,
            security,
            policies,
            output,
        } => {
            let body = overrides.update_request(&limits, &security, &policies)?;
            let v: ApiView = c.patch_as(&api_path(&api), &body).await?;
            print(output, &v, |v| {
                format!("updated (deploy to apply)\n{}", api_text(v))
            });
        }
        ApiCommand::Delete { api } => {
            c.delete(&api_path(&api)).await?;
            println!("deleted {}", shown(&api));
        }
        ApiCommand::Deploy {
            api,
            env,
            access: mode,
            revision,
            values,
            output,
        } => {
            let body = DeployRequest {
                environment: env,
                access_mode: access(&mode)?,
                revision,
                target: values.target.clone(),
                backend_headers: values.limits.backend_headers()?,
                limits: values.limits.patch(),
                reset_values: values.reset_values,
            };
            let v: DeploymentView = c
                .post_as(&format!("{}/deployments", api_path(&api)), &body)
                .await?;
            print(output, &v, |d| format!("deployed\n{}", deployment_text(d)));
        }
        ApiCommand::Undeploy { api, env } => {
            c.delete(&format!("{}/deployments/{}", api_path(&api), segment(&env)))
                .await?;
            println!("undeployed {} from {}", shown(&api), shown(&env));
        }
        ApiCommand::Promote {
            api,
            from,
            to,
            access: mode,
            values,
            output,
        } => {
            let body = PromoteRequest {
                from,
                to,
                access_mode: mode.as_deref().map(access).transpose()?,
                target: values.target.clone(),
                backend_headers: values.limits.backend_headers()?,
                limits: values.limits.patch(),
                reset_values: values.reset_values,
            };
            let v: DeploymentView = c
                .post_as(&format!("{}/promote", api_path(&api)), &body)
                .await?;
            print(output, &v, |d| format!("promoted\n{}", deployment_text(d)));
        }
        ApiCommand::Revisions { api, output } => {
            let v: Vec<RevisionView> = c.get_as(&format!("{}/revisions", api_path(&api))).await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|r| {
                        format!(
                            "revision {:<4} {}  {}  {}  {}  deployed to: {}\n",
                            r.number,
                            r.created_at,
                            shown(&r.created_by),
                            shown(&r.base_path),
                            shown(&r.target),
                            joined(&r.deployed_to)
                        )
                    })
                    .collect()
            });
        }
        ApiCommand::History { api, env, output } => {
            let query = env
                .map(|e| format!("?env={}", segment(&e)))
                .unwrap_or_default();
            let v: Vec<HistoryEntry> = c
                .get_as(&format!("{}/history{query}", api_path(&api)))
                .await?;
            print(output, &v, |v| v.iter().map(history_text).collect());
        }
        ApiCommand::Diff {
            api,
            from,
            to,
            output,
        } => {
            let v: RevisionDiff = c
                .get_as(&format!("{}/diff?from={from}&to={to}", api_path(&api)))
                .await?;
            print(output, &v, |d| {
                format!(
                    "revision {} -> {}\n{}",
                    d.from,
                    d.to,
                    changes_text(&d.changes)
                )
            });
        }
        ApiCommand::Lifecycle {
            api,
            action,
            display_name,
            note,
            output,
        } => lifecycle(c, &api, action, display_name, note, output).await?,
        ApiCommand::Connections {
            words,
            env,
            code,
            reason,
            text,
            binary_file,
            output,
        } => {
            let asked = ConnectionsAsked {
                env,
                code,
                reason,
                text,
                binary_file,
            };
            connections(c, &words, asked, output).await?
        }
        ApiCommand::Version { command } => version(c, command).await?,
        ApiCommand::Key { command } => key(c, command).await?,
        ApiCommand::Test {
            api,
            env,
            channel,
            console,
        } => {
            let (url, token) = test_target(c, &api, &env, channel.as_deref()).await?;
            let options = ConsoleOptions {
                url,
                headers: vec![("authorization".into(), format!("Bearer {token}"))],
                linger: Duration::from_secs_f64(console.linger.max(0.0)),
                json: console.output == Output::Json,
            };
            run_console(&options).await?;
        }
    }
    Ok(())
}

fn api_path(api: &str) -> String {
    format!("/apis/{}", segment(api))
}

async fn reimport(
    c: &Client,
    api: &str,
    url: Option<String>,
    file: Option<std::path::PathBuf>,
    output: Output,
) -> anyhow::Result<()> {
    let contract = match (&url, file) {
        (Some(_), _) => None,
        (None, Some(file)) => Some(
            std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        (None, None) => unreachable!("clap requires --url or --file"),
    };
    let body = ReimportRequest {
        url,
        contract,
        ..Default::default()
    };
    let v: ReimportResult = c
        .put_as(&format!("{}/contract", api_path(api)), &body)
        .await?;
    print(output, &v, |v| {
        let mut s: String = v
            .diff
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{:<8} {:<9} {}{}\n",
                    c.kind,
                    c.what,
                    shown(&c.path),
                    if c.breaking { "  (breaking)" } else { "" }
                )
            })
            .collect();
        if s.is_empty() {
            s.push_str("no changes to channels, operations or messages\n");
        } else if v.diff.breaking {
            s.push_str("this version has breaking changes for existing clients\n");
        }
        s.push_str("deploy to make it live\n");
        s
    });
    Ok(())
}

/// The options of `api connections`.
struct ConnectionsAsked {
    env: Option<String>,
    code: Option<u16>,
    reason: Option<String>,
    text: Option<String>,
    binary_file: Option<std::path::PathBuf>,
}

async fn connections(
    c: &Client,
    words: &[String],
    asked: ConnectionsAsked,
    output: Output,
) -> anyhow::Result<()> {
    use asyncgate_control::connections::{CommandAccepted, ConnectionView, MessageRequest};
    let id_path = |api: &str, id: &str| format!("{}/connections/{}", api_path(api), segment(id));
    match words {
        [api] => {
            let mut path = format!("{}/connections", api_path(api));
            if let Some(env) = &asked.env {
                path.push_str(&format!("?env={}", segment(env)));
            }
            let v: Vec<ConnectionView> = c.get_as(&path).await?;
            print(output, &v, |v| {
                if v.is_empty() {
                    return "no live connections\n".into();
                }
                v.iter()
                    .map(|c| {
                        format!(
                            "{}  {} {}  {}  {}  {}  since {}  in {} msg / {} B  out {} msg / {} B{}\n",
                            c.id,
                            c.environment,
                            c.listener,
                            c.peer,
                            shown(&c.path),
                            shown(c.application.as_deref().unwrap_or(&c.caller)),
                            c.started,
                            c.messages_in,
                            c.bytes_in,
                            c.messages_out,
                            c.bytes_out,
                            match c.compression.as_str() {
                                "none" => String::new(),
                                shape => format!("  compressed ({shape})"),
                            }
                        )
                    })
                    .collect()
            });
        }
        [verb, api, id] if verb == "close" => {
            let mut path = format!("{}?code={}", id_path(api, id), asked.code.unwrap_or(1000));
            if let Some(reason) = &asked.reason {
                path.push_str(&format!("&reason={}", segment(reason)));
            }
            let v: CommandAccepted = c.delete_as(&path).await?;
            print(output, &v, |v| format!("closing {}\n", v.id));
        }
        [verb, api, id] if verb == "send" => {
            let body = match (asked.text, asked.binary_file) {
                (Some(text), None) => MessageRequest {
                    text: Some(text),
                    binary: None,
                },
                (None, Some(file)) => {
                    use base64::Engine as _;
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    MessageRequest {
                        text: None,
                        binary: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    }
                }
                _ => anyhow::bail!("send takes --text TEXT or --binary-file FILE"),
            };
            let path = format!("{}/messages", id_path(api, id));
            let v: CommandAccepted = c.post_as(&path, &body).await?;
            print(output, &v, |v| format!("sent to {}\n", v.id));
        }
        _ => anyhow::bail!(
            "use `api connections API`, `api connections close API ID` or `api connections send API ID --text TEXT`"
        ),
    }
    Ok(())
}

async fn lifecycle(
    c: &Client,
    api: &str,
    action: Option<String>,
    display_name: Option<String>,
    note: Option<String>,
    output: Output,
) -> anyhow::Result<()> {
    let path = format!("{}/lifecycle", api_path(api));
    match action {
        Some(history) if history == "history" => {
            let v: Vec<LifecycleEvent> = c.get_as(&format!("{path}/history")).await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|e| {
                        format!(
                            "{}  {} -> {}  by {}{}\n",
                            e.when,
                            e.from,
                            e.to,
                            shown(&e.who),
                            if e.note.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", shown(&e.note))
                            }
                        )
                    })
                    .collect()
            });
        }
        None => {
            let v: LifecycleView = c.get_as(&path).await?;
            print(output, &v, |v| {
                format!("{}\nallowed: {}\n", v.state, joined(&v.allowed_actions))
            });
        }
        Some(action) => {
            let action: LifecycleAction = action.parse().map_err(|e: String| anyhow!(e))?;
            let body = LifecycleRequest {
                action,
                display_name,
                note,
            };
            let v: ApiView = c.post_as(&path, &body).await?;
            print(output, &v, |v| {
                format!("{} is now {}\n", shown(&v.name), v.lifecycle)
            });
        }
    }
    Ok(())
}

async fn version(c: &Client, command: VersionCommand) -> anyhow::Result<()> {
    match command {
        VersionCommand::Create {
            api,
            version,
            from_revision,
            base_path,
            output,
        } => {
            let body = VersionRequest {
                version,
                from_revision,
                base_path,
            };
            let v: ApiView = c
                .post_as(&format!("{}/versions", api_path(&api)), &body)
                .await?;
            print(output, &v, |v| {
                format!(
                    "created {} {} ({}) at {}\n",
                    shown(&v.name),
                    shown(&v.version),
                    v.id,
                    shown(&v.base_path)
                )
            });
        }
        VersionCommand::List { api, output } => {
            let v: Vec<VersionView> = c.get_as(&format!("{}/versions", api_path(&api))).await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|x| {
                        format!(
                            "{:<12} {:<13} {}  {}  deployed to: {}\n",
                            shown(&x.version),
                            x.lifecycle,
                            x.id,
                            shown(&x.base_path),
                            joined(&x.deployed_to)
                        )
                    })
                    .collect()
            });
        }
    }
    Ok(())
}

fn history_text(e: &HistoryEntry) -> String {
    let what = match (e.previous_revision, e.revision) {
        (Some(p), Some(r)) => format!("revision {p} -> {r}"),
        (None, Some(r)) => format!("revision {r}"),
        (Some(p), None) => format!("stopped (was revision {p})"),
        (None, None) => "nothing".to_string(),
    };
    let mut out = format!(
        "{}  {:<11} {:<8} {}{}  by {}\n",
        e.when,
        shown(&e.environment),
        e.action,
        what,
        e.access_mode
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        shown(&e.who)
    );
    if !e.own_values.is_empty() {
        out.push_str(&format!("    own values: {}\n", joined(&e.own_values)));
    }
    if let Some(c) = &e.changes {
        for line in changes_text(c).lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

fn changes_text(c: &Changes) -> String {
    let mut out = String::new();
    for ch in &c.contract.changes {
        out.push_str(&format!(
            "{} {} {}{}\n",
            ch.kind,
            ch.what,
            shown(&ch.path),
            if ch.breaking { " (breaking)" } else { "" }
        ));
    }
    let value = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| shown(&v.to_string()))
            .unwrap_or_else(|| "(unset)".into())
    };
    for v in &c.values {
        out.push_str(&format!(
            "{}: {} -> {}\n",
            shown(&v.field),
            value(&v.from),
            value(&v.to)
        ));
    }
    if out.is_empty() {
        out.push_str("no changes\n");
    }
    out
}

async fn key(c: &Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { api, output } => {
            let v: KeyCreated = c
                .post_as(&format!("{}/keys", api_path(&api)), &serde_json::json!({}))
                .await?;
            print(output, &v, |v| {
                format!(
                    "API key (shown only now; send it in the `api-key` header):\n{}\n",
                    v.key
                )
            });
        }
        KeyCommand::List { api, output } => {
            let v: Vec<KeyView> = c.get_as(&format!("{}/keys", api_path(&api))).await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|k| {
                        format!(
                            "{}  {}…  created {}{}\n",
                            k.id,
                            k.hint,
                            k.created_at,
                            k.revoked_at
                                .as_deref()
                                .map(|r| format!("  revoked {r}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect()
            });
        }
        KeyCommand::Revoke { api, key_id } => {
            c.delete(&format!("{}/keys/{}", api_path(&api), segment(&key_id)))
                .await?;
            println!("revoked {}", shown(&key_id));
        }
    }
    Ok(())
}

pub async fn run_env(conn: &ConnArgs, output: Output) -> anyhow::Result<()> {
    let client = Client::discover(conn)?;
    let v: Vec<EnvironmentView> = client.get_as("/environments").await?;
    print(output, &v, |v| {
        v.iter()
            .map(|e| {
                format!(
                    "{:<12} external {}  internal {}\n",
                    shown(&e.name),
                    e.external,
                    e.internal
                )
            })
            .collect()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_characters_are_shown_escaped() {
        assert_eq!(shown("plain é"), "plain é");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("x\ny"), "x\\ny");
    }
}
