//! The web console at `/console/`: pages rendered on the server from templates compiled
//! into the binary (askama), plain forms that work without JavaScript, sessions by
//! cookie, a CSRF token on every form and a strict Content-Security-Policy. Its pages call
//! the same functions as the REST API, so both answer alike.

pub(crate) mod api;
pub(crate) mod assets;
mod create;
pub(crate) mod deploy;
mod home;
mod import;
mod lifecycle;
mod nodes;
mod organization;
mod settings;
mod signin;
pub(crate) mod test_console;
pub(crate) mod web;

use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Where the console lives on the management address.
pub const PREFIX: &str = "/console";

/// The console's pages and assets.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(entry))
        .route("/console/", get(entry))
        .route("/console/create", get(create::form).post(create::submit))
        .route("/console/sign-in", get(signin::form).post(signin::submit))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/home", get(home::page))
        .route(
            "/console/organization",
            get(organization::show).post(organization::save),
        )
        .route("/console/nodes", get(nodes::page))
        .route("/console/import", get(import::form).post(import::next))
        .route("/console/import/create", post(import::create))
        .route("/console/apis/{api}", get(api::overview))
        .route(
            "/console/apis/{api}/deploy",
            get(deploy::show).post(deploy::deploy),
        )
        .route("/console/apis/{api}/promote", post(deploy::promote))
        .route("/console/apis/{api}/stop", post(deploy::stop))
        .route(
            "/console/apis/{api}/settings",
            get(settings::show).post(settings::save),
        )
        .route(
            "/console/apis/{api}/settings/keys",
            post(settings::create_key),
        )
        .route(
            "/console/apis/{api}/settings/keys/{key}/revoke",
            post(settings::revoke_key),
        )
        .route("/console/apis/{api}/test", get(test_console::show))
        .route("/console/apis/{api}/test-token", post(test_console::token))
        .route(
            "/console/apis/{api}/lifecycle",
            get(lifecycle::show).post(lifecycle::change),
        )
        .route("/console/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::secured,
        ))
}

/// The first page: **Create** an organization on a fresh data folder, then **Sign in**,
/// or Project Home for a signed-in visitor.
async fn entry(State(state): State<AppState>, visitor: web::Visitor) -> Response {
    match state.store.has_users().await {
        Ok(false) => Redirect::to("/console/create").into_response(),
        Ok(true) if visitor.signed_in(&state).await.is_some() => {
            Redirect::to("/console/home").into_response()
        }
        Ok(true) => Redirect::to("/console/sign-in").into_response(),
        Err(e) => web::failure(e),
    }
}
