//! **Sign in** with email and password, and sign out.

use super::web::{self, Posted, Visitor};
use crate::sessions;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Option<web::Chrome>,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn form(State(state): State<AppState>, visitor: Visitor) -> Response {
    match state.store.has_users().await {
        Ok(false) => return Redirect::to("/console/create").into_response(),
        Ok(true) => {}
        Err(e) => return web::failure(e),
    }
    if let Some(Ok(_)) = visitor.signed_in(&state).await {
        return Redirect::to("/console/home").into_response();
    }
    web::render(
        StatusCode::OK,
        &SignInPage {
            chrome: None,
            csrf: visitor.csrf,
            email: String::new(),
            error: None,
        },
    )
}

pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(form): Posted<SignInForm>,
) -> Response {
    match sessions::sign_in(&state, visitor.origin, &form.email, &form.password).await {
        Ok(session) => web::signed_in(&state, &session, "/console/home"),
        Err(e) => web::render(
            e.status,
            &SignInPage {
                chrome: None,
                csrf: visitor.csrf,
                email: form.email,
                error: Some(e.detail),
            },
        ),
    }
}

/// Sign out: the session ends on the server, and its cookie goes.
pub async fn sign_out(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(web::NoFields {}): Posted<web::NoFields>,
) -> Response {
    if let Some(token) = visitor.session() {
        if let Err(e) = sessions::end_session(&state, token).await {
            return web::failure(e);
        }
    }
    web::signed_out("/console/sign-in")
}
