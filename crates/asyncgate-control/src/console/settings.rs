//! An API proxy's **Settings**: who may connect (credentials, the API-key header, the
//! Origin allow-list, scopes, the backend assertion), limits, backend headers, message
//! validation, and its API keys. Saved with the REST API's own update; take effect with
//! the next deploy, like every design change.

use super::api::{self, ApiFrame};
use super::web::{self, PageResult, Posted, SignedIn};
use crate::apis::{self, SecurityPatch, UpdateRequest};
use crate::body::Body;
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;
use crate::views::{api_view, ApiView, KeyView};
use askama::Template;
use asyncgate_core::LimitsPatch;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    chrome: Option<web::Chrome>,
    frame: ApiFrame,
    csrf: String,
    api: ApiView,
    origins: String,
    scopes: String,
    rate_action: String,
    validation: String,
    unjudged: String,
    compression: String,
    keys: Vec<KeyView>,
    new_key: Option<String>,
    error: Option<String>,
}

/// A value's name as the REST API writes it (`drop`, `reject`, ...).
fn named<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn page(
    state: &AppState,
    who: SignedIn,
    key: &str,
    new_key: Option<String>,
    error: Option<ApiError>,
) -> PageResult {
    let record = api::find(state, &who, key).await?;
    let view = api_view(state, &record).await?;
    let Json(keys) = keys::list(
        State(state.clone()),
        who.caller.clone(),
        Path(record.id.clone()),
    )
    .await?;
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &SettingsPage {
            frame: ApiFrame::of(&record, "settings"),
            csrf: who.chrome.csrf.clone(),
            chrome: Some(who.chrome),
            origins: view.security.allowed_origins.join("\n"),
            scopes: view.security.required_scopes.join(" "),
            rate_action: named(&view.limits.rate_limit_action),
            validation: named(&view.policies.message_validation),
            unjudged: named(&view.policies.unjudged),
            compression: named(&view.policies.compression),
            api: view,
            keys,
            new_key,
            error: error.map(|e| e.detail),
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
) -> PageResult {
    page(&state, who, &key, None, None).await
}

/// The form as sent: checkboxes are present when ticked; empty numbers are left alone.
#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    security_enabled: Option<String>,
    #[serde(default)]
    api_key_header: String,
    #[serde(default)]
    allowed_origins: String,
    #[serde(default)]
    required_scopes: String,
    #[serde(default)]
    backend_jwt: Option<String>,
    #[serde(default)]
    max_connections: String,
    #[serde(default)]
    max_connections_per_credential: String,
    #[serde(default)]
    max_message_bytes: String,
    #[serde(default)]
    idle_timeout_seconds: String,
    #[serde(default)]
    max_connection_seconds: String,
    #[serde(default)]
    max_messages_per_second: String,
    #[serde(default)]
    max_bytes_per_second: String,
    #[serde(default)]
    rate_limit_action: String,
    #[serde(default)]
    message_validation: String,
    #[serde(default)]
    unjudged_messages: String,
    #[serde(default)]
    compression: String,
    #[serde(default)]
    replace_backend_headers: Option<String>,
    #[serde(default)]
    backend_headers: String,
}

/// A number field: empty leaves the value as it is.
fn number(field: &str, label: &str) -> Result<Option<u64>, ApiError> {
    let t = field.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("{label}: `{t}` is not a whole number")))
}

/// A choice field, read as the REST API reads it.
fn choice<T: serde::de::DeserializeOwned>(field: &str, label: &str) -> Result<Option<T>, ApiError> {
    let t = field.trim();
    if t.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(serde_json::Value::String(t.to_string()))
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("{label}: `{t}` is not one of the choices")))
}

impl SettingsForm {
    fn request(&self) -> Result<UpdateRequest, ApiError> {
        let backend_headers = match &self.replace_backend_headers {
            None => None,
            Some(_) => {
                let mut headers = BTreeMap::new();
                for line in self
                    .backend_headers
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    let (name, value) = line.split_once(':').ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "backend headers: `{line}` is not `Name: value`"
                        ))
                    })?;
                    headers.insert(name.trim().to_string(), value.trim().to_string());
                }
                Some(headers)
            }
        };
        Ok(UpdateRequest {
            security: Some(SecurityPatch {
                enabled: Some(self.security_enabled.is_some()),
                api_key_header: Some(self.api_key_header.trim().to_string())
                    .filter(|h| !h.is_empty()),
                allowed_origins: Some(
                    self.allowed_origins
                        .lines()
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(str::to_string)
                        .collect(),
                ),
                backend_jwt: Some(self.backend_jwt.is_some()),
                required_scopes: Some(
                    self.required_scopes
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                ),
            }),
            limits: Some(LimitsPatch {
                max_connections: number(&self.max_connections, "Max connections")?,
                max_connections_per_credential: number(
                    &self.max_connections_per_credential,
                    "Max connections per credential",
                )?,
                max_message_bytes: number(&self.max_message_bytes, "Max message size")?,
                idle_timeout_seconds: number(&self.idle_timeout_seconds, "Idle timeout")?,
                max_connection_seconds: number(
                    &self.max_connection_seconds,
                    "Max connection time",
                )?,
                max_messages_per_second: number(
                    &self.max_messages_per_second,
                    "Messages per second",
                )?,
                max_bytes_per_second: number(&self.max_bytes_per_second, "Bytes per second")?,
                rate_limit_action: choice(&self.rate_limit_action, "Over the rate")?,
                ..Default::default()
            }),
            backend_headers,
            message_validation: choice(&self.message_validation, "Message validation")?,
            unjudged_messages: choice(&self.unjudged_messages, "Binary and non-JSON messages")?,
            compression: choice(&self.compression, "Compression")?,
            ..Default::default()
        })
    }
}

/// **Save**: every setting of the form in one update.
pub async fn save(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(form): Posted<SettingsForm>,
) -> PageResult {
    let req = match form.request() {
        Ok(r) => r,
        Err(e) => return page(&state, who, &key, None, Some(e)).await,
    };
    match apis::update(
        State(state.clone()),
        who.caller.clone(),
        Path(key.clone()),
        Body(req),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/console/apis/{key}/settings")).into_response()),
        Err(e) => page(&state, who, &key, None, Some(e)).await,
    }
}

/// A new API key for the API, shown once.
pub async fn create_key(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(web::NoFields {}): Posted<web::NoFields>,
) -> PageResult {
    match keys::create(State(state.clone()), who.caller.clone(), Path(key.clone())).await {
        Ok((_, Json(created))) => page(&state, who, &key, Some(created.key), None).await,
        Err(e) => page(&state, who, &key, None, Some(e)).await,
    }
}

/// Revoke an API key.
pub async fn revoke_key(
    State(state): State<AppState>,
    who: SignedIn,
    Path((key, id)): Path<(String, String)>,
    Posted(web::NoFields {}): Posted<web::NoFields>,
) -> PageResult {
    match keys::revoke(
        State(state.clone()),
        who.caller.clone(),
        Path((key.clone(), id)),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/console/apis/{key}/settings")).into_response()),
        Err(e) => page(&state, who, &key, None, Some(e)).await,
    }
}
