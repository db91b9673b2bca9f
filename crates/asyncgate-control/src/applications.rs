//! Consumers' applications: OAuth2 clients (client id and a secret shown once, stored
//! hashed), their subscriptions to APIs on a plan, and their API keys per environment.
//! A subscriber sees and changes only their own applications; an admin every one of the
//! organization's.

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use asyncgate_core::credential::{
    generate_secret, hash_secret, new_id, API_KEY_PREFIX, CLIENT_SECRET_PREFIX,
};
use asyncgate_core::{Permission, PlanLimits};
use asyncgate_store::{now, AppKeyRecord, AppRecord, PlanRecord, SubscriptionRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRequest {
    pub name: String,
}

/// A new application, or one whose secret was regenerated: the secret is shown only here.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppCreated {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    pub api_id: String,
    pub api_name: String,
    pub plan: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppKeyView {
    pub id: String,
    pub environment: String,
    /// The key's first characters (the key itself is never shown again).
    pub hint: String,
    pub created_at: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub client_id: String,
    /// The owner's user id; absent for the operator's applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub blocked: bool,
    pub created_at: String,
    pub subscriptions: Vec<SubscriptionView>,
    pub keys: Vec<AppKeyView>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeRequest {
    /// API id or identifier.
    pub api: String,
    /// Plan name (default `Unlimited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppKeyRequest {
    pub environment: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppKeyCreated {
    pub id: String,
    /// The key itself; shown only in this response.
    pub key: String,
    pub environment: String,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppUpdate {
    /// Block (true) or unblock: a blocked application's credentials are refused and its
    /// live connections closed. Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub limits: PlanLimits,
}

impl From<PlanRecord> for PlanView {
    fn from(p: PlanRecord) -> Self {
        PlanView {
            id: p.id,
            name: p.name,
            limits: p.limits,
        }
    }
}

/// The application `key` names (id, client id or name) that the caller may see: their
/// own, or any of the organization's for an admin. Others are 404.
async fn find_app(state: &AppState, caller: &Caller, key: &str) -> ApiResult<AppRecord> {
    caller.require(Permission::UseApplications, "using applications")?;
    let app = state.store.app(&caller.org.id, key).await?;
    app.filter(|a| {
        caller.allows(Permission::ManageAllApplications)
            || a.owner_id.as_deref() == caller.user_id()
    })
    .ok_or_else(|| ApiError::not_found(format!("no application `{key}` of yours")))
}

async fn view(state: &AppState, app: AppRecord) -> ApiResult<AppView> {
    let plans = state.store.plans(&app.org_id).await?;
    let mut subscriptions = Vec::new();
    for s in state.store.subscriptions(&app.id).await? {
        let api = crate::apis::find_in(state, Some(&app.org_id), &s.api_id).await?;
        subscriptions.push(SubscriptionView {
            id: s.id,
            api_name: api.display_name.unwrap_or(api.design.name),
            api_id: s.api_id,
            plan: plans
                .iter()
                .find(|p| p.id == s.plan_id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            created_at: s.created_at,
        });
    }
    let keys = state
        .store
        .app_keys(&app.id)
        .await?
        .into_iter()
        .map(|k| AppKeyView {
            id: k.id,
            environment: k.environment,
            hint: k.hint,
            created_at: k.created_at,
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    Ok(AppView {
        id: app.id,
        name: app.name,
        client_id: app.client_id,
        owner_id: app.owner_id,
        blocked: app.blocked_at.is_some(),
        created_at: app.created_at,
        subscriptions,
        keys,
    })
}

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = AppRequest,
    responses((status = 201, body = AppCreated), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<AppRequest>,
) -> ApiResult<(StatusCode, Json<AppCreated>)> {
    caller.require(Permission::UseApplications, "creating applications")?;
    let name = crate::fields::line(&req.name, "name", crate::fields::MAX_NAME)?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX);
    let app = AppRecord {
        id: new_id("app_"),
        org_id: caller.org.id.clone(),
        owner_id: caller.user_id().map(str::to_string),
        name,
        client_id: new_id("cl_"),
        secret_hash: hash_secret(&secret),
        created_at: now(),
        blocked_at: None,
    };
    state.store.insert_app(&app).await?;
    state
        .store
        .audit(&caller.actor(), "app.create", &app.id, None, &app.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AppCreated {
            id: app.id,
            name: app.name,
            client_id: app.client_id,
            client_secret: secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", responses((status = 200, body = Vec<AppView>)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<AppView>>> {
    caller.require(Permission::UseApplications, "using applications")?;
    let all = caller.allows(Permission::ManageAllApplications);
    let mut out = Vec::new();
    for app in state.store.apps(&caller.org.id).await? {
        if all || app.owner_id.as_deref() == caller.user_id() {
            out.push(view(&state, app).await?);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/applications/{app}", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    responses((status = 200, body = AppView), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<AppView>> {
    let app = find_app(&state, &caller, &key).await?;
    Ok(Json(view(&state, app).await?))
}

#[utoipa::path(patch, path = "/api/v1/applications/{app}", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    request_body = AppUpdate, responses((status = 200, body = AppView), (status = 403, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<AppUpdate>,
) -> ApiResult<Json<AppView>> {
    let app = find_app(&state, &caller, &key).await?;
    if let Some(blocked) = req.blocked {
        caller.require(Permission::ManageAllApplications, "blocking applications")?;
        state.store.set_app_blocked(&app.id, blocked).await?;
        let action = if blocked { "app.block" } else { "app.unblock" };
        state
            .store
            .audit(&caller.actor(), action, &app.id, None, &app.name)
            .await?;
        state.publisher.publish(&state.store).await?;
    }
    let app = find_app(&state, &caller, &app.id).await?;
    Ok(Json(view(&state, app).await?))
}

#[utoipa::path(delete, path = "/api/v1/applications/{app}", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let app = find_app(&state, &caller, &key).await?;
    state.store.delete_app(&app.id).await?;
    state
        .store
        .audit(&caller.actor(), "app.delete", &app.id, None, &app.name)
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/applications/{app}/secret", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    responses((status = 201, body = AppCreated)), security(("admin" = [])))]
pub async fn regenerate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<(StatusCode, Json<AppCreated>)> {
    let app = find_app(&state, &caller, &key).await?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX);
    state
        .store
        .set_app_secret(&app.id, &hash_secret(&secret))
        .await?;
    state
        .store
        .audit(&caller.actor(), "app.secret", &app.id, None, &app.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AppCreated {
            id: app.id,
            name: app.name,
            client_id: app.client_id,
            client_secret: secret,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/applications/{app}/subscriptions", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    request_body = SubscribeRequest, responses((status = 201, body = SubscriptionView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<SubscribeRequest>,
) -> ApiResult<(StatusCode, Json<SubscriptionView>)> {
    let app = find_app(&state, &caller, &key).await?;
    // Any API of the organization the portal shows; a subscriber cannot read the console.
    let api = crate::apis::find_in(&state, Some(&caller.org.id), &req.api).await?;
    if !api.lifecycle.accepts_subscriptions() {
        return Err(ApiError::conflict(format!(
            "{} is {} and takes no subscriptions; only Published APIs do",
            api.design.name, api.lifecycle
        )));
    }
    let plan_name = req.plan.as_deref().unwrap_or("Unlimited");
    let plans = state.store.plans(&caller.org.id).await?;
    let plan = plans
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(plan_name))
        .ok_or_else(|| {
            let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
            ApiError::unprocessable(format!(
                "no plan `{plan_name}`; the plans are {}",
                names.join(", ")
            ))
        })?;
    let sub = SubscriptionRecord {
        id: new_id("sub_"),
        app_id: app.id.clone(),
        api_id: api.id.clone(),
        plan_id: plan.id.clone(),
        created_at: now(),
    };
    state.store.insert_subscription(&sub).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "app.subscribe",
            &app.id,
            Some(&api.id),
            &format!("{} on {}", app.name, plan.name),
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionView {
            id: sub.id,
            api_id: api.id,
            api_name: api.display_name.unwrap_or(api.design.name),
            plan: plan.name.clone(),
            created_at: sub.created_at,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/applications/{app}/subscriptions/{api}", tag = "applications",
    params(("app" = String, Path, description = "application id, client id or name"), ("api" = String, Path, description = "API id or identifier")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, api_key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = find_app(&state, &caller, &key).await?;
    let api = crate::apis::find_in(&state, Some(&caller.org.id), &api_key).await?;
    if !state.store.delete_subscription(&app.id, &api.id).await? {
        return Err(ApiError::not_found(format!(
            "{} is not subscribed to {}",
            app.name, api.design.name
        )));
    }
    state
        .store
        .audit(
            &caller.actor(),
            "app.unsubscribe",
            &app.id,
            Some(&api.id),
            &app.name,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/applications/{app}/keys", tag = "applications", params(("app" = String, Path, description = "application id, client id or name")),
    request_body = AppKeyRequest, responses((status = 201, body = AppKeyCreated)), security(("admin" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<AppKeyRequest>,
) -> ApiResult<(StatusCode, Json<AppKeyCreated>)> {
    let app = find_app(&state, &caller, &key).await?;
    let created = mint_key(&state, &caller, &app, &req.environment).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn mint_key(
    state: &AppState,
    caller: &Caller,
    app: &AppRecord,
    environment: &str,
) -> ApiResult<AppKeyCreated> {
    if state.environment(environment).is_none() {
        let names: Vec<&str> = state
            .config
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        return Err(ApiError::unprocessable(format!(
            "no environment `{environment}`; the environments are {}",
            names.join(", ")
        )));
    }
    let secret = generate_secret(API_KEY_PREFIX);
    let record = AppKeyRecord {
        id: new_id("key_"),
        app_id: app.id.clone(),
        environment: environment.to_string(),
        hash: hash_secret(&secret),
        hint: secret[..API_KEY_PREFIX.len() + 4].to_string(),
        created_at: now(),
        revoked_at: None,
    };
    state.store.insert_app_key(&record).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "app.key.create",
            &app.id,
            None,
            &format!("{} in {environment}", record.id),
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(AppKeyCreated {
        id: record.id,
        key: secret,
        environment: record.environment,
    })
}

#[utoipa::path(delete, path = "/api/v1/applications/{app}/keys/{key}", tag = "applications",
    params(("app" = String, Path, description = "application id, client id or name"), ("key" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = find_app(&state, &caller, &key).await?;
    revoke(&state, &caller, &app, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    state: &AppState,
    caller: &Caller,
    app: &AppRecord,
    key_id: &str,
) -> ApiResult<AppKeyRecord> {
    let record = state
        .store
        .app_keys(&app.id)
        .await?
        .into_iter()
        .find(|k| k.id == key_id && k.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("no active key `{key_id}` of {}", app.name)))?;
    state.store.revoke_app_key(&app.id, key_id).await?;
    state
        .store
        .audit(&caller.actor(), "app.key.revoke", &app.id, None, key_id)
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(record)
}

#[utoipa::path(post, path = "/api/v1/applications/{app}/keys/{key}/regenerate", tag = "applications",
    params(("app" = String, Path, description = "application id, client id or name"), ("key" = String, Path, description = "key id")),
    responses((status = 201, body = AppKeyCreated)), security(("admin" = [])))]
pub async fn regenerate_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, key_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<AppKeyCreated>)> {
    let app = find_app(&state, &caller, &key).await?;
    let old = revoke(&state, &caller, &app, &key_id).await?;
    let created = mint_key(&state, &caller, &app, &old.environment).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/plans", tag = "applications", responses((status = 200, body = Vec<PlanView>)), security(("admin" = [])))]
pub async fn plans(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<PlanView>>> {
    caller.require(Permission::UseApplications, "reading plans")?;
    Ok(Json(
        state
            .store
            .plans(&caller.org.id)
            .await?
            .into_iter()
            .map(PlanView::from)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanRequest {
    pub name: String,
    /// Concurrent connections per subscription and environment (0 = no limit).
    #[serde(default)]
    pub max_connections: u64,
    /// Frames of either direction per minute, per subscription and environment (0 = no limit).
    #[serde(default)]
    pub messages_per_minute: u64,
    /// Payload bytes of either direction per minute (0 = no limit).
    #[serde(default)]
    pub bytes_per_minute: u64,
    /// `close` (1008) or `drop` (the message is not forwarded and is counted).
    #[serde(default = "default_excess")]
    #[schema(value_type = String)]
    pub on_excess: asyncgate_core::OnExcess,
}

fn default_excess() -> asyncgate_core::OnExcess {
    asyncgate_core::OnExcess::Close
}

#[utoipa::path(post, path = "/api/v1/plans", tag = "applications", request_body = PlanRequest,
    responses((status = 201, body = PlanView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create_plan(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<PlanRequest>,
) -> ApiResult<(StatusCode, Json<PlanView>)> {
    caller.require(Permission::ManageOrganization, "creating plans")?;
    let plan = PlanRecord {
        id: new_id("pln_"),
        org_id: caller.org.id.clone(),
        name: crate::fields::line(&req.name, "name", crate::fields::MAX_NAME)?,
        limits: PlanLimits {
            max_connections: req.max_connections,
            messages_per_minute: req.messages_per_minute,
            bytes_per_minute: req.bytes_per_minute,
            on_excess: req.on_excess,
        },
        created_at: now(),
    };
    state.store.create_plan(&plan).await?;
    state
        .store
        .audit(&caller.actor(), "plan.create", &plan.id, None, &plan.name)
        .await?;
    Ok((StatusCode::CREATED, Json(plan.into())))
}
