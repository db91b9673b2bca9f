//! The organization's settings in the console: whether consumers may sign themselves up
//! as subscribers in the developer portal.

use super::web::{self, PageResult, Posted, SignedIn};
use crate::body::Body;
use crate::error::ApiError;
use crate::orgs::{self, OrgSettings};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/organization.html")]
struct OrganizationPage {
    chrome: Option<web::Chrome>,
    csrf: String,
    signup: bool,
    error: Option<String>,
}

async fn page(state: &AppState, who: SignedIn, error: Option<ApiError>) -> PageResult {
    let Json(settings) = orgs::settings(State(state.clone()), who.caller.clone()).await?;
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &OrganizationPage {
            csrf: who.chrome.csrf.clone(),
            chrome: Some(who.chrome),
            signup: settings.subscriber_signup.unwrap_or(false),
            error: error.map(|e| e.detail),
        },
    ))
}

pub async fn show(State(state): State<AppState>, who: SignedIn) -> PageResult {
    page(&state, who, None).await
}

#[derive(Deserialize)]
pub struct SettingsForm {
    /// Present (`on`) when the box is ticked.
    #[serde(default)]
    subscriber_signup: Option<String>,
}

pub async fn save(
    State(state): State<AppState>,
    who: SignedIn,
    Posted(form): Posted<SettingsForm>,
) -> PageResult {
    let done = orgs::update_settings(
        State(state.clone()),
        who.caller.clone(),
        Body(OrgSettings {
            subscriber_signup: Some(form.subscriber_signup.is_some()),
        }),
    )
    .await;
    match done {
        Ok(_) => Ok(Redirect::to("/console/organization").into_response()),
        Err(e) => page(&state, who, Some(e)).await,
    }
}
