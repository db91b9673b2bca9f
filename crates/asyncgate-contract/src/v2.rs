//! AsyncAPI 2.x (2.0 – 2.6) read into the model: `publish` is what the client sends,
//! `subscribe` what it receives.

use crate::diagnostic::{ContractError, Diagnostic};
use crate::load::Limits;
use crate::model::{Channel, Contract, Message, Operation, Server};
use crate::refs::{escape, resolve};
use serde_json::{Map, Value};

struct Reader<'a> {
    doc: &'a Value,
    limits: &'a Limits,
    problems: Vec<Diagnostic>,
}

pub(crate) fn read(doc: &Value, version: &str, limits: &Limits) -> Result<Contract, ContractError> {
    let mut r = Reader {
        doc,
        limits,
        problems: Vec::new(),
    };
    let info = r.object(doc.get("info"), "/info", true);
    let title = info.and_then(|i| r.string(i.get("title"), "/info/title", true));
    let api_version = info.and_then(|i| r.string(i.get("version"), "/info/version", true));
    let description = info
        .and_then(|i| i.get("description"))
        .and_then(Value::as_str)
        .map(str::to_string);

    let mut servers = Vec::new();
    if let Some(map) = r.object(doc.get("servers"), "/servers", false) {
        for (name, server) in map {
            if let Some(s) = r.server(name, server) {
                servers.push(s);
            }
        }
    }

    let mut channels = Vec::new();
    if let Some(map) = r.object(doc.get("channels"), "/channels", true) {
        for (address, item) in map {
            if let Some(ch) = r.channel(address, item) {
                channels.push(ch);
            }
        }
    }

    r.check_operation_ids(&channels);
    if !r.problems.is_empty() {
        return Err(ContractError::Invalid(r.problems));
    }
    Ok(Contract {
        asyncapi_version: version.to_string(),
        title: title.unwrap_or_default(),
        version: api_version.unwrap_or_default(),
        description,
        servers,
        channels,
    })
}

impl<'a> Reader<'a> {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            pointer: pointer.to_string(),
            message: message.into(),
            line: None,
            column: None,
        });
    }

    fn deref(&mut self, value: &'a Value, at: &str) -> Option<(&'a Value, String)> {
        match resolve(self.doc, value, at, self.limits.max_ref_hops) {
            Ok(found) => Some(found),
            Err(e) => {
                self.problems.extend(e.diagnostics());
                None
            }
        }
    }

    fn object(
        &mut self,
        value: Option<&'a Value>,
        at: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            None if required => {
                let field = at.rsplit('/').next().unwrap_or(at);
                self.problem(at, format!("required field `{field}` is missing"));
                None
            }
            None => None,
            Some(v) => {
                let (v, at) = self.deref(v, at)?;
                match v.as_object() {
                    Some(m) => Some(m),
                    None => {
                        self.problem(&at, format!("must be a mapping, found {}", kind(v)));
                        None
                    }
                }
            }
        }
    }

    fn string(&mut self, value: Option<&'a Value>, at: &str, required: bool) -> Option<String> {
        match value {
            None if required => {
                let field = at.rsplit('/').next().unwrap_or(at);
                self.problem(at, format!("required field `{field}` is missing"));
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            // YAML turns `version: 1.0` into a number; keep what the author meant.
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                self.problem(at, format!("must be a string, found {}", kind(other)));
                None
            }
        }
    }

    fn server(&mut self, name: &str, value: &'a Value) -> Option<Server> {
        let at = format!("/servers/{}", escape(name));
        let map = self.object(Some(value), &at, true)?;
        let url = self.string(map.get("url"), &format!("{at}/url"), true);
        let protocol = self.string(map.get("protocol"), &format!("{at}/protocol"), true);
        let (mut url, protocol) = (url?, protocol?.to_ascii_lowercase());
        if let Some(vars) = map.get("variables").and_then(Value::as_object) {
            for (var, def) in vars {
                if let Some(default) = def.get("default").and_then(Value::as_str) {
                    url = url.replace(&format!("{{{var}}}"), default);
                }
            }
        }
        if !url.contains("://") {
            url = format!("{protocol}://{url}");
        }
        Some(Server {
            name: name.to_string(),
            url,
            protocol,
        })
    }

    fn channel(&mut self, address: &str, value: &'a Value) -> Option<Channel> {
        let at = format!("/channels/{}", escape(address));
        let map = self.object(Some(value), &at, true)?;
        let mut declared: Vec<String> = Vec::new();
        if let Some(params) = self.object(map.get("parameters"), &format!("{at}/parameters"), false)
        {
            declared = params.keys().cloned().collect();
        }
        let parameters = Channel::address_parameters(address);
        for p in &parameters {
            if !declared.contains(p) && map.get("parameters").is_some() {
                self.problem(
                    &format!("{at}/parameters"),
                    format!("address parameter `{p}` is not defined in `parameters`"),
                );
            }
        }
        let client_to_server = match map.get("publish") {
            Some(op) => Some(self.operation(op, &format!("{at}/publish"))?),
            None => None,
        };
        let server_to_client = match map.get("subscribe") {
            Some(op) => Some(self.operation(op, &format!("{at}/subscribe"))?),
            None => None,
        };
        Some(Channel {
            address: address.to_string(),
            description: map
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters,
            client_to_server,
            server_to_client,
        })
    }

    fn operation(&mut self, value: &'a Value, at: &str) -> Option<Operation> {
        let map = self.object(Some(value), at, true)?;
        let mut messages = Vec::new();
        match map.get("message") {
            None => {}
            Some(msg) => {
                let (msg, msg_at) = self.deref(msg, &format!("{at}/message"))?;
                if let Some(alternatives) = msg.get("oneOf").and_then(Value::as_array) {
                    for (i, m) in alternatives.iter().enumerate() {
                        if let Some(m) = self.message(m, &format!("{msg_at}/oneOf/{i}")) {
                            messages.push(m);
                        }
                    }
                } else if let Some(m) = self.message(msg, &msg_at) {
                    messages.push(m);
                }
            }
        }
        Some(Operation {
            operation_id: map
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_string),
            summary: map
                .get("summary")
                .and_then(Value::as_str)
                .map(str::to_string),
            messages,
        })
    }

    fn message(&mut self, value: &'a Value, at: &str) -> Option<Message> {
        let map = self.object(Some(value), at, true)?;
        let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
        let payload = match map.get("payload") {
            Some(p) => Some(self.deref(p, &format!("{at}/payload"))?.0.clone()),
            None => None,
        };
        Some(Message {
            name: text("name"),
            title: text("title"),
            summary: text("summary"),
            content_type: text("contentType"),
            payload,
        })
    }

    fn check_operation_ids(&mut self, channels: &[Channel]) {
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
                    self.problem(&here, msg);
                } else {
                    seen.push((id, here));
                }
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}
