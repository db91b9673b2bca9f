//! The developer portal's read-only listing: published (and deprecated) APIs with the
//! URLs consumers connect to. Readable without an admin token.

use crate::apis::find_in;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{api_view, ChannelView, DeploymentView};
use asyncgate_core::AccessMode;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalApi {
    pub id: String,
    /// Display name chosen when publishing, or the API name.
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub lifecycle: String,
    pub channels: Vec<ChannelView>,
    /// External deployments only: Internal ones are not for consumers.
    pub endpoints: Vec<DeploymentView>,
}

async fn portal_view(state: &AppState, api: &asyncgate_store::ApiRecord) -> ApiResult<PortalApi> {
    let view = api_view(state, api).await?;
    Ok(PortalApi {
        id: view.id,
        name: view.display_name.unwrap_or(view.name),
        version: view.version,
        description: view.description,
        lifecycle: view.lifecycle,
        channels: view.channels,
        // Consumers see only what they can reach: External deployments.
        endpoints: view
            .deployments
            .into_iter()
            .filter(|d| d.access_mode == AccessMode::External.as_str())
            .collect(),
    })
}

/// Which organization's catalogue to list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// Organization id or handle; every organization's published APIs when omitted.
    pub org: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/portal/apis", tag = "portal", params(PortalQuery), responses((status = 200, body = Vec<PortalApi>)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PortalQuery>,
) -> ApiResult<Json<Vec<PortalApi>>> {
    let org_id = match &q.org {
        Some(key) => Some(
            state
                .store
                .org(key)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no organization `{key}`")))?
                .id,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for api in state.store.apis(org_id.as_deref()).await? {
        if api.lifecycle.listed_in_portal() {
            out.push(portal_view(&state, &api).await?);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/portal/apis/{api}", tag = "portal", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = PortalApi), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> ApiResult<Json<PortalApi>> {
    let api = find_in(&state, None, &key).await?;
    if !api.lifecycle.listed_in_portal() {
        return Err(ApiError::not_found(format!("no published API `{key}`")));
    }
    Ok(Json(portal_view(&state, &api).await?))
}
