//! The catalogue: published APIs (search; versions side by side; Pre-Released and
//! Deprecated marked), and one API's documentation: channels, operations, messages,
//! payloads and examples, its External URLs per environment, the consumer contract to
//! download, and snippets to connect (wscat, JavaScript, Python) with the real URL.

use super::Header;
use crate::console::web::{self, PageResult, Visitor};
use crate::docs::{self, ChannelDoc};
use crate::portal::{self, PortalApi, PortalQuery};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "portal/catalogue.html")]
struct CataloguePage {
    header: Header,
    q: String,
    apis: Vec<PortalApi>,
}

pub async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(search): Query<Search>,
) -> PageResult {
    let header = Header::of(&state, &visitor).await;
    let Json(apis) = portal::list(State(state.clone()), Query(PortalQuery::default())).await?;
    let q = search.q.trim().to_lowercase();
    let apis = apis
        .into_iter()
        .filter(|a| {
            q.is_empty()
                || a.name.to_lowercase().contains(&q)
                || a.description
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&q)
        })
        .collect();
    Ok(web::render(
        StatusCode::OK,
        &CataloguePage {
            header,
            q: search.q,
            apis,
        },
    ))
}

/// How to connect to one URL, in three tools.
struct Snippet {
    tool: &'static str,
    code: String,
}

fn snippets(url: &str, key_header: &str) -> Vec<Snippet> {
    vec![
        Snippet {
            tool: "wscat",
            code: format!("wscat -c '{url}' -H '{key_header}: <your API key>'"),
        },
        Snippet {
            tool: "JavaScript",
            code: format!(
                "// Browsers cannot set headers: offer the key as a subprotocol.\nconst ws = new WebSocket('{url}', ['apikey.' + apiKey]);\nws.onmessage = (m) => console.log(m.data);\nws.onopen = () => ws.send(JSON.stringify({{ type: 'Connect', username: 'me' }}));"
            ),
        },
        Snippet {
            tool: "Python",
            code: format!(
                "# pip install websockets\nimport asyncio, websockets\n\nasync def main():\n    async with websockets.connect('{url}', additional_headers={{'{key_header}': API_KEY}}) as ws:\n        async for message in ws:\n            print(message)\n\nasyncio.run(main())"
            ),
        },
    ]
}

#[derive(Template)]
#[template(path = "portal/api.html")]
struct ApiPage {
    header: Header,
    api: PortalApi,
    channels: Vec<ChannelDoc>,
    snippets: Vec<Snippet>,
    /// The try-out console's configuration (External deployments; the key is pasted).
    config: String,
    key_input: bool,
}

pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(key): Path<String>,
) -> PageResult {
    let header = Header::of(&state, &visitor).await;
    let Json(api) = portal::show(State(state.clone()), Path(key.clone())).await?;
    let record = crate::apis::find_in(&state, None, &api.id).await?;
    let key_header = record.design.security.api_key_header.clone();
    let snippets = api
        .endpoints
        .first()
        .map(|d| snippets(&d.url, &key_header))
        .unwrap_or_default();
    // The try-out connects where consumers do: the External deployments.
    let external = crate::views::api_view(&state, &record)
        .await?
        .deployments
        .into_iter()
        .filter(|d| api.endpoints.iter().any(|e| e.environment == d.environment))
        .collect();
    let config = crate::console::test_console::config(&record, external, None, &header.csrf);
    Ok(web::render(
        StatusCode::OK,
        &ApiPage {
            header,
            channels: docs::channels(&record.design.contract),
            snippets,
            config,
            key_input: true,
            api,
        },
    ))
}
