//! The **Lifecycle** page: the API's state, the transitions it allows as buttons, the
//! **Publish API** dialog with an editable display name and **Confirm**, and the history.

use super::api::{self, ApiFrame};
use super::web::{self, PageResult, Posted, SignedIn};
use crate::body::Body;
use crate::error::ApiError;
use crate::lifecycle::{self as rest, LifecycleRequest};
use crate::state::AppState;
use askama::Template;
use asyncgate_core::LifecycleAction;
use asyncgate_store::LifecycleEvent;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde::Deserialize;

/// A transition the state allows: its action and its button's label.
struct Transition {
    action: String,
    label: String,
}

#[derive(Template)]
#[template(path = "console/lifecycle.html")]
struct LifecyclePage {
    chrome: Option<web::Chrome>,
    frame: ApiFrame,
    csrf: String,
    display_name: String,
    publish: bool,
    others: Vec<Transition>,
    history: Vec<LifecycleEvent>,
    error: Option<String>,
}

/// A button's label for an action: `pre-release` → `Pre-Release`, `demote-to-created` →
/// `Demote to Created`.
fn label(action: &str) -> String {
    match action {
        "pre-release" => "Pre-Release".into(),
        "demote-to-created" => "Demote to Created".into(),
        other => super::deploy::title(other),
    }
}

async fn page(state: &AppState, who: SignedIn, key: &str, error: Option<ApiError>) -> PageResult {
    let api = api::find(state, &who, key).await?;
    let Json(history) = rest::history(
        State(state.clone()),
        who.caller.clone(),
        Path(api.id.clone()),
    )
    .await?;
    let allowed: Vec<String> = api
        .lifecycle
        .allowed_actions()
        .iter()
        .map(|a| a.to_string())
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &LifecyclePage {
            frame: ApiFrame::of(&api, "lifecycle"),
            csrf: who.chrome.csrf.clone(),
            chrome: Some(who.chrome),
            display_name: api
                .display_name
                .clone()
                .unwrap_or_else(|| api.design.name.clone()),
            publish: allowed.iter().any(|a| a == "publish"),
            others: allowed
                .iter()
                .filter(|a| *a != "publish")
                .map(|a| Transition {
                    label: label(a),
                    action: a.clone(),
                })
                .collect(),
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
pub struct ChangeForm {
    action: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// A transition: **Confirm** in the Publish API dialog, or another state's button.
pub async fn change(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
    Posted(form): Posted<ChangeForm>,
) -> PageResult {
    let action = match form.action.parse::<LifecycleAction>() {
        Ok(a) => a,
        Err(e) => {
            return page(
                &state,
                who,
                &key,
                Some(ApiError::bad_request(e.to_string())),
            )
            .await
        }
    };
    let done = rest::change(
        State(state.clone()),
        who.caller.clone(),
        Path(key.clone()),
        Body(LifecycleRequest {
            action,
            display_name: form.display_name.filter(|n| !n.trim().is_empty()),
            note: None,
        }),
    )
    .await;
    match done {
        Ok(_) => Ok(Redirect::to(&format!("/console/apis/{key}/lifecycle")).into_response()),
        Err(e) => page(&state, who, &key, Some(e)).await,
    }
}
