//! Dialing the backend: TCP (and TLS for `wss://`) within the connect timeout, then the
//! backend's WebSocket handshake, completed before the client is answered.

use crate::error::GatewayError;
use http::{Request, StatusCode};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{error::ProtocolError, Error as WsError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type BackendSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Open a WebSocket to the backend named by `request`'s URI.
pub async fn connect(
    request: Request<()>,
    connect_timeout: Duration,
    config: WebSocketConfig,
) -> Result<(BackendSocket, Response), GatewayError> {
    let uri = request.uri().clone();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(GatewayError::backend(
                StatusCode::BAD_GATEWAY,
                "bad_target",
                format!("the target scheme {other:?} is not ws or wss"),
            ))
        }
    };
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect((host.as_str(), port)))
        .await
    {
        Err(_) => {
            return Err(GatewayError::backend(
                StatusCode::GATEWAY_TIMEOUT,
                "backend_timeout",
                format!(
                "the backend {host}:{port} did not accept a connection within {connect_timeout:?}"
            ),
            ))
        }
        Ok(Err(e)) => {
            return Err(GatewayError::backend(
                StatusCode::BAD_GATEWAY,
                "backend_unreachable",
                format!("the backend {host}:{port} is unreachable: {e}"),
            ))
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let connector = if tls {
        Connector::Rustls(tls_config())
    } else {
        Connector::Plain
    };
    let handshake = tokio_tungstenite::client_async_tls_with_config(
        request,
        tcp,
        Some(config),
        Some(connector),
    );
    match tokio::time::timeout(connect_timeout, handshake).await {
        Err(_) => Err(GatewayError::backend(
            StatusCode::GATEWAY_TIMEOUT,
            "backend_timeout",
            format!("the backend {host}:{port} did not complete the WebSocket handshake within {connect_timeout:?}"),
        )),
        Ok(Err(e)) => Err(handshake_error(e)),
        Ok(Ok(done)) => Ok(done),
    }
}

fn handshake_error(e: WsError) -> GatewayError {
    let (code, message) = match e {
        WsError::Http(resp) => (
            "backend_refused_upgrade",
            format!(
                "the backend answered HTTP {} to the WebSocket handshake",
                resp.status()
            ),
        ),
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => (
            "backend_subprotocol",
            format!("the backend's subprotocol answer is not acceptable: {e}"),
        ),
        WsError::Tls(e) => ("backend_tls", format!("TLS with the backend failed: {e}")),
        other => (
            "backend_handshake",
            format!("the backend's WebSocket handshake failed: {other}"),
        ),
    };
    GatewayError::backend(StatusCode::BAD_GATEWAY, code, message)
}

/// Client TLS settings for `wss://` backends: the Mozilla root set via webpki-roots.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
