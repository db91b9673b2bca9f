//! Management authentication: every managed route needs `Authorization: Bearer <admin
//! token>`. The token is kept hashed; `asyncgate serve` writes it to the data folder.

use crate::error::ApiError;
use crate::state::AppState;
use asyncgate_core::credential::hash_secret;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing credentials: send `Authorization: Bearer <admin token>` (the token is in <data-dir>/admin-token)",
        )),
        Some(token) if constant_time_eq(hash_secret(token).as_bytes(), state.admin_token_hash.as_bytes()) => {
            Ok(next.run(req).await)
        }
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid admin token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
