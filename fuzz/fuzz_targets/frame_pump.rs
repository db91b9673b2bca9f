//! Fuzz target: any bytes, split across reads any way, through the frame pump in both
//! directions must never panic or hang, and must be judged the same however the reads
//! fall.
//!
//! Input: byte 0 picks the mode, the message limit and whether messages are validated
//! against a contract (held until whole and judged: rejected, or dropped with a notice),
//! bits 6-7 of byte 0 say what a compressed message (RSV1) is: refused, relayed, or
//! inflated (and deflated again) by the gateway,
//! byte 1 seeds the read splits,
//! bytes 2-3 say where the client's bytes end and the backend's begin. In raw mode the
//! bytes go on the wire as they are; in framed mode they are read as
//! `[first byte][length][payload]` records and written as frames, masked from the
//! client, so the fuzzer reaches deep into messages, fragments and close handshakes.
#![no_main]

use asyncgate_core::{ApiPolicies, MessageValidation, SnapshotMessage, Unjudged};
use asyncgate_gateway::deflate::{Agreed, Negotiated};
use asyncgate_gateway::direction::{feed, Compressed, Direction, Inspect, PENDING_NOTICES};
use asyncgate_gateway::frame::apply_mask;
use asyncgate_gateway::pump::{self, Leg, Settings, Timing};
use asyncgate_gateway::validate::Rules;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (mode, seed) = (data[0], data[1]);
    let max_message = [125u64, 1000, 1 << 20][usize::from(mode >> 1) % 3];
    let validation = [
        MessageValidation::Off,
        MessageValidation::Reject,
        MessageValidation::Drop,
        MessageValidation::Report,
    ][usize::from(mode >> 4) % 4];
    let compressed = [
        Compressed::Refused,
        Compressed::Relayed { takeover: true },
        Compressed::Inflated,
        Compressed::Refused,
    ][usize::from(mode >> 6)];
    // As in the gateway: validation reads payloads, so compressed messages are then
    // inflated, never relayed (`ApiPolicies::compression_shape` chooses terminate, and
    // `ApiPolicies::check` refuses pass-through with validation on).
    let compressed = match compressed {
        Compressed::Relayed { .. } if validation != MessageValidation::Off => Compressed::Inflated,
        other => other,
    };
    let rest = &data[4..];
    let split = usize::from(u16::from_le_bytes([data[2], data[3]])).min(rest.len());
    let (client, backend) = rest.split_at(split);
    let (client, backend) = if mode & 1 == 0 {
        (client.to_vec(), backend.to_vec())
    } else {
        (framed(client, true), framed(backend, false))
    };
    for (from_client, wire) in [(true, &client), (false, &backend)] {
        same_verdict_however_split(from_client, max_message, wire, seed, validation, compressed);
    }
    through_the_pump(client, backend, max_message, seed, validation, compressed);
});

/// A contract's rules for one direction: objects with a string `a`; binary and non-JSON
/// text refused (mode bit 3) or passed.
fn rules(from_client: bool, validation: MessageValidation) -> Option<Arc<Rules>> {
    let policies = ApiPolicies {
        message_validation: validation,
        unjudged: Unjudged::Fail,
        ..Default::default()
    };
    let messages = [SnapshotMessage {
        name: "A".into(),
        schema: Some(
            serde_json::json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}),
        ),
    }];
    Rules::compile("/", from_client, policies, Some(&messages)).map(Arc::new)
}

/// Records `[first byte][length][payload]` as frames: the first byte as given (FIN,
/// reserved bits, opcode), the length in its shortest form, masked when from a client.
fn framed(records: &[u8], from_client: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= records.len() {
        let (first, len) = (records[i], usize::from(records[i + 1]));
        let payload = &records[(i + 2).min(records.len())..(i + 2 + len).min(records.len())];
        i += 2 + payload.len();
        out.push(first);
        let mask_bit = if from_client { 0x80 } else { 0 };
        out.push(mask_bit | payload.len() as u8 & 0x7F);
        let body = out.len() + if from_client { 4 } else { 0 };
        if from_client {
            out.extend_from_slice(&[0x37, 0xFA, 0x21, 0x3D]);
        }
        out.extend_from_slice(&payload[..payload.len().min(125)]);
        if from_client {
            apply_mask(&mut out[body..], [0x37, 0xFA, 0x21, 0x3D], 0);
        }
    }
    out
}

/// Cut points for `len` bytes from `seed`: sizes 1 to 17 bytes, in a pattern.
fn cuts(seed: u8, len: usize) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    let mut s = u32::from(seed) | 1;
    loop {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        at += 1 + (s >> 16) as usize % 17;
        if at >= len {
            return out;
        }
        out.push(at);
    }
}

fn same_verdict_however_split(
    from_client: bool,
    max: u64,
    wire: &[u8],
    seed: u8,
    validation: MessageValidation,
    compressed: Compressed,
) {
    let inflated = compressed == Compressed::Inflated;
    let run = |cuts: &[usize]| {
        let rules = rules(from_client, validation);
        let inspect = (rules.is_some() || inflated)
            .then(|| Inspect::new(rules, inflated.then_some(15), from_client));
        let d = Direction::new(from_client, max).compressed(compressed);
        feed(d, inspect, wire, cuts)
    };
    let (whole, whole_notices, whole_stop) = run(&[]);
    let (split, split_notices, split_stop) = run(&cuts(seed, wire.len()));
    assert_eq!(
        whole_stop, split_stop,
        "the same verdict however the reads fall"
    );
    if whole_notices.len() < PENDING_NOTICES {
        // Past that many in one read, the newest notice replaces the last.
        assert_eq!(whole_notices, split_notices, "the same notices");
    }
    if inflated && from_client {
        // Frames the gateway writes to the backend get a fresh mask each: the bytes
        // differ, the verdict may not.
    } else if whole_stop.is_none() {
        assert_eq!(whole, split, "the same bytes forwarded");
    } else {
        // Read whole, a breaking frame is taken back; read in pieces, part of it may
        // have gone on already.
        assert!(
            split.starts_with(&whole),
            "a breach forwards no more than read whole"
        );
    }
}

/// Both sides' bytes through `pump::run` over in-memory pipes with paused time: it must
/// end (every timer fires as soon as nothing else can happen) without a panic.
fn through_the_pump(
    client: Vec<u8>,
    backend: Vec<u8>,
    max_message: u64,
    seed: u8,
    validation: MessageValidation,
    compressed: Compressed,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (gw_client, client_end) = tokio::io::duplex(4096);
        let (gw_backend, backend_end) = tokio::io::duplex(4096);
        let settings = Settings {
            timing: Timing {
                idle: Duration::from_secs(30),
                pong_timeout: Duration::from_secs(10),
                max_duration: Some(Duration::from_secs(600)),
                credential_expiry: None,
            },
            max_message_bytes: max_message,
            read_bytes: 64 + usize::from(seed) * 4,
            meter: None,
            rules: [rules(true, validation), rules(false, validation)],
            rate: None,
            compression: match compressed {
                Compressed::Refused => Negotiated::None,
                Compressed::Relayed { takeover } => Negotiated::PassThrough {
                    client_takeover: takeover,
                    backend_takeover: takeover,
                },
                Compressed::Inflated => Negotiated::Terminated {
                    client: Some(Agreed { window_bits: 15 }),
                    backend: Some(Agreed { window_bits: 9 }),
                },
            },
        };
        let pump = tokio::spawn(pump::run(
            Leg {
                io: gw_client,
                read_ahead: Vec::new(),
            },
            Leg {
                io: gw_backend,
                read_ahead: Vec::new(),
            },
            settings,
            std::sync::Arc::new(asyncgate_gateway::connection::Connection::new(
                asyncgate_gateway::connection::Identity::example(),
            )),
        ));
        let feed = |mut end: tokio::io::DuplexStream, wire: Vec<u8>| async move {
            let (mut rd, mut wr) = tokio::io::split(&mut end);
            let write = async {
                let mut start = 0;
                for at in cuts(seed.rotate_left(3), wire.len())
                    .into_iter()
                    .chain([wire.len()])
                {
                    if wr.write_all(&wire[start..at]).await.is_err() {
                        return;
                    }
                    start = at;
                    tokio::task::yield_now().await;
                }
                let _ = wr.shutdown().await;
            };
            let read = async {
                let mut sink = Vec::new();
                let _ = rd.read_to_end(&mut sink).await;
            };
            tokio::join!(write, read);
        };
        let (_, _, ended) =
            tokio::join!(feed(client_end, client), feed(backend_end, backend), pump);
        ended.expect("the pump never panics");
    });
}
