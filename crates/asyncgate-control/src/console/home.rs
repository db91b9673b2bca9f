//! **Project Home**: the default project's API proxies with their lifecycle state and
//! where each is deployed.

use super::web::{self, PageResult, SignedIn};
use crate::apis;
use crate::state::AppState;
use crate::views::ApiView;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    chrome: Option<web::Chrome>,
    project: String,
    apis: Vec<ApiView>,
}

pub async fn page(State(state): State<AppState>, who: SignedIn) -> PageResult {
    let project = state.store.default_project(&who.caller.org.id).await?.name;
    let Json(apis) = apis::list(State(state.clone()), who.caller).await?;
    Ok(web::render(
        StatusCode::OK,
        &HomePage {
            chrome: Some(who.chrome),
            project,
            apis,
        },
    ))
}
