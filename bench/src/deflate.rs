//! permessage-deflate in the benchmark (tungstenite has none): an echo backend that
//! accepts the extension and a closed-loop client that offers it, both on raw sockets
//! and flate2, compressing without context takeover. The client reports the bytes its
//! sockets carried per round trip: what compression saves on the wire.

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

const RSV1: u8 = 0x40;
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
const MASK: [u8; 4] = [0x21, 0x7a, 0x03, 0xc4];

fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(payload).expect("in memory");
    encoder.flush().expect("in memory");
    let mut out = encoder.get_ref().clone();
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

fn inflate(compressed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut decoder = flate2::write::DeflateDecoder::new(Vec::new());
    decoder.write_all(compressed)?;
    decoder.write_all(&TAIL)?;
    decoder.flush()?;
    Ok(std::mem::take(decoder.get_mut()))
}

/// A frame (encoded by tungstenite): `first` is FIN, RSV1 and the opcode; masked with a
/// fixed key when `mask`.
fn frame(first: u8, payload: &[u8], mask: bool, out: &mut Vec<u8>) {
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & RSV1 != 0,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::from(first & 0x0F),
        mask: mask.then_some(MASK),
    };
    let f = Frame::from_payload(header, payload.to_vec().into());
    f.format(out).expect("in memory");
}

/// One whole message (fragments joined, inflated if compressed): opcode and payload;
/// the wire bytes it took are added to `wire`. Headers are read byte by byte until
/// tungstenite parses them (the reader is buffered).
async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    wire: &mut u64,
) -> anyhow::Result<(u8, Vec<u8>)> {
    let mut message = Vec::new();
    let mut first_byte = None;
    let mut head = Vec::with_capacity(14);
    loop {
        head.clear();
        let (header, len) = loop {
            head.push(r.read_u8().await?);
            if let Some(parsed) = FrameHeader::parse(&mut std::io::Cursor::new(&head))? {
                break parsed;
            }
        };
        let mut payload = vec![0u8; usize::try_from(len)?];
        r.read_exact(&mut payload).await?;
        *wire += head.len() as u64 + len;
        if let Some(key) = header.mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= key[i % 4]);
        }
        let opcode = head[0] & 0x0F;
        if opcode >= 0x8 {
            return Ok((opcode, payload));
        }
        first_byte.get_or_insert(head[0]);
        message.extend(payload);
        if header.is_final {
            break;
        }
    }
    let first = first_byte.unwrap_or(0);
    if first & RSV1 != 0 {
        message = inflate(&message)?;
    }
    Ok((first & 0x0F, message))
}

/// Echo every message; with permessage-deflate when the client offers it.
pub async fn echo_backend(listen: &str) -> anyhow::Result<()> {
    crate::serve(listen, |stream| async move {
        let _ = echo_session(stream).await;
    })
    .await
}

async fn echo_session(stream: TcpStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let head = read_head(&mut read).await?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let key = header("sec-websocket-key").ok_or_else(|| anyhow!("no key"))?;
    let compress =
        header("sec-websocket-extensions").is_some_and(|e| e.contains("permessage-deflate"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut answer = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n");
    if compress {
        answer.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    answer.push_str("\r\n");
    write.write_all(answer.as_bytes()).await?;
    let mut wire = 0;
    let mut out = Vec::new();
    loop {
        let (opcode, payload) = read_message(&mut read, &mut wire).await?;
        out.clear();
        match opcode {
            0x1 | 0x2 if compress => {
                frame(0x80 | RSV1 | opcode, &deflate(&payload), false, &mut out)
            }
            0x1 | 0x2 => frame(0x80 | opcode, &payload, false, &mut out),
            0x8 => {
                frame(0x88, &payload, false, &mut out);
                write.write_all(&out).await?;
                return Ok(());
            }
            0x9 => frame(0x8A, &payload, false, &mut out),
            _ => continue,
        }
        write.write_all(&out).await?;
    }
}

async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> anyhow::Result<String> {
    let mut head = String::new();
    loop {
        let before = head.len();
        if r.read_line(&mut head).await? == 0 {
            return Err(anyhow!("closed during the handshake"));
        }
        if head[before..].trim().is_empty() {
            return Ok(head);
        }
    }
}
/// Chat lines as the sample's `Data` messages: `{"type":"Data","message":"..."}` with
/// `size` bytes of words, different for each `seed`.
pub fn chat_text(size: usize, seed: u64) -> String {
    const WORDS: [&str; 24] = [
        "hello", "everyone", "the", "meeting", "starts", "at", "noon", "please", "join", "room",
        "lobby", "thanks", "see", "you", "there", "deploy", "is", "done", "and", "tests", "pass",
        "on", "main", "today",
    ];
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut text = String::with_capacity(size);
    let head = r#"{"type":"Data","message":""#;
    while head.len() + text.len() + 2 < size {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[(s >> 33) as usize % WORDS.len()]);
    }
    format!("{head}{text}\"}}")
}

/// Closed loop over raw sockets: each connection keeps `inflight` chat messages
/// outstanding, compressed when permessage-deflate is agreed (`offer`).
pub async fn rtt(
    url: &str,
    connections: usize,
    inflight: usize,
    size: usize,
    seconds: f64,
    headers: &[String],
    offer: bool,
) -> anyhow::Result<()> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(connect(url, headers, offer).await?);
    }
    let messages: Vec<String> = (0..64).map(|i| chat_text(size, i)).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    let negotiated = sockets.iter().all(|(_, agreed)| *agreed);
    for (index, (tcp, agreed)) in sockets.into_iter().enumerate() {
        let messages = messages.clone();
        tasks.push(tokio::spawn(async move {
            let (read, mut write) = tcp.into_split();
            let mut read = BufReader::new(read);
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut sent = std::collections::VecDeque::with_capacity(inflight);
            let (mut wire_out, mut wire_in, mut done, mut next) = (0u64, 0u64, 0u64, index);
            let mut out = Vec::new();
            let send = |out: &mut Vec<u8>, next: &mut usize| {
                let text = messages[*next % messages.len()].as_bytes();
                *next += 1;
                if agreed {
                    frame(0x80 | RSV1 | 0x1, &deflate(text), true, out);
                } else {
                    frame(0x81, text, true, out);
                }
            };
            for _ in 0..inflight {
                send(&mut out, &mut next);
                sent.push_back(Instant::now());
            }
            loop {
                if !out.is_empty() {
                    write.write_all(&out).await?;
                    wire_out += out.len() as u64;
                    out.clear();
                }
                if sent.is_empty() {
                    break;
                }
                let (opcode, _) = read_message(&mut read, &mut wire_in).await?;
                if opcode >= 0x8 {
                    continue;
                }
                let t = sent
                    .pop_front()
                    .ok_or_else(|| anyhow!("more echoes than messages"))?;
                h.record(t.elapsed().as_micros().max(1) as u64)?;
                done += 1;
                if Instant::now() < deadline {
                    send(&mut out, &mut next);
                    sent.push_back(Instant::now());
                }
            }
            let mut close = Vec::new();
            frame(0x88, &1000u16.to_be_bytes(), true, &mut close);
            let _ = write.write_all(&close).await;
            Ok::<_, anyhow::Error>((done, h, wire_out + wire_in))
        }));
    }
    let start = Instant::now();
    let (mut total, mut wire) = (0u64, 0u64);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        let (done, h, bytes) = t.await??;
        total += done;
        wire += bytes;
        all.add(&h)?;
    }
    let elapsed = start.elapsed().as_secs_f64().max(seconds);
    println!(
        "{}",
        json!({
            "mode": "deflate-rtt", "connections": connections, "inflight": inflight, "size": size,
            "negotiated": negotiated, "roundtrips": total, "seconds": elapsed,
            "rate": total as f64 / elapsed,
            "p50_us": all.value_at_quantile(0.50), "p99_us": all.value_at_quantile(0.99),
            "wire_bytes_per_roundtrip": wire as f64 / total.max(1) as f64,
        })
    );
    Ok(())
}

/// Connect to a `ws://` URL by hand, offering permessage-deflate when `offer`: the
/// socket, and whether the extension was agreed.
async fn connect(url: &str, headers: &[String], offer: bool) -> anyhow::Result<(TcpStream, bool)> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("deflate-rtt takes ws:// URLs"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut tcp = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tcp.set_nodelay(true)?;
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    if offer {
        head.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    }
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        tcp.read_exact(&mut b).await?;
        answer.push(b[0]);
    }
    let answer = String::from_utf8_lossy(&answer);
    anyhow::ensure!(answer.starts_with("HTTP/1.1 101"), "not upgraded: {answer}");
    let agreed = answer
        .to_ascii_lowercase()
        .contains("sec-websocket-extensions: permessage-deflate");
    Ok((tcp, agreed))
}
