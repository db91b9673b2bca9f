//! One direction of a relayed connection, read frame by frame as bytes arrive: which bytes
//! go on unchanged, which control frames stop here, and which breaches end the connection.
//!
//! Frames are forwarded as they were received — header, mask and payload — so a data
//! frame costs a header parse and, for text, a UTF-8 check; its payload is streamed on
//! as soon as it is read, never gathered into a message. Only when the API validates
//! messages is a message held (its frames as received, and its payload unmasked) until
//! it is whole and judged against the contract, then sent on, dropped or refused; the
//! messages judged in one read go on together, in the order they came.
//!
//! A compressed message (permessage-deflate, RSV1 on its first frame) is refused unless
//! compression was negotiated; passed through, it is relayed as it came (its size
//! counted on the wire, its text checked by the receiver); where the gateway terminates
//! compression it is held, inflated within the size limit, judged, and sent on as a new
//! frame, compressed again if the receiver negotiated compression.

use crate::deflate;
use crate::frame::{self, OpCode, Violation};
use crate::meter::Meter;
use crate::utf8::Utf8Stream;
use crate::validate::Rules;
use asyncgate_core::{MessageValidation, OnExcess};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

/// Payload of the gateway's own keepalive pings; pongs carrying it stop at the gateway.
pub const KEEPALIVE: &[u8] = b"asyncgate-keepalive";

const INVALID_UTF8: Violation = Violation {
    code: frame::INVALID_PAYLOAD,
    reason: Cow::Borrowed("invalid UTF-8 in a text message"),
};

/// Why reading this direction stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// A valid close frame: the frame as received, its code and reason.
    Close {
        frame: Vec<u8>,
        code: Option<u16>,
        reason: String,
    },
    /// The sender broke the protocol or a limit.
    Violation(Violation),
    /// The sender sent a message the contract does not allow (message validation
    /// `reject`).
    Refused(Violation),
    /// A data frame went over a metered rate (the plan's or the API's) that closes.
    OverRate(Violation),
}

/// What a compressed message (RSV1 on its first frame) may be in this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressed {
    /// permessage-deflate was not negotiated with the sender: RSV1 is a protocol error.
    Refused,
    /// Negotiated end to end: relayed untouched. `takeover`: the sender may compress
    /// with context from earlier messages, so none of its compressed messages may be
    /// dropped (the receiver's context would no longer match).
    Relayed { takeover: bool },
    /// Negotiated with the gateway: inflated (the direction's [`Inspect`] holds it).
    Inflated,
}

/// A held message's end: a breach of the protocol or a limit, or a refusal by the
/// contract.
enum Verdict {
    Breach(Violation),
    Refused(Violation),
}

/// What one call to [`Direction::process`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Processed {
    /// `buf[..forward]` is to be sent on (then, when validating, [`Inspect::ready`]).
    pub forward: usize,
    pub stop: Option<Stop>,
}

/// One direction's message validation and compression: its rules, and the message under
/// way, held until whole (inflated if compressed) and judged. Kept apart from
/// [`Direction`] (and boxed by the pump) so that a connection without either pays one
/// pointer for it.
pub struct Inspect {
    /// The contract's rules, when the API validates messages.
    rules: Option<Arc<Rules>>,
    /// While a compressed message is held: whether it is text. Its payload (unmasked,
    /// then inflated) is in `payload`; its frames are not kept.
    compressed: Option<bool>,
    /// The window the receiver lets the gateway compress with, when it negotiated
    /// compression: inflated messages are deflated again for it.
    recompress: Option<u8>,
    /// The receiver is the backend: frames the gateway writes to it are masked.
    masked: bool,
    /// The judged messages ready to go on (`..ready`), with the control frames that
    /// followed the first of them, then the message under way: frames as received.
    held: Vec<u8>,
    ready: usize,
    /// Where in `held` the payload of the message under way starts, while it is one
    /// unmasked frame and so can be judged where it lies.
    in_place: Option<usize>,
    /// Otherwise its payload, unmasked.
    payload: Vec<u8>,
    /// What the senders of dropped messages are to be told, oldest first.
    notices: VecDeque<Vec<u8>>,
}

impl Inspect {
    /// `recompress`: the receiver's window for messages the gateway deflates, when it
    /// negotiated compression; `masked`: the receiver is the backend.
    pub fn new(rules: Option<Arc<Rules>>, recompress: Option<u8>, masked: bool) -> Inspect {
        Inspect {
            rules,
            compressed: None,
            recompress,
            masked,
            held: Vec::new(),
            ready: 0,
            in_place: None,
            payload: Vec::new(),
            notices: VecDeque::new(),
        }
    }

    /// What is to be sent on after `buf[..forward]` of the last [`Processed`]; then
    /// [`Inspect::sent`].
    pub fn ready(&self) -> &[u8] {
        &self.held[..self.ready]
    }

    /// What was ready went on.
    pub fn sent(&mut self) {
        self.held.drain(..self.ready);
        self.in_place = self.in_place.map(|start| start - self.ready);
        self.ready = 0;
        if self.held.is_empty() {
            emptied(&mut self.held);
        }
    }

    /// A data message starts (`rsv1`: compressed).
    fn start(&mut self, opcode: OpCode, rsv1: bool) {
        self.compressed = rsv1.then_some(opcode == OpCode::Text);
    }

    /// Whether the message under way is held: always when validating, and when
    /// compressed (it must be inflated).
    fn holds(&self) -> bool {
        self.rules.is_some() || self.compressed.is_some()
    }

    /// A data frame's header: the start of a message that is one unmasked frame is
    /// judged where it lies; a compressed message's frames are not kept.
    fn hold_header(&mut self, header: &[u8], whole_unmasked: bool) {
        if self.compressed.is_some() {
            return;
        }
        self.held.extend_from_slice(header);
        self.in_place = whole_unmasked.then_some(self.held.len());
    }

    /// A piece of the payload of the message under way (`offset`: its position modulo 4).
    fn hold_payload(&mut self, piece: &[u8], mask: Option<[u8; 4]>, offset: usize) {
        if self.compressed.is_none() {
            self.held.extend_from_slice(piece);
        }
        if self.in_place.is_none() {
            let start = self.payload.len();
            self.payload.extend_from_slice(piece);
            if let Some(key) = mask {
                frame::apply_mask(&mut self.payload[start..], key, offset);
            }
        }
    }

    /// The whole payload of the message under way, unmasked.
    fn message(&self) -> &[u8] {
        match self.in_place {
            Some(start) => &self.held[start..],
            None => &self.payload,
        }
    }

    /// The message under way is let go (dropped, or the stream broke off).
    fn released(&mut self) {
        self.held.truncate(self.ready);
        self.in_place = None;
        self.compressed = None;
        emptied(&mut self.payload);
    }

    /// The compressed message under way is whole: its payload is inflated in place,
    /// within `limit` bytes, and a text one checked as UTF-8. Returns whether it is text.
    fn inflate(&mut self, limit: u64) -> Result<bool, Violation> {
        let text = self.compressed.unwrap_or(false);
        let mut plain = Vec::new();
        deflate::inflate(&self.payload, limit, &mut plain)?;
        if text && std::str::from_utf8(&plain).is_err() {
            return Err(INVALID_UTF8);
        }
        self.payload = plain;
        Ok(text)
    }

    /// The message under way, judged, is ready to go on: an inflated one as a new
    /// frame, deflated again when the receiver takes compressed messages.
    fn accept(&mut self) {
        if let Some(text) = self.compressed.take() {
            let opcode = if text { OpCode::Text } else { OpCode::Binary };
            let mask = self.masked.then(rand::random::<[u8; 4]>);
            let start = self.held.len();
            let mut packed = Vec::new();
            match self.recompress {
                Some(bits) if deflate::deflate(&self.payload, bits, &mut packed) => {
                    frame::write_frame(&mut self.held, opcode, &packed, mask);
                    self.held[start] |= frame::RSV1;
                }
                _ => frame::write_frame(&mut self.held, opcode, &self.payload, mask),
            }
        }
        self.ready = self.held.len();
        self.in_place = None;
        emptied(&mut self.payload);
    }

    /// A control frame that follows judged messages goes on after them (before a message
    /// still under way); `false` when nothing is ready, so it may go on at once.
    fn follow(&mut self, frame: &[u8]) -> bool {
        if self.ready == 0 {
            return false;
        }
        self.held
            .splice(self.ready..self.ready, frame.iter().copied());
        self.ready += frame.len();
        self.in_place = self.in_place.map(|start| start + frame.len());
        true
    }

    /// The sender is to be told that a message was dropped; of more than
    /// [`PENDING_NOTICES`] waiting, the newest replaces the last.
    fn notify(&mut self, notice: Vec<u8>) {
        if self.notices.len() == PENDING_NOTICES {
            self.notices.pop_back();
        }
        self.notices.push_back(notice);
    }

    /// The oldest notice for the sender of a dropped message (a JSON text message), taken.
    pub fn take_notice(&mut self) -> Option<Vec<u8>> {
        self.notices.pop_front()
    }

    /// Put back a notice that could not be sent yet (it stays the oldest).
    pub fn keep_notice(&mut self, notice: Vec<u8>) {
        self.notices.push_front(notice);
    }
}

/// Held-message buffers larger than this are not kept between messages.
const KEPT_HELD: usize = 64 * 1024;

/// Notices of dropped messages waiting for the stream to their sender to be between
/// frames, at most.
pub const PENDING_NOTICES: usize = 16;

/// Empty a buffer, keeping it when small.
fn emptied(buf: &mut Vec<u8>) {
    if buf.capacity() > KEPT_HELD {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between frames.
    Header,
    /// Inside a data frame's payload.
    Payload {
        remaining: u64,
        /// Position in the payload modulo 4, for the mask.
        phase: u8,
        mask: Option<[u8; 4]>,
        text: bool,
        fin: bool,
        /// The frame is dropped (over the plan's rate): its payload is passed over.
        dropped: bool,
        /// The frame belongs to a message held for validation.
        held: bool,
    },
}

pub struct Direction {
    /// Frames from this side must be masked (it is a client) or must not be.
    from_client: bool,
    compressed: Compressed,
    max_message: u64,
    state: State,
    /// Whether a message is under way, and whether its payload is checked as UTF-8 on
    /// the wire (`Some(true)`: text, not compressed).
    message: Option<bool>,
    message_len: u64,
    utf8: Utf8Stream,
    /// After a breach nothing more is forwarded: frames are skipped until a close frame
    /// (the sender's answer to the gateway's close). Holds whether the forwarded stream
    /// ended on a frame boundary.
    broken_off: Option<bool>,
    /// Bytes not processed yet: a header or control frame cut off at the end of the last
    /// read, the bytes read past the handshake, or what followed a breach. They go in
    /// front of the next read.
    pub carry: Vec<u8>,
    /// Messages this side completed and bytes read from it (the pump counts those) since
    /// they were last published to the connection's counts.
    pub unpublished: (u32, u32),
}

impl Direction {
    pub fn new(from_client: bool, max_message: u64) -> Direction {
        Direction {
            from_client,
            compressed: Compressed::Refused,
            max_message,
            state: State::Header,
            message: None,
            message_len: 0,
            utf8: Utf8Stream::default(),
            broken_off: None,
            carry: Vec::new(),
            unpublished: (0, 0),
        }
    }

    /// What compressed messages from this side may be (refused until negotiated).
    pub fn compressed(mut self, compressed: Compressed) -> Direction {
        self.compressed = compressed;
        self
    }

    /// Whether what was forwarded so far ends on a frame boundary, so the gateway may put
    /// a frame of its own into the stream.
    pub fn at_boundary(&self) -> bool {
        self.broken_off.unwrap_or(matches!(
            self.state,
            State::Header | State::Payload { held: true, .. }
        ))
    }

    /// Read `buf` (what was carried, then what was just read). Forwarded frames are moved
    /// to the front of `buf`; whatever cannot be handled yet is kept in `carry`.
    pub fn process(&mut self, buf: &mut [u8]) -> Processed {
        self.process_metered(buf, [None, None], None)
    }

    /// [`Direction::process`], with every data frame counted against the `meters` given
    /// (the subscription plan's, then the API's per connection; the connection holds each
    /// once for both directions).
    ///
    /// With `inspect` (the API validates messages), each data message is held until whole
    /// and judged; the judged ones, and what follows the first of them, go on from
    /// [`Inspect::ready`].
    pub fn process_metered(
        &mut self,
        buf: &mut [u8],
        meters: [Option<&Meter>; 2],
        mut inspect: Option<&mut Inspect>,
    ) -> Processed {
        let mut kept = 0;
        // Where this call kept the header of the data frame under way: until written, a
        // frame that breaks the rules can be taken back whole.
        let mut frame_kept: Option<usize> = None;
        let mut pos = 0;
        let stop = loop {
            if pos == buf.len() {
                break None;
            }
            let discarding = self.broken_off.is_some();
            match self.state {
                State::Payload {
                    remaining,
                    phase,
                    mask,
                    text,
                    fin,
                    dropped,
                    held,
                } => {
                    let offset = usize::from(phase);
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len() - pos);
                    let discarding = discarding || dropped;
                    if !discarding {
                        if text && !self.check_text(&mut buf[pos..pos + n], mask, offset) {
                            let whole = held || retract(&mut kept, frame_kept);
                            break Some(self.breach(buf, pos, INVALID_UTF8, whole));
                        }
                        match (inspect.as_deref_mut(), held) {
                            (Some(i), true) => i.hold_payload(&buf[pos..pos + n], mask, offset),
                            (i, _) => pass_on(buf, &mut kept, pos, n, i),
                        }
                    }
                    pos += n;
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Payload {
                            remaining,
                            phase: ((offset + n) % 4) as u8,
                            mask,
                            text,
                            fin,
                            dropped,
                            held,
                        };
                    } else {
                        self.state = State::Header;
                        if !discarding {
                            let was_text = self.message == Some(true);
                            if let Err(v) = self.frame_done(fin) {
                                retract(&mut kept, frame_kept);
                                break Some(self.breach(buf, pos, v, true));
                            }
                            if let (Some(i), true) = (inspect.as_deref_mut(), held && fin) {
                                match self.conclude(i, was_text) {
                                    Ok(()) => {}
                                    Err(Verdict::Breach(v)) => {
                                        break Some(self.breach(buf, pos, v, true))
                                    }
                                    Err(Verdict::Refused(v)) => {
                                        break Some(self.refuse(buf, pos, v))
                                    }
                                }
                            }
                        }
                    }
                }
                State::Header => {
                    let header = match frame::parse_header(&buf[pos..]) {
                        // Nothing more can be made of this stream.
                        Err(_) if discarding => break None,
                        Err(v) => break Some(self.breach(buf, buf.len(), v, true)),
                        Ok(None) => {
                            self.carry.extend_from_slice(&buf[pos..]);
                            break None;
                        }
                        Ok(Some(h)) => h,
                    };
                    let total = header.len as u64 + header.payload_len;
                    let whole_control = header.is_control()
                        && header.payload_len <= frame::MAX_CONTROL_PAYLOAD as u64;
                    if whole_control && buf.len() - pos < total as usize {
                        // Control frames are handled whole: wait for every byte of one
                        // before reading it (its length was checked just above).
                        self.carry.extend_from_slice(&buf[pos..]);
                        break None;
                    }
                    let checked = if discarding {
                        // Only a close frame matters now; its breaches no longer do.
                        Ok(
                            if header.is_close()
                                && header.payload_len <= frame::MAX_CONTROL_PAYLOAD as u64
                            {
                                OpCode::Close
                            } else {
                                OpCode::Binary
                            },
                        )
                    } else {
                        self.check_header(&header)
                    };
                    let opcode = match checked {
                        Ok(op) => op,
                        Err(v) => {
                            let stop = self.breach(buf, pos + header.len, v, true);
                            self.skip_payload(header.payload_len);
                            break Some(stop);
                        }
                    };
                    if opcode.is_control() {
                        let total = total as usize;
                        let mut payload = [0u8; frame::MAX_CONTROL_PAYLOAD];
                        let payload = &mut payload[..total - header.len];
                        payload.copy_from_slice(&buf[pos + header.len..pos + total]);
                        if let Some(key) = header.mask {
                            frame::apply_mask(payload, key, 0);
                        }
                        match opcode {
                            OpCode::Close => match frame::parse_close(payload) {
                                Ok((code, reason)) => {
                                    break Some(Stop::Close {
                                        frame: buf[pos..pos + total].to_vec(),
                                        code,
                                        reason: reason.to_string(),
                                    })
                                }
                                Err(_) if discarding => {
                                    break Some(Stop::Close {
                                        frame: Vec::new(),
                                        code: None,
                                        reason: String::new(),
                                    })
                                }
                                Err(v) => break Some(self.breach(buf, pos + total, v, true)),
                            },
                            OpCode::Pong if payload == KEEPALIVE => {}
                            _ => pass_on(buf, &mut kept, pos, total, inspect.as_deref_mut()),
                        }
                        pos += total;
                        continue;
                    }
                    if discarding {
                        pos += header.len;
                        self.skip_payload(header.payload_len);
                        continue;
                    }
                    if let Err(v) = self.data_frame(opcode, header.payload_len, header.rsv1()) {
                        let stop = self.breach(buf, pos + header.len, v, true);
                        self.skip_payload(header.payload_len);
                        break Some(stop);
                    }
                    // The subscription plan's rates, then the API's per connection: the
                    // first the frame goes over decides.
                    let over = meters
                        .into_iter()
                        .flatten()
                        .find(|m| !m.admit(header.payload_len));
                    if let Some(meter) = over {
                        {
                            // A message in one frame may be dropped whole; a fragment
                            // of one under way goes on (dropping it would break the
                            // message), counted but not refused. A compressed message
                            // relayed with context takeover cannot be dropped without
                            // breaking the ones after it: it closes instead.
                            let whole = header.fin() && opcode != OpCode::Continuation;
                            let undroppable = header.rsv1()
                                && self.compressed == (Compressed::Relayed { takeover: true });
                            let on_excess = match meter.on_excess {
                                OnExcess::Drop if undroppable => OnExcess::Close,
                                other => other,
                            };
                            match on_excess {
                                OnExcess::Close => {
                                    let stop = match self.breach(
                                        buf,
                                        pos + header.len,
                                        meter.over.clone(),
                                        true,
                                    ) {
                                        Stop::Violation(v) => Stop::OverRate(v),
                                        other => other,
                                    };
                                    self.skip_payload(header.payload_len);
                                    break Some(stop);
                                }
                                OnExcess::Drop if whole => {
                                    meter.count_dropped();
                                    self.message = None;
                                    pos += header.len;
                                    self.skip_payload(header.payload_len);
                                    if let State::Payload { dropped, .. } = &mut self.state {
                                        *dropped = true;
                                    }
                                    continue;
                                }
                                OnExcess::Drop => {}
                            }
                        }
                    }
                    if let (Some(i), true) =
                        (inspect.as_deref_mut(), opcode != OpCode::Continuation)
                    {
                        i.start(opcode, header.rsv1());
                    }
                    if let Some(i) = inspect.as_deref_mut().filter(|i| i.holds()) {
                        // Held until the message is whole and judged.
                        i.hold_header(
                            &buf[pos..pos + header.len],
                            opcode != OpCode::Continuation && header.fin() && header.mask.is_none(),
                        );
                        pos += header.len;
                        if header.payload_len > 0 {
                            self.state = State::Payload {
                                remaining: header.payload_len,
                                phase: 0,
                                mask: header.mask,
                                text: self.message == Some(true),
                                fin: header.fin(),
                                dropped: false,
                                held: true,
                            };
                            continue;
                        }
                        let was_text = self.message == Some(true);
                        if let Err(v) = self.frame_done(header.fin()) {
                            break Some(self.breach(buf, pos, v, true));
                        }
                        if header.fin() {
                            match self.conclude(i, was_text) {
                                Ok(()) => {}
                                Err(Verdict::Breach(v)) => {
                                    break Some(self.breach(buf, pos, v, true))
                                }
                                Err(Verdict::Refused(v)) => break Some(self.refuse(buf, pos, v)),
                            }
                        }
                        continue;
                    }
                    frame_kept = Some(kept);
                    keep(buf, &mut kept, pos, header.len);
                    pos += header.len;
                    if header.payload_len == 0 {
                        if let Err(v) = self.frame_done(header.fin()) {
                            retract(&mut kept, frame_kept);
                            break Some(self.breach(buf, pos, v, true));
                        }
                    } else {
                        self.state = State::Payload {
                            remaining: header.payload_len,
                            phase: 0,
                            mask: header.mask,
                            text: self.message == Some(true),
                            fin: header.fin(),
                            dropped: false,
                            held: false,
                        };
                    }
                }
            }
        };
        if matches!(
            stop,
            Some(Stop::Violation(_) | Stop::Refused(_) | Stop::OverRate(_))
        ) {
            if let Some(i) = inspect {
                i.released();
            }
        }
        Processed {
            forward: kept,
            stop,
        }
    }

    /// The held message is whole: inflated if compressed (a breach when it inflates past
    /// the size limit or is not valid), then judged.
    fn conclude(&self, i: &mut Inspect, text: bool) -> Result<(), Verdict> {
        let text = match i.compressed {
            Some(_) => i.inflate(self.max_message).map_err(Verdict::Breach)?,
            None => text,
        };
        self.judge(i, text).map_err(Verdict::Refused)
    }

    /// The verdict on the whole held message: `Ok` when it was dealt with (allowed or only
    /// reported: ready to go on; dropped: the sender gets a notice), or the violation that
    /// closes its sender.
    fn judge(&self, i: &mut Inspect, text: bool) -> Result<(), Violation> {
        let Some(rules) = i.rules.as_deref() else {
            i.accept();
            return Ok(());
        };
        let Err(refusal) = rules.judge(text, i.message()) else {
            i.accept();
            return Ok(());
        };
        let (channel, sender) = (
            &rules.channel,
            if self.from_client {
                "client"
            } else {
                "backend"
            },
        );
        match rules.mode {
            MessageValidation::Off | MessageValidation::Report => {
                tracing::info!(%channel, from = sender, reason = %refusal.reason, "message does not match the contract (reported, forwarded)");
                i.accept();
                Ok(())
            }
            MessageValidation::Drop => {
                tracing::info!(%channel, from = sender, reason = %refusal.reason, "message does not match the contract (dropped)");
                let notice = rules.notice(&refusal);
                i.notify(notice);
                i.released();
                Ok(())
            }
            MessageValidation::Reject => Err(Violation {
                code: refusal.code,
                reason: Cow::Owned(refusal.reason),
            }),
        }
    }

    /// The header's rules, a mask exactly when the sender is a client, and RSV1 only on
    /// the first frame of a data message when compression was negotiated.
    fn check_header(&self, header: &frame::Header) -> Result<OpCode, Violation> {
        let opcode = header.opcode()?;
        if header.rsv1() {
            if self.compressed == Compressed::Refused {
                return Err(Violation {
                    code: frame::PROTOCOL_ERROR,
                    reason: Cow::Borrowed("RSV1 set but permessage-deflate was not negotiated"),
                });
            }
            if !matches!(opcode, OpCode::Text | OpCode::Binary) {
                return Err(Violation {
                    code: frame::PROTOCOL_ERROR,
                    reason: Cow::Borrowed("RSV1 set on a continuation or control frame"),
                });
            }
        }
        if header.mask.is_some() != self.from_client {
            return Err(Violation {
                code: frame::PROTOCOL_ERROR,
                reason: Cow::Borrowed(if self.from_client {
                    "unmasked frame from a client"
                } else {
                    "masked frame from the backend"
                }),
            });
        }
        Ok(opcode)
    }

    /// The rest of the current frame is to be passed over.
    fn skip_payload(&mut self, len: u64) {
        self.state = if len == 0 {
            State::Header
        } else {
            State::Payload {
                remaining: len,
                phase: 0,
                mask: None,
                text: false,
                fin: true,
                dropped: false,
                held: false,
            }
        };
    }

    /// Stop forwarding after a breach; what follows `buf[..resume]` is kept to be skipped
    /// through for the close frame that should follow.
    /// `at_boundary`: whether what was forwarded ends between frames.
    /// Stop after a held message the contract does not allow (nothing of it went on).
    fn refuse(&mut self, buf: &[u8], resume: usize, v: Violation) -> Stop {
        match self.breach(buf, resume, v, true) {
            Stop::Violation(v) => Stop::Refused(v),
            other => other,
        }
    }

    fn breach(&mut self, buf: &[u8], resume: usize, v: Violation, at_boundary: bool) -> Stop {
        self.broken_off = Some(at_boundary);
        self.message = None;
        self.carry.clear();
        self.carry.extend_from_slice(&buf[resume..]);
        Stop::Violation(v)
    }

    /// A data frame's header: it must start or continue a message as appropriate, and the
    /// message must stay within the limit.
    /// `rsv1`: the message is compressed (its text is not checked on the wire).
    fn data_frame(&mut self, opcode: OpCode, len: u64, rsv1: bool) -> Result<(), Violation> {
        match (opcode, self.message) {
            (OpCode::Continuation, None) => {
                return Err(Violation {
                    code: frame::PROTOCOL_ERROR,
                    reason: Cow::Borrowed("continuation frame outside a message"),
                })
            }
            (OpCode::Continuation, Some(_)) => {}
            (_, Some(_)) => {
                return Err(Violation {
                    code: frame::PROTOCOL_ERROR,
                    reason: Cow::Borrowed("new message before the last one ended"),
                })
            }
            (op, None) => {
                self.message = Some(op == OpCode::Text && !rsv1);
                self.message_len = 0;
            }
        }
        self.message_len = self.message_len.saturating_add(len);
        if self.message_len > self.max_message {
            return Err(Violation {
                code: frame::TOO_BIG,
                reason: Cow::Borrowed("message too big"),
            });
        }
        Ok(())
    }

    /// A data frame's payload has passed; on the last frame the message ends.
    fn frame_done(&mut self, fin: bool) -> Result<(), Violation> {
        if !fin {
            return Ok(());
        }
        self.unpublished.0 += 1;
        let text = self.message.take() == Some(true);
        if text && !self.utf8.finish() {
            return Err(INVALID_UTF8);
        }
        Ok(())
    }

    /// UTF-8 check of a piece of text payload, unmasked for the check and masked again.
    fn check_text(&mut self, piece: &mut [u8], mask: Option<[u8; 4]>, offset: usize) -> bool {
        match mask {
            None => self.utf8.feed(piece),
            Some(key) => {
                frame::apply_mask(piece, key, offset);
                let ok = self.utf8.feed(piece);
                frame::apply_mask(piece, key, offset);
                ok
            }
        }
    }
}

/// Feed `wire` to a new direction cut at `cuts` (byte offsets), as reads would bring it:
/// what it forwarded and why it stopped. For tests and the `frame_pump` fuzz target.
pub fn feed_in_pieces(
    from_client: bool,
    max_message: u64,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Option<Stop>) {
    let (out, _, stop) = feed(Direction::new(from_client, max_message), None, wire, cuts);
    (out, stop)
}

/// Feed `wire` to `d` cut at `cuts`, as the pump does (what a read forwarded in place,
/// then what became ready): what it forwarded, the notices for the sender, why it
/// stopped.
pub fn feed(
    mut d: Direction,
    mut inspect: Option<Inspect>,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Vec<Vec<u8>>, Option<Stop>) {
    let mut out = Vec::new();
    let mut notices = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let mut buf = std::mem::take(&mut d.carry);
        buf.extend_from_slice(&wire[start..end]);
        start = end;
        let p = d.process_metered(&mut buf, [None, None], inspect.as_mut());
        out.extend_from_slice(&buf[..p.forward]);
        if let Some(i) = &mut inspect {
            out.extend_from_slice(i.ready());
            i.sent();
            notices.extend(std::iter::from_fn(|| i.take_notice()));
        }
        if p.stop.is_some() {
            return (out, notices, p.stop);
        }
    }
    (out, notices, None)
}

/// Take back the frame kept from `frame_kept` on; whether there was one to take back.
fn retract(kept: &mut usize, frame_kept: Option<usize>) -> bool {
    match frame_kept {
        Some(start) => {
            *kept = start;
            true
        }
        None => false,
    }
}

/// Pass `buf[from..from + n]` on: kept in place, or after the judged messages when some
/// are ready (so that everything goes on in the order it came).
fn pass_on(buf: &mut [u8], kept: &mut usize, from: usize, n: usize, inspect: Option<&mut Inspect>) {
    if !inspect.is_some_and(|i| i.follow(&buf[from..from + n])) {
        keep(buf, kept, from, n);
    }
}

/// Move `buf[from..from + n]` to follow what is already kept.
fn keep(buf: &mut [u8], kept: &mut usize, from: usize, n: usize) {
    if *kept != from {
        buf.copy_within(from..from + n, *kept);
    }
    *kept += n;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::write_frame;

    const KEY: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

    fn frame(op: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, op, payload, mask);
        out
    }

    fn fragment(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = frame(op, payload, KEY);
        if !fin {
            f[0] &= 0x7F;
        }
        f
    }

    /// Feed `wire` to a client direction in pieces of `step` bytes, as reads would.
    fn run(wire: &[u8], step: usize, max: u64) -> (Vec<u8>, Option<Stop>) {
        let cuts: Vec<usize> = (step..wire.len()).step_by(step).collect();
        feed_in_pieces(true, max, wire, &cuts)
    }

    fn validating(mode: MessageValidation) -> (Direction, Option<Inspect>) {
        let rules = Rules::compile(
            "/chat",
            true,
            asyncgate_core::ApiPolicies {
                message_validation: mode,
                unjudged: asyncgate_core::Unjudged::Pass,
                ..Default::default()
            },
            Some(&[asyncgate_core::SnapshotMessage {
                name: "Say".into(),
                schema: Some(
                    serde_json::json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
                ),
            }]),
        );
        (
            Direction::new(true, 1 << 20),
            rules.map(|r| Inspect::new(Some(Arc::new(r)), None, true)),
        )
    }

    #[test]
    fn a_validated_message_is_held_until_whole_then_sent_on_unchanged() {
        // A fragmented valid message with a ping inside it, then a single-frame one.
        let fragments = [
            fragment(OpCode::Text, false, br#"{"te"#),
            fragment(OpCode::Continuation, false, br#"xt":"#),
            fragment(OpCode::Continuation, true, br#""hi"}"#),
        ];
        let ping = frame(OpCode::Ping, b"hi", KEY);
        let single = frame(OpCode::Text, br#"{"text":"again"}"#, KEY);
        let mut wire = [fragments[0].clone(), fragments[1].clone()].concat();
        wire.extend(&ping);
        wire.extend(&fragments[2]);
        wire.extend(&single);
        // The ping goes on at once; the message's frames follow it, as received.
        let mut expected = ping.clone();
        expected.extend(fragments.concat());
        expected.extend(&single);
        for step in [1, 2, 5, 13, wire.len()] {
            let cuts: Vec<usize> = (step..wire.len()).step_by(step).collect();
            let (out, notices, stop) = {
                let (d, i) = validating(MessageValidation::Reject);
                feed(d, i, &wire, &cuts)
            };
            assert_eq!((stop, notices.len()), (None, 0), "step {step}");
            assert_eq!(out.len(), wire.len(), "step {step}");
            assert!(out.starts_with(&ping), "step {step}");
            assert!(out.ends_with(&single), "step {step}");
            assert!(
                out == expected,
                "step {step}: the frames as received, the ping first"
            );
        }
    }

    #[test]
    fn a_message_matching_no_schema_is_refused_dropped_or_reported() {
        let bad = frame(OpCode::Text, br#"{"text":5}"#, KEY);
        let good = frame(OpCode::Text, br#"{"text":"ok"}"#, KEY);
        let mut wire = bad.clone();
        wire.extend(&good);
        let (out, _, stop) = {
            let (d, i) = validating(MessageValidation::Reject);
            feed(d, i, &wire, &[3])
        };
        assert!(out.is_empty(), "nothing of the refused message goes on");
        match stop {
            Some(Stop::Refused(v)) => {
                assert_eq!(v.code, 1008);
                assert_eq!(
                    v.reason,
                    "/chat: no message of the contract matches (at /text)"
                );
            }
            other => panic!("expected a violation, got {other:?}"),
        }
        let (out, notices, stop) = {
            let (d, i) = validating(MessageValidation::Drop);
            feed(d, i, &wire, &[3])
        };
        assert_eq!((out, stop), (good.clone(), None));
        let notice: serde_json::Value = serde_json::from_slice(&notices[0]).unwrap();
        assert_eq!(notice["error"], "message_refused");
        assert_eq!(notice["pointer"], "/text");
        let (out, notices, stop) = {
            let (d, i) = validating(MessageValidation::Report);
            feed(d, i, &wire, &[3])
        };
        assert_eq!((out, notices.len(), stop), (wire.clone(), 0, None));
    }

    #[test]
    fn messages_judged_in_one_read_go_on_together_in_the_order_they_came() {
        let good = |n: usize| frame(OpCode::Text, format!(r#"{{"text":"{n}"}}"#).as_bytes(), KEY);
        let bad = frame(OpCode::Text, br#"{"text":5}"#, KEY);
        let ping = frame(OpCode::Ping, b"p", KEY);
        // A ping between judged messages stays between them.
        let wire = [good(1), ping.clone(), good(2), good(3)].concat();
        let (d, i) = validating(MessageValidation::Reject);
        let (out, notices, stop) = feed(d, i, &wire, &[]);
        assert_eq!((stop, notices.len()), (None, 0));
        assert!(out == wire, "the frames in the order they came");
        // A refused message stops the read; those judged before it go on.
        let wire = [good(1), good(2), bad.clone(), good(3)].concat();
        let (d, i) = validating(MessageValidation::Reject);
        let (out, _, stop) = feed(d, i, &wire, &[]);
        assert!(matches!(stop, Some(Stop::Refused(_))));
        assert!(out == [good(1), good(2)].concat());
        // Every dropped message is told, up to the notices that may wait; past them the
        // newest replaces the last.
        for drops in [3, PENDING_NOTICES + 5] {
            let mut wire = Vec::new();
            for n in 0..drops {
                wire.extend(&bad);
                wire.extend(good(n));
            }
            let (d, i) = validating(MessageValidation::Drop);
            let (out, notices, stop) = feed(d, i, &wire, &[]);
            assert_eq!(stop, None);
            assert!(out == (0..drops).flat_map(good).collect::<Vec<u8>>());
            assert_eq!(notices.len(), drops.min(PENDING_NOTICES), "{drops} dropped");
        }
    }

    #[test]
    fn frames_pass_unchanged_however_the_reads_fall() {
        let mut wire = frame(OpCode::Text, "héllo ✓".as_bytes(), KEY);
        wire.extend(fragment(OpCode::Binary, false, &[1; 300]));
        wire.extend(frame(OpCode::Ping, b"hi", KEY));
        wire.extend(fragment(OpCode::Continuation, true, &[2; 70_000]));
        wire.extend(fragment(OpCode::Text, false, "✓".as_bytes()));
        wire.extend(fragment(OpCode::Continuation, true, "✓".as_bytes()));
        for step in [1, 2, 3, 7, 131, 4096, wire.len()] {
            let (out, stop) = run(&wire, step, 1 << 20);
            assert_eq!(stop, None, "step {step}");
            assert!(out == wire, "step {step}");
        }
    }

    #[test]
    fn keepalive_pongs_stop_here_and_closes_end_reading() {
        let mut wire = frame(OpCode::Binary, b"a", KEY);
        wire.extend(frame(OpCode::Pong, KEEPALIVE, KEY));
        wire.extend(frame(OpCode::Pong, b"yours", KEY));
        let close = frame(OpCode::Close, &frame::close_payload(4001, "bye"), KEY);
        wire.extend(&close);
        wire.extend(frame(OpCode::Binary, b"after", KEY));
        for step in [1, 5, wire.len()] {
            let (out, stop) = run(&wire, step, 100);
            let mut expected = frame(OpCode::Binary, b"a", KEY);
            expected.extend(frame(OpCode::Pong, b"yours", KEY));
            assert_eq!(out, expected, "step {step}");
            assert_eq!(
                stop,
                Some(Stop::Close {
                    frame: close.clone(),
                    code: Some(4001),
                    reason: "bye".into()
                })
            );
        }
    }

    #[test]
    fn breaches_stop_with_their_code() {
        let reason = |wire: Vec<u8>, max: u64| match run(&wire, 3, max).1 {
            Some(Stop::Violation(v)) => (v.code, v.reason.to_string()),
            other => panic!("expected a violation, got {other:?}"),
        };
        assert_eq!(reason(frame(OpCode::Binary, &[0; 101], KEY), 100).0, 1009);
        let mut two = fragment(OpCode::Binary, false, &[0; 60]);
        two.extend(fragment(OpCode::Continuation, true, &[0; 60]));
        assert_eq!(reason(two, 100), (1009, "message too big".to_string()));
        assert_eq!(reason(frame(OpCode::Text, b"\xFF", KEY), 100).0, 1007);
        let mut cut = fragment(OpCode::Text, false, b"\xE2\x9C");
        cut.extend(fragment(OpCode::Continuation, true, b""));
        assert_eq!(reason(cut, 100).0, 1007);
        assert_eq!(
            reason(frame(OpCode::Text, b"x", None), 100),
            (1002, "unmasked frame from a client".to_string())
        );
        assert_eq!(
            reason(fragment(OpCode::Continuation, true, b"x"), 100).1,
            "continuation frame outside a message"
        );
        let mut interleaved = fragment(OpCode::Text, false, b"x");
        interleaved.extend(frame(OpCode::Text, b"y", KEY));
        assert_eq!(
            reason(interleaved, 100).1,
            "new message before the last one ended"
        );
        assert_eq!(
            reason(frame(OpCode::Close, &[3, 0xE8, 0xC3], KEY), 100).0,
            1007
        );
        let mut from_backend = Direction::new(false, 100);
        let mut masked = frame(OpCode::Binary, b"x", KEY);
        assert_eq!(
            from_backend.process(&mut masked).stop,
            Some(Stop::Violation(Violation {
                code: 1002,
                reason: Cow::Borrowed("masked frame from the backend")
            }))
        );
    }

    #[test]
    fn after_a_breach_frames_are_skipped_until_the_close_answer() {
        let mut wire = frame(OpCode::Text, b"ok", KEY);
        wire.extend(frame(OpCode::Binary, &[0; 300], KEY));
        wire.extend(frame(OpCode::Text, b"\xFF skipped", KEY));
        let close = frame(OpCode::Close, &frame::close_payload(1002, ""), KEY);
        wire.extend(&close);
        let mut d = Direction::new(true, 100);
        let p = d.process(&mut wire.clone());
        assert_eq!(p.forward, 8, "only the first frame");
        assert_eq!(
            p.stop,
            Some(Stop::Violation(Violation {
                code: 1009,
                reason: Cow::Borrowed("message too big")
            }))
        );
        assert!(d.at_boundary());
        let mut rest = std::mem::take(&mut d.carry);
        let p = d.process(&mut rest);
        assert_eq!(p.forward, 0);
        assert!(matches!(
            p.stop,
            Some(Stop::Close {
                code: Some(1002),
                ..
            })
        ));

        let mut d = Direction::new(false, 100);
        let mut bad = frame(OpCode::Text, b"abc\xFFdef", None);
        let p = d.process(&mut bad[..5]);
        assert_eq!(p.forward, 5);
        assert!(p.stop.is_none());
        let p = d.process(&mut bad[5..]);
        assert_eq!(p.stop, Some(Stop::Violation(INVALID_UTF8)));
        assert!(!d.at_boundary(), "the frame was cut off mid-payload");

        // Read whole, the bad frame is taken back and the stream stays between frames.
        let mut d = Direction::new(false, 100);
        let mut wire = frame(OpCode::Binary, b"fine", None);
        wire.extend(frame(OpCode::Text, b"abc\xFFdef", None));
        let p = d.process(&mut wire);
        assert_eq!(p.forward, 6, "only the good frame");
        assert_eq!(p.stop, Some(Stop::Violation(INVALID_UTF8)));
        assert!(d.at_boundary());
    }

    /// A frame with its length written in the given form (7, 16 or 64 bits), whether or
    /// not that form is the shortest for the payload.
    fn encoded(op: u8, payload: &[u8], mask: Option<[u8; 4]>, form: u8) -> Vec<u8> {
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let mut out = vec![0x80 | op];
        match form {
            7 => out.push(mask_bit | payload.len() as u8),
            16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            }
        }
        let body = out.len() + mask.map_or(0, |_| 4);
        out.extend_from_slice(&mask.unwrap_or_default()[..mask.map_or(0, |_| 4)]);
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            frame::apply_mask(&mut out[body..], key, 0);
        }
        out
    }

    #[test]
    fn every_length_form_in_every_split_is_forwarded_or_refused_never_a_panic() {
        let close = frame::close_payload(1000, "done");
        // (opcode, payload): data frames of each size class and control frames up to the
        // largest allowed, a close among them.
        let text = "é".repeat(32_767) + "a";
        let cases: Vec<(u8, Vec<u8>)> = vec![
            (0x1, b"hi".to_vec()),
            (0x2, vec![7; 125]),
            (0x2, vec![7; 126]),
            (0x1, text.into_bytes()),
            (0x2, vec![7; 65_536]),
            (0x9, vec![]),
            (0x9, vec![1; 125]),
            (0xA, b"pong".to_vec()),
            (0x8, close.clone()),
        ];
        for from_client in [true, false] {
            let mask = from_client.then_some([0xA1, 0xB2, 0xC3, 0xD4]);
            for (op, payload) in &cases {
                for form in [7u8, 16, 64] {
                    let fits = match form {
                        7 => payload.len() < 126,
                        16 => payload.len() <= 0xFFFF,
                        _ => true,
                    };
                    if !fits {
                        continue;
                    }
                    let minimal = match form {
                        7 => true,
                        16 => payload.len() >= 126,
                        _ => payload.len() > 0xFFFF,
                    };
                    let wire = encoded(*op, payload, mask, form);
                    // Every single cut near the header and the end, byte by byte through
                    // the first 200 bytes, and a walk in large steps.
                    let header_end = wire.len() - payload.len();
                    let mut splits: Vec<Vec<usize>> = (1..wire.len())
                        .filter(|&c| c <= header_end + 3 || c + 3 >= wire.len())
                        .map(|c| vec![c])
                        .collect();
                    splits.push(
                        (1..wire.len())
                            .collect::<Vec<_>>()
                            .into_iter()
                            .take(200)
                            .collect(),
                    );
                    splits.push((1..wire.len()).step_by(4093).collect());
                    splits.push(vec![]);
                    for cuts in splits {
                        let (out, stop) = feed_in_pieces(from_client, 1 << 20, &wire, &cuts);
                        let what = format!("op {op:#x}, {} bytes, {form}-bit form, client {from_client}, cuts {:?}", payload.len(), &cuts[..cuts.len().min(3)]);
                        if !minimal {
                            assert_eq!(
                                stop,
                                Some(Stop::Violation(Violation {
                                    code: 1002,
                                    reason: Cow::Borrowed(frame::NON_MINIMAL)
                                })),
                                "{what}"
                            );
                            assert!(out.is_empty(), "{what}");
                        } else if *op == 0x8 {
                            assert!(out.is_empty(), "{what}");
                            assert!(
                                matches!(stop, Some(Stop::Close { ref frame, code: Some(1000), .. }) if *frame == wire),
                                "{what}"
                            );
                        } else {
                            assert_eq!(stop, None, "{what}");
                            assert!(out == wire, "{what}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_a_data_frame_in_flight_is_off_boundary() {
        let mut d = Direction::new(false, 1000);
        let mut head = frame(OpCode::Binary, &[5; 10], None);
        head.truncate(6);
        d.process(&mut head);
        assert!(!d.at_boundary());
        let mut rest = vec![5; 6];
        d.process(&mut rest);
        assert!(d.at_boundary());
        let mut half_header = vec![0x82];
        d.process(&mut half_header);
        assert!(d.at_boundary(), "nothing of that frame was forwarded");
    }

    #[test]
    fn frames_over_a_plans_rate_close_the_sender_or_are_dropped_whole() {
        let plan = |on_excess| asyncgate_core::PlanLimits {
            max_connections: 0,
            messages_per_minute: 2,
            bytes_per_minute: 0,
            on_excess,
        };
        let mut wire = Vec::new();
        for text in [&b"one"[..], b"two", b"three", b"four"] {
            wire.extend(frame(OpCode::Text, text, KEY));
        }
        let first_two =
            frame(OpCode::Text, b"one", KEY).len() + frame(OpCode::Text, b"two", KEY).len();

        let close = Meter::new(&plan(OnExcess::Close)).unwrap();
        let mut d = Direction::new(true, 100);
        let p = d.process_metered(&mut wire.clone(), [Some(&close), None], None);
        assert_eq!(p.forward, first_two);
        assert_eq!(p.stop, Some(Stop::OverRate(close.over.clone())));
        assert_eq!(close.over.reason, crate::meter::OVER_PLAN);
        // The API's per-connection rates, after the plan's: the first one over decides.
        let api = Meter::per_connection(&asyncgate_core::ApiLimits {
            max_messages_per_second: 1,
            ..Default::default()
        })
        .unwrap();
        let roomy = Meter::new(&asyncgate_core::PlanLimits {
            messages_per_minute: 100,
            ..plan(OnExcess::Drop)
        })
        .unwrap();
        let mut d = Direction::new(true, 100);
        let p = d.process_metered(&mut wire.clone(), [Some(&roomy), Some(&api)], None);
        assert_eq!(p.forward, frame(OpCode::Text, b"one", KEY).len());
        match p.stop {
            Some(Stop::OverRate(v)) => assert_eq!(v.reason, crate::meter::OVER_API_RATE),
            other => panic!("expected the API's rate, got {other:?}"),
        }

        let drop = Meter::new(&plan(OnExcess::Drop)).unwrap();
        let mut d = Direction::new(true, 100);
        let mut buf = wire.clone();
        let p = d.process_metered(&mut buf, [Some(&drop), None], None);
        assert_eq!((p.forward, p.stop), (first_two, None));
        assert_eq!(&buf[..first_two], &wire[..first_two]);
        assert_eq!(drop.dropped(), 2);
        assert!(d.at_boundary());
        // A dropped frame cut across reads is passed over to its end, and what follows
        // is read as usual: a ping still goes on.
        let mut big = frame(OpCode::Binary, &[7; 50], KEY);
        big.extend(frame(OpCode::Ping, b"p", KEY));
        let (head, tail) = big.split_at_mut(20);
        assert_eq!(
            d.process_metered(head, [Some(&drop), None], None).forward,
            0
        );
        let p = d.process_metered(tail, [Some(&drop), None], None);
        assert_eq!(p.forward, frame(OpCode::Ping, b"p", KEY).len());
        assert_eq!(drop.dropped(), 3);
    }

    /// A compressed frame as a client sends it: deflated (independently of the gateway's
    /// deflater: flate2's own), RSV1 set, masked.
    fn compressed(op: OpCode, payload: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(payload).unwrap();
        encoder.flush().unwrap();
        let mut packed = encoder.get_ref().clone();
        assert!(packed.ends_with(&[0, 0, 0xff, 0xff]));
        packed.truncate(packed.len() - 4);
        let mut f = frame(op, &packed, KEY);
        f[0] |= frame::RSV1;
        f
    }

    #[test]
    fn rsv1_is_refused_unless_negotiated_and_only_on_a_first_data_frame() {
        let wire = compressed(OpCode::Text, b"hello");
        let (_, stop) = feed_in_pieces(true, 100, &wire, &[]);
        match stop {
            Some(Stop::Violation(v)) => {
                assert_eq!(v.code, frame::PROTOCOL_ERROR);
                assert_eq!(
                    v.reason,
                    "RSV1 set but permessage-deflate was not negotiated"
                );
            }
            other => panic!("expected a violation, got {other:?}"),
        }
        let mut ping = frame(OpCode::Ping, b"p", KEY);
        ping[0] |= frame::RSV1;
        let mut continuation = fragment(OpCode::Text, false, b"a");
        let mut second = fragment(OpCode::Continuation, true, b"b");
        second[0] |= frame::RSV1;
        continuation.extend(second);
        for wire in [ping, continuation] {
            let d = Direction::new(true, 100).compressed(Compressed::Relayed { takeover: true });
            match feed(d, None, &wire, &[]).2 {
                Some(Stop::Violation(v)) => {
                    assert_eq!(v.reason, "RSV1 set on a continuation or control frame")
                }
                other => panic!("expected a violation, got {other:?}"),
            }
        }
    }

    #[test]
    fn passed_through_compressed_messages_go_on_untouched_and_count_on_the_wire() {
        let text = "{\"text\":\"hi\"}".repeat(50);
        let wire = [
            compressed(OpCode::Text, text.as_bytes()),
            frame(OpCode::Text, b"plain", KEY),
        ]
        .concat();
        for step in [1, 3, wire.len()] {
            let cuts: Vec<usize> = (step..wire.len()).step_by(step).collect();
            let d = Direction::new(true, 100).compressed(Compressed::Relayed { takeover: true });
            let (out, _, stop) = feed(d, None, &wire, &cuts);
            assert_eq!((out == wire, stop), (true, None), "step {step}");
        }
        // The limit counts the compressed bytes: 750 bytes of text went on under a
        // 100-byte limit because its compressed frame is under it.
        assert!(text.len() > 100);
        let compressed_len = compressed(OpCode::Text, text.as_bytes()).len();
        assert!(compressed_len < 100, "{compressed_len}");
    }

    /// Unmask and read a frame the gateway wrote: RSV1, opcode and payload.
    fn read_frame(wire: &[u8]) -> (bool, u8, Vec<u8>) {
        let h = frame::parse_header(wire).unwrap().unwrap();
        let mut payload = wire[h.len..h.len + h.payload_len as usize].to_vec();
        if let Some(key) = h.mask {
            frame::apply_mask(&mut payload, key, 0);
        }
        assert_eq!(h.len + payload.len(), wire.len(), "one frame");
        (h.rsv1(), wire[0] & 0x0F, payload)
    }

    #[test]
    fn terminated_messages_are_inflated_judged_and_deflated_again_for_the_receiver() {
        let text = format!("{{\"text\":\"{}\"}}", "hello ".repeat(100));
        // Fragmented compressed message: the compressed bytes cut in two frames.
        let whole = compressed(OpCode::Text, text.as_bytes());
        let h = frame::parse_header(&whole).unwrap().unwrap();
        let mut packed = whole[h.len..].to_vec();
        frame::apply_mask(&mut packed, KEY.unwrap(), 0);
        let (a, b) = packed.split_at(packed.len() / 2);
        let mut first = fragment(OpCode::Text, false, a);
        first[0] |= frame::RSV1;
        let wire = [first, fragment(OpCode::Continuation, true, b)].concat();
        for recompress in [None, Some(15)] {
            let (d, _) = validating(MessageValidation::Reject);
            let rules = validating(MessageValidation::Reject).1.unwrap().rules;
            let i = Inspect::new(rules, recompress, true);
            let (out, _, stop) = feed(d.compressed(Compressed::Inflated), Some(i), &wire, &[5]);
            assert_eq!(stop, None);
            let (rsv1, op, payload) = read_frame(&out);
            assert_eq!((rsv1, op), (recompress.is_some(), 0x1));
            let plain = if rsv1 {
                let mut plain = Vec::new();
                deflate::inflate(&payload, 1 << 20, &mut plain).unwrap();
                plain
            } else {
                payload
            };
            assert_eq!(plain, text.as_bytes());
        }
        // The contract still applies to what was compressed.
        let bad = compressed(OpCode::Text, br#"{"text":5}"#);
        let (d, i) = validating(MessageValidation::Reject);
        match feed(d.compressed(Compressed::Inflated), i, &bad, &[]).2 {
            Some(Stop::Refused(v)) => assert_eq!(v.code, 1008),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Compressed text that is not UTF-8 once inflated.
        let bad = compressed(OpCode::Text, &[0xC3, 0x28]);
        let d = Direction::new(true, 100).compressed(Compressed::Inflated);
        match feed(d, Some(Inspect::new(None, None, true)), &bad, &[]).2 {
            Some(Stop::Violation(v)) => assert_eq!(v.code, frame::INVALID_PAYLOAD),
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn a_relayed_compressed_message_with_context_takeover_is_never_dropped() {
        let drop = asyncgate_core::PlanLimits {
            max_connections: 0,
            messages_per_minute: 1,
            bytes_per_minute: 0,
            on_excess: OnExcess::Drop,
        };
        let wire = [
            compressed(OpCode::Text, b"first"),
            compressed(OpCode::Text, b"second"),
        ]
        .concat();
        let first = compressed(OpCode::Text, b"first").len();
        // Without context takeover the second is dropped; with it, the sender is closed
        // (dropping it would leave the receiver's context behind the sender's).
        for (takeover, stop) in [(false, false), (true, true)] {
            let meter = Meter::new(&drop).unwrap();
            let mut d = Direction::new(true, 100).compressed(Compressed::Relayed { takeover });
            let p = d.process_metered(&mut wire.clone(), [Some(&meter), None], None);
            assert_eq!(p.forward, first, "takeover {takeover}");
            assert_eq!(p.stop.is_some(), stop, "takeover {takeover}: {:?}", p.stop);
            assert_eq!(meter.dropped(), u64::from(!takeover));
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_at_the_limit() {
        let bomb = compressed(OpCode::Binary, &vec![0u8; 1 << 20]);
        assert!(bomb.len() < 2048, "{}", bomb.len());
        let d = Direction::new(true, 64 * 1024).compressed(Compressed::Inflated);
        let (out, _, stop) = feed(d, Some(Inspect::new(None, Some(15), true)), &bomb, &[100]);
        assert!(out.is_empty());
        match stop {
            Some(Stop::Violation(v)) => {
                assert_eq!(v.code, frame::TOO_BIG);
                assert_eq!(v.reason, "message too big once inflated");
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }
}
