//! API lifecycle states and the transitions between them (the WSO2 / Bijira model).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LifecycleState {
    Created,
    #[serde(rename = "Pre-Released")]
    PreReleased,
    Published,
    Deprecated,
    Retired,
    Blocked,
}

/// What a publisher asks for on the Lifecycle page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleAction {
    Publish,
    PreRelease,
    DemoteToCreated,
    Block,
    Deprecate,
    Retire,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an API that is {from}; allowed from {from}: {allowed}")]
pub struct LifecycleError {
    pub from: LifecycleState,
    pub action: LifecycleAction,
    pub allowed: String,
}

impl LifecycleState {
    pub const ALL: [LifecycleState; 6] = [
        LifecycleState::Created,
        LifecycleState::PreReleased,
        LifecycleState::Published,
        LifecycleState::Deprecated,
        LifecycleState::Retired,
        LifecycleState::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Created => "Created",
            LifecycleState::PreReleased => "Pre-Released",
            LifecycleState::Published => "Published",
            LifecycleState::Deprecated => "Deprecated",
            LifecycleState::Retired => "Retired",
            LifecycleState::Blocked => "Blocked",
        }
    }

    /// The state `action` leads to from this one, if the transition exists.
    pub fn target(self, action: LifecycleAction) -> Option<LifecycleState> {
        use LifecycleAction as A;
        use LifecycleState as S;
        match (self, action) {
            (S::Created | S::PreReleased | S::Blocked, A::Publish) => Some(S::Published),
            (S::Created | S::Published, A::PreRelease) => Some(S::PreReleased),
            (S::PreReleased | S::Published, A::DemoteToCreated) => Some(S::Created),
            (S::Published, A::Block) => Some(S::Blocked),
            (S::Published | S::Blocked, A::Deprecate) => Some(S::Deprecated),
            (S::Deprecated, A::Retire) => Some(S::Retired),
            _ => None,
        }
    }

    /// Actions that are allowed from this state.
    pub fn allowed_actions(self) -> Vec<LifecycleAction> {
        LifecycleAction::ALL
            .into_iter()
            .filter(|a| self.target(*a).is_some())
            .collect()
    }

    pub fn apply(self, action: LifecycleAction) -> Result<LifecycleState, LifecycleError> {
        self.target(action).ok_or_else(|| LifecycleError {
            from: self,
            action,
            allowed: {
                let allowed = self.allowed_actions();
                if allowed.is_empty() {
                    "nothing (final state)".to_string()
                } else {
                    allowed
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            },
        })
    }

    /// Whether the gateway accepts new connections for APIs in this state.
    pub fn accepts_connections(self) -> bool {
        !matches!(self, LifecycleState::Blocked | LifecycleState::Retired)
    }

    /// Whether applications may subscribe to APIs in this state (existing subscriptions
    /// of a Deprecated API keep working; only new ones are refused).
    pub fn accepts_subscriptions(self) -> bool {
        self == LifecycleState::Published
    }

    /// Whether the developer portal's catalogue lists APIs in this state: Pre-Released
    /// (marked so, not subscribable), Published, and Deprecated (marked so).
    pub fn listed_in_portal(self) -> bool {
        matches!(
            self,
            LifecycleState::PreReleased | LifecycleState::Published | LifecycleState::Deprecated
        )
    }

    /// Whether reaching this state takes the API off every environment (and ends its
    /// subscriptions).
    pub fn undeploys(self) -> bool {
        self == LifecycleState::Retired
    }
}

impl LifecycleAction {
    pub const ALL: [LifecycleAction; 6] = [
        LifecycleAction::Publish,
        LifecycleAction::PreRelease,
        LifecycleAction::DemoteToCreated,
        LifecycleAction::Block,
        LifecycleAction::Deprecate,
        LifecycleAction::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Publish => "publish",
            LifecycleAction::PreRelease => "pre-release",
            LifecycleAction::DemoteToCreated => "demote-to-created",
            LifecycleAction::Block => "block",
            LifecycleAction::Deprecate => "deprecate",
            LifecycleAction::Retire => "retire",
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LifecycleState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown lifecycle state `{s}`"))
    }
}

impl FromStr for LifecycleAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleAction::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown lifecycle action `{s}`: expected one of {}",
                    LifecycleAction::ALL.map(|a| a.as_str()).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_flow_publishes_a_created_api() {
        assert_eq!(
            LifecycleState::Created.apply(LifecycleAction::Publish),
            Ok(LifecycleState::Published)
        );
    }

    #[test]
    fn retired_is_final_and_says_so() {
        let err = LifecycleState::Retired
            .apply(LifecycleAction::Publish)
            .unwrap_err();
        assert!(err.to_string().contains("final state"), "{err}");
    }

    #[test]
    fn deprecate_then_retire() {
        let s = LifecycleState::Published
            .apply(LifecycleAction::Deprecate)
            .unwrap();
        assert_eq!(
            s.apply(LifecycleAction::Retire),
            Ok(LifecycleState::Retired)
        );
        assert!(LifecycleState::Created
            .apply(LifecycleAction::Retire)
            .is_err());
    }

    #[test]
    fn every_transition_of_the_guides_platform_and_no_other() {
        use LifecycleAction as A;
        use LifecycleState as S;
        let allowed: Vec<(S, A, S)> = vec![
            (S::Created, A::Publish, S::Published),
            (S::Created, A::PreRelease, S::PreReleased),
            (S::PreReleased, A::Publish, S::Published),
            (S::PreReleased, A::DemoteToCreated, S::Created),
            (S::Published, A::PreRelease, S::PreReleased),
            (S::Published, A::DemoteToCreated, S::Created),
            (S::Published, A::Block, S::Blocked),
            (S::Published, A::Deprecate, S::Deprecated),
            (S::Blocked, A::Publish, S::Published),
            (S::Blocked, A::Deprecate, S::Deprecated),
            (S::Deprecated, A::Retire, S::Retired),
        ];
        for from in S::ALL {
            for action in A::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(from.target(action), expected, "{from} {action}");
                if expected.is_none() {
                    let err = from.apply(action).unwrap_err();
                    for a in from.allowed_actions() {
                        assert!(err.allowed.contains(a.as_str()), "{err}");
                    }
                }
            }
        }
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in LifecycleState::ALL {
            assert_eq!(s.as_str().parse::<LifecycleState>(), Ok(s));
        }
        for a in LifecycleAction::ALL {
            assert_eq!(a.as_str().parse::<LifecycleAction>(), Ok(a));
        }
    }
}
