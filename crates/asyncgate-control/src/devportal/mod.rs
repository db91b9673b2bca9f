//! The developer portal at `/portal/`: the catalogue of published APIs with their
//! documentation, sign-up (where an organization allows it) and sign-in for subscribers,
//! and **Applications**: create one, subscribe it to an API with a plan, and get its
//! OAuth2 credentials and API keys (shown once). Pages as the console's: rendered on the
//! server, plain forms, CSRF tokens, a strict Content-Security-Policy; each action is the
//! REST API's own.

mod account;
mod apps;
mod catalogue;

use crate::auth::Caller;
use crate::console::web::{self, Visitor};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// Where the portal lives on the management address.
pub const PREFIX: &str = "/portal";

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/portal", get(catalogue::list))
        .route("/portal/", get(catalogue::list))
        .route("/portal/apis/{api}", get(catalogue::show))
        .route(
            "/portal/sign-in",
            get(account::sign_in_form).post(account::sign_in),
        )
        .route(
            "/portal/sign-up",
            get(account::sign_up_form).post(account::sign_up),
        )
        .route("/portal/sign-out", post(account::sign_out))
        .route("/portal/applications", get(apps::list).post(apps::create))
        .route(
            "/portal/applications/{app}/subscribe",
            post(apps::subscribe),
        )
        .route("/portal/applications/{app}/keys", post(apps::create_key))
        .route(
            "/portal/applications/{app}/secret",
            post(apps::regenerate_secret),
        )
        .route("/portal/assets/{file}", get(crate::console::assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::secured,
        ))
}

/// What the portal's layout shows of the visitor: signed in (their email) or not, and
/// the CSRF token for the sign-out form.
pub struct Header {
    pub email: Option<String>,
    pub csrf: String,
}

impl Header {
    pub async fn of(state: &AppState, visitor: &Visitor) -> Header {
        let email = match visitor.signed_in(state).await {
            Some(Ok(caller)) => Some(caller.who().to_string()),
            _ => None,
        };
        Header {
            email,
            csrf: visitor.csrf.clone(),
        }
    }
}

/// A signed-in subscriber; others are sent to the portal's **Sign in**.
pub struct Subscriber {
    pub caller: Caller,
    pub header: Header,
}

impl FromRequestParts<AppState> for Subscriber {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(visitor) = Visitor::from_request_parts(parts, state).await;
        match visitor.signed_in(state).await {
            Some(Ok(caller)) => Ok(Subscriber {
                header: Header {
                    email: Some(caller.who().to_string()),
                    csrf: visitor.csrf,
                },
                caller,
            }),
            Some(Err(e)) => Err(web::failure(e)),
            None => Err(Redirect::to("/portal/sign-in").into_response()),
        }
    }
}
