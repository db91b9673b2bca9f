//! Subscribers' accounts in the portal: **Sign up** to an organization that allows it
//! (a user with the Subscriber role), **Sign in** and sign out.

use super::Header;
use crate::console::web::{self, PageResult, Posted, Visitor};
use crate::error::{ApiError, ApiResult};
use crate::orgs::new_user;
use crate::sessions::{self, Session};
use crate::state::AppState;
use askama::Template;
use asyncgate_core::Role;
use asyncgate_store::OrgRecord;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage {
    header: Header,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/sign_up.html")]
struct SignUpPage {
    header: Header,
    orgs: Vec<OrgRecord>,
    org: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in_form(State(state): State<AppState>, visitor: Visitor) -> Response {
    let header = Header::of(&state, &visitor).await;
    web::render(
        StatusCode::OK,
        &SignInPage {
            header,
            email: String::new(),
            error: None,
        },
    )
}

pub async fn sign_in(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(form): Posted<Credentials>,
) -> Response {
    match sessions::sign_in(&state, visitor.origin, &form.email, &form.password).await {
        Ok(session) => web::signed_in(&state, &session, "/portal/applications"),
        Err(e) => web::render(
            e.status,
            &SignInPage {
                header: Header {
                    email: None,
                    csrf: visitor.csrf,
                },
                email: form.email,
                error: Some(e.detail),
            },
        ),
    }
}

async fn sign_up_page(
    state: &AppState,
    visitor: &Visitor,
    form: Option<&SignUpForm>,
    e: Option<ApiError>,
) -> PageResult {
    let orgs = state.store.signup_orgs().await?;
    let status = e.as_ref().map_or(StatusCode::OK, |e| e.status);
    Ok(web::render(
        status,
        &SignUpPage {
            header: Header {
                email: None,
                csrf: visitor.csrf.clone(),
            },
            orgs,
            org: form.map(|f| f.org.clone()).unwrap_or_default(),
            email: form.map(|f| f.email.clone()).unwrap_or_default(),
            error: e.map(|e| e.detail),
        },
    ))
}

pub async fn sign_up_form(State(state): State<AppState>, visitor: Visitor) -> PageResult {
    sign_up_page(&state, &visitor, None, None).await
}

pub async fn sign_up(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(form): Posted<SignUpForm>,
) -> PageResult {
    match signed_up(&state, &visitor, &form).await {
        Ok(session) => Ok(web::signed_in(&state, &session, "/portal/applications")),
        Err(e) => sign_up_page(&state, &visitor, Some(&form), Some(e)).await,
    }
}

/// A new subscriber of an organization that takes sign-ups, signed in.
async fn signed_up(state: &AppState, visitor: &Visitor, form: &SignUpForm) -> ApiResult<Session> {
    if let Some(ip) = visitor.origin {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts from this address; wait a minute",
            ));
        }
    }
    let org = state
        .store
        .signup_orgs()
        .await?
        .into_iter()
        .find(|o| o.id == form.org)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "choose an organization that lets consumers sign up",
            )
        })?;
    if state
        .store
        .user_by_email(form.email.trim())
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "a user with this email exists: sign in instead",
        ));
    }
    let user = new_user(&form.email, &form.password).await?;
    state
        .store
        .add_member(&user, &org.id, Role::Subscriber)
        .await?;
    state
        .store
        .audit(
            &asyncgate_store::Actor {
                org_id: org.id.clone(),
                who: user.email.clone(),
                origin: visitor.origin.map(|ip| ip.to_string()).unwrap_or_default(),
            },
            "user.signup",
            &user.id,
            None,
            "subscriber",
        )
        .await?;
    sessions::open_session(state, user, visitor.origin).await
}

pub async fn sign_out(
    State(state): State<AppState>,
    visitor: Visitor,
    Posted(crate::console::web::NoFields {}): Posted<crate::console::web::NoFields>,
) -> Response {
    if let Some(token) = visitor.session() {
        if let Err(e) = sessions::end_session(&state, token).await {
            return web::failure(e);
        }
    }
    web::signed_out("/portal/")
}
