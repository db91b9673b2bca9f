//! The records the store keeps, as plain data.

use asyncgate_contract::Contract;
use asyncgate_core::{AccessMode, ApiLimits, ApiSecurity, LifecycleState};
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
            backend_headers,
        } = self;
        (
            name,
            identifier,
            version,
            base_path,
            target,
            description,
            limits,
            security,
            backend_headers,
        ) == (
            &other.name,
            &other.identifier,
            &other.version,
            &other.base_path,
            &other.target,
            &other.description,
            &other.limits,
            &other.security,
            &other.backend_headers,
        )
    }

    /// The contract's channel addresses, as the gateway routes them.
    pub fn channel_addresses(&self) -> impl Iterator<Item = &str> {
        self.contract.channels.iter().map(|c| c.address.as_str())
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
