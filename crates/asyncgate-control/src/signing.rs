//! The authorization server's signing keys: Ed25519 (EdDSA), generated here, kept in the
//! store, rotated, and published as a JWKS. The newest key signs; keys retired less than
//! [`RETIRED_KEPT`] ago are still served so that tokens they signed stay verifiable.

use crate::auth::unix_now;
use crate::error::{ApiError, ApiResult};
use asyncgate_core::credential::new_id;
use asyncgate_core::SnapshotSigningKey;
use asyncgate_store::{SigningKeyRecord, Store, StoreError};
use axum::http::StatusCode;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

/// How long a retired key stays in the JWKS: longer than any token lives.
pub const RETIRED_KEPT: i64 = 24 * 3600;
/// Algorithm name of the keys (JWA).
pub const ALGORITHM: &str = "EdDSA";

/// A JSON Web Key (RFC 8037, OKP) of a signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub usage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

fn new_key() -> ApiResult<SigningKeyRecord> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot generate a signing key",
        )
    })?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read a generated signing key",
        )
    })?;
    Ok(SigningKeyRecord {
        kid: new_id("k"),
        algorithm: ALGORITHM.into(),
        private_key: STANDARD.encode(pkcs8.as_ref()),
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: unix_now(),
        retired_at: None,
    })
}

/// Make a new signing key the current one and retire the others (they stay in the JWKS
/// for [`RETIRED_KEPT`]). Returns the new key's id.
pub async fn rotate(store: &Store) -> ApiResult<String> {
    let key = new_key()?;
    store.insert_signing_key(&key).await?;
    store
        .retire_signing_keys_except(&key.kid, unix_now())
        .await?;
    Ok(key.kid)
}

/// Make sure a current key exists and is younger than `max_age_seconds` (rotating if
/// not); called at start.
pub async fn ensure_current(store: &Store, max_age_seconds: i64) -> ApiResult<()> {
    let current = live_keys(store)
        .await?
        .into_iter()
        .find(|k| k.retired_at.is_none());
    match current {
        Some(k) if unix_now() - k.created_at < max_age_seconds => Ok(()),
        _ => rotate(store).await.map(|_| ()),
    }
}

/// Keys to publish: the current one and those retired less than [`RETIRED_KEPT`] ago.
async fn live_keys(store: &Store) -> Result<Vec<SigningKeyRecord>, StoreError> {
    store.signing_keys(unix_now() - RETIRED_KEPT).await
}

/// The public keys, as the gateway's snapshot carries them.
pub async fn public_keys(store: &Store) -> Result<Vec<SnapshotSigningKey>, StoreError> {
    Ok(live_keys(store)
        .await?
        .into_iter()
        .map(|k| SnapshotSigningKey {
            kid: k.kid,
            x: k.public_key,
        })
        .collect())
}

/// The JWKS document.
pub async fn jwks(store: &Store) -> ApiResult<Jwks> {
    Ok(Jwks {
        keys: public_keys(store)
            .await?
            .into_iter()
            .map(|k| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: k.x,
                kid: k.kid,
                alg: ALGORITHM.into(),
                usage: "sig".into(),
            })
            .collect(),
    })
}

/// Sign `claims` with the current key.
pub async fn sign(store: &Store, claims: &impl Serialize) -> ApiResult<String> {
    let key = live_keys(store)
        .await?
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no current signing key"))?;
    let der = STANDARD.decode(&key.private_key).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the signing key is unreadable: {e}"),
        )
    })?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("signing the token failed: {e}"),
        )
    })
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rotated {
    /// Id of the new current key.
    pub kid: String,
}

/// Replace the signing key now (the operator's): new tokens are signed with a new key;
/// tokens signed with the previous one stay valid until they expire.
#[utoipa::path(post, path = "/api/v1/signing-keys/rotate", tag = "oauth2", responses((status = 201, body = Rotated), (status = 403, body = crate::error::Problem)), security(("admin" = [])))]
pub async fn rotate_now(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    auth: crate::auth::Authenticated,
) -> ApiResult<(StatusCode, axum::Json<Rotated>)> {
    if !matches!(auth.principal, crate::auth::Principal::Operator) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "rotating the platform's signing key takes the admin token (the operator's)",
        ));
    }
    let kid = rotate(&state.store).await?;
    state
        .store
        .audit(
            &auth.actor(asyncgate_store::DEFAULT_ORG_ID),
            "signing_key.rotate",
            &kid,
            None,
            "",
        )
        .await?;
    state.publisher.publish(&state.store).await?;
    Ok((StatusCode::CREATED, axum::Json(Rotated { kid })))
}

/// Meta key of the gateway's caller-assertion key.
const ASSERTION_KEY: &str = "caller_assertion_key";

/// The key the gateway signs caller assertions for backends with: made once, kept in
/// the store, never among the keys that sign (or verify) access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssertionKey {
    pub kid: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    /// Raw public key, base64url.
    pub public_key: String,
}

pub async fn assertion_key(store: &Store) -> ApiResult<AssertionKey> {
    let stored = match store.meta(ASSERTION_KEY).await? {
        Some(text) => text,
        None => {
            let k = new_key()?;
            let made = AssertionKey {
                kid: k.kid,
                private_key: k.private_key,
                public_key: k.public_key,
            };
            let text = serde_json::to_string(&made).unwrap_or_default();
            store.meta_or_insert(ASSERTION_KEY, || text).await?
        }
    };
    serde_json::from_str(&stored).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the caller-assertion key is unreadable: {e}"),
        )
    })
}

/// The JWKS backends verify caller assertions with.
#[utoipa::path(get, path = "/.well-known/backend-jwks.json", tag = "oauth2", responses((status = 200, body = Jwks)))]
pub async fn backend_jwks(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> ApiResult<axum::Json<Jwks>> {
    let k = assertion_key(&state.store).await?;
    Ok(axum::Json(Jwks {
        keys: vec![Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: k.public_key,
            kid: k.kid,
            alg: ALGORITHM.into(),
            usage: "sig".into(),
        }],
    }))
}
