//! Deploying (a new revision when the design changed), promoting the same revision to
//! another environment, and undeploying.

use crate::apis::find;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{deployment_view, DeploymentView};
use asyncgate_core::routes::{self, Routes};
use asyncgate_core::AccessMode;
use asyncgate_core::Permission;
use asyncgate_store::{now, ApiRecord, Deployed, DeploymentRecord, RevisionRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    /// Environment name, e.g. `development`.
    pub environment: String,
    /// `external` (public and internal listeners) or `internal` (internal listener only).
    #[schema(value_type = String)]
    pub access_mode: AccessMode,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteRequest {
    pub from: String,
    pub to: String,
    /// Defaults to the access mode of the source deployment.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
}

fn check_environment(state: &AppState, name: &str) -> ApiResult<()> {
    state.environment(name).map(|_| ()).ok_or_else(|| {
        let known: Vec<&str> = state
            .config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        ApiError::not_found(format!(
            "no environment `{name}`; environments are {}",
            known.join(", ")
        ))
    })
}

/// What `api` serves in `env` (409 when it is not deployed there).
pub(crate) async fn deployed_to(
    state: &AppState,
    api: &ApiRecord,
    env: &str,
) -> ApiResult<Deployed> {
    state
        .store
        .deployed(Some(&api.id))
        .await?
        .into_iter()
        .find(|d| d.deployment.environment == env)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "{} is not deployed to {env}; deploy it there first",
                api.design.name
            ))
        })
}

/// The newest revision if it matches the current design, otherwise a new one.
async fn current_revision(state: &AppState, api: &ApiRecord) -> ApiResult<RevisionRecord> {
    let revisions = state.store.revisions(&api.id).await?;
    match revisions.into_iter().last() {
        Some(latest) if latest.freezes(api) => Ok(latest),
        _ => Ok(state.store.create_revision(api).await?),
    }
}

/// Refuse (409) to deploy `rev` to `env` when it would answer a path that another API's
/// deployment there answers. Judged on what is deployed (the revisions in service), not
/// on anyone's editable design.
async fn check_routes(
    state: &AppState,
    api: &ApiRecord,
    rev: &RevisionRecord,
    env: &str,
) -> ApiResult<()> {
    let mine: Vec<&str> = rev.design.channel_addresses().collect();
    for deployed in state.store.deployed(None).await? {
        let (d, other) = (&deployed.deployment, &deployed.revision);
        if d.environment != env || d.api_id == api.id {
            continue;
        }
        let theirs: Vec<&str> = other.design.channel_addresses().collect();
        let disputed = routes::conflict(
            Routes {
                base_path: &rev.design.base_path,
                channels: &mine,
            },
            Routes {
                base_path: &other.design.base_path,
                channels: &theirs,
            },
        );
        if let Some(path) = disputed {
            return Err(ApiError::conflict(format!(
                "{} cannot be deployed to {env}: {} ({}, revision {}) already answers {path} there; change one of the base paths",
                api.design.name, other.design.name, d.api_id, d.revision
            )));
        }
    }
    Ok(())
}

async fn put(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    rev: &RevisionRecord,
    env: &str,
    mode: AccessMode,
) -> ApiResult<DeploymentView> {
    check_routes(state, api, rev, env).await?;
    let record = DeploymentRecord {
        api_id: api.id.clone(),
        environment: env.to_string(),
        revision: rev.number,
        access_mode: mode,
        deployed_at: now(),
    };
    state.store.set_deployment(&record).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "api.deploy",
            &api.id,
            Some(&api.id),
            &format!("revision {} to {env} ({mode})", rev.number),
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(deployment_view(state, &record, &rev.design))
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/deployments", tag = "deployments", params(("api" = String, Path, description = "API id or identifier")),
    request_body = DeployRequest, responses((status = 201, body = DeploymentView), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<DeployRequest>,
) -> ApiResult<(StatusCode, Json<DeploymentView>)> {
    caller.require(Permission::ManageApis, "deploying APIs")?;
    check_environment(&state, &req.environment)?;
    let api = find(&state, &caller, &key).await?;
    let rev = current_revision(&state, &api).await?;
    let view = put(
        &state,
        &caller,
        &api,
        &rev,
        &req.environment,
        req.access_mode,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/deployments", tag = "deployments", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = Vec<DeploymentView>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<DeploymentView>>> {
    caller.require(Permission::ReadApis, "reading deployments")?;
    let api = find(&state, &caller, &key).await?;
    Ok(Json(
        crate::views::api_view(&state, &api).await?.deployments,
    ))
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/promote", tag = "deployments", params(("api" = String, Path, description = "API id or identifier")),
    request_body = PromoteRequest, responses((status = 201, body = DeploymentView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<PromoteRequest>,
) -> ApiResult<(StatusCode, Json<DeploymentView>)> {
    caller.require(Permission::ManageApis, "promoting APIs")?;
    check_environment(&state, &req.from)?;
    check_environment(&state, &req.to)?;
    if req.from == req.to {
        return Err(ApiError::bad_request(
            "`from` and `to` are the same environment",
        ));
    }
    let api = find(&state, &caller, &key).await?;
    let Deployed {
        deployment: source,
        revision: rev,
    } = deployed_to(&state, &api, &req.from).await?;
    let view = put(
        &state,
        &caller,
        &api,
        &rev,
        &req.to,
        req.access_mode.unwrap_or(source.access_mode),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/apis/{api}/deployments/{environment}", tag = "deployments",
    params(("api" = String, Path, description = "API id or identifier"), ("environment" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn undeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, env)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageApis, "undeploying APIs")?;
    check_environment(&state, &env)?;
    let api = find(&state, &caller, &key).await?;
    if !state.store.remove_deployment(&api.id, &env).await? {
        return Err(ApiError::not_found(format!(
            "{} is not deployed to {env}",
            api.design.name
        )));
    }
    state
        .store
        .audit(
            &caller.actor(),
            "api.undeploy",
            &api.id,
            Some(&api.id),
            &env,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}
