//! External identity providers per organization: an issuer whose tokens the gateway
//! accepts like the platform's own, its JWKS fetched through the guarded fetcher (kept in
//! the store, refreshed periodically and when a token names a key it lacks), the audience
//! tokens must carry, and the claim that names the application.

use crate::auth::{unix_now, Caller};
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use asyncgate_core::credential::new_id;
use asyncgate_core::Permission;
use asyncgate_store::{now, IdentityProviderRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use utoipa::ToSchema;

/// Least time between two fetches of one provider's keys asked for by handshakes.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRequest {
    pub name: String,
    /// `iss` of the provider's tokens.
    pub issuer: String,
    /// http(s) URL of the provider's JWKS.
    pub jwks_url: String,
    /// `aud` the tokens must carry.
    pub audience: String,
    /// The claim whose value names the application (its client id or name); default
    /// `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_claim: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub jwks_url: String,
    pub audience: String,
    pub application_claim: String,
    /// Key ids in the JWKS as last fetched.
    pub key_ids: Vec<String>,
    /// Unix time the JWKS was last fetched.
    pub fetched_at: i64,
}

fn view(p: &IdentityProviderRecord) -> ProviderView {
    let key_ids = serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(&p.jwks)
        .map(|set| {
            set.keys
                .into_iter()
                .filter_map(|k| k.common.key_id)
                .collect()
        })
        .unwrap_or_default();
    ProviderView {
        id: p.id.clone(),
        name: p.name.clone(),
        issuer: p.issuer.clone(),
        jwks_url: p.jwks_url.clone(),
        audience: p.audience.clone(),
        application_claim: p.app_claim.clone(),
        key_ids,
        fetched_at: p.fetched_at,
    }
}

/// Fetch a JWKS through the guards and check that it holds public keys the gateway can
/// use: every key with a `kid`, none symmetric or private.
async fn fetch_jwks(state: &AppState, url: &str) -> ApiResult<String> {
    let text = crate::fetch::fetch_document(url, &state.config.import).await?;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&text)
        .map_err(|e| ApiError::unprocessable(format!("{url} is not a JWKS (RFC 7517): {e}")))?;
    if set.keys.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "the JWKS at {url} holds no keys"
        )));
    }
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    for (i, k) in set.keys.iter().enumerate() {
        if k.common.key_id.is_none() {
            return Err(ApiError::unprocessable(format!(
                "key {i} of the JWKS at {url} has no `kid`"
            )));
        }
        if matches!(
            k.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            return Err(ApiError::unprocessable(format!(
                "key {i} of the JWKS at {url} is a shared secret, not a public key"
            )));
        }
        if raw["keys"][i].get("d").is_some() {
            return Err(ApiError::unprocessable(format!(
                "key {i} of the JWKS at {url} holds a private key: publish public keys only"
            )));
        }
        if jsonwebtoken::DecodingKey::from_jwk(k).is_err() {
            return Err(ApiError::unprocessable(format!(
                "key {i} of the JWKS at {url} is not a usable public key"
            )));
        }
    }
    Ok(text)
}

#[utoipa::path(post, path = "/api/v1/identity-providers", tag = "organizations", request_body = ProviderRequest,
    responses((status = 201, body = ProviderView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<ProviderRequest>,
) -> ApiResult<(StatusCode, Json<ProviderView>)> {
    caller.require(Permission::ManageOrganization, "adding identity providers")?;
    let name = crate::fields::line(&req.name, "name", crate::fields::MAX_NAME)?;
    let issuer = crate::fields::line(&req.issuer, "issuer", 2048)?;
    let audience = crate::fields::line(&req.audience, "audience", 2048)?;
    let app_claim = crate::fields::line(
        req.application_claim.as_deref().unwrap_or("client_id"),
        "applicationClaim",
        128,
    )?;
    let jwks = fetch_jwks(&state, req.jwks_url.trim()).await?;
    let record = IdentityProviderRecord {
        id: new_id("idp_"),
        org_id: caller.org.id.clone(),
        name,
        issuer,
        jwks_url: req.jwks_url.trim().to_string(),
        audience,
        app_claim,
        jwks,
        fetched_at: unix_now(),
        created_at: now(),
    };
    state.store.insert_identity_provider(&record).await?;
    state
        .store
        .audit(
            &caller.actor(),
            "idp.create",
            &record.id,
            None,
            &format!("{} {}", record.name, record.issuer),
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok((StatusCode::CREATED, Json(view(&record))))
}

#[utoipa::path(get, path = "/api/v1/identity-providers", tag = "organizations", responses((status = 200, body = Vec<ProviderView>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ProviderView>>> {
    caller.require(Permission::ManageOrganization, "reading identity providers")?;
    Ok(Json(
        state
            .store
            .identity_providers(Some(&caller.org.id))
            .await?
            .iter()
            .map(view)
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/identity-providers/{provider}", tag = "organizations", params(("provider" = String, Path, description = "provider id or name")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(
        Permission::ManageOrganization,
        "removing identity providers",
    )?;
    if !state
        .store
        .delete_identity_provider(&caller.org.id, &key)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no identity provider `{key}` in {}",
            caller.org.name
        )));
    }
    state
        .store
        .audit(&caller.actor(), "idp.delete", &key, None, "")
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fetch the keys of the providers named (all when `None`) again; publish if any changed.
/// A provider that cannot be reached keeps the keys it had (and the failure is logged).
pub async fn refresh(state: &AppState, only: Option<&[String]>) -> ApiResult<usize> {
    let mut changed = 0;
    for p in state.store.identity_providers(None).await? {
        if only.is_some_and(|ids| !ids.contains(&p.id)) {
            continue;
        }
        match fetch_jwks(state, &p.jwks_url).await {
            Ok(jwks) => {
                state
                    .store
                    .set_provider_jwks(&p.id, &jwks, unix_now())
                    .await?;
                if jwks != p.jwks {
                    changed += 1;
                }
            }
            Err(e) => {
                tracing::warn!(provider = %p.id, url = %p.jwks_url, error = %e.detail, "identity provider keys not refreshed")
            }
        }
    }
    if changed > 0 {
        state.publisher.publish(&state.store).await?;
    }
    Ok(changed)
}

/// Follow the gateway's requests for providers' keys (a token named a key the snapshot
/// lacks), each provider at most once per [`MIN_REFRESH_INTERVAL`], and refresh every
/// provider each `every`.
pub async fn follow(
    state: AppState,
    mut requests: tokio::sync::mpsc::Receiver<String>,
    every: Duration,
) {
    let mut last: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            asked = requests.recv() => {
                let Some(id) = asked else { return };
                let now = tokio::time::Instant::now();
                if last.get(&id).is_some_and(|at| now.duration_since(*at) < MIN_REFRESH_INTERVAL) {
                    continue;
                }
                last.insert(id.clone(), now);
                if let Err(e) = refresh(&state, Some(std::slice::from_ref(&id))).await {
                    tracing::warn!(provider = %id, error = %e.detail, "refreshing identity provider keys failed");
                }
            }
            _ = tick.tick() => {
                if let Err(e) = refresh(&state, None).await {
                    tracing::warn!(error = %e.detail, "refreshing identity provider keys failed");
                }
            }
        }
    }
}
