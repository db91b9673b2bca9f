//! RFC 6455 section 5 on the wire: frame headers read and written, masking, and the
//! checks a close frame's payload must pass.

/// Control frames carry at most 125 bytes (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Longest control frame: short length, a mask and 125 bytes.
pub const MAX_CONTROL_FRAME: usize = 2 + 4 + MAX_CONTROL_PAYLOAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A frame header as read, before its rules are checked ([`Header::opcode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The first byte: FIN, the reserved bits and the opcode.
    first: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header itself takes.
    pub len: usize,
}

impl Header {
    pub fn fin(&self) -> bool {
        self.first & 0x80 != 0
    }

    /// Whether the opcode is one of the control range (close, ping, pong or reserved).
    pub fn is_control(&self) -> bool {
        self.first & 0x08 != 0
    }

    /// Whether this is a close frame whatever else is wrong with it.
    pub fn is_close(&self) -> bool {
        self.first & 0x0F == 0x8
    }

    /// RSV1: the message is compressed (permessage-deflate). Whether it may be set is
    /// the direction's to decide (see `direction`).
    pub fn rsv1(&self) -> bool {
        self.first & RSV1 != 0
    }

    /// The opcode, once the header passes the rules: no extension uses RSV2 or RSV3, so
    /// they are an error; control frames are whole and at most 125 bytes.
    pub fn opcode(&self) -> Result<OpCode, Violation> {
        if self.first & 0x30 != 0 {
            return Err(protocol("reserved bits set without an extension"));
        }
        let opcode = OpCode::from_bits(self.first & 0x0F).ok_or(protocol("unknown opcode"))?;
        if opcode.is_control() {
            if !self.fin() {
                return Err(protocol("fragmented control frame"));
            }
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(protocol("control frame longer than 125 bytes"));
            }
        }
        Ok(opcode)
    }
}

/// A breach of the protocol, and the close code and reason that answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: std::borrow::Cow<'static, str>,
}

/// The first header byte's bit saying a message is compressed.
pub const RSV1: u8 = 0x40;

pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const TOO_BIG: u16 = 1009;
pub const POLICY_VIOLATION: u16 = 1008;

/// The reason given for a length written in a longer form than it needs.
pub const NON_MINIMAL: &str = "frame length not in its shortest form";

const fn protocol(reason: &'static str) -> Violation {
    Violation {
        code: PROTOCOL_ERROR,
        reason: std::borrow::Cow::Borrowed(reason),
    }
}

/// Read the header at the start of `buf`: `Ok(None)` when more bytes are needed.
///
/// Section 5.2 says the length "MUST" use the minimal number of bytes; a longer form is
/// a protocol error (1002) here, so every accepted header is as long as its payload
/// length says and a control frame is never longer than [`MAX_CONTROL_FRAME`].
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, Violation> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let (payload_len, mut len) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => {
                let n = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if n < 126 {
                    return Err(protocol(NON_MINIMAL));
                }
                (n, 4)
            }
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut n = [0u8; 8];
                n.copy_from_slice(b);
                let n = u64::from_be_bytes(n);
                if n >> 63 != 0 {
                    return Err(protocol("frame length with the top bit set"));
                }
                if n <= u64::from(u16::MAX) {
                    return Err(protocol(NON_MINIMAL));
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if second & 0x80 != 0 {
        let Some(m) = buf.get(len..len + 4) else {
            return Ok(None);
        };
        len += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(Header {
        first,
        mask,
        payload_len,
        len,
    }))
}

/// XOR `data` with `key`, `data` starting `offset` bytes into the frame's payload.
/// Applying it twice restores the bytes.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let k: [u8; 4] = std::array::from_fn(|i| key[(i + offset) % 4]);
    // Bytes XORed eight at a time; native byte order in and out keeps positions.
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

/// Append one complete frame to `out`, masked with `mask` when given.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    let body = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[body..], key, 0);
    }
}

/// The payload of a close frame with `code` and `reason`, the reason cut to fit 125 bytes
/// at a character boundary.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = Vec::with_capacity(2 + end);
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

/// Section 7.4: codes an endpoint may send in a close frame.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Check an (unmasked) close payload: empty, or a valid code and a UTF-8 reason.
/// Returns the code and reason.
pub fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), Violation> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(protocol("close frame with a one-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !valid_close_code(code) {
                return Err(protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation {
                code: INVALID_PAYLOAD,
                reason: std::borrow::Cow::Borrowed("close reason is not UTF-8"),
            })?;
            Ok((Some(code), reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_hello() -> Vec<u8> {
        // RFC 6455 section 5.7: a masked "Hello".
        vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]
    }

    #[test]
    fn the_rfc_examples_parse() {
        let h = parse_header(&[0x81, 0x05, b'H']).unwrap().unwrap();
        assert_eq!(
            (h.fin(), h.opcode(), h.mask, h.payload_len, h.len),
            (true, Ok(OpCode::Text), None, 5, 2)
        );
        let frame = masked_hello();
        let h = parse_header(&frame).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = frame[h.len..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        let h = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.payload_len, h.len), (256, 4));
        let h = parse_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.len), (65536, 10));
    }

    #[test]
    fn incomplete_headers_ask_for_more() {
        let frame = masked_hello();
        for end in 0..6 {
            assert_eq!(parse_header(&frame[..end]), Ok(None), "{end} bytes");
        }
        assert_eq!(parse_header(&[0x82, 0x7F, 0, 0]), Ok(None));
    }

    #[test]
    fn breaches_are_named() {
        let code = |b: &[u8]| match parse_header(b) {
            Err(v) => v.reason,
            Ok(h) => h.unwrap().opcode().unwrap_err().reason,
        };
        assert_eq!(code(&[0xA1, 0]), "reserved bits set without an extension");
        assert_eq!(code(&[0x91, 0]), "reserved bits set without an extension");
        assert_eq!(code(&[0x83, 0]), "unknown opcode");
        assert_eq!(code(&[0x09, 0]), "fragmented control frame");
        assert_eq!(
            code(&[0x89, 126, 0, 126]),
            "control frame longer than 125 bytes"
        );
        assert_eq!(
            code(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            "frame length with the top bit set"
        );
    }

    #[test]
    fn masking_at_any_offset_matches_byte_by_byte() {
        let key = [1, 2, 3, 250];
        let data: Vec<u8> = (0..103u8).collect();
        for offset in 0..8 {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(i + offset) % 4])
                .collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }

    #[test]
    fn written_frames_read_back() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload = vec![7u8; len];
            for mask in [None, Some([9, 8, 7, 6])] {
                let mut out = Vec::new();
                write_frame(&mut out, OpCode::Binary, &payload, mask);
                let h = parse_header(&out).unwrap().unwrap();
                assert_eq!((h.payload_len, h.mask), (len as u64, mask));
                assert_eq!(h.opcode(), Ok(OpCode::Binary));
                let mut body = out[h.len..].to_vec();
                if let Some(key) = mask {
                    apply_mask(&mut body, key, 0);
                }
                assert_eq!(body, payload);
            }
        }
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(parse_close(&[]), Ok((None, "")));
        assert_eq!(
            parse_close(&close_payload(4001, "bye")),
            Ok((Some(4001), "bye"))
        );
        assert_eq!(parse_close(&[3]).unwrap_err().code, PROTOCOL_ERROR);
        for bad in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(
                parse_close(&bad.to_be_bytes()).unwrap_err().code,
                PROTOCOL_ERROR,
                "{bad}"
            );
        }
        assert_eq!(
            parse_close(&[0x03, 0xE8, 0xFF]).unwrap_err().code,
            INVALID_PAYLOAD
        );
        let long = "é".repeat(100);
        let p = close_payload(1001, &long);
        assert!(p.len() <= MAX_CONTROL_PAYLOAD);
        assert!(parse_close(&p).is_ok());
    }
}
