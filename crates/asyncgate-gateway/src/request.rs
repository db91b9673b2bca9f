//! The client's side of the opening handshake on the wire: one HTTP/1.1 request head read
//! off the socket (bounded in size; the caller bounds the time), and the answer written
//! back — the 101, or an error that closes the connection.

use crate::error::GatewayError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 << 10;
/// Most header fields accepted.
const MAX_HEADERS: usize = 64;

/// A request head, and the bytes the client sent after it (frames already on their way).
pub struct Head {
    pub request: Request<()>,
    pub read_ahead: Vec<u8>,
}

/// Read one request head. `Err(None)` when the client left before sending one.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Head, Option<GatewayError>> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        if stream.read_buf(&mut buf).await.map_err(|_| None)? == 0 {
            return Err(None);
        }
        // The head's fields become slices of this one buffer, not copies.
        let head = Bytes::from(std::mem::take(&mut buf));
        if let Some((request, len)) = parse(&head).map_err(Some)? {
            return Ok(Head {
                request,
                read_ahead: head[len..].to_vec(),
            });
        }
        buf = head.into();
        if buf.len() >= MAX_HEAD {
            return Err(Some(too_large()));
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().min(MAX_HEAD - buf.len()));
        }
    }
}

fn too_large() -> GatewayError {
    GatewayError::client(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "head_too_large",
        format!("the request head is over {MAX_HEAD} bytes or {MAX_HEADERS} fields"),
    )
}

fn bad(message: String) -> GatewayError {
    GatewayError::client(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The request in `buf` and the length of its head, or `None` if incomplete. The target
/// and the field values share `buf`'s memory.
pub fn parse(buf: &Bytes) -> Result<Option<(Request<()>, usize)>, GatewayError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(e) => return Err(bad(format!("the request is not valid HTTP/1.1: {e}"))),
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("invalid method".into()))?;
    let uri = Uri::from_maybe_shared(buf.slice_ref(req.path.unwrap_or_default().as_bytes()))
        .map_err(|e| bad(format!("invalid request target: {e}")))?;
    let version = match req.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for field in req.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| bad(format!("invalid header name {:?}", field.name)))?;
        let value = HeaderValue::from_maybe_shared(buf.slice_ref(field.value))
            .map_err(|_| bad(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some((request, len)))
}

/// The 101 answer: `accept` is the `Sec-WebSocket-Accept` value.
pub fn switching_protocols(
    accept: &str,
    protocol: Option<&HeaderValue>,
    extensions: Option<&HeaderValue>,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(160);
    head.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ",
    );
    head.extend_from_slice(accept.as_bytes());
    if let Some(p) = protocol {
        head.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        head.extend_from_slice(p.as_bytes());
    }
    if let Some(e) = extensions {
        head.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        head.extend_from_slice(e.as_bytes());
    }
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// Answer `error` and close: the write side is shut, then what the client still sends is
/// read and dropped (briefly), so that closing does not reset the connection before the
/// client has read the answer.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, error: &GatewayError) {
    let answer = error.to_http();
    let linger = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), linger).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_head_parses_and_what_follows_is_kept_apart() {
        let raw = b"GET /chat?room=1 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nX-A: 1\r\nX-A: 2\r\n\r\n\x81\x80";
        let (req, len) = parse(&Bytes::from_static(raw)).unwrap().unwrap();
        assert_eq!(len, raw.len() - 2);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path(), "/chat");
        assert_eq!(req.uri().query(), Some("room=1"));
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers().get_all("x-a").iter().count(), 2);
        assert!(
            parse(&Bytes::from_static(b"GET / HTTP/1.1\r\nHost: gw\r\n"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn broken_and_oversized_heads_are_refused() {
        assert_eq!(
            parse(&Bytes::from_static(
                b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"
            ))
            .unwrap_err()
            .status,
            StatusCode::BAD_REQUEST
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&many.into()).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn the_101_names_accept_and_protocol() {
        let head = switching_protocols("abc=", Some(&HeaderValue::from_static("chat")), None);
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: abc=\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Protocol: chat\r\n\r\n"));
    }
}
