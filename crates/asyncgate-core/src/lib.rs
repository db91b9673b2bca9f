//! Types shared by both planes: domain enums, the gateway snapshot and credential helpers.
//!
//! The gateway depends on this crate only; nothing here touches the store or HTTP.

pub mod access;
pub mod credential;
pub mod domain;
pub mod lifecycle;
pub mod limits;
pub mod networks;
pub mod policies;
pub mod routes;
pub mod security;
pub mod snapshot;
pub mod version;

pub use access::{OnExcess, Permission, PlanLimits, Role};
pub use domain::{AccessMode, ListenerKind};
pub use lifecycle::{LifecycleAction, LifecycleError, LifecycleState};
pub use limits::{ApiLimits, LimitsPatch};
pub use networks::Networks;
pub use policies::{ApiPolicies, Compression, CompressionShape, MessageValidation, Unjudged};
pub use security::ApiSecurity;
pub use snapshot::{
    Snapshot, SnapshotApi, SnapshotApp, SnapshotAppKey, SnapshotAssertionKey, SnapshotChannel,
    SnapshotDeployment, SnapshotIdentityProvider, SnapshotMessage, SnapshotSigningKey,
    SnapshotSubscription,
};
pub use version::ApiVersion;
