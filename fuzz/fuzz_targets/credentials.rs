//! Fuzz target: any query string and credential headers (API key, Authorization,
//! Sec-WebSocket-Protocol) through `auth::read_credentials` must never panic, and what it
//! leaves for the backend must hold no credential: reading the backend's query and
//! subprotocol offer again finds none.
//!
//! Input: fields separated by 0xFF — the query, then values of `api-key`, `authorization`
//! and `sec-websocket-protocol` (values that are not valid header values are skipped).
#![no_main]

use asyncgate_gateway::auth::read_credentials;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0xFF);
    let query = fields.next().map(String::from_utf8_lossy);
    let mut headers = HeaderMap::new();
    for name in [
        "api-key",
        "authorization",
        "sec-websocket-protocol",
        "x-chat-key",
    ] {
        if let Some(v) = fields.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.append(HeaderName::from_static(name), v);
        }
    }
    let custom = HeaderName::from_static("x-chat-key");
    let Ok(read) = read_credentials(&headers, query.as_deref(), Some(&custom)) else {
        return;
    };
    let mut left = HeaderMap::new();
    if let Some(offer) = read
        .protocol
        .as_ref()
        .and_then(|p| p.backend_offer.as_deref())
    {
        if let Ok(v) = HeaderValue::from_str(offer) {
            left.insert(HeaderName::from_static("sec-websocket-protocol"), v);
        }
    }
    let again = read_credentials(&left, read.backend_query.as_deref(), None)
        .expect("what is left for the backend reads again");
    assert_eq!(
        again.presented, None,
        "a credential would reach the backend"
    );
});
