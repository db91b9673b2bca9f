//! Organizations: created by the operator or by any signed-in user (who becomes its
//! admin), each with a default project and the default plans.

use crate::auth::{Authenticated, Principal};
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::passwords;
use crate::state::AppState;
use asyncgate_contract::slugify;
use asyncgate_core::credential::new_id;
use asyncgate_core::Role;
use asyncgate_store::{now, OrgRecord, ProjectRecord, UserRecord};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgRequest {
    /// A unique organization name, for example `Stark Industries`.
    pub name: String,
    /// URL-safe handle; derived from the name when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The first admin (operator only; a signed-in user becomes the admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    pub id: String,
    pub handle: String,
    pub name: String,
    /// Handle of the default project (the first segment of its APIs' default base paths).
    pub default_project: String,
    pub created_at: String,
}

async fn view(state: &AppState, org: OrgRecord) -> ApiResult<OrgView> {
    let project = state.store.default_project(&org.id).await?;
    Ok(OrgView {
        default_project: project.handle,
        id: org.id,
        handle: org.handle,
        name: org.name,
        created_at: org.created_at,
    })
}

/// A new user record (not stored), after checking the email and password.
pub(crate) async fn new_user(email: &str, password: &str) -> ApiResult<UserRecord> {
    let email = crate::fields::email(email)?;
    passwords::check_new(password)?;
    Ok(UserRecord {
        id: new_id("usr_"),
        email,
        password_hash: passwords::hash(password).await?,
        created_at: now(),
        blocked_at: None,
    })
}

#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = OrgRequest,
    responses((status = 201, body = OrgView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    Body(req): Body<OrgRequest>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let name = crate::fields::line(&req.name, "name", crate::fields::MAX_NAME)?;
    let handle = match &req.handle {
        Some(h) => {
            crate::apis::check_identifier(h, "handle")?;
            h.clone()
        }
        None => slugify(&name),
    };
    if handle.is_empty() {
        return Err(ApiError::unprocessable(
            "the name has no letters or digits to make a handle of; give a handle",
        ));
    }
    // Who becomes the admin: the signed-in user, or (for the operator) the one named.
    let admin = match (&auth.principal, &req.admin_email, &req.admin_password) {
        (Principal::User(u), None, None) => Some(u.clone()),
        (Principal::User(_), _, _) => {
            return Err(ApiError::bad_request("adminEmail and adminPassword are for the operator; you become this organization's admin"))
        }
        (Principal::Operator, Some(email), Some(password)) => Some(match state.store.user_by_email(email).await? {
            Some(existing) => existing,
            None => new_user(email, password).await?,
        }),
        (Principal::Operator, None, None) => None,
        (Principal::Operator, _, _) => return Err(ApiError::bad_request("give both adminEmail and adminPassword, or neither")),
    };
    let org = OrgRecord {
        id: new_id("org_"),
        handle: handle.clone(),
        name,
        created_at: now(),
    };
    // The default project's handle is the organization's, unless a project has it.
    let project = match state.store.project(&handle).await? {
        None => handle.clone(),
        Some(_) => format!("{handle}-{}", &new_id("")[..6]),
    };
    state.store.create_org(&org, &project).await?;
    state.store.ensure_default_plans(&org.id).await?;
    if let Some(admin) = &admin {
        state.store.add_member(admin, &org.id, Role::Admin).await?;
    }
    state
        .store
        .audit(&auth.actor(&org.id), "org.create", &org.id, None, &org.name)
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, org).await?)))
}

#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", responses((status = 200, body = Vec<OrgView>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
) -> ApiResult<Json<Vec<OrgView>>> {
    let orgs = match &auth.principal {
        Principal::Operator => state.store.orgs().await?,
        Principal::User(u) => state
            .store
            .memberships(&u.id)
            .await?
            .into_iter()
            .map(|(o, _)| o)
            .collect(),
    };
    let mut out = Vec::new();
    for org in orgs {
        out.push(view(&state, org).await?);
    }
    Ok(Json(out))
}

/// The projects of the caller's organization.
#[utoipa::path(get, path = "/api/v1/projects", tag = "organizations", responses((status = 200, body = Vec<Object>)), security(("admin" = [])))]
pub async fn projects(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> ApiResult<Json<Vec<ProjectRecord>>> {
    Ok(Json(state.store.projects(&caller.org.id).await?))
}

/// The settings of the caller's organization.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgSettings {
    /// Whether consumers may sign themselves up as subscribers in the developer portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_signup: Option<bool>,
}

async fn settings_of(state: &AppState, org_id: &str) -> ApiResult<OrgSettings> {
    Ok(OrgSettings {
        subscriber_signup: Some(state.store.subscriber_signup(org_id).await?),
    })
}

#[utoipa::path(get, path = "/api/v1/organization/settings", tag = "organizations", responses((status = 200, body = OrgSettings)), security(("admin" = [])))]
pub async fn settings(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> ApiResult<Json<OrgSettings>> {
    Ok(Json(settings_of(&state, &caller.org.id).await?))
}

#[utoipa::path(patch, path = "/api/v1/organization/settings", tag = "organizations", request_body = OrgSettings,
    responses((status = 200, body = OrgSettings), (status = 403, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Body(req): Body<OrgSettings>,
) -> ApiResult<Json<OrgSettings>> {
    caller.require(
        asyncgate_core::Permission::ManageOrganization,
        "changing the organization's settings",
    )?;
    if let Some(open) = req.subscriber_signup {
        state
            .store
            .set_subscriber_signup(&caller.org.id, open)
            .await?;
        state
            .store
            .audit(
                &caller.actor(),
                "org.settings",
                &caller.org.id,
                None,
                &format!("subscriberSignup={open}"),
            )
            .await?;
    }
    Ok(Json(settings_of(&state, &caller.org.id).await?))
}
