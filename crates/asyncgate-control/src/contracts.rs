//! Contracts of an API: export what was imported, re-import a new version (with a diff
//! that flags breaking changes), and the consumer contract the developer portal serves.

use crate::apis::{find, find_in, load_contract};
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{api_view, ApiView};
use asyncgate_contract::consumer::{consumer_contract, Endpoint};
use asyncgate_contract::ContractDiff;
use asyncgate_core::Permission;
use asyncgate_store::now;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new version of the contract: exactly one of `url`, `contract` and `files` (a
/// multi-file bundle, with `root`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReimportRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReimportResult {
    /// Channels, operations and messages added, removed or changed; `breaking` when any
    /// change may break existing clients.
    #[schema(value_type = Object)]
    pub diff: ContractDiff,
    /// The API with the new contract as its design; deploy to make it live.
    pub api: ApiView,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FormatQuery {
    /// `json` (default) or `yaml`.
    pub format: Option<String>,
}

fn document(text: String, yaml: bool) -> Response {
    let kind = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/contract", tag = "contracts", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, description = "The contract as imported")), security(("admin" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    let api = find(&state, &caller, &key).await?;
    let json = api.contract_source.trim_start().starts_with('{');
    Ok(document(api.contract_source, !json))
}

#[utoipa::path(put, path = "/api/v1/apis/{api}/contract", tag = "contracts", params(("api" = String, Path, description = "API id or identifier")),
    request_body = ReimportRequest, responses((status = 200, body = ReimportResult), (status = 422, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn reimport(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<ReimportRequest>,
) -> ApiResult<Json<ReimportResult>> {
    caller.require(Permission::ManageApis, "re-importing contracts")?;
    let mut api = find(&state, &caller, &key).await?;
    let (source, contract) = load_contract(
        &state,
        req.url.as_deref(),
        req.contract.as_deref(),
        req.files.as_ref(),
        req.root.as_deref(),
    )
    .await?;
    let diff = asyncgate_contract::diff(&api.design.contract, &contract);
    api.design.contract = contract;
    api.contract_source = source;
    api.updated_at = now();
    state.store.update_api(&mut api).await?;
    let detail = format!(
        "{} change(s){}",
        diff.changes.len(),
        if diff.breaking { ", breaking" } else { "" }
    );
    state
        .store
        .audit(
            &caller.actor(),
            "api.reimport",
            &api.id,
            Some(&api.id),
            &detail,
        )
        .await?;
    Ok(Json(ReimportResult {
        diff,
        api: api_view(&state, &api).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/portal/apis/{api}/contract", tag = "portal", params(("api" = String, Path, description = "API id or identifier"), FormatQuery),
    responses((status = 200, description = "The consumer contract: servers are the gateway URLs"), (status = 404, body = crate::error::Problem)))]
pub async fn consumer(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let api = find_in(&state, None, &key).await?;
    if !api.lifecycle.listed_in_portal() {
        return Err(ApiError::not_found(format!("no published API `{key}`")));
    }
    let view = api_view(&state, &api).await?;
    let endpoints: Vec<Endpoint> = view
        .deployments
        .iter()
        .map(|d| Endpoint {
            environment: d.environment.clone(),
            url: d.url.clone(),
        })
        .collect();
    let doc = asyncgate_contract::load::load(&api.contract_source, &state.config.import.limits)?;
    let consumer = consumer_contract(doc, &api.design.contract.asyncapi_version, &endpoints);
    match q.format.as_deref() {
        None | Some("json") => Ok(document(
            serde_json::to_string_pretty(&consumer).unwrap_or_default(),
            false,
        )),
        Some("yaml") => Ok(document(
            serde_saphyr::to_string(&consumer)
                .map_err(|e| ApiError::unprocessable(format!("cannot write YAML: {e}")))?,
            true,
        )),
        Some(other) => Err(ApiError::bad_request(format!(
            "format `{other}`: use json or yaml"
        ))),
    }
}
