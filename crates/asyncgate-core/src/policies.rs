//! What an API's contract governs on its messages: whether they are validated against the
//! contract's schemas and what happens to one that matches none, and the rule for
//! messages no JSON Schema can judge (binary, or text that is not JSON); and how
//! permessage-deflate (RFC 7692) crosses the gateway.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the gateway does with a message the contract does not allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageValidation {
    /// Messages are not looked at.
    #[default]
    Off,
    /// Forwarded, counted and logged.
    Report,
    /// Not forwarded; the sender gets an error message (see docs/policies.md).
    Drop,
    /// The sender is closed (1008, the reason naming the channel and the first failing
    /// JSON pointer; 1007 for text that is not JSON), the other side gets 1001.
    Reject,
}

/// Messages no JSON Schema can judge: binary ones, and text that is not JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unjudged {
    /// Forwarded unchecked.
    #[default]
    Pass,
    /// Handled as a message that matches no schema.
    Fail,
}

/// The message policies of one API, frozen into each revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiPolicies {
    pub message_validation: MessageValidation,
    /// What happens to binary messages and to text that is not JSON, when validating.
    pub unjudged: Unjudged,
    /// How compressed messages cross the gateway.
    pub compression: Compression,
}

/// How permessage-deflate (RFC 7692) crosses the gateway, as an API chooses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Pass-through, unless a policy reads payloads: then terminated.
    #[default]
    Auto,
    /// Client and backend negotiate end to end; compressed frames are relayed untouched.
    PassThrough,
    /// The gateway negotiates with each side on its own and inflates what it reads.
    Terminate,
    /// No compression: the offer is not passed on and nothing is negotiated.
    Off,
}

/// What the gateway does with compression on a connection, decided from an API's
/// policies by [`ApiPolicies::compression_shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionShape {
    Off,
    PassThrough,
    Terminate,
}

impl ApiPolicies {
    /// Whether a policy reads message payloads (so compressed ones must be inflated).
    pub fn reads_payloads(&self) -> bool {
        self.message_validation != MessageValidation::Off
    }

    /// The one rule for how compression crosses the gateway: `auto` passes it through
    /// unless a policy reads payloads.
    pub fn compression_shape(&self) -> CompressionShape {
        match self.compression {
            Compression::Off => CompressionShape::Off,
            Compression::Terminate => CompressionShape::Terminate,
            Compression::PassThrough => CompressionShape::PassThrough,
            Compression::Auto if self.reads_payloads() => CompressionShape::Terminate,
            Compression::Auto => CompressionShape::PassThrough,
        }
    }

    /// Policies that cannot hold together: a payload policy cannot read what passes
    /// through compressed.
    pub fn check(&self) -> Result<(), String> {
        if self.compression == Compression::PassThrough && self.reads_payloads() {
            return Err(format!(
                "compression pass-through relays compressed messages unread, but message validation `{}` reads them: choose compression auto or terminate, or validation off",
                self.message_validation
            ));
        }
        Ok(())
    }
}

impl Compression {
    pub const ALL: [Compression; 4] = [
        Compression::Auto,
        Compression::PassThrough,
        Compression::Terminate,
        Compression::Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Auto => "auto",
            Compression::PassThrough => "pass-through",
            Compression::Terminate => "terminate",
            Compression::Off => "off",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown compression `{s}`: expected auto, pass-through, terminate or off")
            })
    }
}

impl MessageValidation {
    pub const ALL: [MessageValidation; 4] = [
        MessageValidation::Off,
        MessageValidation::Report,
        MessageValidation::Drop,
        MessageValidation::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageValidation::Off => "off",
            MessageValidation::Report => "report",
            MessageValidation::Drop => "drop",
            MessageValidation::Reject => "reject",
        }
    }
}

impl fmt::Display for MessageValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageValidation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageValidation::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown message validation `{s}`: expected off, report, drop or reject")
            })
    }
}

impl FromStr for Unjudged {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pass" => Ok(Unjudged::Pass),
            "fail" => Ok(Unjudged::Fail),
            _ => Err(format!(
                "unknown rule `{s}` for binary and non-JSON messages: expected pass or fail"
            )),
        }
    }
}
