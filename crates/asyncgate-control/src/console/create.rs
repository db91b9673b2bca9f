//! **Create** an organization on the first visit to a fresh data folder: its name, the
//! first admin's email and password, and the setup token (the installation's admin
//! token) that proves the visitor runs this installation. Then **Project Home**.

use super::web::{self, Posted, Visitor};
use crate::auth::{principal_of, Authenticated, Principal};
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::orgs::{self, OrgRequest};
use crate::sessions::{self, Session};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/create.html")]
struct CreatePage {
    chrome: Option<web::Chrome>,
    csrf: String,
    name: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

/// The form, while the installation has no user yet; afterwards, **Sign in**.
pub async fn form(State(state): State<AppState>, visitor: Visitor) -> Response {
    match state.store.has_users().await {
        Ok(true) => Redirect::to("/console/sign-in").into_response(),
        Ok(false) => web::render(
            StatusCode::OK,
            &CreatePage {
                chrome: None,
                csrf: visitor.csrf,
                name: String::new(),
                email: String::new(),
                error: None,
            },
        ),
        Err(e) => web::failure(e),
    }
}

/// **Create**: the organization with its default project, its admin, signed in.
pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(form): Posted<CreateForm>,
) -> Response {
    match create(&state, &visitor, &form).await {
        Ok(session) => web::signed_in(&state, &session, "/console/home"),
        Err(e) => web::render(
            e.status,
            &CreatePage {
                chrome: None,
                csrf: visitor.csrf,
                name: form.name,
                email: form.email,
                error: Some(e.detail),
            },
        ),
    }
}

async fn create(state: &AppState, visitor: &Visitor, form: &CreateForm) -> ApiResult<Session> {
    if state.store.has_users().await? {
        return Err(ApiError::conflict(
            "this installation already has its first organization: sign in instead",
        ));
    }
    // Guessing the setup token is limited like guessing a password.
    if let Some(ip) = visitor.origin {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts from this address; wait a minute",
            ));
        }
    }
    if !matches!(
        principal_of(state, form.token.trim()).await?,
        Some(Principal::Operator)
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the setup token is not this installation's: copy it from the admin-token file in the data folder (asyncgate serve prints where)",
        ));
    }
    let operator = Authenticated {
        principal: Principal::Operator,
        origin: visitor.origin.map(|ip| ip.to_string()).unwrap_or_default(),
    };
    let (_, _org) = orgs::create(
        State(state.clone()),
        operator,
        Body(OrgRequest {
            name: form.name.clone(),
            handle: None,
            admin_email: Some(form.email.clone()),
            admin_password: Some(form.password.clone()),
        }),
    )
    .await?;
    let user = state
        .store
        .user_by_email(form.email.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("the new admin was not stored"))?;
    sessions::open_session(state, user, visitor.origin).await
}
