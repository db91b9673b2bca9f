//! Versions of an API: a copy of it (its design now, or an earlier revision's) under a
//! new version and base path, with revisions, deployments and a lifecycle of its own.
//! Versions share the project and identifier; `identifier@version` names one.

use crate::apis::{default_base_path, find, normalize_base_path};
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::fields;
use crate::state::AppState;
use crate::views::{api_view, ApiView};
use asyncgate_core::credential::new_id;
use asyncgate_core::version::{path_segment, ApiVersion};
use asyncgate_core::{LifecycleState, Permission};
use asyncgate_store::{now, ApiRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionRequest {
    /// The new version, e.g. `2.0.0`.
    pub version: String,
    /// Copy this revision's design instead of the API's current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<u32>,
    /// Base path of the new version (default: the source's with the version replaced, or
    /// `/<project>/<identifier>/v<version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    pub id: String,
    pub version: String,
    pub lifecycle: String,
    pub base_path: String,
    /// Environments it is deployed to.
    pub deployed_to: Vec<String>,
}

/// The base path of a copy of `source` at `version`: the source's with its version
/// segment replaced when it ends with one, otherwise the default.
fn base_path_for(source: &ApiRecord, version: &str) -> String {
    let old = format!("/v{}", path_segment(&source.design.version));
    match source.design.base_path.strip_suffix(&old) {
        Some(prefix) => format!("{prefix}/v{}", path_segment(version)),
        None => default_base_path(&source.project, &source.design.identifier, version),
    }
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/versions", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    request_body = VersionRequest, responses((status = 201, body = ApiView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<VersionRequest>,
) -> ApiResult<(StatusCode, Json<ApiView>)> {
    caller.require(Permission::ManageApis, "creating API versions")?;
    let source = find(&state, &caller, &key).await?;
    let version = fields::line(&req.version, "version", fields::MAX_VERSION)?;
    if state
        .store
        .versions(&source)
        .await?
        .iter()
        .any(|v| v.design.version == version)
    {
        return Err(ApiError::conflict(format!(
            "{} already has a version {version}",
            source.design.name
        )));
    }
    let (mut design, contract_source) = match req.from_revision {
        Some(n) => {
            let rev = state.store.revision(&source.id, n).await?.ok_or_else(|| {
                ApiError::not_found(format!("{} has no revision {n}", source.design.name))
            })?;
            (rev.design, rev.contract_source)
        }
        None => (source.design.clone(), source.contract_source.clone()),
    };
    design.base_path = match &req.base_path {
        Some(b) => normalize_base_path(b)?,
        None => base_path_for(&source, &version),
    };
    design.version = version;
    let at = now();
    let api = ApiRecord {
        id: new_id("api_"),
        org_id: source.org_id.clone(),
        project: source.project.clone(),
        lifecycle: LifecycleState::Created,
        display_name: source.display_name.clone(),
        design,
        // A revision made before sources were kept has none: the copy starts from the
        // API's current source.
        contract_source: if contract_source.is_empty() {
            source.contract_source.clone()
        } else {
            contract_source
        },
        created_at: at.clone(),
        updated_at: at,
        row_version: 0,
    };
    state.store.insert_api(&api).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "api.version",
            &api.id,
            Some(&api.id),
            &format!(
                "{} {} from {} {}",
                api.design.name, api.design.version, source.id, source.design.version
            ),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(api_view(&state, &api).await?)))
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/versions", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = Vec<VersionView>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<VersionView>>> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    let api = find(&state, &caller, &key).await?;
    let mut out = Vec::new();
    for v in sorted(state.store.versions(&api).await?) {
        out.push(VersionView {
            deployed_to: state
                .store
                .deployments(&v.id)
                .await?
                .into_iter()
                .map(|d| d.environment)
                .collect(),
            id: v.id,
            version: v.design.version,
            lifecycle: v.lifecycle.to_string(),
            base_path: v.design.base_path,
        });
    }
    Ok(Json(out))
}

/// Versions in version order (numeric ones first, by number; others by text).
pub(crate) fn sorted(mut versions: Vec<ApiRecord>) -> Vec<ApiRecord> {
    versions.sort_by(|a, b| {
        let (va, vb) = (&a.design.version, &b.design.version);
        match (ApiVersion::parse(va), ApiVersion::parse(vb)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| va.cmp(vb)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => va.cmp(vb),
        }
    });
    versions
}
