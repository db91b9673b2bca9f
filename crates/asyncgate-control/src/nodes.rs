//! Gateway nodes: the tokens they authenticate with (made by the operator, shown once,
//! stored hashed, each for one environment), the sync call by which a node reports what
//! it serves and receives its environment's snapshot whenever the version changes (a
//! long poll), and the list of nodes as last heard from.

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use asyncgate_core::credential::{generate_secret, hash_secret, new_id, unix_now};
use asyncgate_core::Role;
use asyncgate_core::Snapshot;
use asyncgate_store::DEFAULT_ORG_ID;
use asyncgate_store::{now, NodeRecord, NodeTokenRecord};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// Node tokens start with this.
pub const NODE_TOKEN_PREFIX: &str = "agn_";

/// Longest a sync call waits for a new version before answering 204.
pub const MAX_SYNC_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeTokenRequest {
    /// The environment nodes with this token serve.
    pub environment: String,
    /// A name to recognise the token by (default: the environment's).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTokenCreated {
    /// The token itself, shown only in this response.
    pub token: String,
    pub id: String,
    pub name: String,
    pub environment: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTokenView {
    pub id: String,
    pub name: String,
    pub environment: String,
    /// The token's first characters.
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// What a node says of itself at every sync call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeReport {
    /// The node's id (kept in its data folder).
    pub id: String,
    pub environment: String,
    pub hostname: String,
    /// The version it serves (0: none yet).
    pub applied_version: u64,
    pub connections: u64,
    /// `serving` or `draining`.
    pub state: String,
    /// Its listener URLs by kind (`external`, `internal`).
    #[serde(default)]
    pub listeners: BTreeMap<String, String>,
    /// Where it takes connection commands (its status listener's URL).
    #[serde(default)]
    pub command_url: Option<String>,
    /// The bearer secret it asks of connection commands (new at each start).
    #[serde(default)]
    pub command_secret: Option<String>,
}

/// A new version for a node: its environment's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSync {
    pub version: u64,
    #[schema(value_type = Object)]
    pub snapshot: Snapshot,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub id: String,
    pub environment: String,
    pub hostname: String,
    pub listeners: BTreeMap<String, String>,
    /// The version the node serves.
    pub applied_version: u64,
    /// The version the control plane that answered publishes.
    pub current_version: u64,
    /// Whether the node serves the current version.
    pub up_to_date: bool,
    pub connections: u64,
    /// `serving` or `draining`.
    pub state: String,
    /// The control plane the node last called.
    pub control_plane: String,
    pub first_seen: String,
    /// When the node last called (RFC 3339).
    pub last_contact: String,
    pub seconds_since_contact: u64,
}

#[derive(Debug, Deserialize)]
pub struct SyncQuery {
    /// Seconds to wait for a version other than the node's (default 25, at most 60).
    #[serde(default)]
    pub wait: Option<u64>,
}

/// The one rule of who manages gateway nodes and their tokens: the operator (admin
/// token), or an admin of the operator's own organization (the default one), since nodes
/// serve every organization.
pub fn may_manage_nodes(caller: &Caller) -> bool {
    match caller.role {
        None => true,
        Some(role) => role == Role::Admin && caller.org.id == DEFAULT_ORG_ID,
    }
}

fn operator_only(caller: &Caller, what: &str) -> ApiResult<()> {
    if may_manage_nodes(caller) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{what} takes the admin token or an admin of the platform's own organization: gateway nodes serve every organization"),
        ))
    }
}

#[utoipa::path(post, path = "/api/v1/nodes/tokens", tag = "nodes", request_body = NodeTokenRequest,
    responses((status = 201, body = NodeTokenCreated), (status = 400, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NodeTokenRequest>,
) -> ApiResult<(StatusCode, Json<NodeTokenCreated>)> {
    operator_only(&caller, "creating node tokens")?;
    if !state
        .config
        .environments
        .iter()
        .any(|e| e.name == req.environment)
    {
        return Err(ApiError::bad_request(format!(
            "there is no environment `{}` (environments: {})",
            req.environment,
            state
                .config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let name = match req.name {
        Some(n) => crate::fields::line(&n, "name", crate::fields::MAX_NAME)?,
        None => format!("{} nodes", req.environment),
    };
    let secret = generate_secret(NODE_TOKEN_PREFIX);
    let record = NodeTokenRecord {
        id: new_id("ntk_"),
        name,
        environment: req.environment,
        hash: hash_secret(&secret),
        hint: secret[..NODE_TOKEN_PREFIX.len() + 4].to_string(),
        created_at: now(),
        revoked_at: None,
    };
    state.store.insert_node_token(&record).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "node_token.create",
            &record.id,
            None,
            &record.environment,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NodeTokenCreated {
            token: secret,
            id: record.id,
            name: record.name,
            environment: record.environment,
            created_at: record.created_at,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/nodes/tokens", tag = "nodes",
    responses((status = 200, body = Vec<NodeTokenView>)), security(("admin" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<NodeTokenView>>> {
    operator_only(&caller, "listing node tokens")?;
    let tokens = state.store.node_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| NodeTokenView {
                id: t.id,
                name: t.name,
                environment: t.environment,
                hint: t.hint,
                created_at: t.created_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/nodes/tokens/{token}", tag = "nodes", params(("token" = String, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    operator_only(&caller, "revoking node tokens")?;
    if !state.store.revoke_node_token(&id).await? {
        return Err(ApiError::not_found(format!("no unrevoked node token {id}")));
    }
    state
        .store
        .audit(&caller.actor(), "node_token.revoke", &id, None, "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes",
    responses((status = 200, body = Vec<NodeView>)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<NodeView>>> {
    operator_only(&caller, "listing gateway nodes")?;
    let current = state.publisher.version();
    let now = unix_now() as i64;
    let nodes = state.store.nodes().await?;
    Ok(Json(
        nodes
            .into_iter()
            .map(|n| node_view(n, current, now))
            .collect(),
    ))
}

fn node_view(n: NodeRecord, current_version: u64, now: i64) -> NodeView {
    NodeView {
        listeners: serde_json::from_str(&n.listeners).unwrap_or_default(),
        up_to_date: n.applied_version == current_version,
        applied_version: n.applied_version,
        current_version,
        connections: n.connections,
        last_contact: time::OffsetDateTime::from_unix_timestamp(n.last_contact)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default(),
        seconds_since_contact: now.saturating_sub(n.last_contact).max(0) as u64,
        id: n.id,
        environment: n.environment,
        hostname: n.hostname,
        state: n.state,
        control_plane: n.control_plane,
        first_seen: n.first_seen,
    }
}

/// The node token presented as `Authorization: Bearer agn_...`, if valid.
async fn node_token(state: &AppState, headers: &HeaderMap) -> ApiResult<NodeTokenRecord> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(NODE_TOKEN_PREFIX));
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a gateway node authenticates with its node token: Authorization: Bearer agn_...",
        ));
    };
    state
        .store
        .node_token_by_hash(&hash_secret(presented))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the node token is unknown or revoked",
            )
        })
}

#[utoipa::path(post, path = "/api/v1/nodes/sync", tag = "nodes", request_body = NodeReport,
    params(("wait" = Option<u64>, Query, description = "Seconds to wait for a new version (default 25, at most 60)")),
    responses((status = 200, body = NodeSync, description = "A version other than the node's"),
        (status = 204, description = "Nothing new within the wait"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("node" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SyncQuery>,
    Body(report): Body<NodeReport>,
) -> ApiResult<Response> {
    let token = node_token(&state, &headers).await?;
    if token.environment != report.environment {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this node token is for the environment `{}`, not `{}`",
                token.environment, report.environment
            ),
        ));
    }
    let id_ok = !report.id.is_empty()
        && report.id.len() <= 64
        && report
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(ApiError::bad_request(
            "a node id is 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let seen = |applied_version: u64| NodeRecord {
        id: report.id.clone(),
        environment: report.environment.clone(),
        token_id: token.id.clone(),
        hostname: report.hostname.chars().take(255).collect(),
        listeners: serde_json::to_string(&report.listeners).unwrap_or_else(|_| "{}".into()),
        applied_version,
        connections: report.connections,
        state: if report.state == "draining" {
            "draining"
        } else {
            "serving"
        }
        .into(),
        control_plane: state.publisher.issuer().to_string(),
        command_url: report.command_url.clone().unwrap_or_default(),
        command_secret: report.command_secret.clone().unwrap_or_default(),
        first_seen: now(),
        last_contact: unix_now() as i64,
    };
    state.store.node_seen(&seen(report.applied_version)).await?;
    let wait = Duration::from_secs(query.wait.unwrap_or(25)).min(MAX_SYNC_WAIT);
    let mut updates = state.publisher.subscribe();
    let differs =
        |s: &std::sync::Arc<Snapshot>| s.version != report.applied_version && s.version > 0;
    let snapshot = match tokio::time::timeout(wait, updates.wait_for(differs)).await {
        Ok(Ok(s)) => s.clone(),
        // Nothing new within the wait, or the control plane is stopping.
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let sync = NodeSync {
        version: snapshot.version,
        snapshot: snapshot.for_environment(&report.environment),
    };
    Ok(Json(sync).into_response())
}

/// Nodes heard from longer ago than this are not asked about connections.
const COMMAND_FRESHNESS_SECONDS: i64 = 90;
/// Longest the control plane waits for one node's answer about connections.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// The nodes that take connection commands, as last heard from.
async fn commandable(state: &AppState) -> ApiResult<Vec<NodeRecord>> {
    let now = unix_now() as i64;
    Ok(state
        .store
        .nodes()
        .await?
        .into_iter()
        .filter(|n| {
            !n.command_url.is_empty()
                && !n.command_secret.is_empty()
                && now - n.last_contact <= COMMAND_FRESHNESS_SECONDS
        })
        .collect())
}

fn command_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(COMMAND_TIMEOUT)
        .build()
        .expect("an HTTP client with a timeout")
}

/// Live connections to an API on every gateway node (each tagged with its node); a node
/// that does not answer in time is left out (and logged).
pub async fn node_connections(
    state: &AppState,
    api_id: &str,
    environment: Option<&str>,
) -> ApiResult<Vec<crate::connections::ConnectionView>> {
    let client = command_client();
    let asks = commandable(state).await?.into_iter().map(|n| {
        let client = client.clone();
        async move {
            let mut url = format!(
                "{}/connections/{}",
                n.command_url.trim_end_matches('/'),
                crate::fields::path_segment(api_id)
            );
            if let Some(env) = environment {
                url.push_str(&format!("?env={}", crate::fields::path_segment(env)));
            }
            let answer = client
                .get(&url)
                .bearer_auth(&n.command_secret)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match answer {
                Ok(r) => match r.json::<Vec<crate::connections::ConnectionView>>().await {
                    Ok(mut list) => {
                        for c in &mut list {
                            c.node = Some(n.id.clone());
                        }
                        list
                    }
                    Err(e) => {
                        tracing::warn!(node = %n.id, error = %e, "a node's connection list is unreadable");
                        Vec::new()
                    }
                },
                Err(e) => {
                    tracing::warn!(node = %n.id, error = %e, "a node did not list its connections");
                    Vec::new()
                }
            }
        }
    });
    Ok(futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// What a node is asked to do to one of its connections.
pub enum NodeCommand<'a> {
    Close { code: u16, reason: &'a str },
    Send(&'a crate::dataplane::Outbound),
}

/// Hand a command to the node that holds connection `id` of the API; `NotFound` when no
/// node does.
pub async fn node_command(
    state: &AppState,
    api_id: &str,
    id: &str,
    command: NodeCommand<'_>,
) -> ApiResult<Result<(), crate::dataplane::CommandRefused>> {
    use crate::dataplane::CommandRefused;
    let client = command_client();
    for n in commandable(state).await? {
        let base = format!(
            "{}/connections/{}/{}",
            n.command_url.trim_end_matches('/'),
            crate::fields::path_segment(api_id),
            crate::fields::path_segment(id)
        );
        let request = match &command {
            NodeCommand::Close { code, reason } => client
                .delete(&base)
                .query(&[("code", code.to_string()), ("reason", reason.to_string())]),
            NodeCommand::Send(m) => client.post(format!("{base}/messages")).json(&NodeMessage {
                text: m.text,
                payload: base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &m.payload,
                ),
            }),
        };
        match request.bearer_auth(&n.command_secret).send().await {
            Ok(r) => match r.status().as_u16() {
                202 => return Ok(Ok(())),
                404 => continue,
                429 => return Ok(Err(CommandRefused::Busy)),
                409 => return Ok(Err(CommandRefused::Closing)),
                other => {
                    tracing::warn!(node = %n.id, status = other, "a node refused a connection command")
                }
            },
            Err(e) => {
                tracing::warn!(node = %n.id, error = %e, "a node did not take a connection command")
            }
        }
    }
    Ok(Err(CommandRefused::NotFound))
}

/// A message for a node's connection, as the control plane sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMessage {
    pub text: bool,
    /// Base64.
    pub payload: String,
}
