//! Management authentication and authorization. Every managed route needs
//! `Authorization: Bearer <token>`: the operator's admin token (kept hashed; `asyncgate
//! serve` writes it to the data folder), a user's session from signing in, or a personal
//! access token. A request acts in one organization: the one the `X-Asyncgate-Org` header
//! names (id or handle), else the user's only one, else (for the operator) the default
//! organization. What it may do there is its role's ([`Role::allows`]).

use crate::error::ApiError;
use crate::state::AppState;
use asyncgate_core::credential::hash_secret;
use asyncgate_core::{Permission, Role};
use asyncgate_store::{Actor, OrgRecord, UserRecord, DEFAULT_ORG_ID};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// Header naming the organization a request acts in.
pub const ORG_HEADER: &str = "x-asyncgate-org";

/// Who made a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The holder of the admin token: every permission in every organization.
    Operator,
    User(UserRecord),
}

/// An authenticated request: who, and from where.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// The client's address.
    pub origin: String,
}

impl Authenticated {
    /// How the audit log names this caller.
    pub fn who(&self) -> &str {
        match &self.principal {
            Principal::Operator => "operator",
            Principal::User(u) => &u.email,
        }
    }

    pub fn user(&self) -> Option<&UserRecord> {
        match &self.principal {
            Principal::Operator => None,
            Principal::User(u) => Some(u),
        }
    }

    pub fn actor(&self, org_id: &str) -> Actor {
        Actor {
            org_id: org_id.to_string(),
            who: self.who().to_string(),
            origin: self.origin.clone(),
        }
    }
}

/// An authenticated request and the organization it acts in, with the caller's role there.
#[derive(Debug, Clone)]
pub struct Caller {
    pub auth: Authenticated,
    pub org: OrgRecord,
    /// `None` for the operator, who may do everything.
    pub role: Option<Role>,
}

impl Caller {
    /// Refuse (403) unless the caller's role allows `permission`; `what` says what was
    /// asked, for the message.
    pub fn require(&self, permission: Permission, what: &str) -> Result<(), ApiError> {
        match self.role {
            None => Ok(()),
            Some(role) if role.allows(permission) => Ok(()),
            Some(role) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "your role in {} ({}) does not allow {what}",
                    self.org.name,
                    role.title()
                ),
            )),
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.role.is_none_or(|r| r.allows(permission))
    }

    pub fn actor(&self) -> Actor {
        self.auth.actor(&self.org.id)
    }

    /// A user's email, or `operator`.
    pub fn who(&self) -> &str {
        self.auth.who()
    }

    pub fn user_id(&self) -> Option<&str> {
        self.auth.user().map(|u| u.id.as_str())
    }
}

/// The middleware of every managed route: finds who is calling, or answers 401.
pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let origin = client_ip(req.extensions())
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let token = bearer(req.headers()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing credentials: send `Authorization: Bearer <token>` (sign in with `asyncgate login`, or use the admin token in <data-dir>/admin-token)",
        )
    })?;
    let principal = principal_of(&state, token).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the token is not valid: it is unknown, expired or revoked, or its user is blocked",
        )
    })?;
    req.extensions_mut()
        .insert(Authenticated { principal, origin });
    Ok(next.run(req).await)
}

/// Whose token this is: the operator's (the admin token), a user's (a live session or
/// personal token of a user who is not blocked), or nobody's.
pub async fn principal_of(state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
    let hash = hash_secret(token);
    if constant_time_eq(hash.as_bytes(), state.admin_token_hash.as_bytes()) {
        return Ok(Some(Principal::Operator));
    }
    Ok(state
        .store
        .user_of_token(&hash, unix_now())
        .await?
        .map(|(user, _)| Principal::User(user)))
}

/// The address of the client that sent a request (when the server was told connections'
/// addresses, as `asyncgate serve` does).
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address as an extractor.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    (v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
        .then(|| v[7..].trim())
        .filter(|t| !t.is_empty())
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not signed in"))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        let named = parts
            .headers
            .get(ORG_HEADER)
            .map(|v| {
                v.to_str().map(str::trim).map_err(|_| {
                    ApiError::bad_request(format!("the {ORG_HEADER} header is not text"))
                })
            })
            .transpose()?;
        Caller::of(state, auth, named).await
    }
}

impl Caller {
    /// The caller acting in the organization `named` (id, handle or name), or in their
    /// only one (the operator: the default organization).
    pub async fn of(
        state: &AppState,
        auth: Authenticated,
        named: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let unknown = |name: &str| {
            ApiError::not_found(format!("no organization `{name}` that you are a member of"))
        };
        match &auth.principal {
            Principal::Operator => {
                let key = named.unwrap_or(DEFAULT_ORG_ID);
                let org = state.store.org(key).await?.ok_or_else(|| unknown(key))?;
                Ok(Caller {
                    auth,
                    org,
                    role: None,
                })
            }
            Principal::User(user) => {
                let mut memberships = state.store.memberships(&user.id).await?;
                let found = match named {
                    Some(name) => memberships
                        .into_iter()
                        .find(|(o, _)| {
                            o.id == name || o.handle == name || o.name.eq_ignore_ascii_case(name)
                        })
                        .ok_or_else(|| unknown(name))?,
                    None if memberships.len() == 1 => memberships.remove(0),
                    None if memberships.is_empty() => {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "you are not a member of any organization",
                        ))
                    }
                    None => {
                        let handles: Vec<&str> =
                            memberships.iter().map(|(o, _)| o.handle.as_str()).collect();
                        return Err(ApiError::bad_request(format!(
                            "you are a member of several organizations ({}): name one with --org (the {ORG_HEADER} header)",
                            handles.join(", ")
                        )));
                    }
                };
                Ok(Caller {
                    auth,
                    org: found.0,
                    role: Some(found.1),
                })
            }
        }
    }
}

/// Seconds since the Unix epoch (the core's clock), as the store keeps times.
pub fn unix_now() -> i64 {
    asyncgate_core::credential::unix_now() as i64
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
