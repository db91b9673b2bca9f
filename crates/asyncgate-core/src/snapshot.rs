//! The immutable configuration the control plane hands to the gateway.
//!
//! A snapshot holds everything the data plane needs to route and admit a connection and
//! nothing it does not: no contract source, no secrets in clear except the token signing
//! secret of the built-in key manager (see `docs/architecture.md`).

use crate::{AccessMode, ApiLimits, LifecycleState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases by one each time the control plane publishes.
    pub version: u64,
    /// Issuer of bearer tokens minted by the platform's built-in key manager.
    pub token_issuer: String,
    /// HS256 secret for those tokens (base64url).
    pub token_secret: String,
    pub apis: Vec<SnapshotApi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotApi {
    pub id: String,
    pub name: String,
    pub lifecycle: LifecycleState,
    /// SHA-256 (hex) of every API key that may call this API.
    pub key_hashes: Vec<String>,
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
    /// Backend base URL, `ws://` or `wss://`.
    pub target: String,
    pub channels: Vec<SnapshotChannel>,
    #[serde(default)]
    pub limits: ApiLimits,
    /// Extra headers sent to the backend (for example a backend API key).
    #[serde(default)]
    pub backend_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotChannel {
    /// Channel address from the contract, e.g. `/` or `/rooms/{roomId}`.
    pub address: String,
}
