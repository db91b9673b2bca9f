//! **Applications**: a subscriber's applications, each with its subscriptions, OAuth2
//! client id, and API keys; create one (its client secret shown once), subscribe it to a
//! published API with a plan, generate an API key for an environment (shown once).

use super::Subscriber;
use crate::applications::{self, AppKeyRequest, AppRequest, AppView, PlanView, SubscribeRequest};
use crate::body::Body;
use crate::console::web::{self, PageResult, Posted};
use crate::error::ApiError;
use crate::portal::{self, PortalApi, PortalQuery};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::Json;
use serde::Deserialize;

/// A secret the page shows once: what it is, and the value.
struct ShownOnce {
    what: String,
    value: String,
}

#[derive(Template)]
#[template(path = "portal/applications.html")]
struct AppsPage {
    header: super::Header,
    apps: Vec<AppView>,
    /// Published APIs of the subscriber's organization that take subscriptions.
    apis: Vec<PortalApi>,
    plans: Vec<PlanView>,
    environments: Vec<String>,
    shown_once: Option<ShownOnce>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    who: Subscriber,
    shown_once: Option<ShownOnce>,
    error: Option<ApiError>,
) -> PageResult {
    let Json(apps) = applications::list(State(state.clone()), who.caller.clone()).await?;
    let Json(plans) = applications::plans(State(state.clone()), who.caller.clone()).await?;
    let apis = portal::list(
        State(state.clone()),
        Query(PortalQuery {
            org: Some(who.caller.org.id.clone()),
        }),
    )
    .await
    .map(|Json(a)| a.into_iter().filter(|a| a.subscribable).collect())?;
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &AppsPage {
            header: who.header,
            apps,
            apis,
            plans,
            environments: state
                .config
                .environments
                .iter()
                .map(|e| e.name.clone())
                .collect(),
            shown_once,
            error: error.map(|e| e.detail),
        },
    ))
}

pub async fn list(State(state): State<AppState>, who: Subscriber) -> PageResult {
    page(&state, who, None, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

/// Create an application; its client secret is shown once.
pub async fn create(
    State(state): State<AppState>,
    who: Subscriber,
    Posted(form): Posted<CreateForm>,
) -> PageResult {
    match applications::create(
        State(state.clone()),
        who.caller.clone(),
        Body(AppRequest { name: form.name }),
    )
    .await
    {
        Ok((_, Json(app))) => {
            let shown = ShownOnce {
                what: format!(
                    "Client secret of {} (client id {}): copy it now, it is not shown again",
                    app.name, app.client_id
                ),
                value: app.client_secret,
            };
            page(&state, who, Some(shown), None).await
        }
        Err(e) => page(&state, who, None, Some(e)).await,
    }
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    api: String,
    #[serde(default)]
    plan: String,
}

/// Subscribe an application to an API with a plan.
pub async fn subscribe(
    State(state): State<AppState>,
    who: Subscriber,
    Path(app): Path<String>,
    Posted(form): Posted<SubscribeForm>,
) -> PageResult {
    let done = applications::subscribe(
        State(state.clone()),
        who.caller.clone(),
        Path(app),
        Body(SubscribeRequest {
            api: form.api,
            plan: Some(form.plan).filter(|p| !p.is_empty()),
        }),
    )
    .await;
    match done {
        Ok(_) => Ok(Redirect::to("/portal/applications").into_response()),
        Err(e) => page(&state, who, None, Some(e)).await,
    }
}

/// Generate a new OAuth2 client secret for an application (the old one stops working);
/// shown once.
pub async fn regenerate_secret(
    State(state): State<AppState>,
    who: Subscriber,
    Path(app): Path<String>,
    Posted(web::NoFields {}): Posted<web::NoFields>,
) -> PageResult {
    match applications::regenerate_secret(State(state.clone()), who.caller.clone(), Path(app)).await
    {
        Ok((_, Json(app))) => {
            let shown = ShownOnce {
                what: format!(
                    "New client secret of {} (client id {}): copy it now, it is not shown again",
                    app.name, app.client_id
                ),
                value: app.client_secret,
            };
            page(&state, who, Some(shown), None).await
        }
        Err(e) => page(&state, who, None, Some(e)).await,
    }
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    environment: String,
}

/// Generate an API key of an application for an environment; shown once.
pub async fn create_key(
    State(state): State<AppState>,
    who: Subscriber,
    Path(app): Path<String>,
    Posted(form): Posted<KeyForm>,
) -> PageResult {
    let done = applications::create_key(
        State(state.clone()),
        who.caller.clone(),
        Path(app),
        Body(AppKeyRequest {
            environment: form.environment,
        }),
    )
    .await;
    match done {
        Ok((_, Json(key))) => {
            let shown = ShownOnce {
                what: format!(
                    "API key for {}: copy it now, it is not shown again",
                    key.environment
                ),
                value: key.key,
            };
            page(&state, who, Some(shown), None).await
        }
        Err(e) => page(&state, who, None, Some(e)).await,
    }
}
