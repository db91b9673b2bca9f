//! The platform as its own OAuth2 authorization server: the client-credentials grant
//! (RFC 6749 section 4.4) issuing EdDSA-signed JWT access tokens, the JWKS they verify
//! against, and the discovery document (RFC 8414 / OpenID Connect Discovery).

use crate::auth::unix_now;
use crate::signing::{self, Jwks};
use crate::state::AppState;
use asyncgate_core::credential::{hash_secret, new_id, AccessClaims};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes; granted as asked.
    pub scope: Option<String>,
    /// An API (id or identifier) of the application's organization to restrict the
    /// token to; the whole organization when omitted.
    pub audience: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// An error answer of the token endpoint (RFC 6749 section 5.2).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

/// A refused token request: its status and RFC 6749 error code.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn refuse(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error,
        description: description.into(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(OAuthError {
                error: self.error.into(),
                error_description: self.description,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"asyncgate\""),
            );
        }
        resp
    }
}

/// Client credentials from HTTP Basic (preferred by RFC 6749) or the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &TokenRequest,
) -> Result<(String, String), Refusal> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
        .map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v[6..].trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|text| {
                    let (id, secret) = text.split_once(':')?;
                    let decode = |s: &str| {
                        url::form_urlencoded::parse(format!("x={s}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                    };
                    Some((decode(id)?, decode(secret)?))
                })
                .ok_or_else(|| {
                    refuse(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "the Basic credentials are not `client_id:client_secret` in base64",
                    )
                })
        })
        .transpose()?;
    match (basic, &form.client_id, &form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the client credentials once: in the Authorization header or in the form, not both",
        )),
        (Some(pair), None, None) => Ok(pair),
        (None, Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        _ => Err(refuse(StatusCode::UNAUTHORIZED, "invalid_client", "no client credentials: send client_id and client_secret")),
    }
}

#[utoipa::path(post, path = "/oauth2/token", tag = "oauth2", request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError), (status = 401, body = OAuthError)))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Response {
    match issue(&state, &headers, &form).await {
        Ok(issued) => ([(header::CACHE_CONTROL, "no-store")], Json(issued)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenRequest,
) -> Result<TokenResponse, Refusal> {
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant type `{other}` is not supported: use client_credentials"),
            ))
        }
        None => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            ))
        }
    }
    let (client_id, secret) = client_credentials(headers, form)?;
    let app = state
        .store
        .app_by_client_id(&client_id)
        .await
        .map_err(|e| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                e.to_string(),
            )
        })?;
    let app = match app {
        Some(a) if a.secret_hash == hash_secret(&secret) && a.blocked_at.is_none() => a,
        _ => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client, wrong secret, or a blocked application",
            ))
        }
    };
    let aud = match &form.audience {
        None => app.org_id.clone(),
        Some(key) => {
            crate::apis::find_in(state, Some(&app.org_id), key)
                .await
                .map_err(|_| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        "invalid_target",
                        format!("no API `{key}` in the application's organization"),
                    )
                })?
                .id
        }
    };
    let ttl = state.config.access_token_ttl.as_secs();
    let iat = unix_now() as u64;
    let claims = AccessClaims {
        iss: state.publisher.issuer().to_string(),
        sub: app.client_id.clone(),
        aud,
        client_id: Some(app.client_id.clone()),
        scope: form.scope.clone().filter(|s| !s.trim().is_empty()),
        jti: Some(new_id("jti_")),
        env: None,
        iat,
        exp: iat + ttl,
    };
    let token = signing::sign(&state.store, &claims)
        .await
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.detail))?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        scope: claims.scope,
    })
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth2", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, crate::ApiError> {
    Ok(Json(signing::jwks(&state.store).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth2", responses((status = 200, body = Discovery)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Json<Discovery> {
    let issuer = state.publisher.issuer().trim_end_matches('/').to_string();
    Json(Discovery {
        token_endpoint: format!("{issuer}{TOKEN_PATH}"),
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        issuer,
        grant_types_supported: vec!["client_credentials".into()],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
        ],
        response_types_supported: vec!["token".into()],
    })
}
