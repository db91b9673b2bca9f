//! `GET /metrics`: the data plane's metrics in the Prometheus text format, for the admin
//! token or for peers in the networks the operator opened it to (`metrics.open_to`, for
//! a Prometheus server that scrapes without credentials).

use crate::auth::{bearer, principal_of, ClientIp, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The content type of the Prometheus text format (version 0.0.4), which
/// [`crate::dataplane::DataPlane::metrics`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let open = ip.is_some_and(|ip| state.config.metrics_open_to.contains(ip));
    if !open {
        let token = bearer(&headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing credentials: send `Authorization: Bearer <admin token>`, or open /metrics to the scraper's network with `metrics.open_to`",
            )
        })?;
        match principal_of(&state, token).await? {
            Some(Principal::Operator) => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "metrics span every organization: only the admin token reads them",
                ))
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "the token is not valid: it is unknown, expired or revoked",
                ))
            }
        }
    }
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.data_plane.metrics(),
    )
        .into_response())
}
