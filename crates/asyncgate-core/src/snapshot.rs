//! The immutable configuration the control plane hands to the gateway.
//!
//! A snapshot holds everything the data plane needs to route and admit a connection and
//! nothing it does not: no contract source and no secret in clear — credentials as hashes,
//! token signing keys as public keys only (see `docs/architecture.md`).

use crate::{AccessMode, ApiLimits, ApiPolicies, ApiSecurity, LifecycleState, PlanLimits};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases by one each time the control plane publishes.
    pub version: u64,
    /// Issuer (`iss`) of bearer tokens minted by the platform's authorization server.
    pub token_issuer: String,
    /// Public keys those tokens are signed with (current and recent ones).
    #[serde(default)]
    pub signing_keys: Vec<SnapshotSigningKey>,
    pub apis: Vec<SnapshotApi>,
    /// Applications whose credentials are accepted (blocked ones are left out).
    #[serde(default)]
    pub apps: Vec<SnapshotApp>,
    /// External identity providers organizations trust.
    #[serde(default)]
    pub identity_providers: Vec<SnapshotIdentityProvider>,
    /// The key the gateway signs caller assertions for backends with (its own, distinct
    /// from the keys that sign access tokens: it can mint nothing a gateway accepts).
    #[serde(default)]
    pub caller_assertion_key: Option<SnapshotAssertionKey>,
}

impl Snapshot {
    /// What a gateway node serving only `environment` needs: the APIs deployed there
    /// (with only that deployment) and the application keys valid there.
    pub fn for_environment(&self, environment: &str) -> Snapshot {
        let mut out = self.clone();
        out.apis.retain_mut(|api| {
            api.deployments.retain(|d| d.environment == environment);
            !api.deployments.is_empty()
        });
        for app in &mut out.apps {
            app.keys.retain(|k| k.environment == environment);
        }
        out
    }
}

/// An Ed25519 key for caller assertions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotAssertionKey {
    pub kid: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
}

/// An organization's external identity provider: tokens signed by a key of its JWKS,
/// with its issuer and audience, are accepted for the organization's APIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotIdentityProvider {
    pub id: String,
    pub org_id: String,
    pub issuer: String,
    pub audience: String,
    /// The claim whose value names the application (its client id or name).
    pub app_claim: String,
    /// The provider's JWKS document, as last fetched (public keys only).
    pub jwks: String,
}

/// An Ed25519 public key of the platform's authorization server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSigningKey {
    pub kid: String,
    /// The raw public key, base64url (a JWK's `x`).
    pub x: String,
}

/// An application: its OAuth2 client id and the hashes of its API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotApp {
    pub id: String,
    pub org_id: String,
    /// The application's name (an external provider's claim may name it so).
    #[serde(default)]
    pub name: String,
    pub client_id: String,
    pub keys: Vec<SnapshotAppKey>,
}

/// An application's API key: valid in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotAppKey {
    /// SHA-256 (hex) of the key.
    pub hash: String,
    pub environment: String,
}

/// An application subscribed to an API, on a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSubscription {
    pub app_id: String,
    pub plan: PlanLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotApi {
    pub id: String,
    #[serde(default)]
    pub org_id: String,
    pub name: String,
    /// `identifier@version`, as the CLI names the API: its label in metrics and logs.
    #[serde(default)]
    pub handle: String,
    pub lifecycle: LifecycleState,
    /// SHA-256 (hex) of every API key made for this API alone (`api key create`).
    pub key_hashes: Vec<String>,
    /// Applications subscribed to this API; their credentials work for it.
    #[serde(default)]
    pub subscriptions: Vec<SnapshotSubscription>,
    pub deployments: Vec<SnapshotDeployment>,
}

/// One API revision deployed to one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDeployment {
    pub environment: String,
    pub revision: u32,
    pub access_mode: AccessMode,
    /// Path prefix on the gateway, e.g. `/default/chat-api/v1.0.0`.
    pub base_path: String,
    /// Further prefixes that reach this deployment: the path naming only the major
    /// version (`/default/chat-api/v1`), held by the latest minor version deployed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Backend base URL, `ws://` or `wss://`.
    pub target: String,
    pub channels: Vec<SnapshotChannel>,
    #[serde(default)]
    pub limits: ApiLimits,
    #[serde(default)]
    pub security: ApiSecurity,
    /// What the contract governs on messages.
    #[serde(default)]
    pub policies: ApiPolicies,
    /// Extra headers sent to the backend (for example a backend API key).
    #[serde(default)]
    pub backend_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotChannel {
    /// Channel address from the contract, e.g. `/` or `/rooms/{roomId}`.
    pub address: String,
    /// With message validation on: the messages the client may send (`None`: the
    /// channel takes none from the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_sends: Option<Vec<SnapshotMessage>>,
    /// With message validation on: the messages the client may receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_receives: Option<Vec<SnapshotMessage>>,
}

/// A message the contract allows on a channel in one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMessage {
    pub name: String,
    /// Its payload's JSON Schema (local references resolved); `None` when it has none or
    /// one in another format (Avro, Protobuf, ...), which the gateway does not enforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}
