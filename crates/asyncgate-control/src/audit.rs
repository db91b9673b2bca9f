//! The audit log of an organization: who did what, when and from where, with filters.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use asyncgate_core::Permission;
use asyncgate_store::{AuditEntry, AuditFilter};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

/// Which entries to read; every filter is optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries about this API (id or identifier).
    pub api: Option<String>,
    /// Entries by this user (email), or `operator`.
    pub user: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// At most this many entries (default 200, at most 10,000).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<Object>)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require(Permission::ReadAudit, "reading the audit log")?;
    let api_id = match &q.api {
        Some(key) => Some(crate::apis::find(&state, &caller, key).await?.id),
        None => None,
    };
    let since = match &q.since {
        Some(s) => Some(
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "`since` must be an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"
                    ))
                })?
                .to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ),
        None => None,
    };
    let filter = AuditFilter {
        api_id,
        actor: q.user.map(|u| u.to_ascii_lowercase()),
        since,
        limit: q.limit.unwrap_or(200).clamp(1, 10_000),
    };
    Ok(Json(state.store.audit_log(&caller.org.id, &filter).await?))
}
