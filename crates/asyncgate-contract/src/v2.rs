//! AsyncAPI 2.x (2.0 – 2.6) read into the model: the channel key is the address,
//! `publish` is what the client sends, `subscribe` what it receives.

use crate::diagnostic::ContractError;
use crate::load::Limits;
use crate::model::{Channel, Contract, Operation, Server};
use crate::reader::{text, Reader};
use crate::refs::escape;
use serde_json::Value;

pub(crate) fn read(doc: &Value, version: &str, limits: &Limits) -> Result<Contract, ContractError> {
    let mut r = Reader::new(doc, limits);
    let info = r.info();
    let servers = r.servers(server_of);
    let mut channels = Vec::new();
    if let Some(map) = r.object(doc.get("channels"), "/channels", true) {
        for (address, item) in map {
            if let Some(ch) = channel_of(&mut r, address, item) {
                channels.push(ch);
            }
        }
    }
    check_operation_ids(&mut r, &channels);
    r.finish(version, info, servers, channels)
}

fn server_of<'a>(r: &mut Reader<'a>, name: &str, value: &'a Value) -> Option<Server> {
    let at = format!("/servers/{}", escape(name));
    let map = r.object(Some(value), &at, true)?;
    let url = r.string(map.get("url"), &format!("{at}/url"), true);
    let protocol = r.string(map.get("protocol"), &format!("{at}/protocol"), true);
    let (url, protocol) = (url?, protocol?.to_ascii_lowercase());
    let mut url = Reader::substitute(&url, map.get("variables"));
    if !url.contains("://") {
        url = format!("{protocol}://{url}");
    }
    Some(Server {
        name: name.to_string(),
        url,
        protocol,
    })
}

fn channel_of<'a>(r: &mut Reader<'a>, address: &str, value: &'a Value) -> Option<Channel> {
    let at = format!("/channels/{}", escape(address));
    let map = r.object(Some(value), &at, true)?;
    let declared: Vec<String> = r
        .object(map.get("parameters"), &format!("{at}/parameters"), false)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let parameters = Channel::address_parameters(address);
    if map.get("parameters").is_some() {
        for p in parameters.iter().filter(|p| !declared.contains(p)) {
            r.problem(
                &format!("{at}/parameters"),
                format!("address parameter `{p}` is not defined in `parameters`"),
            );
        }
        for d in declared.iter().filter(|d| !parameters.contains(d)) {
            r.problem(
                &format!("{at}/parameters/{}", escape(d)),
                format!("parameter `{d}` does not appear in the address"),
            );
        }
    }
    let client_to_server = match map.get("publish") {
        Some(op) => Some(operation_of(r, op, &format!("{at}/publish"))?),
        None => None,
    };
    let server_to_client = match map.get("subscribe") {
        Some(op) => Some(operation_of(r, op, &format!("{at}/subscribe"))?),
        None => None,
    };
    Some(Channel {
        id: None,
        address: address.to_string(),
        description: text(map, "description"),
        ws_binding: r.ws_binding(map, &at),
        parameters,
        client_to_server,
        server_to_client,
    })
}

fn operation_of<'a>(r: &mut Reader<'a>, value: &'a Value, at: &str) -> Option<Operation> {
    let map = r.object(Some(value), at, true)?;
    let mut messages = Vec::new();
    if let Some(msg) = map.get("message") {
        let (msg, msg_at) = r.deref(msg, &format!("{at}/message"))?;
        if let Some(alternatives) = msg.get("oneOf").and_then(Value::as_array) {
            for (i, m) in alternatives.iter().enumerate() {
                // Resolve here too, to learn the component's key.
                let Some((m, m_at)) = r.deref(m, &format!("{msg_at}/oneOf/{i}")) else {
                    continue;
                };
                if let Some(m) = named_message(r, m, &m_at) {
                    messages.push(m);
                }
            }
        } else if let Some(m) = named_message(r, msg, &msg_at) {
            messages.push(m);
        }
    }
    Some(Operation {
        operation_id: text(map, "operationId"),
        summary: text(map, "summary"),
        messages,
        replies: Vec::new(),
    })
}

/// A message, named after its key in `components/messages` when it has no `name`.
fn named_message<'a>(
    r: &mut Reader<'a>,
    value: &'a Value,
    at: &str,
) -> Option<crate::model::Message> {
    let mut m = r.message(value, at)?;
    if m.name.is_none() {
        if let Some(key) = at.strip_prefix("/components/messages/") {
            m.name = Some(key.replace("~1", "/").replace("~0", "~"));
        }
    }
    Some(m)
}

fn check_operation_ids<'a>(r: &mut Reader<'a>, channels: &[Channel]) {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for ch in channels {
        for (field, op) in [
            ("publish", &ch.client_to_server),
            ("subscribe", &ch.server_to_client),
        ] {
            let Some(id) = op.as_ref().and_then(|o| o.operation_id.as_deref()) else {
                continue;
            };
            let here = format!("/channels/{}/{field}/operationId", escape(&ch.address));
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                let msg = format!("duplicate operationId `{id}` (first used at {first})");
                r.problem(&here, msg);
            } else {
                seen.push((id, here));
            }
        }
    }
}
