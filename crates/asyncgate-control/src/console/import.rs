//! **Import API Contract**: API type **WebSocket**, the contract by **URL**, **Next** to
//! the values derived from it for editing (with the contract engine's errors at their
//! line when it cannot be read), then **Create**, the same import as the REST API's.

use super::web::{self, Posted, SignedIn};
use crate::apis::{self, ImportRequest};
use crate::docs::{self, ChannelDoc};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use asyncgate_contract::Diagnostic;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/import.html")]
struct SourcePage {
    chrome: Option<web::Chrome>,
    url: String,
    error: Option<String>,
    diagnostics: Vec<Diagnostic>,
}

/// The values an import derives, as the form shows them.
#[derive(Deserialize, Default)]
pub struct Values {
    #[serde(default)]
    url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    base_path: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "console/import_values.html")]
struct ValuesPage {
    chrome: Option<web::Chrome>,
    values: Values,
    title: String,
    asyncapi: String,
    channels: Vec<ChannelDoc>,
    warnings: Vec<Diagnostic>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SourceForm {
    #[serde(default)]
    url: String,
}

fn source_page(who: SignedIn, url: String, e: Option<ApiError>) -> Response {
    let status = e.as_ref().map_or(StatusCode::OK, |e| e.status);
    let (error, diagnostics) = match e {
        Some(e) => (Some(e.detail), e.errors),
        None => (None, Vec::new()),
    };
    web::render(
        status,
        &SourcePage {
            chrome: Some(who.chrome),
            url,
            error,
            diagnostics,
        },
    )
}

/// Step one: the API type and where the contract is.
pub async fn form(who: SignedIn) -> Response {
    source_page(who, String::new(), None)
}

/// **Next**: the contract read, and the values derived from it shown for editing.
pub async fn next(
    State(state): State<AppState>,
    who: SignedIn,
    Posted(form): Posted<SourceForm>,
) -> Response {
    let url = form.url.trim().to_string();
    if url.is_empty() {
        return source_page(
            who,
            url,
            Some(ApiError::bad_request(
                "give the URL of the AsyncAPI contract",
            )),
        );
    }
    let req = ImportRequest {
        url: Some(url.clone()),
        ..Default::default()
    };
    match apis::draft(&state, &who.caller, &req).await {
        Ok(api) => {
            let d = &api.design;
            web::render(
                StatusCode::OK,
                &ValuesPage {
                    chrome: Some(who.chrome),
                    values: Values {
                        url,
                        name: d.name.clone(),
                        identifier: d.identifier.clone(),
                        version: d.version.clone(),
                        base_path: d.base_path.clone(),
                        target: d.target.clone(),
                        description: d.description.clone().unwrap_or_default(),
                    },
                    title: d.contract.title.clone(),
                    asyncapi: d.contract.asyncapi_version.clone(),
                    channels: docs::channels(&d.contract),
                    warnings: d.contract.warnings.clone(),
                    error: None,
                },
            )
        }
        Err(e) => source_page(who, url, Some(e)),
    }
}

/// **Create**: the API proxy with the values as edited, then its Overview.
pub async fn create(
    State(state): State<AppState>,
    who: SignedIn,
    Posted(values): Posted<Values>,
) -> Response {
    let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let req = ImportRequest {
        url: Some(values.url.trim().to_string()),
        name: given(&values.name),
        identifier: given(&values.identifier),
        version: given(&values.version),
        base_path: given(&values.base_path),
        target: given(&values.target),
        description: given(&values.description),
        ..Default::default()
    };
    match apis::create(&state, &who.caller, req).await {
        Ok((_, axum::Json(api))) => {
            Redirect::to(&format!("/console/apis/{}", api.id)).into_response()
        }
        Err(e) => web::render(
            e.status,
            &ValuesPage {
                chrome: Some(who.chrome),
                values,
                title: String::new(),
                asyncapi: String::new(),
                channels: Vec::new(),
                warnings: Vec::new(),
                error: Some(e.detail),
            },
        ),
    }
}
