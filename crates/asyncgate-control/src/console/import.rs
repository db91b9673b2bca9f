//! **Import API Contract**: API type **WebSocket**, the contract by **URL** or as a file
//! (YAML, JSON, or a zip bundle), **Next** to the values derived from it for editing
//! (with the contract engine's errors at their line when it cannot be read), then
//! **Create**, the same import as the REST API's.

use super::web::{self, Posted, SignedIn};
use crate::apis::{self, ImportRequest};
use crate::docs::{self, ChannelDoc};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use asyncgate_contract::Diagnostic;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "console/import.html")]
struct SourcePage {
    chrome: Option<web::Chrome>,
    url: String,
    file: bool,
    error: Option<String>,
    diagnostics: Vec<Diagnostic>,
}

/// The values an import derives, as the form shows them.
#[derive(Deserialize, Default)]
pub struct Values {
    #[serde(default)]
    url: String,
    /// An uploaded contract, carried to **Create** in the form.
    #[serde(default)]
    contract: String,
    /// An uploaded bundle (path → text, as JSON), carried likewise.
    #[serde(default)]
    files: String,
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

/// Where the contract comes from, as step one's form says.
enum Source {
    Url(String),
    Text(String),
    Bundle(BTreeMap<String, String>),
}

fn source_page(who: SignedIn, url: String, file: bool, e: Option<ApiError>) -> Response {
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
            file,
            error,
            diagnostics,
        },
    )
}

/// Step one: the API type and where the contract is.
pub async fn form(who: SignedIn) -> Response {
    source_page(who, String::new(), false, None)
}

/// Step one's form (multipart, for the file): its CSRF token checked, the source read.
async fn read_source(
    state: &AppState,
    who: &SignedIn,
    mut form: Multipart,
) -> Result<(Source, String), ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            e.status(),
            format!("the form could not be read: {}", e.body_text()),
        )
    };
    let (mut csrf, mut choice, mut url) = (String::new(), String::new(), String::new());
    let mut upload: Option<Source> = None;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.map_err(bad)?,
            "source" => choice = field.text().await.map_err(bad)?,
            "url" => url = field.text().await.map_err(bad)?.trim().to_string(),
            "contract" => {
                let zipped = field
                    .file_name()
                    .is_some_and(|f| f.to_ascii_lowercase().ends_with(".zip"));
                let bytes = field.bytes().await.map_err(bad)?;
                if bytes.is_empty() {
                    continue;
                }
                let max = state.config.import.limits.max_bytes;
                upload = Some(if zipped {
                    Source::Bundle(crate::upload::unzip(&bytes, max)?)
                } else {
                    Source::Text(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::unprocessable("the file is not UTF-8 text (YAML or JSON)")
                    })?)
                });
            }
            _ => {}
        }
    }
    if !web::same_token(&who.chrome.csrf, &csrf) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this form has expired or came from another site: reload the page and send it again",
        ));
    }
    match (choice.as_str(), upload) {
        ("file", Some(source)) => Ok((source, url)),
        ("file", None) => Err(ApiError::bad_request("choose the contract file to upload")),
        _ if url.is_empty() => Err(ApiError::bad_request(
            "give the URL of the AsyncAPI contract",
        )),
        _ => Ok((Source::Url(url.clone()), url)),
    }
}

/// **Next**: the contract read, and the values derived from it shown for editing.
pub async fn next(State(state): State<AppState>, who: SignedIn, form: Multipart) -> Response {
    let (source, url) = match read_source(&state, &who, form).await {
        Ok(s) => s,
        Err(e) => return source_page(who, String::new(), false, Some(e)),
    };
    let file = !matches!(source, Source::Url(_));
    let mut values = Values::default();
    let req = match source {
        Source::Url(u) => {
            values.url = u.clone();
            ImportRequest {
                url: Some(u),
                ..Default::default()
            }
        }
        Source::Text(t) => {
            values.contract = t.clone();
            ImportRequest {
                contract: Some(t),
                ..Default::default()
            }
        }
        Source::Bundle(files) => {
            values.files = serde_json::to_string(&files).unwrap_or_default();
            ImportRequest {
                files: Some(files),
                ..Default::default()
            }
        }
    };
    match apis::draft(&state, &who.caller, &req).await {
        Ok(api) => {
            let d = &api.design;
            values.name = d.name.clone();
            values.identifier = d.identifier.clone();
            values.version = d.version.clone();
            values.base_path = d.base_path.clone();
            values.target = d.target.clone();
            values.description = d.description.clone().unwrap_or_default();
            web::render(
                StatusCode::OK,
                &ValuesPage {
                    chrome: Some(who.chrome),
                    values,
                    title: d.contract.title.clone(),
                    asyncapi: d.contract.asyncapi_version.clone(),
                    channels: docs::channels(&d.contract),
                    warnings: d.contract.warnings.clone(),
                    error: None,
                },
            )
        }
        Err(e) => source_page(who, url, file, Some(e)),
    }
}

/// **Create**: the API proxy with the values as edited, then its Overview.
pub async fn create(
    State(state): State<AppState>,
    who: SignedIn,
    Posted(values): Posted<Values>,
) -> Response {
    let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let files = match given(&values.files)
        .map(|f| serde_json::from_str(&f))
        .transpose()
    {
        Ok(f) => f,
        Err(_) => {
            return web::failure(ApiError::bad_request(
                "the uploaded bundle did not come back whole: upload it again",
            ))
        }
    };
    let req = ImportRequest {
        url: given(&values.url),
        contract: given(&values.contract),
        files,
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
