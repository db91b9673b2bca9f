//! A permessage-deflate peer for tests, on raw sockets and flate2 (none of the gateway's
//! code): a client that offers the extension and sends compressed messages, and an echo
//! backend that accepts it. Both compress without context takeover.

use crate::{raw_handshake, Backend, Events, WAIT};
use anyhow::{anyhow, Context};
use std::io::Write;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

pub const RSV1: u8 = 0x40;
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A message's payload deflated as RFC 7692 says: sync flush, its tail removed.
pub fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(payload).expect("in memory");
    encoder.flush().expect("in memory");
    let mut out = encoder.get_ref().clone();
    assert!(out.ends_with(&TAIL), "a sync flush ends with its tail");
    out.truncate(out.len() - TAIL.len());
    out
}

/// A compressed payload inflated (its tail put back).
pub fn inflate(compressed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut d = flate2::Decompress::new(false);
    let input = [compressed, &TAIL[..]].concat();
    let mut out = Vec::with_capacity(input.len() * 4 + 64);
    loop {
        let before = d.total_in();
        d.decompress_vec(
            &input[d.total_in() as usize..],
            &mut out,
            flate2::FlushDecompress::Sync,
        )?;
        if d.total_in() as usize == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if d.total_in() == before && out.len() < out.capacity() {
            return Err(anyhow!("inflating stopped short"));
        }
        out.reserve(out.capacity());
    }
}

/// A frame: `first` (FIN, RSV1, opcode) and the payload, masked when `mask` is given
/// (encoded by tungstenite).
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & RSV1 != 0,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::from(first & 0x0F),
        mask,
    };
    let f = Frame::from_payload(header, payload.to_vec().into());
    let mut out = Vec::with_capacity(payload.len() + 14);
    f.format(&mut out).expect("in memory");
    out
}

/// Read one frame, unmasking it: its first byte and payload. The header is read byte by
/// byte until tungstenite can parse it, so nothing past the frame is consumed.
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> anyhow::Result<(u8, Vec<u8>)> {
    let mut head = Vec::with_capacity(14);
    let (header, len) = loop {
        let mut b = [0u8];
        tokio::time::timeout(WAIT, s.read_exact(&mut b))
            .await
            .context("no frame")??;
        head.push(b[0]);
        if let Some(parsed) = FrameHeader::parse(&mut std::io::Cursor::new(&head))? {
            break parsed;
        }
    };
    let mut payload = vec![0u8; usize::try_from(len)?];
    s.read_exact(&mut payload).await?;
    if let Some(key) = header.mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok((head[0], payload))
}

/// A message as received: whether it came compressed, its opcode and its payload
/// (inflated). Close, ping and pong frames come as they are.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub compressed: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Received {
    /// A close frame's code and reason.
    pub fn close(&self) -> Option<(u16, String)> {
        (self.opcode == 0x8 && self.payload.len() >= 2).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }
}

/// Read frames until a whole message (or a control frame): fragments joined, inflated
/// when the first frame had RSV1.
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> anyhow::Result<Received> {
    let (first, mut payload) = read_frame(s).await?;
    let opcode = first & 0x0F;
    let mut fin = first & 0x80 != 0;
    while !fin && opcode < 0x8 {
        let (next, more) = read_frame(s).await?;
        anyhow::ensure!(next & 0x0F == 0, "a continuation frame was expected");
        payload.extend(more);
        fin = next & 0x80 != 0;
    }
    let compressed = first & RSV1 != 0;
    if compressed {
        payload = inflate(&payload)?;
    }
    Ok(Received {
        compressed,
        opcode,
        payload,
    })
}

/// A raw client connection through the gateway that may offer permessage-deflate.
pub struct DeflateClient {
    pub tcp: TcpStream,
    /// The 101's head.
    pub answer: String,
}

const CLIENT_MASK: [u8; 4] = [0x5a, 0x13, 0xc7, 0x2e];

impl DeflateClient {
    /// Connect to `url` (credentials in its query), offering `offer` as
    /// `Sec-WebSocket-Extensions` when given.
    pub async fn connect(url: &str, offer: Option<&str>) -> anyhow::Result<DeflateClient> {
        let headers: Vec<(&str, &str)> = offer
            .map(|o| ("Sec-WebSocket-Extensions", o))
            .into_iter()
            .collect();
        let (tcp, answer) = raw_handshake(url, &headers).await?;
        Ok(DeflateClient { tcp, answer })
    }

    /// The 101's `Sec-WebSocket-Extensions`, if any.
    pub fn extensions(&self) -> Option<&str> {
        self.answer.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim())
        })
    }

    /// Send one frame (masked) with `first` as its first byte.
    pub async fn send_frame(&mut self, first: u8, payload: &[u8]) -> anyhow::Result<()> {
        self.tcp
            .write_all(&frame(first, payload, Some(CLIENT_MASK)))
            .await?;
        Ok(())
    }

    /// Send a text message compressed, in one frame.
    pub async fn send_compressed(&mut self, text: &str) -> anyhow::Result<()> {
        self.send_frame(0x80 | RSV1 | 0x1, &deflate(text.as_bytes()))
            .await
    }

    pub async fn recv(&mut self) -> anyhow::Result<Received> {
        read_message(&mut self.tcp).await
    }

    /// Read until a close frame: its code and reason.
    pub async fn recv_close(&mut self) -> anyhow::Result<(u16, String)> {
        loop {
            let m = self.recv().await?;
            if let Some(close) = m.close() {
                return Ok(close);
            }
            anyhow::ensure!(m.opcode != 0x8, "a close frame without a code");
        }
    }
}

impl Backend {
    /// An echo backend that accepts permessage-deflate (answering
    /// `server_no_context_takeover; client_no_context_takeover`) and sends every message
    /// back, compressed when the extension was agreed. It records `offer:VALUE` (or
    /// `offer:none`) per handshake, `message:compressed:TEXT` or `message:plain:TEXT`
    /// per message, and `close:CODE:REASON`.
    pub async fn deflate_echo() -> anyhow::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let events = Events::default();
        let log = events.clone();
        Ok(Backend::serving(url, listener, events, move |stream| {
            deflate_echo_session(stream, log.clone())
        }))
    }
}

async fn deflate_echo_session(mut tcp: TcpStream, events: Events) {
    let record = |e: String| {
        if let Ok(mut log) = events.lock() {
            log.push(e);
        }
    };
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        if tcp.read_exact(&mut b).await.is_err() {
            return;
        }
        head.push(b[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(&head).is_err() {
        return;
    }
    let value = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let offer = value("sec-websocket-extensions");
    let key = value("sec-websocket-key").unwrap_or_default();
    record(format!("offer:{}", offer.as_deref().unwrap_or("none")));
    let agreed = offer
        .as_deref()
        .is_some_and(|o| o.contains("permessage-deflate"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if agreed {
        answer.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    answer.push_str("\r\n");
    if tcp.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    while let Ok(m) = read_message(&mut tcp).await {
        let reply = match m.opcode {
            0x1 | 0x2 => {
                record(format!(
                    "message:{}:{}",
                    if m.compressed { "compressed" } else { "plain" },
                    String::from_utf8_lossy(&m.payload)
                ));
                if agreed {
                    frame(0x80 | RSV1 | m.opcode, &deflate(&m.payload), None)
                } else {
                    frame(0x80 | m.opcode, &m.payload, None)
                }
            }
            0x9 => frame(0x8A, &m.payload, None),
            0x8 => {
                let (code, reason) = m.close().unwrap_or((1005, String::new()));
                record(format!("close:{code}:{reason}"));
                let _ = tcp.write_all(&frame(0x88, &m.payload, None)).await;
                return;
            }
            _ => continue,
        };
        if tcp.write_all(&reply).await.is_err() {
            return;
        }
    }
}
