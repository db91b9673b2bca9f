//! Dialing the backend: TCP (and TLS for `wss://`) within the connect timeout, then the
//! backend's WebSocket handshake, completed and checked here before the client is
//! answered: status 101, the accept key, and a subprotocol the client actually offered.

use crate::deflate::{Negotiated, Plan};
use crate::error::GatewayError;
use crate::handshake::BackendRequest;
use crate::pump::Leg;
use http::{header, HeaderValue, StatusCode};
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The connection to a backend, plain or TLS.
pub type BackendStream = crate::tls::MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;

/// Largest backend handshake response accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// A backend connection ready for frames.
pub struct Dialed {
    /// The connection, and any frames the backend sent right after its 101.
    pub leg: Leg<BackendStream>,
    /// The subprotocol the backend chose (one the client offered), if any.
    pub protocol: Option<HeaderValue>,
    /// What permessage-deflate came to, and the `Sec-WebSocket-Extensions` the client's
    /// 101 carries.
    pub compression: (Negotiated, Option<HeaderValue>),
}

/// TLS settings for `wss://` backends: the Mozilla roots plus an optional custom CA file.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn bad_gateway(code: &'static str, message: String) -> GatewayError {
    GatewayError::backend(StatusCode::BAD_GATEWAY, code, message)
}

/// Open a WebSocket to the backend `request` is for. It carries the headers to send,
/// including a fresh `Sec-WebSocket-Key` and the extensions `plan` offered.
pub async fn connect(
    request: BackendRequest,
    plan: Plan,
    connect_timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Dialed, GatewayError> {
    let deadline = Instant::now() + connect_timeout;
    let dial = request.dial.clone();
    let (host, port) = (&dial.host, dial.port);
    let timed_out = |what: &str| {
        GatewayError::backend(
            StatusCode::GATEWAY_TIMEOUT,
            "backend_timeout",
            format!("the backend {host}:{port} did not {what} within {connect_timeout:?}"),
        )
    };

    let tcp =
        match tokio::time::timeout_at(deadline, TcpStream::connect((host.as_str(), port))).await {
            Err(_) => return Err(timed_out("accept a connection")),
            Ok(Err(e)) => {
                return Err(bad_gateway(
                    "backend_unreachable",
                    format!("the backend {host}:{port} is unreachable: {e}"),
                ))
            }
            Ok(Ok(tcp)) => tcp,
        };
    let _ = tcp.set_nodelay(true);
    let mut stream = if dial.secure {
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
            bad_gateway(
                "bad_target",
                format!("{host} is not a valid TLS server name: {e}"),
            )
        })?;
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
            Err(_) => return Err(timed_out("complete TLS")),
            Ok(Err(e)) => {
                return Err(bad_gateway(
                    "backend_tls",
                    format!("TLS with the backend {host}:{port} failed: {e}"),
                ))
            }
            Ok(Ok(tls)) => BackendStream::Tls(Box::new(tls)),
        }
    } else {
        BackendStream::Plain(tcp)
    };

    let head = request_head(&request);
    let exchange = async {
        stream.write_all(&head).await?;
        stream.flush().await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before answering",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > MAX_RESPONSE_HEAD {
                return Ok(buf);
            }
        }
    };
    let buf = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => return Err(timed_out("complete the WebSocket handshake")),
        Ok(Err(e)) => {
            return Err(bad_gateway(
                "backend_handshake",
                format!("the backend's WebSocket handshake failed: {e}"),
            ))
        }
        Ok(Ok(buf)) => buf,
    };
    let (head_len, protocol, compression) = check_response(&buf, &request, plan)?;
    let mut read_ahead = buf;
    read_ahead.drain(..head_len);
    Ok(Dialed {
        leg: Leg {
            io: stream,
            read_ahead,
        },
        protocol,
        compression,
    })
}

fn request_head(request: &BackendRequest) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"GET ");
    head.extend_from_slice(request.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &request.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// What the backend's 101 said: the length of its head, the chosen subprotocol and what
/// permessage-deflate came to.
type Answer = (
    usize,
    Option<HeaderValue>,
    (Negotiated, Option<HeaderValue>),
);

/// RFC 6455 section 4.1, the client's checks of the server's answer, and RFC 7692's of
/// its extensions against what `plan` offered.
fn check_response(
    buf: &[u8],
    request: &BackendRequest,
    plan: Plan,
) -> Result<Answer, GatewayError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(bad_gateway(
                "backend_handshake",
                format!("the backend's handshake answer is longer than {MAX_RESPONSE_HEAD} bytes"),
            ))
        }
        Err(e) => {
            return Err(bad_gateway(
                "backend_handshake",
                format!("the backend answered something that is not HTTP: {e}"),
            ))
        }
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(bad_gateway(
            "backend_refused_upgrade",
            format!(
                "the backend answered HTTP {code} {} to the WebSocket handshake",
                resp.reason.unwrap_or("")
            ),
        ));
    }
    let values = |name: &'static str| {
        resp.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap_or("").trim())
    };
    let has_token = |name: &'static str, token: &str| {
        values(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(bad_gateway(
            "backend_handshake",
            "the backend's 101 lacks Upgrade: websocket / Connection: Upgrade".into(),
        ));
    }
    let key = request
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes())
        .unwrap_or_default();
    if values("sec-websocket-accept").next() != Some(derive_accept_key(key).as_str()) {
        return Err(bad_gateway(
            "backend_handshake",
            "the backend's Sec-WebSocket-Accept does not match the key".into(),
        ));
    }
    let compression = plan
        .conclude(values("sec-websocket-extensions"))
        .map_err(|e| bad_gateway("backend_handshake", e))?;
    let mut chosen = values("sec-websocket-protocol");
    let protocol = match (chosen.next(), chosen.next()) {
        (None, _) => None,
        (Some(one), None) => {
            let offered = request
                .headers
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim() == one);
            if !offered {
                return Err(bad_gateway(
                    "backend_subprotocol",
                    format!(
                        "the backend chose the subprotocol `{one}`, which the client did not offer"
                    ),
                ));
            }
            HeaderValue::from_str(one).ok()
        }
        _ => {
            return Err(bad_gateway(
                "backend_subprotocol",
                "the backend chose more than one subprotocol".into(),
            ))
        }
    };
    Ok((head_len, protocol, compression))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(protocols: Option<&str>) -> BackendRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        if let Some(p) = protocols {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, p.parse().unwrap());
        }
        BackendRequest {
            dial: crate::route::Target::new("ws://b/").dial.unwrap(),
            path: "/".into(),
            headers,
        }
    }

    fn answer(extra: &str) -> Vec<u8> {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\nFRAME")
            .into_bytes()
    }

    #[test]
    fn a_valid_answer_leaves_the_bytes_after_the_head() {
        let buf = answer("");
        let (n, p, _) = check_response(&buf, &request(None), Plan::Off).unwrap();
        assert_eq!(&buf[n..], b"FRAME");
        assert!(p.is_none());
    }

    #[test]
    fn subprotocols_must_have_been_offered() {
        let (_, p, _) = check_response(
            &answer("Sec-WebSocket-Protocol: chat\r\n"),
            &request(Some("v2, chat")),
            Plan::Off,
        )
        .unwrap();
        assert_eq!(p.unwrap(), "chat");
        // The backend may choose none of the offered ones.
        assert!(
            check_response(&answer(""), &request(Some("chat")), Plan::Off)
                .unwrap()
                .1
                .is_none()
        );
        let e = check_response(
            &answer("Sec-WebSocket-Protocol: mqtt\r\n"),
            &request(Some("chat")),
            Plan::Off,
        )
        .unwrap_err();
        assert_eq!(e.code, "backend_subprotocol");
        let e = check_response(
            &answer("Sec-WebSocket-Protocol: chat\r\n"),
            &request(None),
            Plan::Off,
        )
        .unwrap_err();
        assert_eq!(e.code, "backend_subprotocol");
    }

    #[test]
    fn wrong_status_and_accept_are_refused() {
        let e = check_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", &request(None), Plan::Off)
            .unwrap_err();
        assert!(e.message.contains("403"), "{}", e.message);
        let bad = b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert_eq!(
            check_response(bad, &request(None), Plan::Off)
                .unwrap_err()
                .code,
            "backend_handshake"
        );
    }

    #[test]
    fn an_extension_the_gateway_did_not_offer_is_refused() {
        let e = check_response(
            &answer("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            &request(None),
            Plan::Off,
        )
        .unwrap_err();
        assert_eq!(e.code, "backend_handshake");
        assert!(e.message.contains("not offered"), "{}", e.message);
        let (_, _, (negotiated, to_client)) = check_response(
            &answer("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"),
            &request(None),
            Plan::PassThrough { offered: true },
        )
        .unwrap();
        assert_eq!(
            negotiated,
            Negotiated::PassThrough {
                client_takeover: true,
                backend_takeover: false
            }
        );
        assert_eq!(
            to_client.unwrap(),
            "permessage-deflate; server_no_context_takeover"
        );
    }
}
