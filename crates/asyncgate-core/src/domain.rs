//! Small domain enums used by the control plane, the gateway and the CLI alike.

/// The target that makes the platform run a mock of the API's contract as its backend.
pub const MOCK_TARGET: &str = "mock:";

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a deployment is exposed: External APIs are served on the environment's external
/// (public) listener and its internal listener; Internal APIs only on the internal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    External,
    Internal,
}

impl AccessMode {
    /// Whether a deployment with this access mode is served on a listener of `kind`.
    pub fn served_on(self, kind: ListenerKind) -> bool {
        match self {
            AccessMode::External => true,
            AccessMode::Internal => kind == ListenerKind::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::External => "external",
            AccessMode::Internal => "internal",
        }
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "external" => Ok(AccessMode::External),
            "internal" => Ok(AccessMode::Internal),
            other => Err(format!(
                "unknown access mode `{other}`: expected `external` or `internal`"
            )),
        }
    }
}

/// The two listeners every environment has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    External,
    Internal,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::External => "external",
            ListenerKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
