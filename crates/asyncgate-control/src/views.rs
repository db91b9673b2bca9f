//! What the management API returns: JSON views built from store records.

use crate::state::AppState;
use asyncgate_contract::Contract;
use asyncgate_store::{ApiDesign, ApiRecord, DeploymentRecord, KeyRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiView {
    pub id: String,
    pub project: String,
    pub name: String,
    pub identifier: String,
    pub version: String,
    pub base_path: String,
    pub target: String,
    pub description: Option<String>,
    /// Created, Pre-Released, Published, Deprecated, Retired or Blocked.
    pub lifecycle: String,
    pub display_name: Option<String>,
    /// Protocols the contract's servers declare.
    pub protocols: Vec<String>,
    pub channels: Vec<ChannelView>,
    pub deployments: Vec<DeploymentView>,
    /// Number of the newest revision, if any was made.
    pub latest_revision: Option<u32>,
    #[schema(value_type = Object)]
    pub limits: asyncgate_core::ApiLimits,
    /// Who may connect: credentials required, the API-key header, allowed origins.
    #[schema(value_type = Object)]
    pub security: asyncgate_core::ApiSecurity,
    /// Names of the extra headers sent to the backend (values are not shown).
    pub backend_header_names: Vec<String>,
    /// What the contract governs on messages: `messageValidation`, `unjudged`.
    #[schema(value_type = Object)]
    pub policies: asyncgate_core::ApiPolicies,
    pub created_at: String,
    pub updated_at: String,
    #[schema(value_type = Object)]
    pub contract: Contract,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub address: String,
    pub parameters: Vec<String>,
    /// Message names the client sends.
    pub client_to_server: Vec<String>,
    /// Message names the client receives.
    pub server_to_client: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub environment: String,
    pub revision: u32,
    /// `external` or `internal`.
    pub access_mode: String,
    pub deployed_at: String,
    /// Who deployed it: a user's email, or `operator`.
    pub deployed_by: String,
    /// The ws:// URL a client connects to (base path on the listener that serves it).
    pub url: String,
    pub channels: Vec<ChannelUrl>,
    /// The backend URL this environment uses (its own, or the revision's).
    pub target: String,
    /// Names of the extra headers sent to the backend here (values are not shown).
    pub backend_header_names: Vec<String>,
    /// The limits in force here.
    #[schema(value_type = Object)]
    pub limits: asyncgate_core::ApiLimits,
    /// Which values are this environment's own rather than the revision's (`target`,
    /// `backendHeaders`, `limits.maxConnections`, ...).
    pub own_values: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelUrl {
    pub address: String,
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    pub number: u32,
    pub created_at: String,
    pub name: String,
    pub version: String,
    pub base_path: String,
    pub target: String,
    /// Who deployed the design that made it (empty for revisions made before this was
    /// kept).
    pub created_by: String,
    /// Environments this revision is deployed to now.
    pub deployed_to: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: String,
    pub api_id: String,
    /// First characters of the key, to recognise it.
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        KeyView {
            id: k.id.clone(),
            api_id: k.api_id.clone(),
            hint: k.hint.clone(),
            created_at: k.created_at.clone(),
            revoked_at: k.revoked_at.clone(),
        }
    }
}

pub fn channels(contract: &Contract) -> Vec<ChannelView> {
    contract
        .channels
        .iter()
        .map(|c| ChannelView {
            address: c.address.clone(),
            parameters: c.parameters.clone(),
            client_to_server: c.client_sends(),
            server_to_client: c.client_receives(),
        })
        .collect()
}

/// The URL of `address` under `base` (`/` maps to the base URL itself).
pub fn channel_url(base: &str, address: &str) -> String {
    if address == "/" || address.is_empty() {
        base.to_string()
    } else {
        format!("{}{}", base.trim_end_matches('/'), address)
    }
}

pub fn deployment_view(
    state: &AppState,
    d: &DeploymentRecord,
    design: &ApiDesign,
) -> DeploymentView {
    let listener = state
        .environment(&d.environment)
        .map(|e| match d.access_mode {
            asyncgate_core::AccessMode::External => e.external.clone(),
            asyncgate_core::AccessMode::Internal => e.internal.clone(),
        })
        .unwrap_or_default();
    let url = format!("{listener}{}", design.base_path);
    let served = d.values.applied_to(design);
    DeploymentView {
        environment: d.environment.clone(),
        revision: d.revision,
        access_mode: d.access_mode.to_string(),
        deployed_at: d.deployed_at.clone(),
        deployed_by: d.deployed_by.clone(),
        target: served.target,
        backend_header_names: served.backend_headers.into_keys().collect(),
        limits: served.limits,
        own_values: crate::deployments::own_value_names(&d.values),
        channels: design
            .contract
            .channels
            .iter()
            .map(|c| ChannelUrl {
                address: c.address.clone(),
                url: channel_url(&url, &c.address),
            })
            .collect(),
        url,
    }
}

/// The full view of an API: its design, lifecycle and where it is deployed.
pub async fn api_view(
    state: &AppState,
    api: &ApiRecord,
) -> Result<ApiView, asyncgate_store::StoreError> {
    let revisions = state.store.revisions(&api.id).await?;
    let mut deployments: Vec<DeploymentView> = state
        .store
        .deployed(Some(&api.id))
        .await?
        .iter()
        .map(|d| deployment_view(state, &d.deployment, &d.revision.design))
        .collect();
    // Promotion order, not alphabetical.
    let order = |env: &str| {
        state
            .config
            .environments
            .iter()
            .position(|e| e.name == env)
            .unwrap_or(usize::MAX)
    };
    deployments.sort_by_key(|d| order(&d.environment));
    let design = &api.design;
    Ok(ApiView {
        id: api.id.clone(),
        project: api.project.clone(),
        name: design.name.clone(),
        identifier: design.identifier.clone(),
        version: design.version.clone(),
        base_path: design.base_path.clone(),
        target: design.target.clone(),
        description: design.description.clone(),
        lifecycle: api.lifecycle.to_string(),
        display_name: api.display_name.clone(),
        protocols: asyncgate_contract::derive(&design.contract).protocols,
        channels: channels(&design.contract),
        deployments,
        latest_revision: revisions.last().map(|r| r.number),
        limits: design.limits,
        security: design.security.clone(),
        backend_header_names: design.backend_headers.keys().cloned().collect(),
        policies: design.policies,
        created_at: api.created_at.clone(),
        updated_at: api.updated_at.clone(),
        contract: design.contract.clone(),
    })
}
