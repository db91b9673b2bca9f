//! AsyncAPI 3.x read into the model: channels are keyed by id and carry their `address`;
//! operations point at a channel and say what the described application does with its
//! messages, so `receive` is what clients send and `send` what they get.

use crate::diagnostic::ContractError;
use crate::load::Limits;
use crate::model::{Channel, Contract, Message, Operation, Reply, Server};
use crate::reader::{text, Reader};
use crate::refs::escape;
use serde_json::Value;

pub(crate) fn read(doc: &Value, version: &str, limits: &Limits) -> Result<Contract, ContractError> {
    let mut r = Reader::new(doc, limits);
    let info = r.info();
    let servers = r.servers(server_of);

    // Channels first (with their messages by pointer), then operations attach to them.
    let mut channels: Vec<Found> = Vec::new();
    if let Some(map) = r.object(doc.get("channels"), "/channels", false) {
        for (key, item) in map {
            if let Some(found) = channel_of(&mut r, key, item) {
                channels.push(found);
            }
        }
    }
    if let Some(map) = r.object(doc.get("operations"), "/operations", false) {
        for (key, op) in map {
            operation_of(&mut r, key, op, &mut channels);
        }
    }
    let channels = channels.into_iter().map(|f| f.channel).collect();
    r.finish(version, info, servers, channels)
}

fn server_of<'a>(r: &mut Reader<'a>, name: &str, value: &'a Value) -> Option<Server> {
    let at = format!("/servers/{}", escape(name));
    let map = r.object(Some(value), &at, true)?;
    let host = r.string(map.get("host"), &format!("{at}/host"), true);
    let protocol = r.string(map.get("protocol"), &format!("{at}/protocol"), true);
    let (host, protocol) = (host?, protocol?.to_ascii_lowercase());
    let pathname = text(map, "pathname").unwrap_or_default();
    let url = Reader::substitute(
        &format!("{protocol}://{host}{pathname}"),
        map.get("variables"),
    );
    Some(Server {
        name: name.to_string(),
        url,
        protocol,
    })
}

/// A channel read from the document, with its pointer and its messages keyed by their
/// pointers (operations refer to both by pointer).
struct Found {
    pointer: String,
    channel: Channel,
    messages: Vec<(String, Message)>,
}

fn channel_of<'a>(r: &mut Reader<'a>, key: &str, value: &'a Value) -> Option<Found> {
    let at = format!("/channels/{}", escape(key));
    let map = r.object(Some(value), &at, true)?;
    let address = match map.get("address") {
        Some(Value::String(a)) => a.clone(),
        None | Some(Value::Null) => {
            r.warning(
                &format!("{at}/address"),
                format!("channel `{key}` has no address; it is served at /{key}"),
            );
            format!("/{key}")
        }
        Some(other) => {
            r.problem(
                &format!("{at}/address"),
                format!("must be a string or null, found {other}"),
            );
            return None;
        }
    };
    let declared: Vec<String> = r
        .object(map.get("parameters"), &format!("{at}/parameters"), false)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let parameters = Channel::address_parameters(&address);
    // The official parser accepts undeclared 3.x parameters; the gateway can still route.
    for p in &parameters {
        if !declared.contains(p) {
            r.warning(
                &format!("{at}/parameters"),
                format!("address parameter `{p}` is not defined in `parameters`"),
            );
        }
    }
    let mut messages = Vec::new();
    if let Some(msgs) = r.object(map.get("messages"), &format!("{at}/messages"), false) {
        for (name, m) in msgs {
            let m_at = format!("{at}/messages/{}", escape(name));
            if let Some(mut message) = r.message(m, &m_at) {
                message.name.get_or_insert_with(|| name.clone());
                messages.push((m_at, message));
            }
        }
    }
    let channel = Channel {
        id: Some(key.to_string()),
        address,
        description: text(map, "description"),
        ws_binding: r.ws_binding(map, &at),
        parameters,
        client_to_server: None,
        server_to_client: None,
    };
    Some(Found {
        pointer: at,
        channel,
        messages,
    })
}

fn ref_of(value: &Value) -> Option<&str> {
    value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
}

fn operation_of<'a>(r: &mut Reader<'a>, key: &str, value: &'a Value, channels: &mut [Found]) {
    let at = format!("/operations/{}", escape(key));
    let Some(map) = r.object(Some(value), &at, true) else {
        return;
    };
    let to_server = match map.get("action").and_then(Value::as_str) {
        Some("receive") => true,
        Some("send") => false,
        Some(other) => {
            r.problem(
                &format!("{at}/action"),
                format!("must be `send` or `receive`, found `{other}`"),
            );
            return;
        }
        None => {
            r.problem(
                &format!("{at}/action"),
                "required field `action` is missing",
            );
            return;
        }
    };
    let Some(channel_ptr) = map.get("channel").and_then(ref_of) else {
        r.problem(
            &format!("{at}/channel"),
            "must be a `$ref` to a channel (`#/channels/...`)",
        );
        return;
    };
    let Some(index) = channels.iter().position(|f| f.pointer == channel_ptr) else {
        r.problem(
            &format!("{at}/channel"),
            format!("unresolved reference `#{channel_ptr}`: no such channel"),
        );
        return;
    };
    let available = &channels[index].messages;
    let mut messages = Vec::new();
    match map.get("messages").and_then(Value::as_array) {
        None => messages.extend(available.iter().map(|(_, m)| m.clone())),
        Some(list) => {
            for (i, item) in list.iter().enumerate() {
                let Some(ptr) = ref_of(item) else {
                    r.problem(
                        &format!("{at}/messages/{i}"),
                        "must be a `$ref` to a message of the operation's channel",
                    );
                    continue;
                };
                match available.iter().find(|(p, _)| p == ptr) {
                    Some((_, m)) => messages.push(m.clone()),
                    None => r.problem(
                        &format!("{at}/messages/{i}"),
                        format!("`#{ptr}` is not a message of the channel `#{channel_ptr}`"),
                    ),
                }
            }
        }
    }
    let replies: Vec<Reply> = match map.get("reply") {
        Some(reply) if to_server => reply_of(r, reply, &format!("{at}/reply"), index, channels)
            .map(|answers| Reply {
                requests: messages.clone(),
                answers,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let channel = &mut channels[index].channel;
    let slot = if to_server {
        &mut channel.client_to_server
    } else {
        &mut channel.server_to_client
    };
    match slot {
        Some(existing) => {
            existing.messages.extend(messages);
            existing.replies.extend(replies);
        }
        None => {
            *slot = Some(Operation {
                operation_id: Some(key.to_string()),
                summary: text(map, "summary"),
                messages,
                replies,
            })
        }
    }
}

/// The messages an operation's `reply` answers with: those it names, or every message of
/// its channel (the reply's own, or the operation's).
fn reply_of<'a>(
    r: &mut Reader<'a>,
    value: &'a Value,
    at: &str,
    operation_channel: usize,
    channels: &[Found],
) -> Option<Vec<Message>> {
    let (reply, at) = r.deref(value, at)?;
    let channel = match reply.get("channel") {
        Some(c) => {
            let Some(ptr) = ref_of(c) else {
                r.problem(
                    &format!("{at}/channel"),
                    "must be a `$ref` to a channel (`#/channels/...`)",
                );
                return None;
            };
            match channels.iter().position(|f| f.pointer == ptr) {
                Some(i) => i,
                None => {
                    r.problem(
                        &format!("{at}/channel"),
                        format!("unresolved reference `#{ptr}`: no such channel"),
                    );
                    return None;
                }
            }
        }
        None => operation_channel,
    };
    let available = &channels[channel].messages;
    match reply.get("messages").and_then(Value::as_array) {
        None => Some(available.iter().map(|(_, m)| m.clone()).collect()),
        Some(list) => Some(
            list.iter()
                .filter_map(ref_of)
                .filter_map(|ptr| available.iter().find(|(p, _)| p == ptr))
                .map(|(_, m)| m.clone())
                .collect(),
        ),
    }
}
