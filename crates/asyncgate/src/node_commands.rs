//! What a gateway node takes from the control planes on its status listener: its live
//! connections listed, closed or sent a message (the connections API of the management
//! API, on every node), each call with the node's command secret as a bearer token.

use crate::dataplane::GatewayPlane;
use asyncgate_control::dataplane::{CommandRefused, DataPlane, Outbound};
use asyncgate_control::nodes::NodeMessage;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use base64::Engine as _;
use std::sync::Arc;

pub struct Commands {
    pub plane: GatewayPlane,
    /// SHA-256 of the secret the node sent the control planes.
    pub secret_hash: String,
}

pub fn router(commands: Arc<Commands>) -> axum::Router {
    axum::Router::new()
        .route("/connections/{api}", get(list))
        .route("/connections/{api}/{id}", delete(close))
        .route("/connections/{api}/{id}/messages", post(send))
        .with_state(commands)
}

/// Whether the call carries the command secret.
fn allowed(commands: &Commands, headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|s| asyncgate_core::credential::hash_secret(s.trim()) == commands.secret_hash)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "the node's command secret is required\n",
    )
        .into_response()
}

fn answer(done: Result<(), CommandRefused>) -> Response {
    match done {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(CommandRefused::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(CommandRefused::Busy) => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Err(CommandRefused::Closing) => StatusCode::CONFLICT.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    env: Option<String>,
}

async fn list(
    State(c): State<Arc<Commands>>,
    headers: HeaderMap,
    Path(api): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if !allowed(&c, &headers) {
        return unauthorized();
    }
    Json(c.plane.connections(&api, q.env.as_deref())).into_response()
}

#[derive(serde::Deserialize)]
struct CloseQuery {
    code: u16,
    #[serde(default)]
    reason: String,
}

async fn close(
    State(c): State<Arc<Commands>>,
    headers: HeaderMap,
    Path((api, id)): Path<(String, String)>,
    Query(q): Query<CloseQuery>,
) -> Response {
    if !allowed(&c, &headers) {
        return unauthorized();
    }
    // The control plane checked the code and reason; a node checks the bounds again.
    if q.reason.len() > asyncgate_control::connections::MAX_CLOSE_REASON
        || !asyncgate_control::connections::sendable_close_code(q.code)
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    answer(c.plane.close(&api, &id, q.code, &q.reason))
}

async fn send(
    State(c): State<Arc<Commands>>,
    headers: HeaderMap,
    Path((api, id)): Path<(String, String)>,
    Json(m): Json<NodeMessage>,
) -> Response {
    if !allowed(&c, &headers) {
        return unauthorized();
    }
    let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(m.payload.trim()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    answer(c.plane.send(
        &api,
        &id,
        Outbound {
            text: m.text,
            payload,
        },
    ))
}
