//! One live connection as an operator sees it: its id, who made it, the messages and
//! bytes it carried so far each way, and what an operator asks of it (close it, send its
//! client a message). The pump publishes its counts here after each read and takes the
//! operator's commands when woken for them; the gateway ends it the same way when it is
//! evicted or the gateway shuts down (one waker per connection for everything from
//! outside).

use crate::deflate::Negotiated;
use asyncgate_core::ListenerKind;
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::Context;
use std::time::SystemTime;

/// Client to backend (`UP`) and backend to client (`DOWN`): indexes of [`Connection`]'s
/// counts.
pub const UP: usize = 0;
pub const DOWN: usize = 1;

/// Commands waiting for one connection, at most; more are refused until it takes them.
pub const MAX_WAITING_COMMANDS: usize = 64;

/// Messages and bytes (as on the wire, frame headers included) one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: u64,
    pub bytes: u64,
}

/// What an operator asks of a live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Close the client with this code and reason (the backend gets 1001).
    Close { code: u16, reason: String },
    /// Send the client one message from the gateway.
    Send { text: bool, payload: Vec<u8> },
    /// The gateway ends the connection (never refused, ahead of what waits).
    End(End),
}

/// Why the gateway ends a connection from outside its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It would no longer be admitted (see `live`).
    Evicted(crate::live::Eviction),
    /// The gateway is shutting down.
    Shutdown,
}

/// Why a command did not reach a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the connection has {MAX_WAITING_COMMANDS} commands waiting; try again shortly")]
    Busy,
    #[error("the connection is closing")]
    Closing,
}

#[derive(Debug)]
pub struct Connection {
    /// Unique in this process, shown as 16 hexadecimal digits.
    pub id: u64,
    pub peer: SocketAddr,
    pub listener: ListenerKind,
    /// The path, request id, caller and application one after the other, in one
    /// allocation (see the accessors); `ends` says where each ends.
    text: Box<str>,
    ends: [u16; 4],
    pub credential_kind: &'static str,
    pub revision: u32,
    pub started: SystemTime,
    counts: [[AtomicU64; 2]; 2],
    commands: Mutex<VecDeque<Command>>,
    waiting: AtomicBool,
    closing: AtomicBool,
    /// What permessage-deflate came to (see [`Connection::compression`]).
    compression: AtomicU8,
    waker: AtomicWaker,
}

/// Who a connection is for, fixed at its handshake.
pub struct Identity {
    pub peer: SocketAddr,
    pub listener: ListenerKind,
    pub path: String,
    pub request_id: String,
    pub caller: String,
    pub credential_kind: &'static str,
    pub application: Option<String>,
    pub revision: u32,
}

impl Identity {
    /// A connection from 127.0.0.1 with an API key: for tests and fuzzing.
    pub fn example() -> Identity {
        Identity {
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: ListenerKind::External,
            path: "/chat".into(),
            request_id: "r".into(),
            caller: "app".into(),
            credential_kind: "api-key",
            application: None,
            revision: 1,
        }
    }
}

impl Connection {
    pub fn new(identity: Identity) -> Connection {
        // Each part is cut to what a u16 offset holds (a request head is at most 16 KiB).
        let parts = [
            identity.path.as_str(),
            identity.request_id.as_str(),
            identity.caller.as_str(),
            identity.application.as_deref().unwrap_or(""),
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u16; 4];
        for (end, part) in ends.iter_mut().zip(parts) {
            let room = usize::from(u16::MAX) - text.len();
            let mut cut = part.len().min(room);
            while !part.is_char_boundary(cut) {
                cut -= 1;
            }
            text.push_str(&part[..cut]);
            *end = text.len() as u16;
        }
        Connection {
            id: rand::random(),
            peer: identity.peer,
            listener: identity.listener,
            text: text.into_boxed_str(),
            ends,
            credential_kind: identity.credential_kind,
            revision: identity.revision,
            started: SystemTime::now(),
            counts: Default::default(),
            commands: Mutex::new(VecDeque::new()),
            waiting: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            compression: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[usize::from(start)..usize::from(self.ends[i])]
    }

    /// The request's path (the channel, with its parameters).
    pub fn path(&self) -> &str {
        self.part(0)
    }

    /// Sent to the backend as `X-Request-Id` and written in the access log.
    pub fn request_id(&self) -> &str {
        self.part(1)
    }

    /// Who the credential names: an application, a key's hash prefix or a token's
    /// subject; never a secret.
    pub fn caller(&self) -> &str {
        self.part(2)
    }

    /// The subscribed application, when the credential is an application's.
    pub fn application(&self) -> Option<&str> {
        Some(self.part(3)).filter(|a| !a.is_empty())
    }

    /// The id as shown to operators.
    pub fn id_text(&self) -> String {
        format!("{:016x}", self.id)
    }

    /// Count messages and bytes one way.
    pub fn add(&self, direction: usize, messages: u32, bytes: u32) {
        let [m, b] = &self.counts[direction];
        if messages > 0 {
            m.fetch_add(u64::from(messages), Ordering::Relaxed);
        }
        b.fetch_add(u64::from(bytes), Ordering::Relaxed);
    }

    /// The totals so far, `[UP, DOWN]`.
    /// What permessage-deflate came to, once the backend answered.
    pub fn set_compression(&self, negotiated: Negotiated) {
        self.compression
            .store(negotiated.index(), Ordering::Relaxed);
    }

    /// `none`, `pass-through` or `terminated`.
    pub fn compression(&self) -> &'static str {
        let index = usize::from(self.compression.load(Ordering::Relaxed));
        Negotiated::NAMES[index.min(Negotiated::NAMES.len() - 1)]
    }

    pub fn counts(&self) -> [Counts; 2] {
        self.counts.each_ref().map(|[m, b]| Counts {
            messages: m.load(Ordering::Relaxed),
            bytes: b.load(Ordering::Relaxed),
        })
    }

    /// Hand the connection a command; its task is woken to carry it out.
    pub fn command(&self, command: Command) -> Result<(), Refused> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Refused::Closing);
        }
        {
            let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
            if commands.len() >= MAX_WAITING_COMMANDS {
                return Err(Refused::Busy);
            }
            commands.push_back(command);
        }
        self.waiting.store(true, Ordering::Release);
        self.waker.wake();
        Ok(())
    }

    /// For the connection's task: be woken by the next command. A load when nothing was
    /// asked; registers the waker only while nothing waits.
    pub fn poll_commands(&self, cx: &mut Context<'_>) -> bool {
        if self.waiting.load(Ordering::Acquire) {
            return true;
        }
        self.waker.register(cx.waker());
        self.waiting.load(Ordering::Acquire)
    }

    /// For the connection's task: the first command waiting, if any.
    pub fn next_command(&self) -> Option<Command> {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let next = commands.pop_front();
        if commands.is_empty() {
            self.waiting.store(false, Ordering::Release);
        }
        next
    }

    /// Put a command back in front (the client's stream was mid-frame), behind an end.
    pub fn put_back(&self, command: Command) {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        let at = usize::from(matches!(commands.front(), Some(Command::End(_))));
        commands.insert(at, command);
        self.waiting.store(true, Ordering::Release);
    }

    /// End the connection: ahead of any command waiting, and at most once (an end asked
    /// for while one waits, or once it is closing, changes nothing).
    pub fn end(&self, end: End) {
        if self.closing.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(commands.front(), Some(Command::End(_))) {
                return;
            }
            commands.push_front(Command::End(end));
        }
        self.waiting.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// The connection started closing: commands are refused from now on.
    pub fn closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection::new(Identity::example())
    }

    #[test]
    fn commands_wait_in_order_up_to_a_bound() {
        let c = connection();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(!c.poll_commands(&mut cx));
        for i in 0..MAX_WAITING_COMMANDS {
            c.command(Command::Send {
                text: true,
                payload: vec![i as u8],
            })
            .unwrap();
        }
        assert_eq!(
            c.command(Command::Close {
                code: 1000,
                reason: String::new()
            }),
            Err(Refused::Busy)
        );
        assert!(c.poll_commands(&mut cx));
        let first = c.next_command().unwrap();
        c.put_back(first.clone());
        assert_eq!(c.next_command(), Some(first));
        for _ in 1..MAX_WAITING_COMMANDS {
            assert!(c.next_command().is_some());
        }
        assert!(!c.poll_commands(&mut cx));
        c.closing();
        assert_eq!(
            c.command(Command::Close {
                code: 1000,
                reason: String::new()
            }),
            Err(Refused::Closing)
        );
    }

    #[test]
    fn the_identity_reads_back_part_by_part() {
        let c = Connection::new(Identity {
            application: Some("app-7".into()),
            ..Identity::example()
        });
        assert_eq!(c.path(), "/chat");
        assert_eq!(c.request_id(), "r");
        assert_eq!(c.caller(), "app");
        assert_eq!(c.application(), Some("app-7"));
        assert_eq!(connection().application(), None);
    }

    #[test]
    fn counts_add_up_per_direction() {
        let c = connection();
        c.add(DOWN, 1, 10);
        c.add(DOWN, 2, 30);
        assert_eq!(
            c.counts(),
            [
                Counts::default(),
                Counts {
                    messages: 3,
                    bytes: 40
                }
            ]
        );
    }

    #[test]
    fn an_end_goes_ahead_of_waiting_commands_and_stays_ahead_of_one_put_back() {
        let connection = Connection::new(Identity::example());
        let send = Command::Send {
            text: true,
            payload: b"hi".to_vec(),
        };
        connection.command(send.clone()).unwrap();
        connection.end(End::Shutdown);
        assert_eq!(connection.next_command(), Some(Command::End(End::Shutdown)));
        assert_eq!(connection.next_command(), Some(send.clone()));
        connection.end(End::Shutdown);
        connection.put_back(send.clone());
        assert_eq!(connection.next_command(), Some(Command::End(End::Shutdown)));
        assert_eq!(connection.next_command(), Some(send));
        // A connection that is closing takes no end.
        connection.closing();
        connection.end(End::Shutdown);
        assert_eq!(connection.next_command(), None);
    }
}
