//! The commands of who may do what: `org`, `user`, `login`, `logout`, `whoami`, `token`
//! and `audit`. The server's request and view types go out and come back.

use crate::cli::{ConnArgs, IdpCommand, OrgCommand, Output, TokenCommand, UserCommand};
use crate::client::{segment, Client, SESSION_FILE};
use crate::commands::{print, shown};
use anyhow::{anyhow, Context};
use asyncgate_control::orgs::{OrgRequest, OrgSettings, OrgView};
use asyncgate_control::providers::{ProviderRequest, ProviderView};
use asyncgate_control::sessions::{
    LoginRequest, Me, Session, TokenCreated, TokenRequest, TokenView,
};
use asyncgate_control::users::{AddUserRequest, UpdateUserRequest, UserView};
use asyncgate_store::AuditEntry;
use tokio::io::AsyncBufReadExt;

/// The first line of standard input, without its line break (a password).
pub async fn read_secret_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .with_context(|| format!("reading the {what} from standard input"))?;
    let secret = line.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(anyhow!("no {what} on standard input"));
    }
    Ok(secret)
}

pub async fn run_org(conn: &ConnArgs, command: OrgCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    match command {
        OrgCommand::Create {
            name,
            handle,
            admin_email,
            admin_password_stdin,
            output,
        } => {
            let admin_password = if admin_password_stdin {
                Some(read_secret_line("admin password").await?)
            } else {
                None
            };
            let req = OrgRequest {
                name,
                handle,
                admin_email,
                admin_password,
            };
            let v: OrgView = c.post_as("/organizations", &req).await?;
            print(output, &v, |v| {
                format!(
                    "created organization {} (handle {}, id {}); default project {}\n",
                    shown(&v.name),
                    v.handle,
                    v.id,
                    v.default_project
                )
            });
        }
        OrgCommand::List { output } => {
            let v: Vec<OrgView> = c.get_as("/organizations").await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|o| format!("{:<24} {:<24} {}\n", o.handle, o.id, shown(&o.name)))
                    .collect()
            });
        }
        OrgCommand::Settings {
            subscriber_signup,
            output,
        } => {
            let v: OrgSettings = match subscriber_signup {
                Some(_) => {
                    let req = OrgSettings { subscriber_signup };
                    c.patch_as("/organization/settings", &req).await?
                }
                None => c.get_as("/organization/settings").await?,
            };
            print(output, &v, |v| {
                format!(
                    "subscriber sign-up in the developer portal: {}\n",
                    if v.subscriber_signup.unwrap_or(false) {
                        "on"
                    } else {
                        "off"
                    }
                )
            });
        }
    }
    Ok(())
}

pub async fn run_user(conn: &ConnArgs, command: UserCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    let user_text = |u: &UserView| {
        format!(
            "{:<32} {:<11} {}{}\n",
            shown(&u.email),
            u.role.as_str(),
            u.id,
            if u.blocked { " (blocked)" } else { "" }
        )
    };
    match command {
        UserCommand::Add {
            email,
            role,
            password_stdin,
            output,
        } => {
            let password = if password_stdin {
                Some(read_secret_line("password").await?)
            } else {
                None
            };
            let v: UserView = c
                .post_as(
                    "/users",
                    &AddUserRequest {
                        email,
                        role,
                        password,
                    },
                )
                .await?;
            print(output, &v, |v| user_text(v));
        }
        UserCommand::List { output } => {
            let v: Vec<UserView> = c.get_as("/users").await?;
            print(output, &v, |v| v.iter().map(user_text).collect());
        }
        UserCommand::Role { email, role } => {
            let req = UpdateUserRequest {
                role: Some(role),
                ..Default::default()
            };
            let v: UserView = c
                .patch_as(&format!("/users/{}", segment(&email)), &req)
                .await?;
            print!("{}", user_text(&v));
        }
        UserCommand::Block { email } => block(&c, &email, true).await?,
        UserCommand::Unblock { email } => block(&c, &email, false).await?,
        UserCommand::Remove { email } => {
            c.delete(&format!("/users/{}", segment(&email))).await?;
            println!("removed {} from the organization", shown(&email));
        }
    }
    Ok(())
}

async fn block(c: &Client, email: &str, blocked: bool) -> anyhow::Result<()> {
    let req = UpdateUserRequest {
        blocked: Some(blocked),
        ..Default::default()
    };
    let v: UserView = c
        .patch_as(&format!("/users/{}", segment(email)), &req)
        .await?;
    println!(
        "{} is {}",
        shown(&v.email),
        if v.blocked { "blocked" } else { "unblocked" }
    );
    Ok(())
}

pub async fn login(conn: &ConnArgs, email: String, output: Output) -> anyhow::Result<()> {
    let password = read_secret_line("password").await?;
    // Signing in needs no token: an anonymous client.
    let c = Client::new(&Client::server(conn)?, "");
    let session: Session = c
        .post_as("/login", &LoginRequest { email, password })
        .await?;
    crate::platform::write_private(&conn.data_dir.join(SESSION_FILE), &session.token)?;
    print(output, &session.me, me_text);
    Ok(())
}

pub async fn logout(conn: &ConnArgs) -> anyhow::Result<()> {
    let path = conn.data_dir.join(SESSION_FILE);
    if !path.exists() {
        println!("not signed in");
        return Ok(());
    }
    let c = Client::discover(conn)?;
    c.post("/logout", &serde_json::json!({})).await?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    println!("signed out");
    Ok(())
}

fn me_text(me: &Me) -> String {
    let mut s = format!(
        "signed in as {}\n",
        shown(me.email.as_deref().unwrap_or(&me.id))
    );
    for m in &me.organizations {
        s.push_str(&format!("  {:<24} {}\n", m.handle, m.role.title()));
    }
    s
}

pub async fn whoami(conn: &ConnArgs, output: Output) -> anyhow::Result<()> {
    let me: Me = Client::discover(conn)?.get_as("/me").await?;
    print(output, &me, me_text);
    Ok(())
}

pub async fn run_token(conn: &ConnArgs, command: TokenCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    match command {
        TokenCommand::Create {
            name,
            expires_in_days,
            output,
        } => {
            let v: TokenCreated = c
                .post_as(
                    "/tokens",
                    &TokenRequest {
                        name,
                        expires_in_days,
                    },
                )
                .await?;
            print(output, &v, |v| {
                format!("{}\n(id {}; shown once: keep it now)\n", v.token, v.id)
            });
        }
        TokenCommand::List { output } => {
            let v: Vec<TokenView> = c.get_as("/tokens").await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|t| {
                        format!(
                            "{:<22} {:<10} {}{}\n",
                            t.id,
                            t.hint,
                            shown(&t.name),
                            if t.revoked { " (revoked)" } else { "" }
                        )
                    })
                    .collect()
            });
        }
        TokenCommand::Revoke { id } => {
            c.delete(&format!("/tokens/{}", segment(&id))).await?;
            println!("revoked {}", shown(&id));
        }
    }
    Ok(())
}

pub struct AuditArgs {
    pub api: Option<String>,
    pub user: Option<String>,
    pub since: Option<String>,
    pub limit: Option<u32>,
}

pub async fn audit(conn: &ConnArgs, args: AuditArgs, output: Output) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("api", args.api),
        ("user", args.user),
        ("since", args.since),
        ("limit", args.limit.map(|l| l.to_string())),
    ] {
        if let Some(v) = v {
            query.append_pair(k, &v);
        }
    }
    let query = query.finish();
    let path = if query.is_empty() {
        "/audit".to_string()
    } else {
        format!("/audit?{query}")
    };
    let v: Vec<AuditEntry> = c.get_as(&path).await?;
    print(output, &v, |v| {
        v.iter()
            .map(|e| {
                format!(
                    "{}  {:<28} {:<15} {:<18} {} {}\n",
                    e.at,
                    shown(&e.actor),
                    e.origin,
                    e.action,
                    shown(&e.subject),
                    shown(&e.detail)
                )
            })
            .collect()
    });
    Ok(())
}

pub async fn run_idp(conn: &ConnArgs, command: IdpCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    let text = |p: &ProviderView| {
        format!(
            "{:<20} {} issuer {} audience {} claim {} keys {}\n",
            p.id,
            shown(&p.name),
            shown(&p.issuer),
            shown(&p.audience),
            shown(&p.application_claim),
            shown(&p.key_ids.join(","))
        )
    };
    match command {
        IdpCommand::Add {
            name,
            issuer,
            jwks_url,
            audience,
            application_claim,
            output,
        } => {
            let req = ProviderRequest {
                name,
                issuer,
                jwks_url,
                audience,
                application_claim: Some(application_claim),
            };
            let v: ProviderView = c.post_as("/identity-providers", &req).await?;
            print(output, &v, |v| text(v));
        }
        IdpCommand::List { output } => {
            let v: Vec<ProviderView> = c.get_as("/identity-providers").await?;
            print(output, &v, |v| v.iter().map(text).collect());
        }
        IdpCommand::Remove { provider } => {
            c.delete(&format!("/identity-providers/{}", segment(&provider)))
                .await?;
            println!("removed {}", shown(&provider));
        }
    }
    Ok(())
}
