//! `asyncgate node token ...` and `asyncgate nodes`: the operator's view of the gateway
//! nodes, through the management API (the server's own view types).

use crate::cli::{ConnArgs, NodeCommand, NodeTokenCommand, Output};
use crate::client::{segment, Client};
use crate::commands::{print, shown};
use asyncgate_control::nodes::{NodeTokenCreated, NodeTokenRequest, NodeTokenView, NodeView};

pub async fn run_node(conn: &ConnArgs, command: NodeCommand) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    let NodeCommand::Token { command } = command;
    match command {
        NodeTokenCommand::Create {
            environment,
            name,
            output,
        } => {
            let v: NodeTokenCreated = c
                .post_as("/nodes/tokens", &NodeTokenRequest { environment, name })
                .await?;
            print(output, &v, |v| {
                format!(
                    "{}\n(id {}, for {}; shown once: keep it now)\n",
                    v.token,
                    v.id,
                    shown(&v.environment)
                )
            });
        }
        NodeTokenCommand::List { output } => {
            let v: Vec<NodeTokenView> = c.get_as("/nodes/tokens").await?;
            print(output, &v, |v| {
                v.iter()
                    .map(|t| {
                        format!(
                            "{:<22} {:<10} {:<12} {}{}\n",
                            t.id,
                            t.hint,
                            shown(&t.environment),
                            shown(&t.name),
                            if t.revoked_at.is_some() {
                                " (revoked)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect()
            });
        }
        NodeTokenCommand::Revoke { id } => {
            c.delete(&format!("/nodes/tokens/{}", segment(&id))).await?;
            println!("revoked {}", shown(&id));
        }
    }
    Ok(())
}

pub async fn run_nodes(conn: &ConnArgs, output: Output) -> anyhow::Result<()> {
    let c = Client::discover(conn)?;
    let v: Vec<NodeView> = c.get_as("/nodes").await?;
    print(output, &v, |v| {
        if v.is_empty() {
            return "no gateway node has called yet\n".into();
        }
        v.iter()
            .map(|n| {
                format!(
                    "{:<24} {:<12} {:<9} version {}{} · {} connections · last contact {}s ago ({})\n",
                    shown(&n.id),
                    shown(&n.environment),
                    shown(&n.state),
                    n.applied_version,
                    if n.up_to_date { "" } else { " (behind)" },
                    n.connections,
                    n.seconds_since_contact,
                    shown(&n.hostname),
                )
            })
            .collect()
    });
    Ok(())
}
