//! API proxies: import from a contract (URL or inline), list, show, edit, delete, and
//! the revisions deploying made.

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::fetch;
use crate::fields;
use crate::state::AppState;
use crate::upload;
use crate::views::{api_view, ApiView, RevisionView};
use asyncgate_contract::{derive, slugify};
use asyncgate_core::credential::new_id;
use asyncgate_core::LifecycleState;
pub use asyncgate_core::LimitsPatch;
use asyncgate_core::Permission;
use asyncgate_store::{now, ApiDesign, ApiRecord, ProjectRecord, DEFAULT_ORG_ID};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Import a contract: exactly one of `url` and `contract`; the other fields override the
/// values derived from the contract. (Serialized by the CLI, which sends it as it is.)
/// The same fields serve every form of import: a JSON body, the query string of an
/// import whose body is the contract itself, and the fields of a multipart form.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportRequest {
    /// http(s) URL of an AsyncAPI document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The AsyncAPI document itself (YAML or JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(ignore)]
    pub contract: Option<String>,
    /// A multi-file contract: path in the bundle → text. The root is `root`, or
    /// `asyncapi.yaml` / `.yml` / `.json`, or the only file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(ignore)]
    pub files: Option<BTreeMap<String, String>>,
    /// Path of the root document within `files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// Backend URL (ws:// or wss://); required when the contract has no WebSocket server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Edit the values of an API; omitted fields stay as they are. (Serialized by the CLI.)
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Limits to change; omitted limits keep their values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<LimitsPatch>,
    /// Extra headers sent to the backend; replaces the whole set (`{}` removes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_headers: Option<BTreeMap<String, String>>,
    /// Admission settings to change; omitted ones keep their values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityPatch>,
    /// Validate messages against the contract: `off`, `report`, `drop` or `reject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub message_validation: Option<asyncgate_core::MessageValidation>,
    /// Binary messages and text that is not JSON, when validating: `pass` or `fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub unjudged_messages: Option<asyncgate_core::Unjudged>,
    /// How permessage-deflate crosses the gateway: `auto`, `pass-through`, `terminate` or
    /// `off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub compression: Option<asyncgate_core::Compression>,
}

/// Partial change of who may connect (see `ApiSecurity`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityPatch {
    /// Require a credential (true) or let anyone connect (false, only when said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Header carrying an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// Origins browsers may connect from; replaces the list (`[]`: any origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Send the backend a signed `X-JWT-Assertion` naming the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_jwt: Option<bool>,
    /// Scopes bearer tokens must carry; replaces the list (`[]`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scopes: Option<Vec<String>>,
}

impl SecurityPatch {
    fn apply(&self, security: &mut asyncgate_core::ApiSecurity) -> ApiResult<()> {
        if let Some(v) = self.enabled {
            security.enabled = v;
        }
        if let Some(v) = self.backend_jwt {
            security.backend_jwt = v;
        }
        if let Some(scopes) = &self.required_scopes {
            security.required_scopes = scopes
                .iter()
                .map(|s| asyncgate_core::security::check_scope(s))
                .collect::<Result<_, _>>()
                .map_err(ApiError::bad_request)?;
        }
        if let Some(name) = &self.api_key_header {
            let lower = name.trim().to_ascii_lowercase();
            let single = BTreeMap::from([(lower.clone(), String::new())]);
            check_backend_headers(&single)?;
            if lower == "authorization" || lower == "origin" || lower == "cookie" {
                return Err(ApiError::bad_request(format!(
                    "`{name}` cannot carry API keys: the gateway reads it for other things"
                )));
            }
            security.api_key_header = lower;
        }
        if let Some(origins) = &self.allowed_origins {
            security.allowed_origins = origins
                .iter()
                .map(|o| asyncgate_core::security::check_origin(o))
                .collect::<Result<_, _>>()
                .map_err(ApiError::bad_request)?;
        }
        Ok(())
    }
}

/// Header names the gateway manages itself and will not take as extra backend headers.
const RESERVED_BACKEND_HEADERS: [&str; 15] = [
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "proxy-connection",
    asyncgate_core::credential::CALLER_ASSERTION_HEADER,
];

pub(crate) fn check_backend_headers(
    headers: &BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        let valid_name = !lower.is_empty()
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(ApiError::bad_request(format!(
                "`{name}` is not a valid header name"
            )));
        }
        if RESERVED_BACKEND_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-forwarded-") {
            return Err(ApiError::bad_request(format!(
                "`{name}` is set by the gateway and cannot be configured"
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ApiError::bad_request(format!(
                "the value of `{name}` contains a line break"
            )));
        }
        out.insert(lower, value.clone());
    }
    Ok(out)
}

/// The contract text (fetched from `url`, or given, or bundled from `files`) and its
/// model. References to other documents are followed: into `files`, or to http(s) URLs
/// under the same guards as URL imports.
pub(crate) async fn load_contract(
    state: &AppState,
    url: Option<&str>,
    contract: Option<&str>,
    files: Option<&BTreeMap<String, String>>,
    root: Option<&str>,
) -> ApiResult<(String, asyncgate_contract::Contract)> {
    let policy = &state.config.import;
    let mut loader = fetch::GuardedLoader::new(policy, files);
    let (root_url, text) = match (url, contract, files) {
        (Some(url), None, None) => (bundle_url(url)?, fetch::fetch_document(url, policy).await?),
        (None, Some(text), None) => (loader.location("asyncapi.yaml")?, text.to_string()),
        (None, None, Some(files)) => {
            let name = fetch::root_of(files, root)?;
            (loader.location(&name)?, files[&name].clone())
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `url`, `contract` and `files`",
            ))
        }
    };
    let doc = asyncgate_contract::load::load(&text, &policy.limits)?;
    let bundle =
        asyncgate_contract::bundle::gather(root_url, doc, &mut loader, &policy.limits).await?;
    if bundle.is_single() {
        let contract = asyncgate_contract::parse(&text, &policy.limits)?;
        return Ok((text, contract));
    }
    let inlined = asyncgate_contract::bundle::inline(&bundle, &policy.limits)?;
    let contract =
        asyncgate_contract::parse_document(&inlined, bundle.written_root(), &policy.limits)?;
    Ok((
        serde_json::to_string_pretty(&inlined).unwrap_or_default(),
        contract,
    ))
}

fn bundle_url(url: &str) -> ApiResult<url::Url> {
    url::Url::parse(url).map_err(|e| ApiError::bad_request(format!("`{url}` is not a URL: {e}")))
}

/// The API of the caller's organization `key` names: its id, its identifier, or
/// `project/identifier`, either with `@version` when the API has several versions. Another organization's API is not found (404), whoever asks.
pub(crate) async fn find(state: &AppState, caller: &Caller, key: &str) -> ApiResult<ApiRecord> {
    find_in(state, Some(&caller.org.id), key).await
}

/// The API `key` names in one organization (or in any, `None`). An identifier used in
/// several projects is never resolved to one of them silently (409).
pub(crate) async fn find_in(
    state: &AppState,
    org_id: Option<&str>,
    key: &str,
) -> ApiResult<ApiRecord> {
    let mut named = state.store.apis_named(org_id, key).await?;
    match named.len() {
        0 => Err(ApiError::not_found(format!(
            "no API with id or identifier `{key}`"
        ))),
        1 => Ok(named.remove(0)),
        _ if named[0].id == key => Ok(named.remove(0)),
        _ if named.iter().all(|a| a.project == named[0].project) => {
            let versions: Vec<String> = named
                .iter()
                .map(|a| format!("`{key}@{}`", a.design.version))
                .collect();
            Err(ApiError::conflict(format!(
                "`{key}` names several versions of an API: name one as {}, or give the API id",
                versions.join(" or ")
            )))
        }
        _ => {
            let mut projects: Vec<&str> = named.iter().map(|a| a.project.as_str()).collect();
            projects.dedup();
            Err(ApiError::conflict(format!(
                "`{key}` is an API identifier in several projects ({}): name the project as `<project>/{key}`, or give the API id",
                projects.join(", ")
            )))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/apis/import", tag = "apis",
    description = "The body is one of: JSON `ImportRequest`; the contract itself (`application/yaml`, `text/yaml`, `text/plain`, `application/vnd.aai.asyncapi+yaml` or `+json`, or JSON with a top-level `asyncapi` field) with the overrides as query parameters; or `multipart/form-data` with the contract in a `contract` (file) field and the overrides as fields.",
    request_body = ImportRequest, params(ImportRequest),
    responses((status = 201, body = ApiView), (status = 409, body = crate::error::Problem), (status = 413, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("admin" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ImportRequest>,
    request: Request,
) -> ApiResult<(StatusCode, Json<ApiView>)> {
    caller.require(Permission::ManageApis, "importing APIs")?;
    let req = upload::import_request(&state, query, request).await?;
    create(&state, &caller, req).await
}

/// The project an API is created in: the one named (made in the caller's organization
/// when no organization has it yet), or the organization's default.
async fn project_for(state: &AppState, caller: &Caller, named: Option<&str>) -> ApiResult<String> {
    let handle = match named {
        Some(h) => h.to_string(),
        None if caller.org.id == DEFAULT_ORG_ID => state.config.default_project.clone(),
        None => state.store.default_project(&caller.org.id).await?.handle,
    };
    check_identifier(&handle, "project")?;
    match state.store.project(&handle).await? {
        Some(p) if p.org_id == caller.org.id => {}
        Some(_) => {
            return Err(ApiError::conflict(format!(
            "the project handle `{handle}` belongs to another organization; choose another project"
        )))
        }
        None => {
            state
                .store
                .create_project(&ProjectRecord {
                    id: new_id("prj_"),
                    org_id: caller.org.id.clone(),
                    handle: handle.clone(),
                    name: handle.clone(),
                    created_at: now(),
                })
                .await?
        }
    }
    Ok(handle)
}

/// What an import request would create: the contract loaded, the values derived from it
/// with the request's overrides, all checked; nothing stored (the console's **Next**
/// shows it for editing).
pub(crate) async fn draft(
    state: &AppState,
    caller: &Caller,
    req: &ImportRequest,
) -> ApiResult<ApiRecord> {
    let (source, contract) = load_contract(
        state,
        req.url.as_deref(),
        req.contract.as_deref(),
        req.files.as_ref(),
        req.root.as_deref(),
    )
    .await?;
    let derived = derive(&contract);
    let project = project_for(state, caller, req.project.as_deref()).await?;
    let identifier = req.identifier.clone().unwrap_or(derived.identifier.clone());
    check_identifier(&identifier, "identifier")?;
    // What the user typed must pass the field rules; what the contract says is fitted.
    let version = match &req.version {
        Some(v) => fields::line(v, "version", fields::MAX_VERSION)?,
        None => fields::line(
            &fields::fitted(&derived.version, fields::MAX_VERSION, false),
            "version",
            fields::MAX_VERSION,
        )?,
    };
    let base_path = match &req.base_path {
        Some(b) => normalize_base_path(b)?,
        None => default_base_path(&project, &identifier, &version),
    };
    let target = match req.target.clone().or(derived.target.clone()) {
        Some(t) => check_target(&t)?,
        None => {
            return Err(ApiError::unprocessable(format!(
                "the contract declares no ws or wss server (protocols: {}); give the backend URL as `target`",
                if derived.protocols.is_empty() { "none".to_string() } else { derived.protocols.join(", ") }
            )))
        }
    };
    let at = now();
    let api = ApiRecord {
        id: new_id("api_"),
        org_id: caller.org.id.clone(),
        project,
        lifecycle: LifecycleState::Created,
        display_name: None,
        design: ApiDesign {
            name: match &req.name {
                Some(n) => fields::line(n, "name", fields::MAX_NAME)?,
                None => fields::line(
                    &fields::fitted(&derived.name, fields::MAX_NAME, false),
                    "name",
                    fields::MAX_NAME,
                )?,
            },
            identifier,
            version,
            base_path,
            target,
            description: match &req.description {
                Some(d) => Some(fields::text(d, "description", fields::MAX_DESCRIPTION)?),
                None => derived
                    .description
                    .map(|d| fields::fitted(&d, fields::MAX_DESCRIPTION, true)),
            },
            contract,
            limits: Default::default(),
            security: Default::default(),
            policies: Default::default(),
            backend_headers: Default::default(),
        },
        contract_source: source,
        created_at: at.clone(),
        updated_at: at,
        row_version: 0,
    };
    Ok(api)
}

/// Create an API from an import request.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    req: ImportRequest,
) -> ApiResult<(StatusCode, Json<ApiView>)> {
    let api = draft(state, caller, &req).await?;
    state.store.insert_api(&api).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "api.import",
            &api.id,
            Some(&api.id),
            &format!("{} {}", api.design.name, api.design.base_path),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(api_view(state, &api).await?)))
}

#[utoipa::path(get, path = "/api/v1/apis", tag = "apis", responses((status = 200, body = Vec<ApiView>)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiView>>> {
    caller.require(Permission::ReadApis, "listing APIs")?;
    let mut out = Vec::new();
    for api in state.store.apis(Some(&caller.org.id)).await? {
        out.push(api_view(&state, &api).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/apis/{api}", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = ApiView), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<ApiView>> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    let api = find(&state, &caller, &key).await?;
    Ok(Json(api_view(&state, &api).await?))
}

#[utoipa::path(patch, path = "/api/v1/apis/{api}", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    request_body = UpdateRequest, responses((status = 200, body = ApiView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Json<ApiView>> {
    caller.require(Permission::ManageApis, "editing APIs")?;
    let mut api = find(&state, &caller, &key).await?;
    let d = &mut api.design;
    if let Some(v) = req.name {
        d.name = fields::line(&v, "name", fields::MAX_NAME)?;
    }
    if let Some(v) = req.identifier {
        check_identifier(&v, "identifier")?;
        d.identifier = v;
    }
    if let Some(v) = req.version {
        d.version = fields::line(&v, "version", fields::MAX_VERSION)?;
    }
    if let Some(v) = req.base_path {
        d.base_path = normalize_base_path(&v)?;
    }
    if let Some(v) = req.target {
        d.target = check_target(&v)?;
    }
    if let Some(v) = req.description {
        d.description = Some(fields::text(&v, "description", fields::MAX_DESCRIPTION)?);
    }
    if let Some(patch) = &req.limits {
        patch.apply(&mut d.limits);
        d.limits.validate().map_err(ApiError::bad_request)?;
    }
    if let Some(headers) = &req.backend_headers {
        d.backend_headers = check_backend_headers(headers)?;
    }
    if let Some(patch) = &req.security {
        patch.apply(&mut d.security)?;
    }
    if let Some(v) = req.message_validation {
        d.policies.message_validation = v;
    }
    if let Some(v) = req.unjudged_messages {
        d.policies.unjudged = v;
    }
    if let Some(v) = req.compression {
        d.policies.compression = v;
    }
    d.policies.check().map_err(ApiError::bad_request)?;
    api.updated_at = now();
    state.store.update_api(&mut api).await?;
    state
        .store
        .audit(&caller.actor(), "api.update", &api.id, Some(&api.id), "")
        .await?;
    Ok(Json(api_view(&state, &api).await?))
}

#[utoipa::path(delete, path = "/api/v1/apis/{api}", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageApis, "deleting APIs")?;
    let api = find(&state, &caller, &key).await?;
    state.store.delete_api(&api.id).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "api.delete",
            &api.id,
            Some(&api.id),
            &api.design.name,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/revisions", tag = "apis", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = Vec<RevisionView>)), security(("admin" = [])))]
pub async fn revisions(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    caller.require(Permission::ReadApis, "reading APIs")?;
    let api = find(&state, &caller, &key).await?;
    let deployments = state.store.deployments(&api.id).await?;
    let out = state
        .store
        .revisions(&api.id)
        .await?
        .into_iter()
        .map(|r| RevisionView {
            deployed_to: deployments
                .iter()
                .filter(|d| d.revision == r.number)
                .map(|d| d.environment.clone())
                .collect(),
            number: r.number,
            created_at: r.created_at,
            created_by: r.created_by,
            name: r.design.name,
            version: r.design.version,
            base_path: r.design.base_path,
            target: r.design.target,
        })
        .collect();
    Ok(Json(out))
}

/// `/<project>/<identifier>/v<version>`, as the guide's platform builds it.
pub fn default_base_path(project: &str, identifier: &str, version: &str) -> String {
    let version = version.strip_prefix('v').unwrap_or(version);
    format!(
        "/{project}/{identifier}/v{}",
        asyncgate_core::version::path_segment(version)
    )
}

pub(crate) fn check_identifier(v: &str, field: &str) -> ApiResult<()> {
    if v.len() > fields::MAX_IDENTIFIER {
        return Err(ApiError::bad_request(format!(
            "`{field}` is {} characters long; at most {} are allowed",
            v.len(),
            fields::MAX_IDENTIFIER
        )));
    }
    if !v.is_empty() && slugify(v) == v {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`{field}` must be lower-case letters, digits and single dashes (for example `{}`), got `{v}`",
            slugify(v)
        )))
    }
}

pub(crate) fn normalize_base_path(v: &str) -> ApiResult<String> {
    let trimmed = v.trim().trim_end_matches('/');
    if trimmed.len() > fields::MAX_BASE_PATH {
        return Err(ApiError::bad_request(format!(
            "`basePath` is {} characters long; at most {} are allowed",
            trimmed.len(),
            fields::MAX_BASE_PATH
        )));
    }
    let ok = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "`basePath` must start with `/` and use only letters, digits and `-._~` between slashes, got `{v}`"
        )));
    }
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "`basePath` must not be `/`: every API needs its own prefix",
        ));
    }
    if trimmed.split('/').any(|s| s == "." || s == "..") {
        return Err(ApiError::bad_request(format!(
            "`basePath` must not hold `.` or `..` segments, got `{v}`"
        )));
    }
    Ok(trimmed.to_string())
}

pub(crate) fn check_target(v: &str) -> ApiResult<String> {
    if v.trim() == asyncgate_core::domain::MOCK_TARGET {
        return Ok(asyncgate_core::domain::MOCK_TARGET.to_string());
    }
    let url = url::Url::parse(v.trim())
        .map_err(|e| ApiError::bad_request(format!("`target` {v} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(ApiError::bad_request(format!(
            "`target` must be a ws:// or wss:// URL (or `mock:`), got {v}"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!("`target` {v} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed back: the user-info may be a password.
        return Err(ApiError::bad_request(
            "`target` must not hold user information (user:password@): give backend credentials as backend headers, which are never shown",
        ));
    }
    Ok(v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(
            default_base_path("default", "chat-api", "1.0.0"),
            "/default/chat-api/v1.0.0"
        );
        assert_eq!(default_base_path("p", "x", "v2"), "/p/x/v2");
        assert_eq!(normalize_base_path("/a/b/").unwrap(), "/a/b");
        assert!(normalize_base_path("a/b").is_err());
        assert!(normalize_base_path("/").is_err());
        assert!(normalize_base_path("/a?b").is_err());
        assert!(normalize_base_path("/a/../b").is_err());
        assert!(normalize_base_path("/a/.").is_err());
        assert!(normalize_base_path("/a/.b/c..").is_ok());
    }

    #[test]
    fn targets() {
        assert!(check_target("ws://127.0.0.1:1").is_ok());
        assert!(check_target("http://x").is_err());
        assert!(check_target("nonsense").is_err());
        let err = check_target("ws://user:hunter2@10.0.0.1/x").unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        assert!(check_target("wss://token@b.example").is_err());
    }
}
