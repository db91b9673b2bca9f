//! Deploying (a new revision when the design changed, or any earlier one: rollback),
//! promoting the revision one environment serves to the next in order, undeploying, each
//! environment's own values, and the deployment history with what each step changed.

use crate::apis::{check_backend_headers, check_target, find};
use crate::auth::Caller;
use crate::body::Body;
use crate::changes::{self, Changes};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{deployment_view, DeploymentView};
use asyncgate_core::routes::{self, Routes};
use asyncgate_core::{AccessMode, LimitsPatch, Permission};
use asyncgate_store::{
    now, ApiDesign, ApiRecord, Deployed, DeploymentAction, DeploymentRecord, EnvironmentValues,
    RevisionRecord,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    /// Environment name, e.g. `development`.
    pub environment: String,
    /// `external` (public and internal listeners) or `internal` (internal listener only).
    #[schema(value_type = String)]
    pub access_mode: AccessMode,
    /// Deploy this earlier revision instead of the current design (a rollback when it is
    /// older than the one served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    // The environment's own values; omitted ones stay as the environment had them.
    /// Backend URL (ws:// or wss://) in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Extra backend headers in this environment (replaces the revision's set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_headers: Option<BTreeMap<String, String>>,
    /// Limits in this environment, on top of the revision's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<LimitsPatch>,
    /// Drop the environment's own values first: serve the revision's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_values: bool,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteRequest {
    pub from: String,
    pub to: String,
    /// Defaults to the access mode of the source deployment.
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
    // The target environment's own values. Without them it keeps its own, or, when it
    // has none yet, uses the source environment's ("use the development endpoint
    // configuration").
    /// Backend URL (ws:// or wss://) in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Extra backend headers in this environment (replaces the revision's set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_headers: Option<BTreeMap<String, String>>,
    /// Limits in this environment, on top of the revision's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<LimitsPatch>,
    /// Drop the environment's own values first: serve the revision's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_values: bool,
}

/// The values a deploy or promote request gives an environment.
struct ValuesRequest<'a> {
    target: &'a Option<String>,
    backend_headers: &'a Option<BTreeMap<String, String>>,
    limits: &'a Option<LimitsPatch>,
}

impl ValuesRequest<'_> {
    /// The checked values this request sets.
    fn checked(&self) -> ApiResult<EnvironmentValues> {
        Ok(EnvironmentValues {
            target: self.target.as_deref().map(check_target).transpose()?,
            backend_headers: self
                .backend_headers
                .as_ref()
                .map(check_backend_headers)
                .transpose()?,
            limits: self.limits.unwrap_or_default(),
        })
    }
}

pub(crate) fn check_environment(state: &AppState, name: &str) -> ApiResult<()> {
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

/// The environment after `from` in promotion order (the configuration's order): the
/// only one `from` promotes to.
fn check_next(state: &AppState, from: &str, to: &str) -> ApiResult<()> {
    let envs = &state.config.environments;
    let next = envs
        .iter()
        .position(|e| e.name == from)
        .and_then(|i| envs.get(i + 1));
    match next {
        Some(n) if n.name == to => Ok(()),
        Some(n) => Err(ApiError::conflict(format!(
            "{from} promotes only to the next environment in order, {}; promote {from} to {} first",
            n.name, n.name
        ))),
        None => Err(ApiError::conflict(format!(
            "{from} is the last environment in order; nothing comes after it"
        ))),
    }
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
async fn current_revision(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
) -> ApiResult<RevisionRecord> {
    let revisions = state.store.revisions(&api.id).await?;
    match revisions.into_iter().last() {
        Some(latest) if latest.freezes(api) => Ok(latest),
        _ => Ok(state.store.create_revision(api, caller.who()).await?),
    }
}

/// Revision `number` of `api` (404 naming the ones there are).
async fn revision(state: &AppState, api: &ApiRecord, number: u32) -> ApiResult<RevisionRecord> {
    if let Some(r) = state.store.revision(&api.id, number).await? {
        return Ok(r);
    }
    let all = state.store.revisions(&api.id).await?;
    Err(ApiError::not_found(match (all.first(), all.last()) {
        (Some(first), Some(last)) => format!(
            "{} has no revision {number}; its revisions are {} to {}",
            api.design.name, first.number, last.number
        ),
        _ => format!(
            "{} has no revisions yet; deploy it to make the first",
            api.design.name
        ),
    }))
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

/// Where `rev` goes, with which values, how and why.
struct Placement<'a> {
    rev: &'a RevisionRecord,
    env: &'a str,
    mode: AccessMode,
    values: EnvironmentValues,
    action: DeploymentAction,
}

async fn put(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    p: Placement<'_>,
) -> ApiResult<DeploymentView> {
    let served = p.values.applied_to(&p.rev.design);
    served.limits.validate().map_err(ApiError::bad_request)?;
    check_routes(state, api, p.rev, p.env).await?;
    let record = DeploymentRecord {
        api_id: api.id.clone(),
        environment: p.env.to_string(),
        revision: p.rev.number,
        access_mode: p.mode,
        deployed_at: now(),
        values: p.values,
        deployed_by: caller.who().to_string(),
    };
    let previous = state.store.set_deployment(&record, p.action).await?;
    let before = previous.map_or(String::new(), |n| format!(", was revision {n}"));
    state
        .store
        .audit(
            &caller.actor(),
            &format!("api.{}", p.action.as_str()),
            &api.id,
            Some(&api.id),
            &format!(
                "revision {} to {} ({}){before}",
                p.rev.number, p.env, p.mode
            ),
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(deployment_view(state, &record, &p.rev.design))
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
    let asked = ValuesRequest {
        target: &req.target,
        backend_headers: &req.backend_headers,
        limits: &req.limits,
    }
    .checked()?;
    let rev = match req.revision {
        Some(n) => revision(&state, &api, n).await?,
        None => current_revision(&state, &caller, &api).await?,
    };
    let served = state
        .store
        .deployments(&api.id)
        .await?
        .into_iter()
        .find(|d| d.environment == req.environment);
    let own = match (&served, req.reset_values) {
        (Some(d), false) => d.values.clone(),
        _ => EnvironmentValues::default(),
    };
    let action = match &served {
        Some(d) if req.revision.is_some() && rev.number < d.revision => DeploymentAction::Rollback,
        _ => DeploymentAction::Deploy,
    };
    let placement = Placement {
        rev: &rev,
        env: &req.environment,
        mode: req.access_mode,
        values: own.then(&asked),
        action,
    };
    let view = put(&state, &caller, &api, placement).await?;
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
    check_next(&state, &req.from, &req.to)?;
    let api = find(&state, &caller, &key).await?;
    let asked = ValuesRequest {
        target: &req.target,
        backend_headers: &req.backend_headers,
        limits: &req.limits,
    }
    .checked()?;
    let Deployed {
        deployment: source,
        revision: rev,
    } = deployed_to(&state, &api, &req.from).await?;
    let own = state
        .store
        .deployments(&api.id)
        .await?
        .into_iter()
        .find(|d| d.environment == req.to)
        .map(|d| d.values)
        .filter(|v| !v.is_empty() && !req.reset_values);
    // An environment keeps its own values; one without any takes the source's.
    let base = match own {
        Some(v) => v,
        None if req.reset_values => EnvironmentValues::default(),
        None => source.values.clone(),
    };
    let placement = Placement {
        rev: &rev,
        env: &req.to,
        mode: req.access_mode.unwrap_or(source.access_mode),
        values: base.then(&asked),
        action: DeploymentAction::Promote,
    };
    let view = put(&state, &caller, &api, placement).await?;
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
    if !state
        .store
        .remove_deployment(&api.id, &env, DeploymentAction::Undeploy, caller.who())
        .await?
    {
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

/// One change of what an environment serves, with what it changed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub environment: String,
    /// deploy, rollback, promote, undeploy or retire.
    pub action: String,
    /// The revision served after it (absent once the environment stopped serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// The revision served before it (absent when nothing was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
    /// A user's email, or `operator`.
    pub who: String,
    /// RFC 3339.
    pub when: String,
    /// Which values were the environment's own (`target`, `backendHeaders`,
    /// `limits.maxConnections`, ...).
    pub own_values: Vec<String>,
    /// Against what the environment served before (or, on its first deploy, the revision
    /// before): contract changes and changed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// Which environment's history to read.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub env: Option<String>,
}

/// The names of the values an environment serves instead of the revision's.
pub(crate) fn own_value_names(v: &EnvironmentValues) -> Vec<String> {
    let mut out = Vec::new();
    if v.target.is_some() {
        out.push("target".to_string());
    }
    if v.backend_headers.is_some() {
        out.push("backendHeaders".to_string());
    }
    if let Ok(serde_json::Value::Object(limits)) = serde_json::to_value(v.limits) {
        out.extend(limits.keys().map(|k| format!("limits.{k}")));
    }
    out
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/history", tag = "deployments",
    params(("api" = String, Path, description = "API id or identifier"), HistoryQuery),
    responses((status = 200, body = Vec<HistoryEntry>)), security(("admin" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    caller.require(Permission::ReadApis, "reading deployments")?;
    if let Some(env) = &q.env {
        check_environment(&state, env)?;
    }
    let api = find(&state, &caller, &key).await?;
    let designs: HashMap<u32, ApiDesign> = state
        .store
        .revisions(&api.id)
        .await?
        .into_iter()
        .map(|r| (r.number, r.design))
        .collect();
    // Per environment, the design served before each step, as the steps go.
    let mut served: HashMap<String, ApiDesign> = HashMap::new();
    let mut out = Vec::new();
    for e in state.store.deployment_history(&api.id, None).await? {
        let now_served = e
            .revision
            .and_then(|n| designs.get(&n))
            .map(|d| e.values.applied_to(d));
        let before = served.get(&e.environment).cloned().or_else(|| {
            e.revision
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| designs.get(&n).cloned())
        });
        let changes = match (&before, &now_served) {
            (Some(b), Some(n)) => Some(changes::between(b, n)),
            _ => None,
        };
        match now_served {
            Some(d) => served.insert(e.environment.clone(), d),
            None => served.remove(&e.environment),
        };
        if q.env.as_ref().is_some_and(|env| *env != e.environment) {
            continue;
        }
        out.push(HistoryEntry {
            own_values: own_value_names(&e.values),
            environment: e.environment,
            action: e.action.as_str().to_string(),
            revision: e.revision,
            previous_revision: e.previous_revision,
            access_mode: e.access_mode.map(|m| m.to_string()),
            who: e.actor,
            when: e.at,
            changes,
        });
    }
    Ok(Json(out))
}

/// Which two revisions to compare.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDiff {
    pub from: u32,
    pub to: u32,
    #[serde(flatten)]
    pub changes: Changes,
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/diff", tag = "deployments",
    params(("api" = String, Path, description = "API id or identifier"), DiffQuery),
    responses((status = 200, body = RevisionDiff), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<RevisionDiff>> {
    caller.require(Permission::ReadApis, "reading revisions")?;
    let api = find(&state, &caller, &key).await?;
    let from = revision(&state, &api, q.from).await?;
    let to = revision(&state, &api, q.to).await?;
    Ok(Json(RevisionDiff {
        from: q.from,
        to: q.to,
        changes: changes::between(&from.design, &to.design),
    }))
}
