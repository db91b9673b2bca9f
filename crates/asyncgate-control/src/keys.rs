//! Credentials for calling an API through the gateway: API keys (shown once, stored
//! hashed) and short-lived bearer tokens for the test console.

use crate::apis::find;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{deployment_view, DeploymentView, KeyView};
use asyncgate_core::credential::{
    generate_secret, hash_secret, new_id, AccessClaims, API_KEY_PREFIX,
};
use asyncgate_core::Permission;
use asyncgate_store::{now, KeyRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyCreated {
    /// The key itself. It is shown only in this response.
    pub key: String,
    pub id: String,
    pub api_id: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestTokenRequest {
    pub environment: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestToken {
    /// Bearer token for this API in this environment.
    pub token: String,
    /// Unix time (seconds) the token expires at.
    pub expires_at: u64,
    pub deployment: DeploymentView,
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/keys", tag = "keys", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 201, body = KeyCreated)), security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    caller.require(Permission::ManageApis, "creating API keys")?;
    let api = find(&state, &caller, &key).await?;
    let secret = generate_secret(API_KEY_PREFIX);
    let record = KeyRecord {
        id: new_id("key_"),
        api_id: api.id.clone(),
        hash: hash_secret(&secret),
        hint: secret[..API_KEY_PREFIX.len() + 4].to_string(),
        created_at: now(),
        revoked_at: None,
    };
    state.store.insert_key(&record).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "key.create",
            &api.id,
            Some(&api.id),
            &record.id,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: secret,
            id: record.id,
            api_id: record.api_id,
            created_at: record.created_at,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/apis/{api}/keys", tag = "keys", params(("api" = String, Path, description = "API id or identifier")),
    responses((status = 200, body = Vec<KeyView>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<KeyView>>> {
    caller.require(Permission::ReadApis, "reading API keys")?;
    let api = find(&state, &caller, &key).await?;
    Ok(Json(
        state
            .store
            .keys(&api.id)
            .await?
            .iter()
            .map(KeyView::from)
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/apis/{api}/keys/{key}", tag = "keys",
    params(("api" = String, Path, description = "API id or identifier"), ("key" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageApis, "revoking API keys")?;
    let api = find(&state, &caller, &key).await?;
    if !state.store.revoke_key(&api.id, &key_id).await? {
        return Err(ApiError::not_found(format!(
            "no active key `{key_id}` for {}",
            api.design.name
        )));
    }
    state
        .store
        .audit(
            &caller.actor(),
            "key.revoke",
            &api.id,
            Some(&api.id),
            &key_id,
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/apis/{api}/test-token", tag = "keys", params(("api" = String, Path, description = "API id or identifier")),
    request_body = TestTokenRequest, responses((status = 201, body = TestToken), (status = 409, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn test_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(req): Body<TestTokenRequest>,
) -> ApiResult<(StatusCode, Json<TestToken>)> {
    caller.require(Permission::ManageApis, "minting test tokens")?;
    let api = find(&state, &caller, &key).await?;
    let deployed = crate::deployments::deployed_to(&state, &api, &req.environment).await?;
    let (deployment, design) = (deployed.deployment, deployed.revision.design);
    let iat = asyncgate_core::credential::unix_now();
    let exp = iat + state.config.test_token_ttl.as_secs();
    let claims = AccessClaims {
        iss: state.publisher.issuer().to_string(),
        sub: format!("test-console:{}", caller.auth.who()),
        aud: api.id.clone(),
        client_id: None,
        scope: None,
        jti: Some(new_id("jti_")),
        env: Some(req.environment.clone()),
        iat,
        exp,
    };
    let token = crate::signing::sign(&state.store, &claims).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "token.test",
            &api.id,
            Some(&api.id),
            &req.environment,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TestToken {
            token,
            expires_at: exp,
            deployment: deployment_view(&state, &deployment, &design),
        }),
    ))
}
