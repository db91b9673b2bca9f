//! The members of an organization: added with a role (created as users when new),
//! listed, given another role, blocked and removed. Admins only.

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use asyncgate_core::{Permission, Role};
use asyncgate_store::Member;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddUserRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub role: Role,
    /// Required for a new user; ignored for one who already exists (their password is
    /// theirs, whoever adds them to an organization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Block (true) or unblock the user: a blocked user cannot sign in, their tokens and
    /// their applications' credentials stop working and live connections close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub blocked: bool,
    pub joined_at: String,
}

impl From<Member> for UserView {
    fn from(m: Member) -> Self {
        UserView {
            id: m.user.id,
            email: m.user.email,
            role: m.role,
            blocked: m.user.blocked_at.is_some(),
            joined_at: m.joined_at,
        }
    }
}

/// The member of the caller's organization `key` names (id or email); others are 404.
async fn member(state: &AppState, caller: &Caller, key: &str) -> ApiResult<Member> {
    state
        .store
        .members(&caller.org.id, Some(key))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no user `{key}` in {}", caller.org.name)))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = AddUserRequest,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<AddUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    caller.require(Permission::ManageUsers, "adding users")?;
    let email = crate::fields::email(&req.email)?;
    let user = match state.store.user_by_email(&email).await? {
        Some(existing) => existing,
        None => {
            let password = req.password.as_deref().ok_or_else(|| {
                ApiError::unprocessable(format!("{email} is a new user: give a password"))
            })?;
            crate::orgs::new_user(&email, password).await?
        }
    };
    state
        .store
        .add_member(&user, &caller.org.id, req.role)
        .await?;
    state
        .store
        .audit(
            &caller.actor(),
            "user.add",
            &user.id,
            None,
            &format!("{} as {}", user.email, req.role),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(member(&state, &caller, &user.id).await?.into()),
    ))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<UserView>)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<UserView>>> {
    caller.require(Permission::ManageUsers, "listing users")?;
    Ok(Json(
        state
            .store
            .members(&caller.org.id, None)
            .await?
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path, description = "user id or email")),
    request_body = UpdateUserRequest, responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    caller.require(Permission::ManageUsers, "changing users")?;
    let m = member(&state, &caller, &key).await?;
    if caller.user_id() == Some(m.user.id.as_str())
        && (req.blocked == Some(true) || req.role.is_some_and(|r| r != Role::Admin))
    {
        return Err(ApiError::conflict(
            "you cannot block yourself or give up your own admin role; ask another admin",
        ));
    }
    if let Some(role) = req.role {
        state
            .store
            .set_role(&caller.org.id, &m.user.id, role)
            .await?;
        state
            .store
            .audit(
                &caller.actor(),
                "user.role",
                &m.user.id,
                None,
                &format!("{} -> {role}", m.role),
            )
            .await?;
    }
    if let Some(blocked) = req.blocked {
        state.store.set_user_blocked(&m.user.id, blocked).await?;
        let action = if blocked {
            "user.block"
        } else {
            "user.unblock"
        };
        state
            .store
            .audit(&caller.actor(), action, &m.user.id, None, &m.user.email)
            .await?;
        // Their applications' credentials stop (or start) working at the gateway.
        state.publisher.publish(&state.store).await?;
    }
    Ok(Json(member(&state, &caller, &m.user.id).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path, description = "user id or email")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageUsers, "removing users")?;
    let m = member(&state, &caller, &key).await?;
    if caller.user_id() == Some(m.user.id.as_str()) {
        return Err(ApiError::conflict(
            "you cannot remove yourself; ask another admin",
        ));
    }
    state
        .store
        .remove_member(&caller.org.id, &m.user.id)
        .await?;
    state
        .store
        .audit(
            &caller.actor(),
            "user.remove",
            &m.user.id,
            None,
            &m.user.email,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
