//! The records the store keeps, as plain data.

use asyncgate_contract::Contract;
use asyncgate_core::{
    AccessMode, ApiLimits, ApiPolicies, ApiSecurity, LifecycleState, LimitsPatch,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a revision freezes: everything that decides how the gateway serves the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDesign {
    pub name: String,
    pub identifier: String,
    pub version: String,
    pub base_path: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub contract: Contract,
    #[serde(default)]
    pub limits: ApiLimits,
    /// Who may connect: credentials required or not, the API-key header, origins.
    #[serde(default)]
    pub security: ApiSecurity,
    /// What the contract governs on messages (validation).
    #[serde(default)]
    pub policies: ApiPolicies,
    /// Extra headers the gateway sends to the backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_headers: BTreeMap<String, String>,
}

impl ApiDesign {
    /// Whether two designs hold the same values, the parsed contract aside. (Every field
    /// is named, so a new one must be placed here or in the comparison.)
    pub fn same_values(&self, other: &ApiDesign) -> bool {
        let ApiDesign {
            name,
            identifier,
            version,
            base_path,
            target,
            description,
            contract: _,
            limits,
            security,
            policies,
            backend_headers,
        } = self;
        (
            (name, identifier, version, base_path, target, description),
            (limits, security, policies, backend_headers),
        ) == (
            (
                &other.name,
                &other.identifier,
                &other.version,
                &other.base_path,
                &other.target,
                &other.description,
            ),
            (
                &other.limits,
                &other.security,
                &other.policies,
                &other.backend_headers,
            ),
        )
    }

    /// The contract's channel addresses, as the gateway routes them.
    pub fn channel_addresses(&self) -> impl Iterator<Item = &str> {
        self.contract.channels.iter().map(|c| c.address.as_str())
    }
}

/// What one environment serves differently from the revision deployed there: its own
/// backend URL, backend headers and limits (the guide's per-environment endpoint
/// configuration). Empty means the revision's values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Replaces the revision's extra backend headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_headers: Option<BTreeMap<String, String>>,
    /// Applied on top of the revision's limits.
    #[serde(default, skip_serializing_if = "LimitsPatch::is_empty")]
    pub limits: LimitsPatch,
}

impl EnvironmentValues {
    pub fn is_empty(&self) -> bool {
        *self == EnvironmentValues::default()
    }

    /// These values, then `later`'s on top.
    pub fn then(&self, later: &EnvironmentValues) -> EnvironmentValues {
        EnvironmentValues {
            target: later.target.clone().or_else(|| self.target.clone()),
            backend_headers: later
                .backend_headers
                .clone()
                .or_else(|| self.backend_headers.clone()),
            limits: self.limits.then(&later.limits),
        }
    }

    /// `design` as served with these values: the one place they are applied.
    pub fn applied_to(&self, design: &ApiDesign) -> ApiDesign {
        let mut out = design.clone();
        if let Some(t) = &self.target {
            out.target = t.clone();
        }
        if let Some(h) = &self.backend_headers {
            out.backend_headers = h.clone();
        }
        self.limits.apply(&mut out.limits);
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiRecord {
    pub id: String,
    /// The organization the API belongs to.
    pub org_id: String,
    pub project: String,
    pub lifecycle: LifecycleState,
    /// Name shown in the developer portal (set when publishing).
    pub display_name: Option<String>,
    pub design: ApiDesign,
    pub contract_source: String,
    pub created_at: String,
    pub updated_at: String,
    /// How many times the stored API was written: an update names the count it read and
    /// is refused when another write came between (0 for an API not yet stored).
    pub row_version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRecord {
    pub api_id: String,
    pub number: u32,
    pub design: ApiDesign,
    /// The contract as imported when the revision was made (empty for revisions made
    /// before sources were kept).
    pub contract_source: String,
    pub created_at: String,
    /// Who deployed the design that made it (empty for revisions made before this was
    /// kept).
    pub created_by: String,
}

impl RevisionRecord {
    /// Whether this revision freezes what `api` holds now: the same contract source and
    /// the same values. The parsed model is not compared, so a newer parser reading the
    /// same source differently makes no new revision. (Revisions without a source are
    /// compared by their whole design.)
    pub fn freezes(&self, api: &ApiRecord) -> bool {
        if self.contract_source.is_empty() {
            return self.design == api.design;
        }
        self.contract_source == api.contract_source && self.design.same_values(&api.design)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    pub api_id: String,
    pub environment: String,
    pub revision: u32,
    pub access_mode: AccessMode,
    pub deployed_at: String,
    /// The environment's own values.
    pub values: EnvironmentValues,
    /// Who deployed it: a user's email or `operator`.
    pub deployed_by: String,
}

/// How an environment came to serve what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentAction {
    /// The current design (or the newest revision) deployed.
    Deploy,
    /// An earlier revision than the one served put back.
    Rollback,
    /// The revision another environment serves deployed here.
    Promote,
    /// The environment stopped serving the API.
    Undeploy,
    /// Undeployed because the API was retired.
    Retire,
}

impl DeploymentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentAction::Deploy => "deploy",
            DeploymentAction::Rollback => "rollback",
            DeploymentAction::Promote => "promote",
            DeploymentAction::Undeploy => "undeploy",
            DeploymentAction::Retire => "retire",
        }
    }

    pub fn parse(s: &str) -> Option<DeploymentAction> {
        [
            DeploymentAction::Deploy,
            DeploymentAction::Rollback,
            DeploymentAction::Promote,
            DeploymentAction::Undeploy,
            DeploymentAction::Retire,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One change of what an environment serves.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentEvent {
    pub api_id: String,
    pub environment: String,
    pub action: DeploymentAction,
    /// What it serves after the change (`None`: nothing, it was stopped).
    pub revision: Option<u32>,
    /// What it served before (`None`: nothing).
    pub previous_revision: Option<u32>,
    pub access_mode: Option<AccessMode>,
    pub values: EnvironmentValues,
    pub actor: String,
    pub at: String,
}

/// One change of an API's lifecycle state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    pub from: LifecycleState,
    pub to: LifecycleState,
    /// A user's email or `operator`.
    pub who: String,
    /// RFC 3339.
    pub when: String,
    pub note: String,
}

/// An API key; only its hash is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub id: String,
    pub api_id: String,
    pub hash: String,
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Who did something, in which organization, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub org_id: String,
    /// The user's email, or `operator` for the admin token.
    pub who: String,
    /// The client's address.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: String,
    /// Who: a user's email, or `operator` for the admin token.
    pub actor: String,
    /// From where: the client's address.
    pub origin: String,
    pub action: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    pub detail: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub api_id: Option<String>,
    pub actor: Option<String>,
    /// RFC 3339; entries at or after it.
    pub since: Option<String>,
    pub limit: u32,
}

/// A deployment and the revision it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    pub deployment: DeploymentRecord,
    pub revision: RevisionRecord,
}
