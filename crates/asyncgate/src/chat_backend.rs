//! The sample chat backend behind the guide's contract: rooms of at most five users,
//! `Connect` / `Data` / `Disconnect` messages broadcast to the room, `Message sent` to the
//! sender of a `Data` message.

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Users per room.
pub const MAX_USERS: usize = 5;

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    Connect { username: String },
    Data { message: String },
}

/// `Connect` and `Disconnect` announcements, fields in the order the protocol lists them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Presence<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    room: u64,
    user_count: usize,
    max_users: usize,
    status: &'a str,
    username: &'a str,
    total_users: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    from: &'a str,
    message: &'a str,
    total_users: usize,
}

struct Member {
    id: u64,
    username: String,
    tx: mpsc::UnboundedSender<Message>,
}

#[derive(Default)]
struct Rooms {
    next_room: u64,
    rooms: BTreeMap<u64, Vec<Member>>,
}

impl Rooms {
    fn total(&self) -> usize {
        self.rooms.values().map(Vec::len).sum()
    }

    fn join(&mut self, member: Member) -> u64 {
        let room = match self.rooms.iter().find(|(_, m)| m.len() < MAX_USERS) {
            Some((id, _)) => *id,
            None => {
                self.next_room += 1;
                self.rooms.insert(self.next_room, Vec::new());
                self.next_room
            }
        };
        self.rooms.entry(room).or_default().push(member);
        room
    }

    fn leave(&mut self, room: u64, id: u64) -> Option<String> {
        let members = self.rooms.get_mut(&room)?;
        let pos = members.iter().position(|m| m.id == id)?;
        let gone = members.remove(pos);
        if members.is_empty() {
            self.rooms.remove(&room);
        }
        Some(gone.username)
    }

    fn presence(&self, room: u64, kind: &str, status: &str, username: &str) {
        let members = self.rooms.get(&room).map(Vec::as_slice).unwrap_or(&[]);
        let text = serde_json::to_string(&Presence {
            kind,
            room,
            user_count: members.len(),
            max_users: MAX_USERS,
            status,
            username,
            total_users: self.total(),
        })
        .unwrap_or_default();
        for m in members {
            let _ = m.tx.send(Message::text(text.clone()));
        }
    }
}

/// Serve the chat protocol on `listener` until `shutdown` fires.
pub async fn run(listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let rooms = Arc::new(Mutex::new(Rooms::default()));
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                next_id += 1;
                tokio::spawn(serve_user(stream, next_id, rooms.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_user(
    stream: TcpStream,
    id: u64,
    rooms: Arc<Mutex<Rooms>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let mut joined: Option<(u64, String)> = None;
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                if ws.send(out).await.is_err() { break }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&text, id, &tx, &rooms, &mut joined);
                    if let Some(reply) = reply {
                        if ws.send(Message::text(reply)).await.is_err() { break }
                    }
                }
                // The close is answered (tungstenite queued the reply; it goes out on
                // the flush), so the user's close handshake completes.
                Some(Ok(Message::Close(_))) => {
                    let _ = ws.flush().await;
                    break;
                }
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                break;
            }
        }
    }
    if let Some((room, _)) = joined {
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = rooms.leave(room, id) {
            rooms.presence(room, "Disconnect", "Offline", &name);
        }
    }
}

/// Apply one client message; returns the text sent back to that client only, if any.
fn handle(
    text: &str,
    id: u64,
    tx: &mpsc::UnboundedSender<Message>,
    rooms: &Mutex<Rooms>,
    joined: &mut Option<(u64, String)>,
) -> Option<String> {
    let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
    match serde_json::from_str::<Incoming>(text) {
        Ok(Incoming::Connect { username }) => {
            if joined.is_some() {
                return Some(error("already connected"));
            }
            let room = rooms.join(Member {
                id,
                username: username.clone(),
                tx: tx.clone(),
            });
            rooms.presence(room, "Connect", "Online", &username);
            *joined = Some((room, username));
            None
        }
        Ok(Incoming::Data { message }) => {
            let Some((room, from)) = joined.as_ref() else {
                return Some(error("send a Connect message first"));
            };
            let text = serde_json::to_string(&Data {
                kind: "Data",
                from,
                message: &message,
                total_users: rooms.total(),
            })
            .unwrap_or_default();
            for m in rooms
                .rooms
                .get(room)
                .into_iter()
                .flatten()
                .filter(|m| m.id != id)
            {
                let _ = m.tx.send(Message::text(text.clone()));
            }
            Some("Message sent".to_string())
        }
        Err(e) => Some(error(&format!("unrecognised message: {e}"))),
    }
}

fn error(message: &str) -> String {
    serde_json::json!({ "type": "Error", "message": message }).to_string()
}
