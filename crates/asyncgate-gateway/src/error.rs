//! Gateway errors: who is at fault, and the HTTP answer given before any upgrade.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

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

    /// The HTTP response a rejected handshake gets: JSON naming the problem.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.code,
            "message": self.message,
        });
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONNECTION, "close");
        for (name, value) in &self.headers {
            builder = builder.header(name, *value);
        }
        builder
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}
