//! One API proxy's pages: the frame they share (its name, state and the menu: Overview,
//! Deploy, Test → Console, Lifecycle) and the **Overview**: the contract rendered
//! (channels with PUB/SUB, messages, payload tables, examples) and the contract as written.

use super::web::{self, PageResult, SignedIn};
use crate::apis;
use crate::docs::{self, ChannelDoc};
use crate::error::ApiResult;
use crate::state::AppState;
use askama::Template;
use asyncgate_store::ApiRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// What every page of one API shows around its content.
pub struct ApiFrame {
    pub id: String,
    pub name: String,
    pub version: String,
    pub lifecycle: String,
    /// The menu entry of the page: `overview`, `deploy`, `test` or `lifecycle`.
    pub current: &'static str,
}

impl ApiFrame {
    pub fn of(api: &ApiRecord, current: &'static str) -> ApiFrame {
        ApiFrame {
            id: api.id.clone(),
            name: api.design.name.clone(),
            version: api.design.version.clone(),
            lifecycle: api.lifecycle.to_string(),
            current,
        }
    }
}

/// The API `key` names in the signed-in publisher's organization.
pub async fn find(state: &AppState, who: &SignedIn, key: &str) -> ApiResult<ApiRecord> {
    who.caller
        .require(asyncgate_core::Permission::ReadApis, "reading APIs")?;
    apis::find(state, &who.caller, key).await
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    chrome: Option<web::Chrome>,
    frame: ApiFrame,
    identifier: String,
    base_path: String,
    target: String,
    description: String,
    asyncapi: String,
    channels: Vec<ChannelDoc>,
    source: String,
}

pub async fn overview(
    State(state): State<AppState>,
    who: SignedIn,
    Path(key): Path<String>,
) -> PageResult {
    let api = find(&state, &who, &key).await?;
    let d = &api.design;
    Ok(web::render(
        StatusCode::OK,
        &OverviewPage {
            frame: ApiFrame::of(&api, "overview"),
            identifier: d.identifier.clone(),
            base_path: d.base_path.clone(),
            target: d.target.clone(),
            description: d.description.clone().unwrap_or_default(),
            asyncapi: d.contract.asyncapi_version.clone(),
            channels: docs::channels(&d.contract),
            source: api.contract_source.clone(),
            chrome: Some(who.chrome),
        },
    ))
}
