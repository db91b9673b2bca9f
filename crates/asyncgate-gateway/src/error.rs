//! Gateway errors: who is at fault, and the HTTP answer given before any upgrade.

use http::{header, StatusCode};

/// Who caused a failure: decides the status family and what is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Backend,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct GatewayError {
    pub fault: Fault,
    pub status: StatusCode,
    /// Short machine-readable code, e.g. `missing_credentials`.
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (e.g. `WWW-Authenticate`, `Sec-WebSocket-Version`).
    pub headers: Vec<(header::HeaderName, &'static str)>,
}

impl GatewayError {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            fault: Fault::Client,
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn backend(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            fault: Fault::Backend,
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        GatewayError {
            fault: Fault::Internal,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP response a rejected handshake gets, on the wire: JSON naming the
    /// problem, and `Connection: close`.
    pub fn to_http(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.code,
            "message": self.message,
        })
        .to_string();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        head.into_bytes()
    }
}
