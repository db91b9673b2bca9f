//! permessage-deflate (RFC 7692): the offers and answers of the handshake, read and
//! written, and whole messages inflated and deflated when the gateway terminates
//! compression.
//!
//! When it terminates, the gateway asks both sides to compress without context takeover
//! and does so itself, so a connection holds no compression state between messages: the
//! inflater and the deflaters are the worker thread's, reset for every message.

use crate::frame::{self, Violation};
use asyncgate_core::CompressionShape;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{header, HeaderMap, HeaderValue};
use std::borrow::Cow;
use std::cell::RefCell;

pub const NAME: &str = "permessage-deflate";

/// What the gateway agreed with one side when it terminates compression: both compress
/// without context takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The LZ77 window (bits, 8 to 15) the gateway may use compressing towards that side.
    pub window_bits: u8,
}

impl Agreed {
    /// The window the gateway compresses with towards this side, if it can: raw DEFLATE
    /// has no 256-byte window, so a side that allows only 8 bits gets messages
    /// uncompressed (always allowed).
    pub fn deflate_bits(self) -> Option<u8> {
        (self.window_bits >= 9).then_some(self.window_bits)
    }
}

/// What was done with the client's offer, before the backend answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing negotiated: no offer reached the backend.
    Off,
    /// The client's permessage-deflate offers went to the backend (`offered`: there were
    /// some), whose answer goes back to the client.
    PassThrough { offered: bool },
    /// The gateway offered its own to the backend; `client`: what it agreed with the
    /// client, and the answer it gives.
    Terminate {
        client: Option<(Agreed, HeaderValue)>,
    },
}

/// What permessage-deflate came to on a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Negotiated {
    #[default]
    None,
    /// Client and backend agreed end to end: compressed frames are relayed untouched.
    /// Whether each may compress with context from earlier messages (the answer did not
    /// say `client_no_context_takeover` / `server_no_context_takeover`).
    PassThrough {
        client_takeover: bool,
        backend_takeover: bool,
    },
    /// The gateway agreed with each side on its own (`None`: that side sends and gets
    /// uncompressed messages).
    Terminated {
        client: Option<Agreed>,
        backend: Option<Agreed>,
    },
}

impl Negotiated {
    /// The names operators see, by [`Negotiated::index`].
    pub const NAMES: [&'static str; 3] = ["none", "pass-through", "terminated"];

    pub fn index(self) -> u8 {
        match self {
            Negotiated::None => 0,
            Negotiated::PassThrough { .. } => 1,
            Negotiated::Terminated { .. } => 2,
        }
    }
}

/// The gateway's own offer to a backend: no context takeover either way, and the backend
/// may limit the gateway's window.
pub const BACKEND_OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits";

/// Decide, from the API's shape and the client's request headers, what goes to the
/// backend (added to `backend_headers`) and what the client is answered.
pub fn plan(shape: CompressionShape, client: &HeaderMap, backend_headers: &mut HeaderMap) -> Plan {
    match shape {
        CompressionShape::Off => Plan::Off,
        CompressionShape::PassThrough => {
            let offers: Vec<&str> = extension_values(client)
                .flat_map(split_list)
                .filter(|e| name_of(e).eq_ignore_ascii_case(NAME))
                .collect();
            if offers.is_empty() {
                return Plan::PassThrough { offered: false };
            }
            let value = HeaderValue::from_str(&offers.join(", ")).ok();
            let offered = value.is_some();
            if let Some(value) = value {
                backend_headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
            Plan::PassThrough { offered }
        }
        CompressionShape::Terminate => {
            // Only a client that compresses has its messages inflated and the backend's
            // deflated for it; without one, neither leg is compressed.
            let client = answer_client(extension_values(client));
            if client.is_some() {
                backend_headers.insert(
                    header::SEC_WEBSOCKET_EXTENSIONS,
                    HeaderValue::from_static(BACKEND_OFFER),
                );
            }
            Plan::Terminate { client }
        }
    }
}

impl Plan {
    /// The backend answered (its `Sec-WebSocket-Extensions` values): what was agreed, and
    /// the value the client's 101 carries. An answer that does not fit what was offered
    /// fails the handshake with the reason.
    pub fn conclude<'a>(
        self,
        answer: impl Iterator<Item = &'a str>,
    ) -> Result<(Negotiated, Option<HeaderValue>), String> {
        let elements: Vec<&str> = answer.flat_map(split_list).collect();
        if elements.is_empty() {
            return Ok(match self {
                Plan::Terminate {
                    client: Some((agreed, value)),
                } => (
                    Negotiated::Terminated {
                        client: Some(agreed),
                        backend: None,
                    },
                    Some(value),
                ),
                _ => (Negotiated::None, None),
            });
        }
        let offered = match &self {
            Plan::Off => false,
            Plan::PassThrough { offered } => *offered,
            Plan::Terminate { client } => client.is_some(),
        };
        let [element] = elements[..] else {
            return Err(format!(
                "the backend enabled {} extensions; only permessage-deflate was offered",
                elements.len()
            ));
        };
        let name = name_of(element);
        if !offered || !name.eq_ignore_ascii_case(NAME) {
            return Err(format!(
                "the backend enabled the extension `{}`, which was not offered",
                name.escape_default()
            ));
        }
        match self {
            Plan::Off => {
                Err("the backend enabled permessage-deflate, which was not offered".into())
            }
            Plan::PassThrough { .. } => {
                let value = HeaderValue::from_str(element).map_err(|_| {
                    "the backend's Sec-WebSocket-Extensions is not a valid header value".to_string()
                })?;
                // The answer is the client's to judge; read leniently here, a parameter
                // that cannot be read leaves context takeover possible.
                let p = params(element).unwrap_or_default();
                let negotiated = Negotiated::PassThrough {
                    client_takeover: !p.client_no_context_takeover,
                    backend_takeover: !p.server_no_context_takeover,
                };
                Ok((negotiated, Some(value)))
            }
            Plan::Terminate { client } => {
                let backend = backend_answer(element)?;
                let (client, value) = client.unzip();
                Ok((
                    Negotiated::Terminated {
                        client,
                        backend: Some(backend),
                    },
                    value,
                ))
            }
        }
    }
}

fn extension_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The elements of an extension list (`a; x=1, b`), split at commas outside quotes.
fn split_list(list: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut start = 0;
    let mut cuts = Vec::new();
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                cuts.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    cuts.push((start, list.len()));
    cuts.into_iter()
        .map(move |(a, b)| list[a..b].trim())
        .filter(|e| !e.is_empty())
}

fn name_of(element: &str) -> &str {
    element.split(';').next().unwrap_or("").trim()
}

/// A permessage-deflate element's parameters, each at most once.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

/// Read an element's parameters; `Err` names what is wrong (an unknown or repeated
/// parameter, a value out of range).
fn params(element: &str) -> Result<Params, String> {
    let mut p = Params::default();
    for param in element.split(';').skip(1) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        let repeated = || format!("the parameter {key} appears twice");
        let bits = |v: Option<&str>| -> Result<u8, String> {
            v.and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b) && !v.unwrap_or("").starts_with('0'))
                .ok_or_else(|| format!("{key} must be a number from 8 to 15"))
        };
        match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" if value.is_some() => {
                return Err(format!("{key} takes no value"))
            }
            "server_no_context_takeover" if p.server_no_context_takeover => return Err(repeated()),
            "server_no_context_takeover" => p.server_no_context_takeover = true,
            "client_no_context_takeover" if p.client_no_context_takeover => return Err(repeated()),
            "client_no_context_takeover" => p.client_no_context_takeover = true,
            "server_max_window_bits" if p.server_max_window_bits.is_some() => {
                return Err(repeated())
            }
            "server_max_window_bits" => p.server_max_window_bits = Some(bits(value)?),
            "client_max_window_bits" if p.client_max_window_bits.is_some() => {
                return Err(repeated())
            }
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match value {
                    None => None,
                    v => Some(bits(v)?),
                })
            }
            _ => return Err(format!("unknown parameter `{}`", key.escape_default())),
        }
    }
    Ok(p)
}

/// The gateway as the client's server: the first acceptable permessage-deflate offer is
/// answered (offers with unknown or malformed parameters are declined, RFC 7692 5). The
/// gateway compresses without context takeover within the client's window limit, and
/// asks the client to do without context takeover too.
pub fn answer_client<'a>(values: impl Iterator<Item = &'a str>) -> Option<(Agreed, HeaderValue)> {
    values
        .flat_map(split_list)
        .filter(|e| name_of(e).eq_ignore_ascii_case(NAME))
        .find_map(|offer| {
            let p = params(offer).ok()?;
            let window_bits = p.server_max_window_bits.unwrap_or(15);
            let mut answer =
                format!("{NAME}; server_no_context_takeover; client_no_context_takeover");
            if let Some(bits) = p.server_max_window_bits {
                answer.push_str(&format!("; server_max_window_bits={bits}"));
            }
            Some((Agreed { window_bits }, HeaderValue::from_str(&answer).ok()?))
        })
}

/// The backend's answer to [`BACKEND_OFFER`]: it must keep no context on its side, as
/// asked; its window limit for the gateway is honoured.
fn backend_answer(element: &str) -> Result<Agreed, String> {
    let p = params(element)
        .map_err(|e| format!("the backend's permessage-deflate answer is invalid: {e}"))?;
    if !p.server_no_context_takeover {
        return Err(
            "the backend's permessage-deflate answer drops server_no_context_takeover, which the gateway asked for"
                .into(),
        );
    }
    let window_bits = match p.client_max_window_bits {
        None => 15,
        Some(Some(bits)) => bits,
        Some(None) => return Err(
            "the backend's permessage-deflate answer has client_max_window_bits without a value"
                .into(),
        ),
    };
    Ok(Agreed { window_bits })
}

/// The four bytes a sync flush ends with, removed from each compressed message (RFC 7692
/// 7.2.1) and put back to inflate it.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Deflate level: zlib's default balance of bytes saved and CPU spent.
const LEVEL: u32 = 6;

thread_local! {
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
    /// One deflater per window size (9 to 15 bits), made when first needed.
    static DEFLATERS: RefCell<[Option<Compress>; 7]> = const { RefCell::new([None, None, None, None, None, None, None]) };
}

fn corrupt(detail: impl std::fmt::Display) -> Violation {
    Violation {
        code: frame::INVALID_PAYLOAD,
        reason: Cow::Owned(format!("invalid compressed message: {detail}")),
    }
}

/// Inflate a compressed message's payload into `out`, which may not grow past `limit`
/// bytes: a message that would is refused (1009) when the limit is reached, so however
/// small it was on the wire it costs at most the limit.
pub fn inflate(compressed: &[u8], limit: u64, out: &mut Vec<u8>) -> Result<(), Violation> {
    INFLATER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let d = cell.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        inflate_with(d, compressed, limit, out)
    })
}

fn inflate_with(
    d: &mut Decompress,
    compressed: &[u8],
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), Violation> {
    let mut chunk = [0u8; 8 * 1024];
    for mut input in [compressed, &TAIL[..]] {
        loop {
            let (before_in, before_out) = (d.total_in(), d.total_out());
            let status = d
                .decompress(input, &mut chunk, FlushDecompress::Sync)
                .map_err(corrupt)?;
            let used = (d.total_in() - before_in) as usize;
            let made = (d.total_out() - before_out) as usize;
            input = &input[used..];
            if (out.len() + made) as u64 > limit {
                return Err(Violation {
                    code: frame::TOO_BIG,
                    reason: Cow::Borrowed("message too big once inflated"),
                });
            }
            out.extend_from_slice(&chunk[..made]);
            let drained = input.is_empty() && made < chunk.len();
            if drained || status == Status::StreamEnd || (used == 0 && made == 0) {
                break;
            }
        }
    }
    Ok(())
}

/// Deflate a whole message with a fresh context and a window of `window_bits` (9 to
/// 15), appended to `out` without the sync flush's tail; `false` (and `out` as it was)
/// if the deflater failed, when the message is to go on uncompressed.
pub fn deflate(payload: &[u8], window_bits: u8, out: &mut Vec<u8>) -> bool {
    let bits = window_bits.clamp(9, 15);
    DEFLATERS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let c = cell[usize::from(bits - 9)].get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(LEVEL), false, bits)
        });
        c.reset();
        let start = out.len();
        let mut input = payload;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = c.total_in();
            if c.compress_vec(input, out, FlushCompress::Sync).is_err() {
                out.truncate(start);
                return false;
            }
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value.parse().unwrap());
        h
    }

    #[test]
    fn the_first_acceptable_client_offer_is_answered() {
        let h = headers(
            "x-webkit-deflate-frame, permessage-deflate; mystery=1, permessage-deflate; server_max_window_bits=10; client_max_window_bits",
        );
        let (agreed, answer) = answer_client(extension_values(&h)).unwrap();
        assert_eq!(agreed.window_bits, 10);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        let (agreed, answer) =
            answer_client(extension_values(&headers("permessage-deflate"))).unwrap();
        assert_eq!(agreed.window_bits, 15);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        for declined in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "x-other",
        ] {
            assert_eq!(
                answer_client(extension_values(&headers(declined))),
                None,
                "{declined}"
            );
        }
        assert_eq!(
            answer_client(extension_values(&headers(
                "permessage-deflate; server_max_window_bits=8"
            )))
            .unwrap()
            .0
            .deflate_bits(),
            None,
            "no 256-byte window in raw DEFLATE: that client gets uncompressed messages"
        );
    }

    #[test]
    fn pass_through_sends_only_permessage_deflate_offers_and_takes_one_answer() {
        let mut to_backend = HeaderMap::new();
        let plan = plan(
            CompressionShape::PassThrough,
            &headers("foo; a=1, permessage-deflate; client_max_window_bits, permessage-deflate"),
            &mut to_backend,
        );
        assert_eq!(plan, Plan::PassThrough { offered: true });
        assert_eq!(
            to_backend[header::SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate; client_max_window_bits, permessage-deflate"
        );
        let (negotiated, to_client) = plan
            .clone()
            .conclude(
                ["permessage-deflate; client_max_window_bits=12; client_no_context_takeover"]
                    .into_iter(),
            )
            .unwrap();
        assert_eq!(
            negotiated,
            Negotiated::PassThrough {
                client_takeover: false,
                backend_takeover: true
            }
        );
        assert_eq!(
            to_client.unwrap(),
            "permessage-deflate; client_max_window_bits=12; client_no_context_takeover"
        );
        assert!(plan
            .clone()
            .conclude(["foo"].into_iter())
            .unwrap_err()
            .contains("`foo`"));
        assert!(plan
            .clone()
            .conclude(["permessage-deflate, permessage-deflate"].into_iter())
            .is_err());
        assert_eq!(
            plan.conclude(std::iter::empty()).unwrap(),
            (Negotiated::None, None)
        );
        let none = Plan::PassThrough { offered: false };
        assert!(none.conclude(["permessage-deflate"].into_iter()).is_err());
        assert!(Plan::Off
            .conclude(["permessage-deflate"].into_iter())
            .is_err());
    }

    #[test]
    fn terminate_offers_its_own_and_checks_the_backend_answer() {
        let mut to_backend = HeaderMap::new();
        let plan = plan(
            CompressionShape::Terminate,
            &headers("permessage-deflate; client_max_window_bits"),
            &mut to_backend,
        );
        assert_eq!(to_backend[header::SEC_WEBSOCKET_EXTENSIONS], BACKEND_OFFER);
        let (negotiated, to_client) = plan
            .clone()
            .conclude(
                ["permessage-deflate; server_no_context_takeover; client_max_window_bits=11"]
                    .into_iter(),
            )
            .unwrap();
        assert_eq!(
            negotiated,
            Negotiated::Terminated {
                client: Some(Agreed { window_bits: 15 }),
                backend: Some(Agreed { window_bits: 11 }),
            }
        );
        assert_eq!(
            to_client.unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let err = plan
            .clone()
            .conclude(["permessage-deflate"].into_iter())
            .unwrap_err();
        assert!(err.contains("server_no_context_takeover"), "{err}");
        // The backend does not compress: the client's side still does.
        let (negotiated, _) = plan.conclude(std::iter::empty()).unwrap();
        assert_eq!(
            negotiated,
            Negotiated::Terminated {
                client: Some(Agreed { window_bits: 15 }),
                backend: None,
            }
        );
        // A client that offers nothing: no offer to the backend, and an answer is refused.
        let mut to_backend = HeaderMap::new();
        let silent = super::plan(
            CompressionShape::Terminate,
            &HeaderMap::new(),
            &mut to_backend,
        );
        assert!(to_backend.is_empty());
        assert_eq!(silent, Plan::Terminate { client: None });
        assert!(silent
            .clone()
            .conclude(["permessage-deflate; server_no_context_takeover"].into_iter())
            .is_err());
        assert_eq!(
            silent.conclude(std::iter::empty()).unwrap(),
            (Negotiated::None, None)
        );
    }

    #[test]
    fn messages_round_trip_in_every_window() {
        let text = "{\"type\":\"message\",\"room\":\"lobby\",\"text\":\"hello there\"}".repeat(40);
        for bits in 9..=15 {
            let mut packed = Vec::new();
            assert!(deflate(text.as_bytes(), bits, &mut packed));
            assert!(packed.len() < text.len() / 4, "{bits}: {}", packed.len());
            assert!(!packed.ends_with(&TAIL));
            let mut plain = Vec::new();
            inflate(&packed, text.len() as u64, &mut plain).unwrap();
            assert_eq!(plain, text.as_bytes());
        }
        // The window is the one asked for: text repeated 1,500 bytes back shrinks to about
        // half with a 32 KiB window and not with a 512-byte one.
        let block: String = (0..300)
            .map(|i| format!("w{} ", (i * 7919) % 1000))
            .collect();
        let twice = format!("{block}{block}");
        let (mut narrow, mut wide) = (Vec::new(), Vec::new());
        assert!(deflate(twice.as_bytes(), 9, &mut narrow));
        assert!(deflate(twice.as_bytes(), 15, &mut wide));
        assert!(
            wide.len() * 3 < narrow.len() * 2,
            "15 bits: {}, 9 bits: {}",
            wide.len(),
            narrow.len()
        );
        let mut packed = Vec::new();
        deflate(b"", 15, &mut packed);
        let mut plain = Vec::new();
        inflate(&packed, 0, &mut plain).unwrap();
        assert!(plain.is_empty());
    }

    #[test]
    fn a_message_ending_in_a_final_block_inflates() {
        // RFC 7692 7.2.3.3 lets a sender end a message with a block that has BFINAL set.
        let mut c = Compress::new(Compression::default(), false);
        let mut packed = Vec::with_capacity(256);
        c.compress_vec(b"final block", &mut packed, FlushCompress::Finish)
            .unwrap();
        let mut plain = Vec::new();
        inflate(&packed, 64, &mut plain).unwrap();
        assert_eq!(plain, b"final block");
    }

    #[test]
    fn inflation_stops_at_the_limit_and_bad_data_is_refused() {
        // A decompression bomb: 16 MiB of zeros is a few KiB compressed.
        let zeros = vec![0u8; 16 << 20];
        let mut bomb = Vec::new();
        deflate(&zeros, 15, &mut bomb);
        assert!(bomb.len() < 32 * 1024, "{}", bomb.len());
        let mut out = Vec::new();
        let v = inflate(&bomb, 64 * 1024, &mut out).unwrap_err();
        assert_eq!(v.code, frame::TOO_BIG);
        assert!(out.len() <= 64 * 1024, "{}", out.len());
        let v = inflate(&[0xff, 0xff, 0xff], 1024, &mut Vec::new()).unwrap_err();
        assert_eq!(v.code, frame::INVALID_PAYLOAD);
        // The thread's inflater is reset for the next message.
        let mut packed = Vec::new();
        deflate(b"after", 15, &mut packed);
        let mut plain = Vec::new();
        inflate(&packed, 5, &mut plain).unwrap();
        assert_eq!(plain, b"after");
    }
}
