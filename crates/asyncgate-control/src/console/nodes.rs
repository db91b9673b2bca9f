//! The gateway nodes page: every node the control planes heard from, the version it
//! serves against the current one, its connections and last contact (the platform's
//! administrators only, as in the management API).

use super::web::{self, PageResult, SignedIn};
use crate::nodes::{self, NodeView};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

#[derive(Template)]
#[template(path = "console/nodes.html")]
struct NodesPage {
    chrome: Option<web::Chrome>,
    nodes: Vec<NodeView>,
    current: u64,
}

pub async fn page(State(state): State<AppState>, who: SignedIn) -> PageResult {
    let Json(nodes) = nodes::list(State(state.clone()), who.caller.clone()).await?;
    Ok(web::render(
        StatusCode::OK,
        &NodesPage {
            chrome: Some(who.chrome),
            nodes,
            current: state.publisher.version(),
        },
    ))
}
