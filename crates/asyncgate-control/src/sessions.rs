//! Signing in and out, who am I, and personal access tokens. Tokens are random secrets
//! shown once and stored as hashes; sessions expire, personal tokens when asked to.

use crate::auth::{unix_now, Authenticated, ClientIp, Principal};
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::passwords;
use crate::state::AppState;
use asyncgate_core::credential::{generate_secret, hash_secret, new_id};
use asyncgate_store::{now, TokenKind, UserRecord, UserTokenRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "ags_";
/// Prefix of personal access tokens.
pub const PERSONAL_PREFIX: &str = "agp_";

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Bearer token of the session; shown only in this response.
    pub token: String,
    /// Unix time (seconds) the session ends.
    pub expires_at: i64,
    pub me: Me,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub org_id: String,
    pub handle: String,
    pub name: String,
    #[schema(value_type = String)]
    pub role: asyncgate_core::Role,
}

/// Who the caller is and where they belong.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The user's id, or `operator` for the admin token.
    pub id: String,
    /// The user's email; absent for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub organizations: Vec<Membership>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// What the token is for, to recognise it in the list.
    pub name: String,
    /// Days until it expires; never when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenCreated {
    pub id: String,
    /// The token itself; shown only in this response.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A personal access token as listed: never the token, only its first characters.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

/// Make a token for `user`: the record kept and the secret shown once.
fn mint(
    user: &UserRecord,
    kind: TokenKind,
    name: &str,
    ttl_seconds: Option<i64>,
) -> (UserTokenRecord, String) {
    let prefix = match kind {
        TokenKind::Session => SESSION_PREFIX,
        TokenKind::Personal => PERSONAL_PREFIX,
    };
    let secret = generate_secret(prefix);
    let record = UserTokenRecord {
        id: new_id("tok_"),
        user_id: user.id.clone(),
        kind,
        name: name.to_string(),
        hash: hash_secret(&secret),
        hint: secret[..prefix.len() + 4].to_string(),
        created_at: now(),
        expires_at: ttl_seconds.map(|t| unix_now() + t),
        revoked_at: None,
    };
    (record, secret)
}

/// Record what a user did in the audit log of every organization they belong to (a
/// sign-in or a personal token concerns all of them).
async fn audit_everywhere(
    state: &AppState,
    auth: &Authenticated,
    action: &str,
    subject: &str,
    detail: &str,
) -> ApiResult<()> {
    let Some(user) = auth.user() else {
        return Ok(());
    };
    for (org, _) in state.store.memberships(&user.id).await? {
        state
            .store
            .audit(&auth.actor(&org.id), action, subject, None, detail)
            .await?;
    }
    Ok(())
}

async fn me_of(state: &AppState, auth: &Authenticated) -> ApiResult<Me> {
    Ok(match &auth.principal {
        Principal::Operator => Me {
            id: "operator".into(),
            email: None,
            organizations: state
                .store
                .orgs()
                .await?
                .into_iter()
                .map(|o| Membership {
                    org_id: o.id,
                    handle: o.handle,
                    name: o.name,
                    role: asyncgate_core::Role::Admin,
                })
                .collect(),
        },
        Principal::User(u) => Me {
            id: u.id.clone(),
            email: Some(u.email.clone()),
            organizations: state
                .store
                .memberships(&u.id)
                .await?
                .into_iter()
                .map(|(o, role)| Membership {
                    org_id: o.id,
                    handle: o.handle,
                    name: o.name,
                    role,
                })
                .collect(),
        },
    })
}

#[utoipa::path(post, path = "/api/v1/login", tag = "users", request_body = LoginRequest,
    responses((status = 201, body = Session), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(origin): ClientIp,
    Body(req): Body<LoginRequest>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let session = sign_in(&state, origin, &req.email, &req.password).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Sign in with email and password: the REST API's, the console's and the portal's.
pub(crate) async fn sign_in(
    state: &AppState,
    origin: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> ApiResult<Session> {
    let user = check_password(state, origin, email, password).await?;
    open_session(state, user, origin).await
}

/// The user whose email and password these are, if they may sign in: one rule for the
/// REST API and the console (attempts limited per address, failures audited, the same
/// answer for an unknown email and a wrong password).
async fn check_password(
    state: &AppState,
    origin: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> ApiResult<UserRecord> {
    if let Some(ip) = origin {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many sign-in attempts from this address; wait a minute",
            ));
        }
    }
    let user = state.store.user_by_email(email.trim()).await?;
    let matched =
        passwords::verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    match user {
        Some(u) if matched && u.blocked_at.is_none() => Ok(u),
        found => {
            // Recorded in each organization of a known user; the password never is.
            if let Some(u) = found {
                let attempt = Authenticated {
                    principal: Principal::User(u.clone()),
                    origin: origin.map(|ip| ip.to_string()).unwrap_or_default(),
                };
                audit_everywhere(state, &attempt, "user.login_failed", &u.id, "").await?;
            }
            tracing::info!(origin = ?origin, "sign-in refused");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong email or password (or the user is blocked)",
            ))
        }
    }
}

/// A new session for a user who proved who they are (audited).
pub(crate) async fn open_session(
    state: &AppState,
    user: UserRecord,
    origin: Option<std::net::IpAddr>,
) -> ApiResult<Session> {
    let ttl = state.config.session_ttl.as_secs() as i64;
    let (record, token) = mint(&user, TokenKind::Session, "session", Some(ttl));
    state.store.insert_user_token(&record).await?;
    let auth = Authenticated {
        principal: Principal::User(user.clone()),
        origin: origin.map(|ip| ip.to_string()).unwrap_or_default(),
    };
    let me = me_of(state, &auth).await?;
    audit_everywhere(state, &auth, "user.login", &user.id, "").await?;
    Ok(Session {
        token,
        expires_at: record.expires_at.unwrap_or_default(),
        me,
    })
}

/// End the session whose token this is (a no-op for an unknown one).
pub(crate) async fn end_session(state: &AppState, token: &str) -> ApiResult<()> {
    if let Some((user, t)) = state
        .store
        .user_of_token(&hash_secret(token), unix_now())
        .await?
    {
        state.store.revoke_user_token(&user.id, &t.id).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "users", responses((status = 204)), security(("admin" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    if let (Some(_), Some(token)) = (auth.user(), crate::auth::bearer(&headers)) {
        end_session(&state, token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users", responses((status = 200, body = Me)), security(("admin" = [])))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> ApiResult<Json<Me>> {
    Ok(Json(me_of(&state, &auth).await?))
}

fn user_only(auth: &Authenticated) -> ApiResult<&UserRecord> {
    auth.user().ok_or_else(|| {
        ApiError::bad_request("the operator has no personal tokens: the admin token is the operator's; add a user and sign in as them")
    })
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = TokenRequest,
    responses((status = 201, body = TokenCreated)), security(("admin" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    auth: Authenticated,
    Body(req): Body<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let user = user_only(&auth)?;
    let name = crate::fields::line(&req.name, "name", crate::fields::MAX_NAME)?;
    let ttl = req.expires_in_days.map(|d| i64::from(d) * 86_400);
    let (record, token) = mint(user, TokenKind::Personal, &name, ttl);
    state.store.insert_user_token(&record).await?;
    audit_everywhere(&state, &auth, "token.create", &record.id, &name).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: record.id,
            token,
            expires_at: record.expires_at,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "users", responses((status = 200, body = Vec<TokenView>)), security(("admin" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    auth: Authenticated,
) -> ApiResult<Json<Vec<TokenView>>> {
    let user = user_only(&auth)?;
    Ok(Json(
        state
            .store
            .personal_tokens(&user.id)
            .await?
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                hint: t.hint,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "users", params(("token" = String, Path, description = "token id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = user_only(&auth)?;
    if !state.store.revoke_user_token(&user.id, &id).await? {
        return Err(ApiError::not_found(format!(
            "no active token `{id}` of yours"
        )));
    }
    audit_everywhere(&state, &auth, "token.revoke", &id, "").await?;
    Ok(StatusCode::NO_CONTENT)
}
