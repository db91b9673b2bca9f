//! `<data-dir>/endpoints.json`: every URL a running platform serves, for scripts and for
//! the CLI to find the management API.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "endpoints.json";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// Base URL of the management REST API, e.g. `http://127.0.0.1:9400`.
    pub management: String,
    /// The management API's OpenAPI document.
    pub openapi: String,
    /// The developer portal's listing of published APIs (JSON).
    pub portal: String,
    /// The web console (sign in, or create the first organization).
    #[serde(default)]
    pub console: String,
    /// The developer portal's pages.
    #[serde(default)]
    pub portal_site: String,
    /// Per environment, the `ws://` base URLs of its listeners.
    pub environments: BTreeMap<String, ListenerUrls>,
    /// File holding the admin token the CLI uses.
    pub admin_token_file: PathBuf,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerUrls {
    pub external: String,
    pub internal: String,
}

impl Endpoints {
    pub fn write(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(FILE_NAME);
        let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn read(data_dir: &Path) -> anyhow::Result<Endpoints> {
        let path = data_dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no running asyncgate found: cannot read {} (start `asyncgate serve --data-dir {}` or pass --server)",
                path.display(),
                data_dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }
}
