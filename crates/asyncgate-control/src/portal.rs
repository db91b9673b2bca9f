//! The developer portal's read-only catalogue: Pre-Released, Published and Deprecated APIs
//! (each marked with its state and whether it takes subscriptions), grouped by API with
//! their versions, with the URLs consumers connect to. Readable without an admin token.

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
    /// Pre-Released, Published or Deprecated.
    pub lifecycle: String,
    /// Whether applications may subscribe now (Published only).
    pub subscribable: bool,
    /// What the versions of one API share: `project/identifier`.
    pub group: String,
    /// Every version of the API the catalogue lists, in version order (this one included).
    pub versions: Vec<PortalVersion>,
    pub channels: Vec<ChannelView>,
    /// External deployments only: Internal ones are not for consumers.
    pub endpoints: Vec<DeploymentView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalVersion {
    pub id: String,
    pub version: String,
    pub lifecycle: String,
}

async fn portal_view(state: &AppState, api: &asyncgate_store::ApiRecord) -> ApiResult<PortalApi> {
    let view = api_view(state, api).await?;
    let versions = crate::versions::sorted(state.store.versions(api).await?)
        .into_iter()
        .filter(|v| v.lifecycle.listed_in_portal())
        .map(|v| PortalVersion {
            id: v.id,
            version: v.design.version,
            lifecycle: v.lifecycle.to_string(),
        })
        .collect();
    Ok(PortalApi {
        id: view.id,
        name: view.display_name.unwrap_or(view.name),
        version: view.version,
        description: view.description,
        lifecycle: view.lifecycle,
        subscribable: api.lifecycle.accepts_subscriptions(),
        group: format!("{}/{}", api.project, api.design.identifier),
        versions,
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
    let listed: Vec<_> = state
        .store
        .apis(org_id.as_deref())
        .await?
        .into_iter()
        .filter(|a| a.lifecycle.listed_in_portal())
        .collect();
    // Versions of one API side by side, in version order.
    let mut grouped: std::collections::BTreeMap<(String, String), Vec<_>> = Default::default();
    for api in listed {
        grouped
            .entry((api.project.clone(), api.design.identifier.clone()))
            .or_default()
            .push(api);
    }
    let mut out = Vec::new();
    for versions in grouped.into_values() {
        for api in crate::versions::sorted(versions) {
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
