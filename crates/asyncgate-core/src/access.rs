//! Who may do what: the roles of an organization's members, the one rule that says what
//! each role allows, and the plans subscriptions are made on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A member's role in an organization, as the guide's platform names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the organization, its users included.
    Admin,
    /// API Publisher: create, edit, deploy, promote APIs and move them through the lifecycle.
    Publisher,
    /// API Subscriber: the developer portal and their own applications.
    Subscriber,
}

/// Something a management request does, checked against the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the organization's APIs, deployments and environments in the console.
    ReadApis,
    /// Create, edit, delete, deploy, promote, change the lifecycle, mint API keys and
    /// test tokens.
    ManageApis,
    /// Add, remove and block members; create personal tokens for others.
    ManageUsers,
    /// Read the organization's audit log.
    ReadAudit,
    /// Create and change plans and identity providers.
    ManageOrganization,
    /// Create applications, subscribe them and mint their credentials (one's own).
    UseApplications,
    /// See and change every application of the organization, not only one's own.
    ManageAllApplications,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Publisher, Role::Subscriber];

    /// The one rule of what a role allows.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Publisher => matches!(permission, ReadApis | ManageApis | UseApplications),
            Role::Subscriber => matches!(permission, UseApplications),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }

    /// The role's name as the guide's console shows it.
    pub fn title(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Publisher => "API Publisher",
            Role::Subscriber => "API Subscriber",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "publisher" | "api publisher" => Ok(Role::Publisher),
            "subscriber" | "api subscriber" => Ok(Role::Subscriber),
            other => Err(format!(
                "unknown role `{other}`: expected admin, publisher or subscriber"
            )),
        }
    }
}

/// What happens to a connection that goes over its plan's message or byte rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExcess {
    /// Close the connection with 1008 and a reason naming the limit.
    Close,
    /// Drop the message and count it; the connection stays open.
    Drop,
}

impl OnExcess {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExcess::Close => "close",
            OnExcess::Drop => "drop",
        }
    }
}

impl FromStr for OnExcess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "close" => Ok(OnExcess::Close),
            "drop" => Ok(OnExcess::Drop),
            other => Err(format!(
                "unknown excess rule `{other}`: expected close or drop"
            )),
        }
    }
}

/// The limits of a subscription plan, per subscription and environment. Zero means no
/// limit. Every frame of either direction counts as a message, as event-based plans count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanLimits {
    pub max_connections: u64,
    pub messages_per_minute: u64,
    pub bytes_per_minute: u64,
    pub on_excess: OnExcess,
}

impl PlanLimits {
    pub const UNLIMITED: PlanLimits = PlanLimits {
        max_connections: 0,
        messages_per_minute: 0,
        bytes_per_minute: 0,
        on_excess: OnExcess::Close,
    };

    /// Whether the plan meters messages or bytes at all (a connection without a meter
    /// pays nothing per message).
    pub fn meters(&self) -> bool {
        self.messages_per_minute > 0 || self.bytes_per_minute > 0
    }
}

/// The plans every organization starts with.
pub const DEFAULT_PLANS: [(&str, PlanLimits); 4] = [
    ("Unlimited", PlanLimits::UNLIMITED),
    (
        "Gold",
        PlanLimits {
            max_connections: 1000,
            messages_per_minute: 60_000,
            bytes_per_minute: 64 << 20,
            on_excess: OnExcess::Close,
        },
    ),
    (
        "Silver",
        PlanLimits {
            max_connections: 100,
            messages_per_minute: 6_000,
            bytes_per_minute: 8 << 20,
            on_excess: OnExcess::Close,
        },
    ),
    (
        "Bronze",
        PlanLimits {
            max_connections: 10,
            messages_per_minute: 600,
            bytes_per_minute: 1 << 20,
            on_excess: OnExcess::Close,
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_guides_platform_gives_them() {
        for p in [
            Permission::ReadApis,
            Permission::ManageApis,
            Permission::ManageUsers,
            Permission::ReadAudit,
            Permission::ManageOrganization,
            Permission::UseApplications,
            Permission::ManageAllApplications,
        ] {
            assert!(Role::Admin.allows(p));
        }
        assert!(Role::Publisher.allows(Permission::ManageApis));
        assert!(!Role::Publisher.allows(Permission::ManageUsers));
        assert!(!Role::Publisher.allows(Permission::ReadAudit));
        assert!(Role::Subscriber.allows(Permission::UseApplications));
        assert!(!Role::Subscriber.allows(Permission::ReadApis));
        assert!(!Role::Subscriber.allows(Permission::ManageAllApplications));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root"
            .parse::<Role>()
            .unwrap_err()
            .contains("admin, publisher or subscriber"));
    }
}
