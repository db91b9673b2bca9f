//! Live connections of an API (`/apis/{api}/connections`): listed with what they carried
//! so far, closed one by one with a code and reason, or sent a message to their client
//! (as AWS API Gateway's `@connections` does).

use crate::apis::find;
use crate::auth::Caller;
use crate::body::Body;
use crate::dataplane::{CommandRefused, Outbound};
use crate::error::{ApiError, ApiResult};
use crate::nodes::NodeCommand;
use crate::state::AppState;
use asyncgate_core::Permission;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest close reason a close frame can carry (RFC 6455 5.5: 125 bytes with the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// One live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection's id (16 hexadecimal digits).
    pub id: String,
    pub environment: String,
    /// `external` or `internal`.
    pub listener: String,
    /// The client's address as the gateway saw it.
    pub peer: String,
    /// The path it connected to (the channel).
    pub path: String,
    /// The id sent to the backend as `X-Request-Id` and written in the access log.
    pub request_id: String,
    /// The subscribed application, when the credential is an application's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Who the credential names: an application, the start of an API key's hash or a
    /// token's subject (never a secret).
    pub caller: String,
    /// `api-key`, `token` or `none`.
    pub credential: String,
    pub revision: u32,
    /// What permessage-deflate came to: `none`, `pass-through` or `terminated`.
    pub compression: String,
    /// RFC 3339.
    pub started: String,
    /// Client to backend.
    pub messages_in: u64,
    /// Backend to client.
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The gateway node holding it; absent for the control plane's own gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this environment's connections.
    pub env: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CloseQuery {
    /// Close code sent to the client (1000 by default; 1000–1003, 1007–1011 or
    /// 3000–4999).
    pub code: Option<u16>,
    /// Close reason, at most 123 bytes.
    pub reason: Option<String>,
}

/// A message for a client: `text`, or `binary` in base64.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

/// Which connection took the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccepted {
    pub id: String,
    /// `close` or `message`.
    pub command: String,
}

/// Whether a client may be sent this close code (RFC 6455 7.4).
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

fn refused(id: &str, r: CommandRefused) -> ApiError {
    match r {
        CommandRefused::NotFound => ApiError::not_found(format!(
            "no live connection `{id}` to this API (it may have closed)"
        )),
        CommandRefused::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("connection `{id}` has too many commands waiting; try again shortly"),
        ),
        CommandRefused::Closing => ApiError::conflict(format!("connection `{id}` is closing")),
    }
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/connections", tag = "connections",
    params(("api" = String, Path, description = "API id or identifier"), ListQuery),
    responses((status = 200, body = Vec<ConnectionView>), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<ConnectionView>>> {
    caller.require(Permission::ReadApis, "listing live connections")?;
    if let Some(env) = &q.env {
        crate::deployments::check_environment(&state, env)?;
    }
    let api = find(&state, &caller, &key).await?;
    let mut all = state.data_plane.connections(&api.id, q.env.as_deref());
    all.extend(crate::nodes::node_connections(&state, &api.id, q.env.as_deref()).await?);
    Ok(Json(all))
}

#[utoipa::path(delete, path = "/api/v1/apis/{api}/connections/{id}", tag = "connections",
    params(("api" = String, Path, description = "API id or identifier"), ("id" = String, Path, description = "Connection id"), CloseQuery),
    responses((status = 202, body = CommandAccepted), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    Query(q): Query<CloseQuery>,
) -> ApiResult<(StatusCode, Json<CommandAccepted>)> {
    caller.require(Permission::ManageApis, "closing live connections")?;
    let code = q.code.unwrap_or(1000);
    if !sendable_close_code(code) {
        return Err(ApiError::bad_request(format!(
            "close code {code} cannot be sent: use 1000–1003, 1007–1011 or 3000–4999"
        )));
    }
    let reason = q.reason.unwrap_or_default();
    if reason.len() > MAX_CLOSE_REASON {
        return Err(ApiError::bad_request(format!(
            "the close reason is {} bytes; a close frame carries at most {MAX_CLOSE_REASON}",
            reason.len()
        )));
    }
    let api = find(&state, &caller, &key).await?;
    let done = match state.data_plane.close(&api.id, &id, code, &reason) {
        Err(CommandRefused::NotFound) => {
            let command = NodeCommand::Close {
                code,
                reason: &reason,
            };
            crate::nodes::node_command(&state, &api.id, &id, command).await?
        }
        other => other,
    };
    done.map_err(|r| refused(&id, r))?;
    state
        .store
        .audit(
            &caller.actor(),
            "connection.close",
            &id,
            Some(&api.id),
            &format!("{code} {reason}"),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandAccepted {
            id,
            command: "close".into(),
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/connections/{id}/messages", tag = "connections",
    params(("api" = String, Path, description = "API id or identifier"), ("id" = String, Path, description = "Connection id")),
    request_body = MessageRequest,
    responses((status = 202, body = CommandAccepted), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 413, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    Body(req): Body<MessageRequest>,
) -> ApiResult<(StatusCode, Json<CommandAccepted>)> {
    caller.require(
        Permission::ManageApis,
        "sending messages to live connections",
    )?;
    let message = match (req.text, req.binary) {
        (Some(text), None) => Outbound {
            text: true,
            payload: text.into_bytes(),
        },
        (None, Some(b64)) => Outbound {
            text: false,
            payload: base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::bad_request(format!("`binary` is not base64: {e}")))?,
        },
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of `text` (a text message) or `binary` (base64)",
            ))
        }
    };
    let api = find(&state, &caller, &key).await?;
    let max = api.design.limits.max_message_bytes;
    if max > 0 && message.payload.len() as u64 > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the message is {} bytes; {} allows at most {max}",
                message.payload.len(),
                api.design.name
            ),
        ));
    }
    let done = match state.data_plane.send(&api.id, &id, message.clone()) {
        Err(CommandRefused::NotFound) => {
            let command = NodeCommand::Send(&message);
            crate::nodes::node_command(&state, &api.id, &id, command).await?
        }
        other => other,
    };
    done.map_err(|r| refused(&id, r))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandAccepted {
            id,
            command: "message".into(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_a_client_may_receive_are_sent() {
        for ok in [1000, 1001, 1008, 1011, 3000, 4999] {
            assert!(sendable_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert!(!sendable_close_code(bad), "{bad}");
        }
    }
}
