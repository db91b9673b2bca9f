//! The Lifecycle page: current state, allowed actions, changing state (with what the new
//! state does: Retired undeploys everywhere and ends subscriptions), and the history.

use crate::apis::find;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{api_view, ApiView};
use asyncgate_core::Permission;
use asyncgate_core::{LifecycleAction, LifecycleState};
use asyncgate_store::{now, LifecycleEvent};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleRequest {
    /// publish, pre-release, demote-to-created, block, deprecate or retire.
    #[schema(value_type = String)]
    pub action: LifecycleAction,
    /// Name shown in the developer portal (with `publish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Why, kept in the lifecycle history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleView {
    pub state: String,
    pub allowed_actions: Vec<String>,
}

fn view(s: LifecycleState) -> LifecycleView {
    LifecycleView {
        state: s.to_string(),
        allowed_actions: s.allowed_actions().iter().map(|a| a.to_string()).collect(),
    }
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/lifecycle", tag = "lifecycle", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = LifecycleView)), security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<LifecycleView>> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    Ok(Json(view(find(&state, &caller, &key).await?.lifecycle)))
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/lifecycle", tag = "lifecycle", params(("api" = String, Path, description = "API id or identifier")),
    request_body = LifecycleRequest, responses((status = 200, body = ApiView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<LifecycleRequest>,
) -> ApiResult<Json<ApiView>> {
    caller.require(Permission::ManageApis, "changing the lifecycle")?;
    let mut api = find(&state, &caller, &key).await?;
    let next = api
        .lifecycle
        .apply(req.action)
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    if next == LifecycleState::Published && state.store.deployments(&api.id).await?.is_empty() {
        return Err(ApiError::conflict(format!(
            "{} is not deployed anywhere; deploy it before publishing",
            api.design.name
        )));
    }
    if req.display_name.is_some() && next != LifecycleState::Published {
        return Err(ApiError::bad_request(
            "a display name is set when publishing (action `publish`)",
        ));
    }
    let note = match &req.note {
        Some(n) => crate::fields::text(n, "note", crate::fields::MAX_DESCRIPTION)?,
        None => String::new(),
    };
    if let Some(name) = req.display_name {
        api.display_name = Some(crate::fields::line(
            &name,
            "displayName",
            crate::fields::MAX_NAME,
        )?);
    }
    let from = api.lifecycle;
    api.lifecycle = next;
    api.updated_at = now();
    let (undeployed, ended) = state
        .store
        .change_lifecycle(&api, from, caller.who(), &note)
        .await?;
    let mut detail = format!("{from} -> {next}");
    if !undeployed.is_empty() {
        detail.push_str(&format!(
            "; undeployed from {}; {ended} subscriptions ended",
            undeployed.join(", ")
        ));
    }
    state
        .store
        .audit(
            &caller.actor(),
            "api.lifecycle",
            &api.id,
            Some(&api.id),
            &detail,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(Json(api_view(&state, &api).await?))
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/lifecycle/history", tag = "lifecycle", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = Vec<Object>, description = "from, to, who, when, note; oldest first")), security(("admin" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<LifecycleEvent>>> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    let api = find(&state, &caller, &key).await?;
    Ok(Json(state.store.lifecycle_history(&api.id).await?))
}
