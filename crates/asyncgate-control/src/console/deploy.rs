//! The **Deploy** page: a card per environment (status, revision, access mode, invoke
//! URL), **Configure and Deploy** with **External** / **Internal**, **Promote** to the
//! next environment, Stop, roll back to a revision, and the deployment history. Each
//! action is the REST API's own.

use super::api::{self, ApiFrame};
use super::web::{self, PageResult, Posted, SignedIn};
use crate::body::Body;
use crate::deployments::{self, DeployRequest, HistoryEntry, HistoryQuery, PromoteRequest};
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{api_view, DeploymentView};
use askama::Template;
use asyncgate_core::AccessMode;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde::Deserialize;

/// One environment's card.
struct EnvCard {
    name: String,
    title: String,
    deployment: Option<DeploymentView>,
    /// The environment a deployment here promotes to.
    next: Option<String>,
    /// Deployed here directly (the first environment); the others are promoted into.
    first: bool,
}

#[derive(Template)]
#[template(path = "console/deploy.html")]
struct DeployPage {
    chrome: Option<web::Chrome>,
    frame: ApiFrame,
    csrf: String,
    cards: Vec<EnvCard>,
    revisions: Vec<u32>,
    history: Vec<HistoryEntry>,
    error: Option<String>,
}

/// An environment's name as a title: `development` → `Development`.
pub fn title(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn page(state: &AppState, who: SignedIn, key: &str, error: Option<ApiError>) -> PageResult {
    let api = api::find(state, &who, key).await?;
    let view = api_view(state, &api).await?;
    let Json(history) = deployments::history(
        State(state.clone()),
        who.caller.clone(),
        Path(api.id.clone()),
        Query(HistoryQuery { env: None }),
    )
    .await?;
    let envs = &state.config.environments;
    let latest = view.latest_revision.unwrap_or(0);
    let mut deployed = view.deployments;
    let cards = envs
        .iter()
        .enumerate()
        .map(|(i, e)| EnvCard {
            name: e.name.clone(),
            title: title(&e.name),
            deployment: deployed
                .iter()
                .position(|d| d.environment == e.name)
                .map(|at| deployed.remove(at)),
            next: envs.get(i + 1).map(|n| n.name.clone()),
            first: i == 0,
        })
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &DeployPage {
            frame: ApiFrame::of(&api, "deploy"),
            csrf: who.chrome.csrf.clone(),
            chrome: Some(who.chrome),
            cards,
            revisions: (1..=latest).rev().collect(),
            history: history.into_iter().rev().collect(),
            error: error.map(|e| e.detail),
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
) -> PageResult {
    page(&state, who, &key, None).await
}

#[derive(Deserialize)]
pub struct DeployForm {
    environment: String,
    #[serde(default)]
    access: Option<AccessMode>,
    /// A revision to go back to (`Roll back`); the current design otherwise.
    #[serde(default)]
    revision: Option<u32>,
}

/// **Deploy** (or roll back) to an environment.
pub async fn deploy(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(form): Posted<DeployForm>,
) -> PageResult {
    let Some(access_mode) = form.access else {
        let e = ApiError::bad_request("select the API Access Mode: External or Internal");
        return page(&state, who, &key, Some(e)).await;
    };
    let done = deployments::deploy(
        State(state.clone()),
        who.caller.clone(),
        Path(key.clone()),
        Body(DeployRequest {
            environment: form.environment,
            access_mode,
            revision: form.revision,
            target: None,
            backend_headers: None,
            limits: None,
            reset_values: false,
        }),
    )
    .await;
    after(&state, who, &key, done.map(|_| ())).await
}

#[derive(Deserialize)]
pub struct PromoteForm {
    from: String,
    to: String,
}

/// **Promote** what an environment serves to the next one.
pub async fn promote(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(form): Posted<PromoteForm>,
) -> PageResult {
    let done = deployments::promote(
        State(state.clone()),
        who.caller.clone(),
        Path(key.clone()),
        Body(PromoteRequest {
            from: form.from,
            to: form.to,
            ..Default::default()
        }),
    )
    .await;
    after(&state, who, &key, done.map(|_| ())).await
}

#[derive(Deserialize)]
pub struct StopForm {
    environment: String,
}

/// Stop serving the API in an environment.
pub async fn stop(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(form): Posted<StopForm>,
) -> PageResult {
    let done = deployments::undeploy(
        State(state.clone()),
        who.caller.clone(),
        Path((key.clone(), form.environment)),
    )
    .await;
    after(&state, who, &key, done.map(|_| ())).await
}

/// Back to the Deploy page: as it is now, or with what went wrong.
async fn after(
    state: &AppState,
    who: SignedIn,
    key: &str,
    done: Result<(), ApiError>,
) -> PageResult {
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/console/apis/{key}/deploy")).into_response()),
        Err(e) => page(state, who, key, Some(e)).await,
    }
}
