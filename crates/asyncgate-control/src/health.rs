//! Health for load balancers and orchestrators: `/healthz` (the process answers) and
//! `/readyz` (the store answers and the gateway serves the newest snapshot), both
//! unauthenticated and saying nothing secret.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// `/healthz`: the process is up.
pub async fn live() -> &'static str {
    "ok"
}

/// What `/readyz` found, check by check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why the store did not answer.
    pub store: String,
    /// The newest snapshot's version, and the one the gateway serves (when this process
    /// runs one).
    pub snapshot: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_applied: Option<u64>,
}

/// `/readyz`: 200 when ready, 503 naming what is not.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = match state.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    let snapshot = state.publisher.current().version;
    let gateway_applied = state.publisher.applied_version();
    let ready = store == "ok" && gateway_applied.is_none_or(|applied| applied >= snapshot);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            store,
            snapshot,
            gateway_applied,
        }),
    )
        .into_response()
}
