//! The CLI's client of the management REST API. It finds the server and the admin token
//! in the data folder unless told otherwise.

use crate::cli::ConnArgs;
use crate::endpoints::{Endpoints, ADMIN_TOKEN_FILE};
use anyhow::{anyhow, Context};
use reqwest::Method;
use serde_json::Value;

/// File in the data folder holding the session of `asyncgate login` (readable by its
/// owner only); used before the admin token when no token is given.
pub const SESSION_FILE: &str = "cli-session";

#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    /// The organization requests act in (`--org`), sent as `X-Asyncgate-Org`.
    org: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            org: None,
            http: reqwest::Client::new(),
        }
    }

    /// Act in this organization (id or handle).
    pub fn in_org(mut self, org: Option<&str>) -> Client {
        self.org = org.map(str::to_string);
        self
    }

    /// The client `conn` describes: its server, else the one in the data folder; its
    /// token, else the session of `asyncgate login`, else the admin token.
    pub fn discover(conn: &ConnArgs) -> anyhow::Result<Client> {
        let data_dir = conn.data_dir.as_path();
        let server = Self::server(conn)?;
        let token = match &conn.token {
            Some(t) => t.clone(),
            None => match std::fs::read_to_string(data_dir.join(SESSION_FILE)) {
                Ok(session) => session,
                Err(_) => {
                    let path = data_dir.join(ADMIN_TOKEN_FILE);
                    std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "not signed in and no admin token: cannot read {} (run `asyncgate login`, pass --token or set ASYNCGATE_TOKEN)",
                            path.display()
                        )
                    })?
                }
            },
        };
        Ok(Client::new(&server, &token).in_org(conn.org.as_deref()))
    }

    /// The management URL `conn` names, else the one in the data folder.
    pub fn server(conn: &ConnArgs) -> anyhow::Result<String> {
        Ok(match &conn.server {
            Some(s) => s.clone(),
            None => Endpoints::read(&conn.data_dir)?.management,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send a request; the answer's status and text, whatever they are.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{}{}", self.base, asyncgate_control::API_PREFIX, path);
        let mut req = self.http.request(method, &url);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(org) = &self.org {
            req = req.header(asyncgate_control::auth::ORG_HEADER, org);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the management API at {}", self.base))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    /// Send a request; the answer's text when it succeeded, the problem otherwise.
    async fn text(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<String> {
        let (status, text) = self.exchange(method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(anyhow!(describe_problem(status, &text)))
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let text = self.text(method.clone(), path, body).await?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: the answer is not JSON"))
    }

    /// A document (not JSON-wrapped), as text.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        self.text(Method::GET, path, None).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// GET an answer as the server's view type.
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        as_view(path, self.get(path).await?)
    }

    /// POST a request type, answered as a view type.
    pub async fn post_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        as_view(path, self.post(path, body).await?)
    }

    /// PUT a request type, answered as a view type.
    pub async fn put_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        as_view(path, self.put(path, body).await?)
    }

    /// PATCH a request type, answered as a view type.
    pub async fn patch_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        as_view(path, self.patch(path, body).await?)
    }

    /// `body` is any request type of the server's (or a `json!` value).
    pub async fn post(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(&serde_json::to_value(body)?))
            .await
    }

    pub async fn put(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Value> {
        self.call(Method::PUT, path, Some(&serde_json::to_value(body)?))
            .await
    }

    pub async fn patch(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Value> {
        self.call(Method::PATCH, path, Some(&serde_json::to_value(body)?))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn delete_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        as_view(path, self.delete(path).await?)
    }
}

fn as_view<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> anyhow::Result<T> {
    serde_json::from_value(v).with_context(|| {
        format!("{path}: the answer is not what this CLI expects (server and CLI versions differ?)")
    })
}

/// A problem+json answer as lines a person reads: the detail, then each diagnostic.
fn describe_problem(status: u16, body: &str) -> String {
    let Ok(problem) = serde_json::from_str::<Value>(body) else {
        return format!("HTTP {status}: {body}");
    };
    let mut out = format!(
        "HTTP {status}: {}",
        problem["detail"].as_str().unwrap_or(body)
    );
    if let Some(errors) = problem["errors"].as_array() {
        if errors.len() > 1 {
            for e in errors {
                out.push_str(&format!(
                    "\n  {} {}",
                    e["pointer"]
                        .as_str()
                        .filter(|p| !p.is_empty())
                        .unwrap_or("/"),
                    e["message"].as_str().unwrap_or("")
                ));
            }
        }
    }
    out
}

/// Percent-encode one path segment (the control plane's rule, shared).
pub use asyncgate_control::fields::path_segment as segment;
