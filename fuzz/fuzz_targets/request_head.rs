//! Fuzz target: any bytes as a client's request head through `request::parse` must never
//! panic; a head it accepts then goes through what the gateway derives from its headers
//! for the backend (the request id, the trace context, the forwarding headers), which
//! must not panic either and must yield a request id that is a plain token; and its
//! `Sec-WebSocket-Extensions`, as the client's offer in every compression shape and as a
//! backend's answer to each.
#![no_main]

use asyncgate_core::CompressionShape;
use asyncgate_gateway::deflate;
use asyncgate_gateway::forwarded::{self, TrustedProxies};
use asyncgate_gateway::request;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((req, len))) = request::parse(&bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    assert!(len <= data.len());
    let trusted = TrustedProxies::parse(&["127.0.0.0/8"]).expect("a network");
    for peer in ["127.0.0.1:1", "203.0.113.9:2"] {
        let peer: SocketAddr = peer.parse().expect("an address");
        let id = forwarded::request_id(req.headers(), peer, &trusted);
        assert!((1..=128).contains(&id.len()));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)));
        let mut out = HeaderMap::new();
        forwarded::set_tracing(&mut out, req.headers(), &id);
        forwarded::set(&mut out, req.headers(), peer, "https", &trusted);
        assert_eq!(out["x-request-id"], id.as_str());
    }
    let answer: Vec<&str> = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for shape in [
        CompressionShape::Off,
        CompressionShape::PassThrough,
        CompressionShape::Terminate,
    ] {
        let mut to_backend = HeaderMap::new();
        let plan = deflate::plan(shape, req.headers(), &mut to_backend);
        if let deflate::Plan::Terminate {
            client: Some((agreed, _)),
        } = &plan
        {
            assert!((8..=15).contains(&agreed.window_bits));
        }
        let _ = plan.conclude(answer.iter().copied());
    }
});
