//! The consumer commands: `app` (applications, subscriptions, keys), `plan` and
//! `signing-key`. The server's request and view types go out and come back.

use crate::cli::{AppCommand, AppKeyCommand, ConnArgs, PlanCommand, SigningKeyCommand};
use crate::client::{segment, Client};
use crate::commands::{print, shown};
use asyncgate_control::applications::{
    AppCreated, AppKeyCreated, AppKeyRequest, AppKeyView, AppRequest, AppUpdate, AppView,
    PlanRequest, PlanView, SubscribeRequest, SubscriptionView,
};
use asyncgate_control::signing::Rotated;

fn app_path(app: &str) -> String {
    format!("/applications/{}", segment(app))
}

fn created_text(v: &AppCreated) -> String {
    format!(
        "application {} ({})\nclient id:     {}\nclient secret: {}\n(the secret is shown once: keep it now)\n",
        shown(&v.name),
        v.id,
        v.client_id,
        v.client_secret
    )
}

fn key_text(k: &AppKeyView) -> String {
    format!(
        "{:<22} {:<12} {:<10} {}{}\n",
        k.id,
        shown(&k.environment),
        k.hint,
        k.created_at,
        if k.revoked { " (revoked)" } else { "" }
    )
}

fn app_text(a: &AppView) -> String {
    let mut s = format!(
        "{} ({}){}\nclient id: {}\n",
        shown(&a.name),
        a.id,
        if a.blocked { " blocked" } else { "" },
        a.client_id
    );
    for sub in &a.subscriptions {
        s.push_str(&format!(
            "subscribed: {} ({}) on {}\n",
            shown(&sub.api_name),
            sub.api_id,
            shown(&sub.plan)
        ));
    }
    for k in &a.keys {
        s.push_str(&format!("key: {}", key_text(k)));
    }
    s
}

pub async fn run_app(conn: &ConnArgs, command: AppCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    match command {
        AppCommand::Create { name, output } => {
            let v: AppCreated = c.post_as("/applications", &AppRequest { name }).await?;
            print(output, &v, created_text);
        }
        AppCommand::List { output } => {
            let v: Vec<AppView> = c.get_as("/applications").await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|a| {
                        format!(
                            "{:<22} {:<22} {} ({} subscriptions)\n",
                            a.id,
                            a.client_id,
                            shown(&a.name),
                            a.subscriptions.len()
                        )
                    })
                    .collect()
            });
        }
        AppCommand::Show { app, output } => {
            let v: AppView = c.get_as(&app_path(&app)).await?;
            print(output, &v, app_text);
        }
        AppCommand::Subscribe {
            app,
            api,
            plan,
            output,
        } => {
            let req = SubscribeRequest {
                api,
                plan: Some(plan),
            };
            let v: SubscriptionView = c
                .post_as(&format!("{}/subscriptions", app_path(&app)), &req)
                .await?;
            print(output, &v, |v| {
                format!(
                    "subscribed to {} on {}\n",
                    shown(&v.api_name),
                    shown(&v.plan)
                )
            });
        }
        AppCommand::Unsubscribe { app, api } => {
            c.delete(&format!(
                "{}/subscriptions/{}",
                app_path(&app),
                segment(&api)
            ))
            .await?;
            println!("unsubscribed {} from {}", shown(&app), shown(&api));
        }
        AppCommand::Secret { app, output } => {
            let v: AppCreated = c
                .post_as(
                    &format!("{}/secret", app_path(&app)),
                    &serde_json::json!({}),
                )
                .await?;
            print(output, &v, created_text);
        }
        AppCommand::Block { app } => set_blocked(&c, &app, true).await?,
        AppCommand::Unblock { app } => set_blocked(&c, &app, false).await?,
        AppCommand::Delete { app } => {
            c.delete(&app_path(&app)).await?;
            println!("deleted {}", shown(&app));
        }
        AppCommand::Key { command } => run_key(&c, command).await?,
    }
    Ok(())
}

async fn set_blocked(c: &Client, app: &str, blocked: bool) -> anyhow::Result<()> {
    let v: AppView = c
        .patch_as(
            &app_path(app),
            &AppUpdate {
                blocked: Some(blocked),
            },
        )
        .await?;
    println!(
        "{} is {}",
        shown(&v.name),
        if v.blocked { "blocked" } else { "unblocked" }
    );
    Ok(())
}

async fn run_key(c: &Client, command: AppKeyCommand) -> anyhow::Result<()> {
    let created_text = |k: &AppKeyCreated| {
        format!(
            "{}\n(id {}, {}; shown once: keep it now)\n",
            k.key,
            k.id,
            shown(&k.environment)
        )
    };
    match command {
        AppKeyCommand::Create {
            app,
            environment,
            output,
        } => {
            let v: AppKeyCreated = c
                .post_as(
                    &format!("{}/keys", app_path(&app)),
                    &AppKeyRequest { environment },
                )
                .await?;
            print(output, &v, created_text);
        }
        AppKeyCommand::List { app, output } => {
            let v: AppView = c.get_as(&app_path(&app)).await?;
            print(output, &v.keys, |keys| keys.iter().map(key_text).collect());
        }
        AppKeyCommand::Revoke { app, key_id } => {
            c.delete(&format!("{}/keys/{}", app_path(&app), segment(&key_id)))
                .await?;
            println!("revoked {}", shown(&key_id));
        }
        AppKeyCommand::Regenerate {
            app,
            key_id,
            output,
        } => {
            let v: AppKeyCreated = c
                .post_as(
                    &format!("{}/keys/{}/regenerate", app_path(&app), segment(&key_id)),
                    &serde_json::json!({}),
                )
                .await?;
            print(output, &v, created_text);
        }
    }
    Ok(())
}

fn plan_text(p: &PlanView) -> String {
    let n = |v: u64| {
        if v == 0 {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    format!(
        "{:<14} connections {:<10} messages/min {:<10} bytes/min {:<10} over: {}\n",
        shown(&p.name),
        n(p.limits.max_connections),
        n(p.limits.messages_per_minute),
        n(p.limits.bytes_per_minute),
        p.limits.on_excess.as_str()
    )
}

pub async fn run_plan(conn: &ConnArgs, command: PlanCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    match command {
        PlanCommand::List { output } => {
            let v: Vec<PlanView> = c.get_as("/plans").await?;
            print(output, &v, |v| v.iter().map(plan_text).collect());
        }
        PlanCommand::Create {
            name,
            max_connections,
            messages_per_minute,
            bytes_per_minute,
            on_excess,
            output,
        } => {
            let req = PlanRequest {
                name,
                max_connections,
                messages_per_minute,
                bytes_per_minute,
                on_excess,
            };
            let v: PlanView = c.post_as("/plans", &req).await?;
            print(output, &v, plan_text);
        }
    }
    Ok(())
}

pub async fn run_signing_key(conn: &ConnArgs, command: SigningKeyCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    match command {
        SigningKeyCommand::Rotate => {
            let v: Rotated = c
                .post_as("/signing-keys/rotate", &serde_json::json!({}))
                .await?;
            println!("new signing key {}; tokens signed with the previous one stay valid until they expire", v.kid);
        }
    }
    Ok(())
}
