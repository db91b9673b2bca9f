//! Environments, with their listener URLs.

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentView {
    pub name: String,
    /// ws:// base URL of the external (public) listener.
    pub external: String,
    /// ws:// base URL of the internal listener.
    pub internal: String,
}

#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", responses((status = 200, body = Vec<EnvironmentView>)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<EnvironmentView>> {
    Json(
        state
            .config
            .environments
            .iter()
            .map(|e| EnvironmentView {
                name: e.name.clone(),
                external: e.external.clone(),
                internal: e.internal.clone(),
            })
            .collect(),
    )
}
