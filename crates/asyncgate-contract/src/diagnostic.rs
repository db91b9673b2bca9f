//! Errors and diagnostics about a contract, each pointing at where in the document it is.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One problem found in a contract: a JSON pointer into the document and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractError {
    /// The document is bigger than the configured budget.
    TooLarge { bytes: usize, limit: usize },
    /// The text is neither valid YAML nor valid JSON.
    Syntax(Diagnostic),
    /// The document parsed but is not a valid contract.
    Invalid(Vec<Diagnostic>),
}

impl Diagnostic {
    pub fn at(pointer: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            pointer: pointer.to_string(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl ContractError {
    pub fn single(pointer: &str, message: impl Into<String>) -> Self {
        ContractError::Invalid(vec![Diagnostic::at(pointer, message)])
    }

    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ContractError::TooLarge { .. } => vec![Diagnostic {
                pointer: String::new(),
                message: self.to_string(),
                line: None,
                column: None,
            }],
            ContractError::Syntax(d) => vec![d.clone()],
            ContractError::Invalid(ds) => ds.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{at} (line {l}, column {c}): {}", self.message),
            (Some(l), None) => write!(f, "{at} (line {l}): {}", self.message),
            _ => write!(f, "{at}: {}", self.message),
        }
    }
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractError::TooLarge { bytes, limit } => write!(
                f,
                "the contract is {bytes} bytes, larger than the limit of {limit} bytes"
            ),
            ContractError::Syntax(d) => write!(f, "the contract is not valid YAML or JSON: {d}"),
            ContractError::Invalid(ds) => {
                write!(f, "invalid AsyncAPI contract: ")?;
                for (i, d) in ds.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ContractError {}
