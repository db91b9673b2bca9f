//! **Test → Console**: connect to a deployed API from the browser. The page carries what
//! the script needs (environments with their channel URLs, channels with parameters and
//! example payloads); the script asks for a short-lived test token (the REST API's own),
//! offers it as a subprotocol (a browser cannot set headers on a WebSocket), and logs
//! Connected / Sent / Received / Closed with their times.

use super::api::{self, ApiFrame};
use super::web::{self, PageResult, SignedIn};
use crate::body::Body;
use crate::error::ApiError;
use crate::keys::{self, TestTokenRequest};
use crate::state::AppState;
use crate::views::{api_view, DeploymentView};
use askama::Template;
use asyncgate_store::ApiRecord;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The header the script repeats the visitor's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    /// Where to ask for a test token; `None`: the visitor pastes an API key.
    token_url: Option<String>,
    csrf: String,
    environments: Vec<EnvConfig>,
    channels: Vec<ChannelConfig>,
}

#[derive(Serialize)]
struct EnvConfig {
    name: String,
    title: String,
    /// Channel address → its URL in this environment (`{param}` left to fill in).
    channels: Vec<(String, String)>,
}

#[derive(Serialize)]
struct ChannelConfig {
    address: String,
    parameters: Vec<String>,
    /// Payloads the client may send, as examples to start from.
    examples: Vec<String>,
}

/// What the test console's script needs, as the JSON its page carries: the deployments
/// it may connect to, the API's channels with their example payloads, and where a test
/// token comes from (`None`: the visitor pastes an API key).
pub fn config(
    api: &ApiRecord,
    deployments: Vec<DeploymentView>,
    token_url: Option<String>,
    csrf: &str,
) -> String {
    let config = Config {
        token_url,
        csrf: csrf.to_string(),
        environments: deployments
            .into_iter()
            .map(|d| EnvConfig {
                title: super::deploy::title(&d.environment),
                name: d.environment,
                channels: d.channels.into_iter().map(|c| (c.address, c.url)).collect(),
            })
            .collect(),
        channels: api
            .design
            .contract
            .channels
            .iter()
            .map(|c| ChannelConfig {
                address: c.address.clone(),
                parameters: c.parameters.clone(),
                examples: c
                    .client_to_server
                    .iter()
                    .flat_map(|op| op.messages.iter())
                    .flat_map(|m| crate::docs::message(m).examples)
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&config).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/test.html")]
struct TestPage {
    chrome: Option<web::Chrome>,
    frame: ApiFrame,
    config: String,
    deployed: bool,
    key_input: bool,
}

pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
) -> PageResult {
    let api = api::find(&state, &who, &key).await?;
    let view = api_view(&state, &api).await?;
    let deployed = !view.deployments.is_empty();
    let config = config(
        &api,
        view.deployments,
        Some(format!("/console/apis/{}/test-token", api.id)),
        &who.chrome.csrf,
    );
    Ok(web::render(
        StatusCode::OK,
        &TestPage {
            deployed,
            config,
            key_input: false,
            frame: ApiFrame::of(&api, "test"),
            chrome: Some(who.chrome),
        },
    ))
}

#[derive(Deserialize)]
pub struct TokenAsk {
    environment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenGiven {
    token: String,
    expires_at: u64,
}

/// A short-lived test token for the script (JSON; the CSRF token in [`CSRF_HEADER`]).
pub async fn token(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(ask): Json<TokenAsk>,
) -> Response {
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !web::same_token(&who.chrome.csrf, sent) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "the CSRF token is missing or wrong: reload the page",
        )
        .into_response();
    }
    match keys::test_token(
        State(state),
        who.caller,
        Path(key),
        Body(TestTokenRequest {
            environment: ask.environment,
        }),
    )
    .await
    {
        Ok((_, Json(t))) => Json(TokenGiven {
            token: t.token,
            expires_at: t.expires_at,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}
