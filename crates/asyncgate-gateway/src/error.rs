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

    /// What the client is told. A client's own mistake is explained in full; a backend's
    /// or the gateway's failure only by its kind, since its detail (addresses, system
    /// errors) is the operator's business and goes to the log.
    pub fn public_message(&self) -> &str {
        match (self.fault, self.status) {
            (Fault::Client, _) => &self.message,
            (Fault::Backend, StatusCode::GATEWAY_TIMEOUT) => {
                "the API's backend did not answer in time"
            }
            (Fault::Backend, _) => "the API's backend is unavailable",
            (Fault::Internal, _) => "the gateway failed to handle the request",
        }
    }

    /// The HTTP response a rejected handshake gets, on the wire: JSON naming the
    /// problem, and `Connection: close`.
    pub fn to_http(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.code,
            "message": self.public_message(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clients_own_mistake_is_explained_to_it() {
        let secret = "ws://10.1.2.3:7000/chat: connection refused";
        for e in [
            GatewayError::backend(StatusCode::BAD_GATEWAY, "backend_unavailable", secret),
            GatewayError::backend(StatusCode::GATEWAY_TIMEOUT, "backend_timeout", secret),
            GatewayError::internal(secret),
        ] {
            let wire = String::from_utf8(e.to_http()).unwrap();
            assert!(!wire.contains("10.1.2.3"), "{wire}");
            assert!(wire.contains(e.code), "{wire}");
        }
        let e = GatewayError::client(StatusCode::NOT_FOUND, "no_api", "no API at /x");
        assert!(String::from_utf8(e.to_http())
            .unwrap()
            .contains("no API at /x"));
    }
}
