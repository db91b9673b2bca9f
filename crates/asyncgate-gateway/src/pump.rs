//! After the upgrade: one task per connection carries frames both ways, passes close
//! handshakes through, pings quiet sides, ends the connection at its time limit, and
//! closes both sides with a code that says what happened.
//!
//! A connection that moves no data holds no buffer. Bytes are read into the thread's
//! scratch buffer, checked frame by frame ([`Direction`]) and written straight on in one
//! write; only what the receiving side cannot take yet is copied into a buffer of the
//! connection's own, and the sender is not read again until that buffer is written
//! (backpressure).

use crate::connection::{Command, Connection, End, DOWN, UP};
use crate::deflate::{Agreed, Negotiated};
use crate::direction::{Compressed, Direction, Inspect, Stop, KEEPALIVE};
use crate::frame::{self, OpCode};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long the gateway waits for the other side to answer a close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Reads made in one wake-up before the task lets others run. Small, so a connection
/// streaming large messages does not hold up the others (its tail latency showed it).
const READS_PER_POLL: usize = 2;
/// A carried remainder up to this size keeps its allocation between reads.
const KEPT_CARRY: usize = 256;

thread_local! {
    /// Where every connection on this thread reads into.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How a relayed connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    BackendClosed,
    ClientLost,
    BackendLost,
    ClientTooBig,
    BackendTooBig,
    ClientBrokeProtocol,
    BackendBrokeProtocol,
    ClientSilent,
    BackendSilent,
    TimeLimit,
    CredentialExpired,
    /// A frame of either side went over the subscription plan's or the API's rates.
    OverRate,
    /// A side sent a message the contract does not allow (validation `reject`).
    MessageRefused,
    Evicted,
    /// An operator closed it (`DELETE .../connections/{id}`).
    Closed,
    Shutdown,
}

impl Ended {
    /// Who ended the connection: `client`, `backend` or `gateway` (a limit, a policy, an
    /// operator or a shutdown).
    pub fn by(self) -> &'static str {
        use Ended::*;
        match self {
            ClientClosed | ClientLost | ClientTooBig | ClientBrokeProtocol | ClientSilent => {
                "client"
            }
            BackendClosed | BackendLost | BackendTooBig | BackendBrokeProtocol | BackendSilent => {
                "backend"
            }
            TimeLimit | CredentialExpired | OverRate | MessageRefused | Evicted | Closed
            | Shutdown => "gateway",
        }
    }
}

/// How a connection ended, as the access log and metrics tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ended: Ended,
    /// The close code on the client's connection (sent or received); 1006 when it ended
    /// without one, 1005 for a close frame without a code.
    pub code: u16,
    pub reason: Box<str>,
}

/// Time-based bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A side silent this long is pinged.
    pub idle: Duration,
    /// A pinged side silent this long is dead.
    pub pong_timeout: Duration,
    /// The connection is closed after this long, if set.
    pub max_duration: Option<Duration>,
    /// The client's credential expires after this long and the API closes connections
    /// then (1008), if set.
    pub credential_expiry: Option<Duration>,
}

/// One side's connection after its handshake, with the bytes read past the handshake.
pub struct Leg<S> {
    pub io: S,
    pub read_ahead: Vec<u8>,
}

/// The bounds of one connection.
#[derive(Debug)]
pub struct Settings {
    pub timing: Timing,
    pub max_message_bytes: u64,
    /// Bytes read per system call.
    pub read_bytes: usize,
    /// The subscription plan's rates, when it meters any (both directions count).
    pub meter: Option<std::sync::Arc<crate::meter::PlanMeter>>,
    /// With message validation: the channel's rules for messages from the client and
    /// from the backend.
    pub rules: [Option<std::sync::Arc<crate::validate::Rules>>; 2],
    /// The API's per-connection message and byte rates, when it sets any.
    pub rate: Option<crate::meter::Meter>,
    /// What permessage-deflate came to in the handshake.
    pub compression: crate::deflate::Negotiated,
}

/// The keepalive bounds as the relay holds them for its life: in milliseconds, at most
/// `u32::MAX` (about 49 days), so that they take 8 bytes rather than [`Timing`]'s 64.
#[derive(Debug, Clone, Copy)]
struct Keepalive {
    idle_ms: u32,
    pong_timeout_ms: u32,
}

impl Keepalive {
    fn new(t: &Timing) -> Keepalive {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Keepalive {
            idle_ms: ms(t.idle),
            pong_timeout_ms: ms(t.pong_timeout),
        }
    }

    fn idle(self) -> Duration {
        Duration::from_millis(self.idle_ms.into())
    }

    fn pong_timeout(self) -> Duration {
        Duration::from_millis(self.pong_timeout_ms.into())
    }
}

/// Whether a side was heard from since the last keepalive check, and whether the gateway
/// is waiting for its pong. Receiving a frame only sets a flag: the per-frame path reads
/// no clock and touches no timer.
#[derive(Default)]
struct Liveness {
    heard: bool,
    pinged: Option<Instant>,
}

enum Due {
    Nothing,
    Ping,
    Dead,
}

impl Liveness {
    /// At a keepalive check: what to do about this side.
    fn check(&mut self, now: Instant, t: Keepalive) -> Due {
        if std::mem::take(&mut self.heard) {
            self.pinged = None;
            return Due::Nothing;
        }
        match self.pinged {
            Some(at) if now >= at + t.pong_timeout() => Due::Dead,
            Some(_) => Due::Nothing,
            None => {
                self.pinged = Some(now);
                Due::Ping
            }
        }
    }

    /// When this side next needs a look.
    fn next_check(&self, now: Instant, t: Keepalive) -> Instant {
        match self.pinged {
            Some(at) => at + t.pong_timeout(),
            None => now + t.idle(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Client,
    Backend,
}

struct Side<S> {
    io: S,
    /// Frames this side could not take yet.
    out: Vec<u8>,
    /// Written bytes may wait in a TLS layer until flushed.
    unflushed: bool,
    /// Its connection failed, ended or was dropped: nothing more is read or written.
    gone: bool,
    /// It sent its close frame.
    got_close: bool,
    /// A close frame went to it, relayed or the gateway's own.
    sent_close: bool,
    /// The direction from it holds carried bytes to process before the next read.
    unread: bool,
    /// The gateway is this side's client (it is the backend): frames to it are masked,
    /// and after the close handshake the backend closes TCP first (RFC 6455 7.1.1), so
    /// the waiting connection ends on the backend's side, not among the gateway's ports.
    is_backend: bool,
    live: Liveness,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Side<S> {
    fn new(io: S, is_backend: bool) -> Side<S> {
        Side {
            io,
            out: Vec::new(),
            unflushed: false,
            gone: false,
            got_close: false,
            sent_close: false,
            unread: false,
            is_backend,
            live: Liveness::default(),
        }
    }

    /// Write `bytes` now as far as the socket takes them; keep the rest.
    fn send(&mut self, cx: &mut Context<'_>, mut bytes: &[u8]) {
        if self.gone {
            return;
        }
        while self.out.is_empty() && !bytes.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, bytes) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    bytes = &bytes[n..];
                    self.unflushed = true;
                }
                Poll::Ready(_) => {
                    self.gone = true;
                    return;
                }
                Poll::Pending => break,
            }
        }
        self.out.extend_from_slice(bytes);
    }

    /// Write what waits, then flush; the buffer is given back once empty.
    fn flush(&mut self, cx: &mut Context<'_>) {
        while !self.out.is_empty() && !self.gone {
            match Pin::new(&mut self.io).poll_write(cx, &self.out) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.out.drain(..n);
                    self.unflushed = true;
                }
                Poll::Ready(_) => self.gone = true,
                Poll::Pending => return,
            }
        }
        if self.out.capacity() > 0 {
            self.out = Vec::new();
        }
        if self.unflushed && !self.gone {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => self.gone = true,
                Poll::Pending => {}
            }
        }
    }

    /// Queue a frame of the gateway's own, if the stream to this side is between frames.
    /// `feed` is the direction whose frames this side receives.
    fn own_frame(&mut self, feed: &Direction, opcode: OpCode, payload: &[u8]) -> bool {
        if self.gone || self.sent_close || !feed.at_boundary() {
            return false;
        }
        frame::write_frame(
            &mut self.out,
            opcode,
            payload,
            self.is_backend.then(rand::random::<[u8; 4]>),
        );
        true
    }

    /// Send the gateway's close. Where half a frame has gone out there is no clean way to
    /// end the stream, and the connection is dropped instead.
    fn close(&mut self, feed: &Direction, code: u16, reason: &str) {
        if self.gone || self.sent_close {
            return;
        }
        if !self.own_frame(feed, OpCode::Close, &frame::close_payload(code, reason)) {
            self.gone = true;
        }
        self.sent_close = true;
    }

    /// Done with: its close handshake is complete and written (and a backend has closed
    /// its end), or it is gone.
    fn finished(&self) -> bool {
        self.gone
            || (self.got_close
                && self.sent_close
                && self.out.is_empty()
                && !self.unflushed
                && !self.is_backend)
    }

    fn involved_in_closing(&self) -> bool {
        self.gone || self.got_close || self.sent_close
    }
}

/// What one read from a side came to.
enum Read {
    Nothing,
    Progress,
    Stopped(Stop),
    Lost,
}

/// What a direction's messages are checked against, besides the protocol: the
/// subscription plan's rates and the contract.
struct Checks<'a> {
    /// The subscription plan's meter and the API's per-connection one.
    meters: [Option<&'a crate::meter::Meter>; 2],
    inspect: Option<&'a mut Inspect>,
}

/// Read once from `from`, forward what may go on to `to`.
fn read_once<A, B>(
    cx: &mut Context<'_>,
    from: &mut Side<A>,
    dir: &mut Direction,
    to: &mut Side<B>,
    scratch: &mut Vec<u8>,
    read_bytes: usize,
    checks: Checks<'_>,
) -> Read
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let carried = dir.carry.len();
    if scratch.len() < carried + read_bytes {
        scratch.resize(carried + read_bytes, 0);
    }
    if from.got_close {
        // Only its TCP close is awaited now; anything else is dropped.
        let mut buf = ReadBuf::new(&mut scratch[..read_bytes]);
        return match Pin::new(&mut from.io).poll_read(cx, &mut buf) {
            Poll::Pending => Read::Nothing,
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => Read::Progress,
            Poll::Ready(_) => Read::Lost,
        };
    }
    let n = if std::mem::take(&mut from.unread) {
        0
    } else {
        let mut buf = ReadBuf::new(&mut scratch[carried..carried + read_bytes]);
        match Pin::new(&mut from.io).poll_read(cx, &mut buf) {
            Poll::Pending => return Read::Nothing,
            Poll::Ready(Err(_)) => return Read::Lost,
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return Read::Lost,
            Poll::Ready(Ok(())) => buf.filled().len(),
        }
    };
    from.live.heard = true;
    dir.unpublished.1 += n as u32;
    let mut carry = std::mem::take(&mut dir.carry);
    scratch[..carried].copy_from_slice(&carry);
    if carry.capacity() <= KEPT_CARRY {
        carry.clear();
        dir.carry = carry;
    }
    let Checks {
        meters,
        mut inspect,
    } = checks;
    let done = dir.process_metered(&mut scratch[..carried + n], meters, inspect.as_deref_mut());
    if !to.sent_close {
        to.send(cx, &scratch[..done.forward]);
    }
    if let Some(i) = inspect {
        if !i.ready().is_empty() {
            if !to.sent_close {
                to.send(cx, i.ready());
            }
            i.sent();
        }
    }
    match done.stop {
        Some(stop) => {
            from.unread = !dir.carry.is_empty();
            Read::Stopped(stop)
        }
        None => Read::Progress,
    }
}

/// Send `sender` the notices waiting for it in `inspect`, while the stream towards it
/// (`feed`) is between frames.
fn tell<S: AsyncRead + AsyncWrite + Unpin>(
    sender: &mut Side<S>,
    feed: &Direction,
    inspect: &mut Inspect,
) {
    while let Some(notice) = inspect.take_notice() {
        if !sender.own_frame(feed, OpCode::Text, &notice) {
            if !sender.gone {
                inspect.keep_notice(notice);
            }
            return;
        }
    }
}

/// May `from` be read: it is still sending, and `to` has taken everything so far.
fn readable<A, B>(from: &Side<A>, to: &Side<B>) -> bool {
    !from.gone && (!from.got_close || from.is_backend) && to.out.is_empty()
}

/// Both sides of one connection and the frames between them.
struct Relay<C, B> {
    client: Side<C>,
    backend: Side<B>,
    /// Client to backend.
    up: Direction,
    /// Backend to client.
    down: Direction,
    /// Bytes read per system call (u32: it packs with `ended`, keeping the state small).
    read_bytes: u32,
    /// The subscription plan's rates, when it meters any (both directions count).
    meter: Option<std::sync::Arc<crate::meter::PlanMeter>>,
    /// What only some APIs ask for, boxed so that a connection without it pays one
    /// pointer: message validation and per-connection rates.
    policing: Option<Box<Policing>>,
    ended: Option<Ended>,
    connection: std::sync::Arc<Connection>,
    /// The close code and reason on the client's connection, once one crossed it (0:
    /// none yet).
    close_code: u16,
    close_reason: Option<Box<str>>,
}

/// A connection's message validation (each direction's, client to backend first) and
/// its API's per-connection rates.
struct Policing {
    inspect: [Option<Inspect>; 2],
    rate: Option<crate::meter::Meter>,
}

impl<C, B> Relay<C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    fn closing(&self) -> bool {
        self.client.involved_in_closing() || self.backend.involved_in_closing()
    }

    fn done(&self) -> bool {
        self.client.finished() && self.backend.finished()
    }

    /// Carry bytes both ways until nothing more is ready. Ready when the connection
    /// started closing, or with `to_the_end` when it is done.
    fn poll_relay(&mut self, cx: &mut Context<'_>, to_the_end: bool) -> Poll<()> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for _ in 0..READS_PER_POLL {
                self.client.flush(cx);
                self.backend.flush(cx);
                let mut progress = false;
                if readable(&self.client, &self.backend) {
                    progress |= self.read(cx, Who::Client, &mut scratch);
                }
                if readable(&self.backend, &self.client) {
                    progress |= self.read(cx, Who::Backend, &mut scratch);
                }
                if self.client.gone {
                    self.lost(Who::Client);
                }
                if self.backend.gone {
                    self.lost(Who::Backend);
                }
                let ready = if to_the_end {
                    self.done()
                } else {
                    self.closing()
                };
                if ready {
                    return Poll::Ready(());
                }
                if !progress {
                    return Poll::Pending;
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    /// Tell the senders of dropped messages, each when the stream towards it is between
    /// frames (until then the notices wait, [`crate::direction::PENDING_NOTICES`] at most).
    fn notify(&mut self) {
        let Some(policing) = self.policing.as_deref_mut() else {
            return;
        };
        let [up, down] = &mut policing.inspect;
        if let Some(i) = up {
            tell(&mut self.client, &self.down, i);
        }
        if let Some(i) = down {
            tell(&mut self.backend, &self.up, i);
        }
    }

    /// One read from `who`; whether anything happened.
    fn read(&mut self, cx: &mut Context<'_>, who: Who, scratch: &mut Vec<u8>) -> bool {
        self.notify();
        let plan = self.meter.as_deref();
        let (rate, [up_inspect, down_inspect]) = match self.policing.as_deref_mut() {
            Some(Policing {
                inspect: [up, down],
                rate,
            }) => (rate.as_ref(), [up.as_mut(), down.as_mut()]),
            None => (None, [None, None]),
        };
        let read = match who {
            Who::Client => read_once(
                cx,
                &mut self.client,
                &mut self.up,
                &mut self.backend,
                scratch,
                self.read_bytes as usize,
                Checks {
                    meters: [plan, rate],
                    inspect: up_inspect,
                },
            ),
            Who::Backend => read_once(
                cx,
                &mut self.backend,
                &mut self.down,
                &mut self.client,
                scratch,
                self.read_bytes as usize,
                Checks {
                    meters: [plan, rate],
                    inspect: down_inspect,
                },
            ),
        };
        if !matches!(read, Read::Nothing) {
            let (index, dir) = match who {
                Who::Client => (UP, &mut self.up),
                Who::Backend => (DOWN, &mut self.down),
            };
            let (messages, bytes) = std::mem::take(&mut dir.unpublished);
            self.connection.add(index, messages, bytes);
        }
        match read {
            Read::Nothing => return false,
            Read::Progress => {}
            Read::Stopped(Stop::Close {
                frame,
                code,
                reason,
            }) => self.close_from(who, frame, code, reason),
            Read::Stopped(Stop::Violation(v)) => self.violation(who, v),
            Read::Stopped(Stop::Refused(v)) => self.refused(who, v),
            Read::Stopped(Stop::OverRate(v)) => self.over_rate(v),
            Read::Lost => {
                match who {
                    Who::Client => self.client.gone = true,
                    Who::Backend => self.backend.gone = true,
                }
                self.lost(who);
            }
        }
        true
    }

    /// `who` sent its close: relayed to the other side unless that side was already sent
    /// one (then this is the answer to it).
    fn close_from(&mut self, who: Who, frame: Vec<u8>, code: Option<u16>, reason: String) {
        // The client's own close, or the backend's relayed to it (or answering the
        // gateway's): what the client's connection closed with, unless one went before.
        if who == Who::Client || !self.client.sent_close {
            self.client_closed(code.unwrap_or(1005), &reason);
        }
        let (ended, to_sent) = match who {
            Who::Client => {
                self.client.got_close = true;
                (Ended::ClientClosed, &mut self.backend.sent_close)
            }
            Who::Backend => {
                self.backend.got_close = true;
                (Ended::BackendClosed, &mut self.client.sent_close)
            }
        };
        if *to_sent {
            return;
        }
        *to_sent = true;
        self.ended.get_or_insert(ended);
        match who {
            Who::Client => self.backend.out.extend_from_slice(&frame),
            Who::Backend => self.client.out.extend_from_slice(&frame),
        }
    }

    /// A frame went over the plan's or the API's rates that close: the rates are the
    /// client's, whichever side sent the frame, so the client is told why (1008) and the
    /// backend that the client is going.
    fn over_rate(&mut self, v: frame::Violation) {
        self.ended.get_or_insert(Ended::OverRate);
        self.close_client(v.code, &v.reason);
        self.backend.close(&self.up, 1001, "client went away");
    }

    /// `who` sent a message the contract does not allow (validation `reject`): it gets the
    /// code and reason, the other side 1001.
    fn refused(&mut self, who: Who, v: frame::Violation) {
        self.ended.get_or_insert(Ended::MessageRefused);
        match who {
            Who::Client => {
                self.close_client(v.code, &v.reason);
                self.backend.close(&self.up, 1001, "client went away");
            }
            Who::Backend => {
                self.backend.close(&self.up, v.code, &v.reason);
                self.close_client(
                    1001,
                    "the backend sent a message the contract does not allow",
                );
            }
        }
    }

    /// `who` broke the protocol or a limit: it gets the code that says so, the other side
    /// a close, and the breaker is read on for its answer.
    fn violation(&mut self, who: Who, v: frame::Violation) {
        let too_big = v.code == frame::TOO_BIG;
        match who {
            Who::Client => {
                self.ended.get_or_insert(if too_big {
                    Ended::ClientTooBig
                } else {
                    Ended::ClientBrokeProtocol
                });
                self.close_client(v.code, &v.reason);
                self.backend.close(&self.up, 1001, "client went away");
            }
            Who::Backend => {
                self.ended.get_or_insert(if too_big {
                    Ended::BackendTooBig
                } else {
                    Ended::BackendBrokeProtocol
                });
                self.backend.close(&self.up, v.code, &v.reason);
                if too_big {
                    self.close_client(1001, "the backend sent a message that is too big");
                } else {
                    self.close_client(1011, "the backend broke the WebSocket protocol");
                }
            }
        }
    }

    /// `who`'s connection ended or failed; the other side is told.
    fn lost(&mut self, who: Who) {
        match who {
            Who::Client => {
                self.ended.get_or_insert(Ended::ClientLost);
                self.backend.close(&self.up, 1001, "client went away");
            }
            Who::Backend => {
                self.ended.get_or_insert(Ended::BackendLost);
                self.close_client(1011, "backend connection lost");
            }
        }
    }

    /// Send the client the gateway's close (remembered as the connection's close code).
    fn close_client(&mut self, code: u16, reason: &str) {
        if !self.client.sent_close && !self.client.gone {
            self.client_closed(code, reason);
        }
        self.client.close(&self.down, code, reason);
    }

    /// Remember the first close on the client's connection.
    fn client_closed(&mut self, code: u16, reason: &str) {
        if self.close_code == 0 {
            self.close_code = code;
            self.close_reason = Some(reason.into());
        }
    }

    /// Carry out what operators asked of the connection: messages to the client are sent
    /// when its stream is between frames (else they wait), a close at once.
    /// Returns whether a message waits.
    fn commands(&mut self) -> bool {
        let connection = self.connection.clone();
        while let Some(command) = connection.next_command() {
            match command {
                Command::Close { code, reason } => {
                    self.close_both(Ended::Closed, code, &reason);
                    return false;
                }
                Command::End(End::Evicted(eviction)) => {
                    self.close_both(Ended::Evicted, eviction.code, &eviction.reason);
                    return false;
                }
                Command::End(End::Shutdown) => {
                    self.close_both(Ended::Shutdown, 1001, "gateway shutting down");
                    return false;
                }
                Command::Send { text, payload } => {
                    let opcode = if text { OpCode::Text } else { OpCode::Binary };
                    if !self.client.own_frame(&self.down, opcode, &payload) {
                        if !self.client.gone && !self.client.sent_close {
                            connection.put_back(Command::Send { text, payload });
                            return true;
                        }
                        return false;
                    }
                }
            }
        }
        false
    }

    /// Close the client with `code` and the backend with 1001, both with `reason`.
    fn close_both(&mut self, ended: Ended, code: u16, reason: &str) {
        self.ended.get_or_insert(ended);
        self.close_client(code, reason);
        self.backend.close(&self.up, 1001, reason);
    }

    /// A keepalive check: ping quiet sides, close the connection when one stayed silent.
    /// Returns when the next check is due.
    fn keepalive(&mut self, timing: Keepalive) -> Instant {
        let now = Instant::now();
        match self.client.live.check(now, timing) {
            Due::Ping => {
                self.client.own_frame(&self.down, OpCode::Ping, KEEPALIVE);
            }
            Due::Dead => {
                self.ended.get_or_insert(Ended::ClientSilent);
                self.backend
                    .close(&self.up, 1001, "client stopped answering pings");
                self.close_client(1001, "no answer to pings");
            }
            Due::Nothing => {}
        }
        match self.backend.live.check(now, timing) {
            Due::Ping => {
                self.backend.own_frame(&self.up, OpCode::Ping, KEEPALIVE);
            }
            Due::Dead => {
                self.ended.get_or_insert(Ended::BackendSilent);
                self.close_client(1011, "backend stopped answering pings");
                self.backend.close(&self.up, 1001, "no answer to pings");
            }
            Due::Nothing => {}
        }
        self.client
            .live
            .next_check(now, timing)
            .min(self.backend.live.next_check(now, timing))
    }
}

/// Relay between `client` and `backend` until both close, or a bound, an operator or the
/// gateway (through `connection`, where counts are published and commands taken) ends
/// the connection.
pub fn run<C, B>(
    client: Leg<C>,
    backend: Leg<B>,
    settings: Settings,
    connection: std::sync::Arc<Connection>,
) -> impl std::future::Future<Output = Outcome>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let [up_rules, down_rules] = settings.rules;
    // Each direction: what compressed messages from its sender may be, and the window
    // the gateway deflates with towards its receiver.
    let [(up_compressed, up_recompress), (down_compressed, down_recompress)] =
        match settings.compression {
            Negotiated::None => [(Compressed::Refused, None); 2],
            Negotiated::PassThrough {
                client_takeover,
                backend_takeover,
            } => [
                (
                    Compressed::Relayed {
                        takeover: client_takeover,
                    },
                    None,
                ),
                (
                    Compressed::Relayed {
                        takeover: backend_takeover,
                    },
                    None,
                ),
            ],
            Negotiated::Terminated { client, backend } => {
                let inflated = |side: Option<Agreed>| match side {
                    Some(_) => Compressed::Inflated,
                    None => Compressed::Refused,
                };
                let window = |side: Option<Agreed>| side.and_then(Agreed::deflate_bits);
                [
                    (inflated(client), window(backend)),
                    (inflated(backend), window(client)),
                ]
            }
        };
    // Inflating needs the direction's Inspect, as validating does.
    let inspect = |rules: Option<_>, compressed, recompress, masked| {
        (rules.is_some() || compressed == Compressed::Inflated)
            .then(|| Inspect::new(rules, recompress, masked))
    };
    let inspect = [
        inspect(up_rules, up_compressed, up_recompress, true),
        inspect(down_rules, down_compressed, down_recompress, false),
    ];
    let mut relay = Relay {
        client: Side::new(client.io, false),
        backend: Side::new(backend.io, true),
        up: Direction::new(true, settings.max_message_bytes).compressed(up_compressed),
        down: Direction::new(false, settings.max_message_bytes).compressed(down_compressed),
        policing: (inspect.iter().any(Option::is_some) || settings.rate.is_some()).then(|| {
            Box::new(Policing {
                inspect,
                rate: settings.rate,
            })
        }),
        read_bytes: u32::try_from(settings.read_bytes).unwrap_or(u32::MAX),
        meter: settings.meter,
        ended: None,
        connection,
        close_code: 0,
        close_reason: None,
    };
    // Bytes read past a handshake are processed before the first read; an empty buffer
    // is not kept for the connection's life.
    if !client.read_ahead.is_empty() {
        relay.up.carry = client.read_ahead;
        relay.client.unread = true;
    }
    if !backend.read_ahead.is_empty() {
        relay.down.carry = backend.read_ahead;
        relay.backend.unread = true;
    }
    let timing = settings.timing;
    let keepalive = Keepalive::new(&timing);
    // The earlier of the duration limit and the credential's expiry, and which it is.
    let limit = match (timing.max_duration, timing.credential_expiry) {
        (Some(d), Some(e)) if e < d => Some((e, true)),
        (Some(d), _) => Some((d, false)),
        (None, e) => e.map(|e| (e, true)),
    };
    let expires = limit.is_some_and(|(_, expiry)| expiry);
    // The time limit, which most APIs do not set, is only allocated when set.
    let mut time_limit = limit.map(|(d, _)| Box::pin(tokio::time::sleep(d)));
    // An async block rather than an async fn: it holds the relay where it was built
    // instead of keeping a second copy of its arguments.
    async move {
        // One timer does the keepalive checks, then the wait for close answers.
        let timer = tokio::time::sleep(keepalive.idle());
        tokio::pin!(timer);
        // Until closing begins: the relay first, then the timers and commands, in one poll.
        poll_fn(|cx| {
            if relay.poll_relay(cx, false).is_ready() {
                return Poll::Ready(());
            }
            while timer.as_mut().poll(cx).is_ready() {
                let next = relay.keepalive(keepalive);
                timer.as_mut().reset(next);
                // Write the pings, or the closes of a dead connection.
                if relay.poll_relay(cx, false).is_ready() {
                    return Poll::Ready(());
                }
            }
            if time_limit
                .as_mut()
                .is_some_and(|t| t.as_mut().poll(cx).is_ready())
            {
                if expires {
                    relay.close_both(Ended::CredentialExpired, 1008, "credential expired");
                } else {
                    relay.close_both(
                        Ended::TimeLimit,
                        1001,
                        "maximum connection duration reached",
                    );
                }
            } else if relay.connection.poll_commands(cx) {
                let waits = relay.commands();
                if !relay.closing() {
                    // Write what was sent.
                    if relay.poll_relay(cx, false).is_ready() {
                        return Poll::Ready(());
                    }
                    // Be woken by the next command (one that came meanwhile: at once). A
                    // message waiting for the stream to be between frames is tried again
                    // when the backend's frames move on, which wakes this task anyway.
                    if !waits && relay.connection.poll_commands(cx) {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
            } else {
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        relay.connection.closing();
        drop(time_limit);
        // Closing: wait (bounded) for the close answers and the backend's TCP close. As the
        // client's server, the gateway closes that TCP connection first, as soon as the
        // client's close handshake is done.
        timer.as_mut().reset(Instant::now() + CLOSE_WAIT);
        let mut client_shut = false;
        poll_fn(|cx| {
            let done = relay.poll_relay(cx, true);
            if !client_shut && !relay.client.gone && relay.client.finished() {
                client_shut = true;
                let _ = Pin::new(&mut relay.client.io).poll_shutdown(cx);
            }
            if done.is_ready() {
                return Poll::Ready(());
            }
            timer.as_mut().poll(cx)
        })
        .await;
        let ended = relay.ended.unwrap_or(Ended::ClientLost);
        Outcome {
            ended,
            code: match relay.close_code {
                0 => 1006,
                code => code,
            },
            reason: relay.close_reason.take().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::BackendStream;
    use tokio::net::{TcpListener, TcpStream};

    /// What an idle connection holds is mostly this future: it is kept small (no buffers,
    /// no TLS state inline), which docs/benchmarks.md measures as memory per connection.
    #[tokio::test]
    async fn a_connections_state_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let backend = BackendStream::Plain(TcpStream::connect(addr).await.unwrap());
        let settings = Settings {
            timing: Timing {
                idle: Duration::from_secs(30),
                pong_timeout: Duration::from_secs(10),
                max_duration: None,
                credential_expiry: None,
            },
            max_message_bytes: 1 << 20,
            read_bytes: 32 << 10,
            meter: None,
            rules: [None, None],
            rate: None,
            compression: Default::default(),
        };
        let pump = run(
            Leg {
                io: client,
                read_ahead: Vec::new(),
            },
            Leg {
                io: backend,
                read_ahead: Vec::new(),
            },
            settings,
            std::sync::Arc::new(Connection::new(crate::connection::Identity::example())),
        );
        let size = std::mem::size_of_val(&pump);
        assert!(size <= 640, "the pump's state is {size} bytes");
        // What a connection that validates or terminates compression adds, boxed: both
        // directions' held-message state, empty while idle.
        let policing = std::mem::size_of::<Policing>();
        assert!(policing <= 448, "policing is {policing} bytes");
    }
}
